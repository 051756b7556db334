"""Option values validated into the frozen configuration of a run.

``harness.config.options`` says where each value comes from; this module checks that they make a run
(a locustfile that compiles, a host URL, a deadline longer than the test) and freezes them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from harness.config.chaos import ChaosPick, ChaosSpec, check_chaos
from harness.config.checks import (
    LocustfileError,
    check_local_flags,
    check_watch_targets,
    inspect_locustfile,
    locust_command,
)
from harness.config.env import RunEnv, build_run_env
from harness.config.options import MIN_STARTUP_S, OPTIONS, STOP_GRACE_S
from harness.config.values import Toleration, WatchTarget
from harness.errors import UsageError

# Defaults live once, in the option table; the config model takes them from there.
_DEFAULTS: Final = {name: option.default for name, option in OPTIONS.items()}


@dataclass(frozen=True)
class LoadConfig:
    """What Locust runs: the same values whether master and workers are local or pods."""

    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    run_time_s: float
    workers: int
    processes: int
    autoquit_s: float


@dataclass(frozen=True)
class RunConfig:
    """A whole run: load, what to watch, where to write, and for clusters where to run."""

    load: LoadConfig
    watch: tuple[WatchTarget, ...] = ()
    slos: tuple[str, ...] = ()
    out_dir: Path = Path("runs")
    name: str = "run"
    sample_interval_s: float = 2.0
    hpa_sync_period_s: float = _DEFAULTS["hpa_sync_period_s"]
    local: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    image: str = _DEFAULTS["image"]
    keep: bool = False
    extra_files: tuple[Path, ...] = ()
    requirements: tuple[str, ...] = ()
    pip_index_url: str | None = None  # the index --requirement installs from (pip's default)
    network_policy: bool = True  # the master's NetworkPolicy (--no-network-policy: none)
    ui_from: tuple[str, ...] = ()  # CIDRs allowed to the master's web port (): the nodes'
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    affinity: Mapping[str, Any] | None = None
    worker_cpu: str | None = None  # None: one core per Locust process
    worker_memory: str | None = None  # None: WORKER_MEMORY_MI_PER_PROCESS MiB per process
    master_cpu: str = _DEFAULTS["master_cpu"]
    master_memory: str = _DEFAULTS["master_memory"]
    deadline_s: float | None = None  # None: run time + autoquit + STARTUP_MARGIN_S
    ttl_s: float = _DEFAULTS["ttl_s"]
    open_browser: bool = False
    shape: str | None = None  # the locustfile's LoadTestShape class, found by Locust's loader
    chaos: tuple[ChaosSpec, ...] = ()  # disruptions, in the order given
    chaos_target: WatchTarget | None = None  # None: the first watched HPA's workload or process
    chaos_pick: ChaosPick = "oldest"
    auto_workers: bool = False  # --workers auto: load.workers is the starting count
    max_workers: int | None = None  # the bound of --workers auto
    target_rps: float | None = None  # --target-rps, for the report's capacity sizing
    env: RunEnv = field(default_factory=RunEnv)  # --env, --env-file, --env-from

    def as_record(self) -> dict[str, Any]:
        """The config as ``run.json`` keeps it: plain values, watch targets as written."""
        record = asdict(self)
        record["watch"] = [str(t) for t in self.watch]
        record["chaos"] = [str(spec) for spec in self.chaos]
        record["chaos_target"] = None if self.chaos_target is None else str(self.chaos_target)
        record["env"] = self.env.as_record()  # names and references only, never a value
        return record


def check_locustfile(path: Path) -> Path:
    """The locustfile must be a readable UTF-8 Python file that compiles; its absolute path."""
    if path.is_dir():
        raise UsageError(f"locustfile {path} is a directory; pass the Python file (-f DIR/FILE.py)")
    if not path.is_file():
        raise UsageError(f"locustfile {path} does not exist")
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UsageError(
            f"locustfile {path} is not UTF-8 text (byte {e.start}); is it the Python file?"
        ) from None
    except OSError as e:
        raise UsageError(f"cannot read locustfile {path}: {e.strerror}") from None
    try:
        compile(source, str(path), "exec")
    except SyntaxError as e:
        where = "" if e.lineno is None else f"line {e.lineno}: "  # None: a NUL byte
        raise UsageError(f"locustfile {path} does not compile: {where}{e.msg}") from e
    except ValueError as e:  # a NUL byte, on Python versions that raise ValueError for it
        raise UsageError(f"locustfile {path} does not compile: {e}") from None
    return path.resolve()


def check_host(text: str) -> str:
    """``-H``: an http(s) URL with a host (a port, if any, a number from 1 to 65535); the URL
    without a trailing slash. Locust would otherwise run the whole test at 100 % errors."""
    example = "e.g. -H http://web.shop.svc:8080"
    try:
        parsed = urlsplit(text.strip())
    except ValueError:  # an unclosed [ of an IPv6 address
        raise UsageError(f"host {text!r} is not a URL ({example})") from None
    if parsed.scheme not in ("http", "https"):
        raise UsageError(f"host {text!r} must start with http:// or https:// ({example})")
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if not parsed.hostname or any(c.isspace() for c in text.strip()):
        raise UsageError(f"host {text!r} names no host ({example})")
    if port == 0:
        raise UsageError(f"host {text!r}: the port must be a number from 1 to 65535")
    return text.strip().rstrip("/")


def build_run_config(values: Mapping[str, Any]) -> RunConfig:
    """Validate merged option values (see ``merge_sources``) into a frozen RunConfig.

    Everything is checked here, before any process, run directory or cluster object exists:
    options that contradict the mode, watch targets, and the locustfile under Locust's loader."""
    local = bool(values.get("local", False))
    if local:
        # --env-from with --local reads the objects through the kubeconfig: its options count.
        reads_cluster = ("kubeconfig", "context", "namespace") if values.get("env_from") else ()
        check_local_flags({k: v for k, v in values.items() if k not in reads_cluster})
    locustfile = values.get("locustfile")
    if locustfile is None:
        raise UsageError("no locustfile: pass -f FILE (examples ship in kubeswarm's locustfiles/)")
    host = values.get("host")
    if not host:
        raise UsageError("no target host: pass -H URL, e.g. -H http://web.shop.svc:8080")
    load = LoadConfig(
        locustfile=check_locustfile(Path(locustfile)),
        host=check_host(str(host)),
        users=values["users"],
        spawn_rate=values["spawn_rate"],
        run_time_s=values["run_time_s"],
        workers=_starting_workers(values),
        processes=values["processes"],
        autoquit_s=values["autoquit_s"],
    )
    watch = tuple(values.get("watch", ()))
    check_watch_targets(
        watch, local=local, locust_command=locust_command(load.locustfile, load.host)
    )
    shape = _shape(load.locustfile, local=local, requirements=values.get("requirements", ()))
    name = values.get("name") or _name_from_file(load.locustfile)
    chaos = tuple(values.get("chaos", ()))
    check_chaos(chaos, load.run_time_s, values.get("chaos_target"), local=bool(values.get("local")))
    return RunConfig(
        load=load,
        watch=watch,
        slos=tuple(values.get("slos", ())),
        out_dir=Path(values.get("out_dir") or OPTIONS["out_dir"].default),
        name=name,
        sample_interval_s=values["sample_interval_s"],
        hpa_sync_period_s=values["hpa_sync_period_s"],
        local=local,
        kubeconfig=values.get("kubeconfig"),
        context=values.get("context"),
        namespace=values.get("namespace"),
        image=values.get("image", OPTIONS["image"].default),
        keep=bool(values.get("keep", False)),
        extra_files=tuple(values.get("extra_files", ())),
        requirements=_requirements(values.get("requirements", ())),
        pip_index_url=_pip_index_url(values.get("pip_index_url"), values.get("requirements")),
        network_policy=not values.get("no_network_policy", False),
        ui_from=tuple(values.get("ui_from", ())),
        node_selector=_unique_node_selector(values.get("node_selector", ())),
        tolerations=tuple(values.get("tolerations", ())),
        affinity=values.get("affinity"),
        worker_cpu=values.get("worker_cpu"),
        worker_memory=values.get("worker_memory"),
        master_cpu=values.get("master_cpu") or OPTIONS["master_cpu"].default,
        master_memory=values.get("master_memory") or OPTIONS["master_memory"].default,
        deadline_s=_deadline(values.get("deadline_s"), load),
        ttl_s=values.get("ttl_s", OPTIONS["ttl_s"].default),
        open_browser=bool(values.get("open_browser", False)),
        shape=shape,
        chaos=chaos,
        chaos_target=values.get("chaos_target"),
        chaos_pick=values.get("chaos_pick") or "oldest",
        auto_workers=values["workers"] == "auto",
        max_workers=values.get("max_workers"),
        target_rps=values.get("target_rps"),
        env=build_run_env(
            values.get("env", ()), values.get("env_files", ()), values.get("env_from", ())
        ),
    )


