"""``run.json`` as a typed record: the one place its fields, their types and its version live.

The harness writes a ``RunRecord`` at the start of a run and replaces it as the run learns more
(the cluster's version, the objects created, the processes started); ``report`` and ``compare``
read it back. Reading is strict about what makes a directory a kubeswarm run (an ``id``, a known
``mode``, a ``start`` time) and lenient about the rest: a key this version does not know lands in
``extra`` and is written back unchanged, so a newer harness's run.json still reads, and a file
written before ``schema_version`` existed reads as version 1 (its fields are the same).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final, Literal, get_args

RunMode = Literal["local", "cluster", "demo", "sample"]
RunStatus = Literal["running", "completed", "interrupted", "failed"]

# Bumped when a field changes meaning or is removed; adding a field does not bump it.
SCHEMA_VERSION: Final = 1


class RunRecordError(ValueError):
    """run.json is unreadable or not a kubeswarm run; the message is one line naming the file."""


@dataclass(frozen=True)
class RunRecord:
    """What ``run.json`` holds. Times are epoch seconds (UTC); ``end`` is None while running."""

    id: str
    mode: RunMode
    start: float
    version: str = "unknown"  # kubeswarm's version that wrote the run
    config: Mapping[str, Any] = field(default_factory=dict)  # the frozen run config, plain values
    end: float | None = None
    status: RunStatus = "running"  # a run killed without cleanup stays "running"
    sample_interval_s: float = 2.0  # the harness's default when a run did not record it
    schema_version: int = SCHEMA_VERSION
    context: str | None = None  # kubeconfig context (cluster, sample)
    namespace: str | None = None  # namespace of the load Jobs (cluster) or of the sampler
    server: str | None = None  # API server URL
    server_version: str | None = None  # e.g. "v1.35.0"
    watch: tuple[str, ...] = ()  # watch targets as written: hpa/web, shop/deployment/api, pid/42
    slos: tuple[str, ...] = ()  # --slo expressions as written
    objects: tuple[str, ...] = ()  # Kind/name of every object created in the cluster
    processes: tuple[int, ...] = ()  # pids of every local process started (local, demo)
    locust_web: str | None = None  # Locust web UI address (local, demo)
    hpa_spec: Mapping[str, Any] | None = None  # the demo autoscaler's HPA spec and behavior
    hpa_sync_period_s: float | None = None  # the HPA sync period (--hpa-sync-period; demo 5 s)
    extra: Mapping[str, Any] = field(default_factory=dict)  # keys this version does not know

    def __post_init__(self) -> None:
        clash = sorted(set(self.extra) & _KNOWN)
        if clash:
            raise ValueError(f"RunRecord.extra repeats field(s) {', '.join(clash)}")

    def with_fields(self, **changes: Any) -> RunRecord:
        """A copy with ``changes``: known fields are replaced (and checked), others go to extra."""
        known = {k: v for k, v in changes.items() if k in _KNOWN}
        unknown = {k: v for k, v in changes.items() if k not in _KNOWN}
        merged = {**self.as_dict(), **known, **unknown}
        return record_from_dict(json.loads(json.dumps(merged, default=str)), "RunRecord")

    def as_dict(self) -> dict[str, Any]:
        """The JSON object: every field set, ``extra`` flattened in after them."""
        data: dict[str, Any] = {}
        for f in fields(self):
            if f.name == "extra":
                continue
            value = getattr(self, f.name)
            if value is None and f.name in _OPTIONAL:
                continue
            if f.name in _OPTIONAL and value == ():
                continue
            data[f.name] = list(value) if isinstance(value, tuple) else value
        data.update(self.extra)
        return data

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), indent=2, default=str) + "\n"


_KNOWN: Final = frozenset(f.name for f in fields(RunRecord)) - {"extra"}
_REQUIRED: Final = ("id", "mode", "start")
# Written only when the run has them; absent and empty read the same.
_OPTIONAL: Final = frozenset(
    (
        "context",
        "namespace",
        "server",
        "server_version",
        "watch",
        "slos",
        "objects",
        "processes",
        "locust_web",
        "hpa_spec",
        "hpa_sync_period_s",
    )
)


def read_run_record(path: Path) -> RunRecord:
    """Reads ``run.json`` (or the ``run.json`` of a run directory); ``RunRecordError`` if it is not
    JSON, not an object, or not a kubeswarm run."""
    if path.is_dir():
        path = path / "run.json"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise RunRecordError(f"{path}: no such file; is this a kubeswarm run directory?") from e
    except OSError as e:
        raise RunRecordError(f"{path}: cannot read: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise RunRecordError(f"{path}: not UTF-8 text, so not a kubeswarm run.json") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise RunRecordError(f"{path}: not JSON ({e.msg} at line {e.lineno})") from e
    return record_from_dict(data, str(path))


def record_from_dict(data: Any, source: str) -> RunRecord:
    """A RunRecord from a decoded JSON value; ``source`` names it in error messages."""
    if not isinstance(data, dict):
        raise RunRecordError(f"{source}: not a JSON object, so not a kubeswarm run.json")
    missing = [key for key in _REQUIRED if key not in data]
    if missing:
        raise RunRecordError(f"{source}: not a kubeswarm run.json (no {', '.join(missing)})")
    known = {k: v for k, v in data.items() if k in _KNOWN}
    extra = {k: v for k, v in data.items() if k not in _KNOWN}
    checked = {name: _check(name, value, source) for name, value in known.items()}
    return RunRecord(**checked, extra=extra)


def _check(name: str, value: Any, source: str) -> Any:
    """``value`` converted to the field's type, or ``RunRecordError`` naming what it must be."""
    accepts, expected, convert = _FIELD_TYPES.get(name, (_is_text, "a string", _same))
    if value is None and name in _NULLABLE:
        return None
    if not accepts(value):
        raise RunRecordError(f"{source}: {name} must be {expected}, got {value!r:.60}")
    return convert(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_texts(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_pids(value: Any) -> bool:
    return isinstance(value, list) and all(_is_count(v) for v in value)


def _same(value: Any) -> Any:
    return value


_NULLABLE: Final = frozenset(
    ("end", "hpa_sync_period_s", "hpa_spec", "context", "namespace", "server", "server_version")
) | {"locust_web"}
_FIELD_TYPES: Final[dict[str, tuple[Callable[[Any], bool], str, Callable[[Any], Any]]]] = {
    "mode": (lambda v: v in get_args(RunMode), "one of " + ", ".join(get_args(RunMode)), _same),
    "status": (
        lambda v: v in get_args(RunStatus),
        "one of " + ", ".join(get_args(RunStatus)),
        _same,
    ),
    **dict.fromkeys(
        ("start", "end", "sample_interval_s", "hpa_sync_period_s"),
        (_is_number, "a number", float),
    ),
    "schema_version": (_is_count, "a whole number, 1 or more", _same),
    **dict.fromkeys(("config", "hpa_spec"), (lambda v: isinstance(v, dict), "an object", _same)),
    **dict.fromkeys(("watch", "slos", "objects"), (_is_texts, "a list of strings", tuple)),
    "processes": (_is_pids, "a list of process ids", tuple),
}

__all__ = [
    "SCHEMA_VERSION",
    "RunMode",
    "RunRecord",
    "RunRecordError",
    "RunStatus",
    "read_run_record",
    "record_from_dict",
]
