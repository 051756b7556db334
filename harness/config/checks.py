"""Checks that need more than one option, or this machine, before a run starts anything.

``harness.config.values`` checks each text on its own; the checks here look at options together
(a cluster flag with ``--local``, a watch target for the other mode) or at the world (a pid that
must exist, a locustfile Locust must load). All raise ``UsageError`` (exit 2) with one line, and
all run before a process, a run directory or a cluster object exists.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from harness.config.options import OPTIONS
from harness.config.values import WatchTarget
from harness.errors import UsageError
from harness.processes import run_to_end

CLUSTER_KINDS: Final = frozenset(("hpa", "deployment", "statefulset"))
LOCAL_KINDS: Final = frozenset(("pid", "cmd"))

# Options that only shape the in-cluster Jobs and pods (or pick the cluster); with --local they
# would be silently ignored, so they are refused with what they are for.
CLUSTER_ONLY: Final[dict[str, str]] = {
    "kubeconfig": "picks the cluster",
    "context": "picks the cluster",
    "namespace": "is where the Jobs go",
    "image": "is the pods' image",
    "keep": "keeps the Jobs",
    "extra_files": "ships files into a ConfigMap",
    "requirements": "is installed in the pods",
    "pip_index_url": "is where the pods install --requirement from",
    "no_network_policy": "is about the master pod's NetworkPolicy",
    "ui_from": "opens the master pod's web port",
    "node_selector": "places the pods",
    "tolerations": "places the pods",
    "affinity": "places the pods",
    "worker_cpu": "sizes the worker pods",
    "worker_memory": "sizes the worker pods",
    "master_cpu": "sizes the master pod",
    "master_memory": "sizes the master pod",
    "deadline_s": "bounds the Jobs",
    "ttl_s": "bounds the Jobs",
}

# Locust loads a locustfile on import: run its own loader in a fresh interpreter, as a pod would,
# so the harness never imports locust (gevent patches the standard library on import). The
# result is the last stdout line, after anything the locustfile itself prints.
_PROBE: Final = """
import json, sys, traceback
path = sys.argv[1]
try:
    from locust.util.load_locustfile import load_locustfile
    users, shapes = load_locustfile(path)
    result = {"users": sorted(users), "shapes": sorted(type(s).__name__ for s in shapes)}
except BaseException as e:
    frames = [f for f in traceback.extract_tb(e.__traceback__) if f.filename == path]
    where = f"line {frames[-1].lineno}: " if frames else ""
    last = traceback.format_exception_only(type(e), e)[-1].strip()
    result = {"error": where + last, "missing_module": getattr(e, "name", None)
              if isinstance(e, ModuleNotFoundError) else None}
sys.stdout.write("\\n" + json.dumps(result) + "\\n")
"""
# A locustfile that connects somewhere on import gets this long before it is called hung.
LOAD_TIMEOUT_S: Final = 60.0


@dataclass(frozen=True)
class LocustfileInfo:
    """What Locust's loader found: the runnable User classes and the LoadTestShape, if any."""

    user_classes: tuple[str, ...]
    shape_class: str | None


class LocustfileError(UsageError):
    """Locust could not load the locustfile; ``missing_module`` is set for an ImportError."""

    def __init__(self, message: str, missing_module: str | None = None) -> None:
        super().__init__(message)
        self.missing_module = missing_module


def inspect_locustfile(path: Path) -> LocustfileInfo:
    """Loads ``path`` with Locust's own loader in a subprocess; ``LocustfileError`` with the
    loader's last error line if it fails, has no User class or more than one shape."""
    resolved = path.resolve()
    stat = resolved.stat()
    return _inspect(str(resolved), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _inspect(path: str, _mtime_ns: int, _size: int) -> LocustfileInfo:
    # Cached on the file's mtime and size: `render` and `run` of one command line load it once.
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}  # leave no __pycache__ by the file
    try:
        done = run_to_end(
            [sys.executable, "-c", _PROBE, path],
            timeout_s=LOAD_TIMEOUT_S,
            cwd=Path(path).parent,
            env=env,
        )
    except subprocess.TimeoutExpired as e:
        raise LocustfileError(
            f"locustfile {path} did not finish loading in {LOAD_TIMEOUT_S:g}s (does it connect "
            "somewhere at import time?)"
        ) from e
    lines = done.stdout.strip().splitlines()
    try:
        result: dict[str, Any] = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        result = {}
    if "error" in result or "users" not in result:
        error = result.get("error") or _last_line(done.stderr) or f"exit code {done.returncode}"
        raise LocustfileError(
            f"locustfile {path} does not load in Locust: {error}", result.get("missing_module")
        )
    if not result["users"]:
        raise LocustfileError(
            f"locustfile {path} has no User class (define a class deriving from HttpUser, "
            "FastHttpUser or User, with tasks)"
        )
    shapes = result["shapes"]
    if len(shapes) > 1:
        raise LocustfileError(
            f"locustfile {path} has {len(shapes)} LoadTestShape classes ({', '.join(shapes)}); "
            "Locust runs one"
        )
    return LocustfileInfo(tuple(result["users"]), shapes[0] if shapes else None)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def check_local_flags(values: Mapping[str, Any]) -> None:
    """With ``--local``, refuse the options that only mean something in a cluster."""
    given = given_options(values, CLUSTER_ONLY)
    if not given:
        return
    named = ", ".join(f"{OPTIONS[n].flags[-1]} ({CLUSTER_ONLY[n]})" for n in given)
    raise UsageError(
        f"--local runs Locust on this machine, so these cluster options mean nothing: {named}; "
        "drop them or drop --local"
    )


