"""Environment variables for the locustfile: ``--env``, ``--env-file`` and ``--env-from``.

A locustfile needs tokens and settings; kubeswarm hands them to the Locust master and workers as
environment variables and never writes a value anywhere: run.json records the names, the files
and the referenced objects; ``render`` shows the per-run Secret with its values redacted; every
error names the variable, the file and the line, never what was after ``=``. The values live in
``EnvValue.value`` only, a field left out of ``repr`` so a traceback or a debug print of the
configuration cannot show it either.

Where a value comes from, later wins (as Kubernetes resolves ``envFrom`` entries in order, and
``docker run`` its ``--env-file`` and ``-e``): the referenced Secrets and ConfigMaps
(``--env-from``, in order), then the ``--env-file`` files (in order), then each ``--env``.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from dotenv.parser import parse_stream

# What Kubernetes' envFrom needs of a key to be usable as a variable, and what a POSIX shell
# accepts: a C identifier.
_ENV_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A Secret's or ConfigMap's name: a DNS subdomain (RFC 1123), at most 253 characters.
_OBJECT_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
REDACTED: Final = "<redacted>"

EnvKind = Literal["secret", "configmap"]
_REF_KINDS: Final[dict[str, EnvKind]] = {
    "secret": "secret",
    "secrets": "secret",
    "configmap": "configmap",
    "configmaps": "configmap",
    "cm": "configmap",
}


@dataclass(frozen=True)
class EnvValue:
    """One variable with its value; the value is never in ``repr`` nor in ``str``."""

    name: str
    value: str = field(repr=False)

    def __str__(self) -> str:
        return f"{self.name}={REDACTED}"


@dataclass(frozen=True)
class EnvFile:
    """An ``--env-file``: its path and the variables read from it (dotenv format)."""

    path: Path
    values: tuple[EnvValue, ...]

    def __str__(self) -> str:
        return str(self.path)


@dataclass(frozen=True)
class EnvRef:
    """A Secret or ConfigMap of the user's (``--env-from secret/NAME``), every key a variable."""

    kind: EnvKind
    name: str

    @property
    def api_kind(self) -> str:
        return "Secret" if self.kind == "secret" else "ConfigMap"

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class RunEnv:
    """The environment a run gives the locustfile: literal values and referenced objects."""

    values: tuple[EnvValue, ...] = ()  # --env-file then --env, one per name, the last given wins
    files: tuple[Path, ...] = ()  # the --env-file paths, for the record
    refs: tuple[EnvRef, ...] = ()  # --env-from, in the order given

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.values)

    def as_mapping(self) -> dict[str, str]:
        """Name -> value, for a child process's environment or the per-run Secret only."""
        return {v.name: v.value for v in self.values}

    def as_record(self) -> dict[str, Any]:
        """What run.json keeps: names, files and references, never a value."""
        return {
            "names": list(self.names),
            "files": [str(p) for p in self.files],
            "from": [str(r) for r in self.refs],
        }

    def __bool__(self) -> bool:
        return bool(self.values or self.refs)


def check_env_name(name: str, where: str = "") -> str:
    """A valid variable name or ValueError naming it (the name only, never a value)."""
    if not _ENV_NAME.match(name):
        shown = f"{name!r}" if name else "an empty name"
        raise ValueError(
            f"{where}{shown} is not a valid environment variable name: letters, digits and _, "
            "not starting with a digit"
        )
    return name


def parse_env_assignment(text: str) -> EnvValue:
    """``--env NAME=VALUE``; an error says what is wrong with the name, never the value."""
    name, equals, value = text.partition("=")
    if not equals:
        # Without "=" the whole text may be the value itself, typed without its name.
        raise ValueError("give NAME=VALUE (the text given is not shown: it may be a value)")
    return EnvValue(check_env_name(name.strip()), value)


def parse_env_file(text: str) -> EnvFile:
    """``--env-file FILE`` in dotenv format (python-dotenv's parser): ``NAME=VALUE`` lines,
    ``export`` and quotes allowed, ``#`` comments. Values are taken literally: ``${X}`` is not
    expanded, so a token containing ``$`` arrives as written."""
    path = Path(text)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"cannot read {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise ValueError(f"{path} is not UTF-8 text") from e
    values = []
    for binding in parse_stream(io.StringIO(content)):
        line = binding.original.line
        if binding.error:
            raise ValueError(f"{path}, line {line}: not NAME=VALUE (the line is not shown)")
        if binding.key is None:
            continue  # a comment or a blank line
        name = check_env_name(binding.key, f"{path}, line {line}: ")
        if binding.value is None:
            raise ValueError(f"{path}, line {line}: {name} has no value (write {name}=VALUE)")
        values.append(EnvValue(name, binding.value))
    return EnvFile(path, tuple(values))


def parse_env_from(text: str) -> EnvRef:
    """``--env-from secret/NAME`` or ``configmap/NAME``."""
    kind, slash, name = text.strip().partition("/")
    if not slash or kind.lower() not in _REF_KINDS:
        raise ValueError(f"{text!r}: give secret/NAME or configmap/NAME")
    if not _OBJECT_NAME.match(name):
        raise ValueError(f"{text!r}: {name!r} is not a Secret or ConfigMap name")
    return EnvRef(_REF_KINDS[kind.lower()], name)


def build_run_env(
    assignments: Iterable[EnvValue], files: Iterable[EnvFile], refs: Iterable[EnvRef]
) -> RunEnv:
    """The run's environment: files first, then ``--env``; a name given twice keeps its last."""
    files = tuple(files)
    merged: dict[str, EnvValue] = {}
    for value in [*(v for f in files for v in f.values), *assignments]:
        merged.pop(value.name, None)  # re-inserted: the order is where it was last given
        merged[value.name] = value
    return RunEnv(tuple(merged.values()), tuple(f.path for f in files), tuple(dict.fromkeys(refs)))


def usable_keys(data: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The keys of a referenced object that can be variables, and those that cannot (skipped,
    as the kubelet skips them, and named in a warning)."""
    usable = {k: v for k, v in data.items() if _ENV_NAME.match(k)}
    return usable, sorted(k for k in data if k not in usable)