def _shape(locustfile: Path, *, local: bool, requirements: tuple[str, ...]) -> str | None:
    """The locustfile's LoadTestShape, from Locust's loader; a module the pods install with
    ``--requirement`` may be missing here, which is no reason to refuse an in-cluster run."""
    try:
        return inspect_locustfile(locustfile).shape_class
    except LocustfileError as e:
        if not local and e.missing_module and requirements:
            return None
        raise


def _starting_workers(values: Mapping[str, Any]) -> int:
    """``--workers auto`` starts with one worker and needs ``--max-workers``, which means
    nothing without it (a fixed count would silently ignore the bound)."""
    if values["workers"] != "auto":
        if values.get("max_workers") is not None:
            raise UsageError(
                f"--max-workers bounds --workers auto, but --workers is {values['workers']}: "
                "pass --workers auto, or drop --max-workers"
            )
        return int(values["workers"])
    if values.get("max_workers") is None:
        raise UsageError("--workers auto needs --max-workers N, the most workers it may run")
    return 1


def _pip_index_url(url: str | None, requirements: tuple[str, ...] | None) -> str | None:
    if url is None:
        return None
    if not requirements:
        raise UsageError("--pip-index-url is where --requirement installs from: give both")
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        raise UsageError(f"--pip-index-url {url!r}: give an http:// or https:// URL")
    return url