def check_watch_targets(
    targets: Sequence[WatchTarget], *, local: bool, locust_command: str = ""
) -> None:
    """Each target must suit the mode: cluster objects in a cluster, existing local processes
    (not kubeswarm's own Locust, whose command line is ``locust_command``) with ``--local``."""
    for target in targets:
        if local and target.kind in CLUSTER_KINDS:
            raise UsageError(
                f"--watch {target}: a cluster object, but --local runs without a cluster; watch "
                "the target's processes with pid/PID or cmd/PATTERN, or drop --local"
            )
        if not local and target.kind in LOCAL_KINDS:
            raise UsageError(
                f"--watch {target}: a local process, but this run samples a cluster; watch "
                "hpa/NAME or deployment/NAME, or add --local"
            )
        if target.kind == "pid":
            _check_pid(target)
        elif target.kind == "cmd":
            _check_pattern(target, locust_command)


def _check_pid(target: WatchTarget) -> None:
    import psutil

    if int(target.name) == 1:
        raise UsageError(
            f"--watch {target}: pid 1 is the machine's init, its children are the whole system; "
            "watch the target server's pid"
        )
    if not psutil.pid_exists(int(target.name)):
        raise UsageError(f"--watch {target}: no process {target.name} is running on this machine")


def _check_pattern(target: WatchTarget, locust_command: str) -> None:
    pattern = target.name
    if pattern in locust_command or pattern.lower() in ("locust", "python"):
        raise UsageError(
            f"--watch {target}: {pattern!r} also matches the Locust processes kubeswarm starts "
            f"({locust_command or 'python -m locust'}); use a pattern only the target's command "
            "line has, or pid/PID"
        )
    if not processes_matching(pattern):
        raise UsageError(
            f"--watch {target}: no running process has {pattern!r} in its command line; start "
            "the target first (ps -ef shows the command lines)"
        )


def processes_matching(pattern: str) -> list[int]:
    """Pids whose command line contains ``pattern``, except this process and the ones that
    started it (their command lines name the pattern): the processes a ``cmd/`` target means."""
    import psutil

    ourselves = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if pattern in " ".join(p.info["cmdline"] or ()) and p.pid not in ourselves
    ]


def locust_command(locustfile: Path, host: str) -> str:
    """What every local Locust process's command line starts with and carries (ports aside): a
    ``cmd/`` pattern found in it would record Locust as the target."""
    return " ".join(
        (
            sys.executable,
            "-m locust -f",
            str(locustfile),
            "--master --master-bind-host 127.0.0.1 --master-bind-port --web-host --web-port",
            "--autostart --autoquit --expect-workers --expect-workers-max-wait -H",
            host,
            "-u -r -t --csv --csv-full-history --worker --master-host --master-port --processes",
        )
    )


def check_command(command: str, values: Mapping[str, Any]) -> None:
    """What a command's options must satisfy together; ``run`` and ``render`` are checked in
    full by ``build_run_config``."""
    if command == "sample":
        targets = tuple(values.get("watch", ()))
        if not targets:
            raise UsageError("sample: pass at least one --watch hpa/NAME or deployment/NAME")
        check_watch_targets(targets, local=False)


def check_writable_dir(path: Path, what: str, named: Path | None = None) -> None:
    """``path`` is, or can be made, a directory this process can write files in; else
    ``UsageError`` naming ``what`` (the flag). Checked by writing a temporary file in the
    nearest directory that exists, because permission bits say nothing to root, and a
    read-only mount or /proc refuses root too. ``named``: the path the user gave, if not this."""
    shown = named or path
    existing = path
    while not existing.exists() and existing != existing.parent:
        if existing.is_symlink():  # a dangling link: mkdir would fail on it
            raise UsageError(f"{what} {shown}: {existing} is a broken symbolic link")
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what} {shown}: {existing} is a file, not a directory")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise UsageError(f"{what} {shown}: cannot write in {existing} ({e.strerror})") from None


def check_writable_file(path: Path, what: str) -> None:
    """``path`` can be written as a file (it may exist; its folder may not yet); else
    ``UsageError`` naming ``what``."""
    if path.is_dir():
        raise UsageError(f"{what} {path} is a directory; give a file name")
    check_writable_dir(path.parent, what, named=path)


def given_options(values: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Which of ``names`` differ from their defaults (were given by flag, environment or file)."""
    return [n for n in names if values.get(n) not in (None, (), OPTIONS[n].default)]