def _requirements(requirements: tuple[str, ...]) -> tuple[str, ...]:
    for requirement in requirements:
        if not requirement.strip() or "\n" in requirement:
            raise UsageError(f"--requirement {requirement!r}: give one pip requirement per flag")
    return tuple(requirements)


def _unique_node_selector(pairs: tuple[tuple[str, str], ...]) -> tuple[tuple[str, str], ...]:
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key in seen and seen[key] != value:
            raise UsageError(f"--node-selector: {key} given twice ({seen[key]!r} and {value!r})")
        seen[key] = value
    return tuple(seen.items())


def _deadline(deadline_s: float | None, load: LoadConfig) -> float | None:
    """``--deadline`` must cover the run, its stop and autoquit, and leave time to start."""
    needed_s = math.ceil(load.run_time_s) + STOP_GRACE_S + math.ceil(load.autoquit_s)
    if deadline_s is not None and deadline_s < needed_s + MIN_STARTUP_S:
        raise UsageError(
            f"--deadline {deadline_s:g}s would stop the Jobs before the test ends: it must be "
            f"at least --run-time + {STOP_GRACE_S}s to stop + --autoquit ({needed_s}s) plus "
            f"{MIN_STARTUP_S}s for the pods to start ({needed_s + MIN_STARTUP_S}s)"
        )
    return deadline_s


def _name_from_file(path: Path) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return (cleaned or "run")[:40].rstrip("-") or "run"
