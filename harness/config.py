"""Every option of every command, defined once, validated into frozen dataclasses.

An option's value comes from, strongest first: the command-line flag, the ``KUBESWARM_<NAME>``
environment variable, the YAML ``--config`` file, then the default below. Each ``Option`` names its
unit and why its default is what it is; the CLI builds its flags from the same table, so a flag,
an environment variable and a config key can never disagree.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from analysis.units import parse_duration, parse_quantity
from harness.errors import UsageError

WatchKind = Literal["hpa", "deployment", "statefulset", "pid", "cmd"]

_WATCH_KINDS: Final[dict[str, WatchKind]] = {
    "hpa": "hpa",
    "horizontalpodautoscaler": "hpa",
    "deployment": "deployment",
    "deploy": "deployment",
    "statefulset": "statefulset",
    "sts": "statefulset",
    "pid": "pid",
    "cmd": "cmd",
}
_DNS_LABEL: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN: Final = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")


@dataclass(frozen=True)
class WatchTarget:
    """What the sampler records: ``hpa/web``, ``shop/deployment/web``, ``pid/1234``, ``cmd/x``."""

    kind: WatchKind
    name: str
    namespace: str | None = None

    def __str__(self) -> str:
        prefix = f"{self.namespace}/" if self.namespace else ""
        return f"{prefix}{self.kind}/{self.name}"


def parse_watch(text: str) -> WatchTarget:
    parts = text.split("/", 2) if not text.startswith(("pid/", "cmd/")) else text.split("/", 1)
    if len(parts) == 3:
        namespace, kind, name = parts
    elif len(parts) == 2:
        namespace, (kind, name) = None, parts
    else:
        raise ValueError(f"unknown watch target {text!r}; write KIND/NAME or NAMESPACE/KIND/NAME")
    resolved = _WATCH_KINDS.get(kind.lower())
    if resolved is None:
        raise ValueError(
            f"unknown watch target kind {kind!r} in {text!r}; use hpa, deployment, statefulset "
            "(cluster) or pid, cmd (local)"
        )
    if not name:
        raise ValueError(f"watch target {text!r} has no name")
    if resolved == "pid" and not name.isdigit():
        raise ValueError(f"watch target {text!r}: pid/ takes a process id")
    if resolved in ("hpa", "deployment", "statefulset") and not _DNS_SUBDOMAIN.match(name):
        raise ValueError(f"watch target {text!r}: {name!r} is not a valid Kubernetes name")
    if namespace is not None and not _DNS_LABEL.match(namespace):
        raise ValueError(f"watch target {text!r}: {namespace!r} is not a valid namespace")
    return WatchTarget(resolved, name, namespace)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"must be 1 or more, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"must be 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(f"must be more than 0, got {text}")
    return value


def _positive_duration(text: str) -> float:
    value = parse_duration(text)
    if value <= 0:
        raise ValueError(f"must be longer than 0 s, got {text!r}")
    return value


def _name(text: str) -> str:
    if not _DNS_LABEL.match(text) or len(text) > 40:
        raise ValueError(
            f"{text!r} must be lowercase letters, digits and '-', at most 40 characters"
        )
    return text


def _text(text: str) -> str:
    return text


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {text!r}")


# Pods of an in-cluster run need time before the load starts: scheduling, pulling the Locust image
# on a cold node, pip installing --requirement, workers connecting. Five minutes covers a slow
# pull; it is also how long the master waits for its workers before giving up.
STARTUP_MARGIN_S: Final = 300.0
# Locust runs one process per core; 512 MiB per process holds a busy worker's users, connections
# and response buffers with room to spare (an idle process is ~60-100 MiB).
WORKER_MEMORY_MI_PER_PROCESS: Final = 512

_LABEL_NAME: Final = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_TAINT_EFFECTS: Final = {e.lower(): e for e in ("NoSchedule", "PreferNoSchedule", "NoExecute")}
_AFFINITY_KEYS: Final = ("nodeAffinity", "podAffinity", "podAntiAffinity")


@dataclass(frozen=True)
class Toleration:
    """``key=value:Effect`` or ``key:Effect``: no value tolerates any value of the taint's key."""

    key: str
    value: str | None = None
    effect: str | None = None


def _label_key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if (
        prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix))
    ) or not _LABEL_NAME.match(name):
        raise ValueError(f"{key!r} is not a valid label key (example: topology.kubernetes.io/zone)")
    return key


def _label_value(value: str) -> str:
    if value and not _LABEL_NAME.match(value):
        raise ValueError(
            f"{value!r} is not a valid label value (63 letters, digits, '-_.' at most)"
        )
    return value


def _node_selector(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"{text!r} is not key=value (example: kubernetes.io/arch=amd64)")
    return _label_key(key), _label_value(value)


def _toleration(text: str) -> Toleration:
    rest, colon, effect_text = text.rpartition(":")
    if not colon:
        raise ValueError(
            f"{text!r} is not key=value:Effect or key:Effect (example: load=true:NoSchedule)"
        )
    effect = _TAINT_EFFECTS.get(effect_text.lower())
    if effect is None:
        raise ValueError(f"{text!r}: effect must be NoSchedule, PreferNoSchedule or NoExecute")
    key, equals, value = rest.partition("=")
    return Toleration(_label_key(key), _label_value(value) if equals else None, effect)


def _quantity(text: str) -> str:
    if text != text.strip() or parse_quantity(text) <= 0:
        raise ValueError(
            f"must be a Kubernetes quantity above 0 such as 500m, 2, 512Mi, got {text!r}"
        )
    return text


def _non_negative_duration(text: str) -> float:
    return parse_duration(text)


def _affinity_file(text: str) -> Mapping[str, Any]:
    """A pod ``affinity`` from a YAML file: the mapping itself or one under ``affinity:``."""
    try:
        loaded = yaml.safe_load(Path(text).read_text(encoding="utf-8"))
    except OSError as e:
        raise ValueError(f"cannot read {text}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise ValueError(f"{text} is not valid YAML: {str(e).splitlines()[0]}") from e
    if isinstance(loaded, dict) and list(loaded) == ["affinity"]:
        loaded = loaded["affinity"]
    if not isinstance(loaded, dict) or not loaded:
        raise ValueError(f"{text} must hold a mapping of {', '.join(_AFFINITY_KEYS)}")
    unknown = sorted(str(k) for k in loaded if k not in _AFFINITY_KEYS)
    if unknown:
        raise ValueError(
            f"{text}: unknown affinity key(s) {', '.join(unknown)}; use {', '.join(_AFFINITY_KEYS)}"
        )
    return loaded


@dataclass(frozen=True)
class Option:
    """One setting: its flags, how its text becomes a value, its default and its help."""

    name: str
    flags: tuple[str, ...]
    parse: Callable[[str], Any]
    default: Any
    help: str
    multiple: bool = False
    switch: bool = False
    metavar: str | None = None


OPTIONS: Final[dict[str, Option]] = {
    o.name: o
    for o in (
        Option(
            "locustfile",
            ("-f", "--locustfile"),
            Path,
            None,
            "Python locustfile to run (shipped examples: kubeswarm's locustfiles/)",
            metavar="FILE",
        ),
        Option(
            "host",
            ("-H", "--host"),
            _text,
            None,
            "base URL of the target, as the load generators see it",
            metavar="URL",
        ),
        # 10 users with a spawn rate of 10/s is Locust's own quick-try scale: visible, not heavy.
        Option(
            "users",
            ("-u", "--users"),
            _positive_int,
            10,
            "peak number of concurrent users",
            metavar="N",
        ),
        Option(
            "spawn_rate",
            ("-r", "--spawn-rate"),
            _positive_float,
            10.0,
            "users started per second",
            metavar="R",
        ),
        # One minute is long enough for an HPA sync (15 s) plus metrics delay to show a reaction.
        Option(
            "run_time_s",
            ("-t", "--run-time"),
            _positive_duration,
            60.0,
            "how long the load runs (90s, 5m, 1h30m)",
            metavar="DURATION",
        ),
        Option(
            "workers",
            ("--workers",),
            _positive_int,
            2,
            "Locust worker processes (local) or worker pods (cluster)",
            metavar="W",
        ),
        # One Locust process per core; a pod gets one core unless --processes says otherwise.
        Option(
            "processes",
            ("--processes",),
            _positive_int,
            1,
            "Locust processes forked inside each worker",
            metavar="P",
        ),
        Option(
            "watch",
            ("--watch",),
            parse_watch,
            (),
            "what to sample: hpa/NAME, deployment/NAME, NAMESPACE/hpa/NAME; local: pid/PID, "
            "cmd/PATTERN (repeatable)",
            multiple=True,
            metavar="TARGET",
        ),
        Option(
            "slos",
            ("--slo",),
            _text,
            (),
            "pass/fail gate such as p95_ms<500 or oom_kills==0 (repeatable)",
            multiple=True,
            metavar="EXPR",
        ),
        Option(
            "out_dir",
            ("--out",),
            Path,
            Path("runs"),
            "where run directories are written",
            metavar="DIR",
        ),
        Option(
            "name",
            ("--name",),
            _name,
            None,
            "run name used in the run id and object names (default: from the locustfile)",
        ),
        # Two seconds resolves Locust's 1 s stats and the HPA's 15 s sync without bloating files.
        Option(
            "sample_interval_s",
            ("--interval",),
            _positive_duration,
            2.0,
            "seconds between samples",
            metavar="DURATION",
        ),
        Option(
            "local",
            ("--local",),
            _bool,
            False,
            "run master and workers as local processes instead of in the cluster",
            switch=True,
        ),
        Option(
            "kubeconfig",
            ("--kubeconfig",),
            Path,
            None,
            "kubeconfig file (default: $KUBECONFIG, ~/.kube/config, or in-cluster)",
            metavar="FILE",
        ),
        Option("context", ("--context",), _text, None, "kubeconfig context to use"),
        Option(
            "namespace",
            ("-n", "--namespace"),
            _name,
            None,
            "namespace for the load Jobs and default namespace of watch targets",
        ),
        Option(
            "image",
            ("--image",),
            _text,
            "locustio/locust:2.47.0",
            "container image of master and workers (must contain locust)",
        ),
        Option(
            "keep",
            ("--keep",),
            _bool,
            False,
            "leave the Jobs in the cluster after the run",
            switch=True,
        ),
        Option(
            "extra_files",
            ("--extra-file",),
            Path,
            (),
            "file shipped next to the locustfile (repeatable)",
            multiple=True,
            metavar="FILE",
        ),
        Option(
            "requirements",
            ("--requirement",),
            _text,
            (),
            "pip requirement installed in the pods before Locust starts (repeatable)",
            multiple=True,
            metavar="REQ",
        ),
        # Scheduling of the load pods: empty by default, so they go wherever the cluster puts them.
        Option(
            "node_selector",
            ("--node-selector",),
            _node_selector,
            (),
            "cluster: run the load pods only on nodes with this label, key=value (repeatable)",
            multiple=True,
            metavar="KEY=VALUE",
        ),
        Option(
            "tolerations",
            ("--toleration",),
            _toleration,
            (),
            "cluster: let the load pods onto nodes with this taint, key=value:Effect or "
            "key:Effect (repeatable)",
            multiple=True,
            metavar="TAINT",
        ),
        Option(
            "affinity",
            ("--affinity",),
            _affinity_file,
            None,
            "cluster: YAML file with the load pods' affinity (nodeAffinity, podAffinity, "
            "podAntiAffinity)",
            metavar="FILE",
        ),
        # Requests equal limits (Guaranteed QoS). A worker gets one core per Locust process, as
        # Locust recommends; more CPU than that is wasted, less makes its latencies untrustworthy.
        Option(
            "worker_cpu",
            ("--worker-cpu",),
            _quantity,
            None,
            "cluster: CPU of each worker pod, Kubernetes quantity (default: --processes cores)",
            metavar="QUANTITY",
        ),
        Option(
            "worker_memory",
            ("--worker-memory",),
            _quantity,
            None,
            f"cluster: memory of each worker pod, Kubernetes quantity (default: "
            f"{WORKER_MEMORY_MI_PER_PROCESS}Mi per process)",
            metavar="QUANTITY",
        ),
        # The master only aggregates stats and serves the UI: one core is ample; its memory grows
        # with request names x run time (Locust issue #2045), so it gets a full GiB.
        Option(
            "master_cpu",
            ("--master-cpu",),
            _quantity,
            "1",
            "cluster: CPU of the master pod, Kubernetes quantity",
            metavar="QUANTITY",
        ),
        Option(
            "master_memory",
            ("--master-memory",),
            _quantity,
            "1Gi",
            "cluster: memory of the master pod, Kubernetes quantity",
            metavar="QUANTITY",
        ),
        Option(
            "deadline_s",
            ("--deadline",),
            _positive_duration,
            None,
            "cluster: the Jobs' activeDeadlineSeconds, so nothing outlives a dead harness "
            f"(default: run time + autoquit + {STARTUP_MARGIN_S:g}s to start)",
            metavar="DURATION",
        ),
        # An hour to read a failed run's pods and logs, after which finished Jobs (and with them
        # every object of the run) are deleted even if kubeswarm never came back to clean up.
        Option(
            "ttl_s",
            ("--ttl",),
            _non_negative_duration,
            3600.0,
            "cluster: seconds finished Jobs stay (ttlSecondsAfterFinished)",
            metavar="DURATION",
        ),
        Option(
            "rbac",
            ("--rbac",),
            _bool,
            False,
            "print the ServiceAccount, Role and RoleBinding kubeswarm needs in -n NAMESPACE",
            switch=True,
        ),
        # The last seconds of a run are when results are fetched; 30 s leaves room for retries.
        Option(
            "autoquit_s",
            ("--autoquit",),
            _positive_duration,
            30.0,
            "seconds the master stays up after the run so results can be fetched",
            metavar="DURATION",
        ),
        Option(
            "duration_s",
            ("--duration",),
            _positive_duration,
            90.0,
            "demo length: long enough for two scale-ups and a hold (90s)",
            metavar="DURATION",
        ),
        Option(
            "open_browser",
            ("--open",),
            _bool,
            False,
            "open the Locust web UI in a browser",
            switch=True,
        ),
        Option(
            "whatif",
            ("--whatif",),
            _text,
            (),
            "replay the run with changed HPA settings: HPA:key=value,... (repeatable)",
            multiple=True,
            metavar="SPEC",
        ),
        Option("all_runs", ("--all",), _bool, False, "every kubeswarm run", switch=True),
        # 0 lets the operating system pick a free port, so two UIs never collide.
        Option("port", ("--port",), _non_negative_int, 0, "local port of the UI proxy (0 = any)"),
        # The demo's autoscaler mirrors an HPA; these are its spec, with Kubernetes' units.
        # 16 users at 5 requests/s each peak at 80 requests/s: about five demo workers' worth.
        Option(
            "demo_users",
            ("-u", "--users"),
            _positive_int,
            16,
            "demo: peak users of the step load (5 requests/s each)",
            metavar="N",
        ),
        Option(
            "min_replicas",
            ("--min-replicas",),
            _positive_int,
            1,
            "demo autoscaler: minimum gunicorn workers",
        ),
        Option(
            "max_replicas",
            ("--max-replicas",),
            _positive_int,
            6,
            "demo autoscaler: maximum gunicorn workers (each costs a process on this machine)",
        ),
        Option(
            "cpu_target_pct",
            ("--cpu-target",),
            _positive_int,
            70,
            "demo autoscaler: CPU target, percent of request",
        ),
        Option(
            "memory_target_pct",
            ("--memory-target",),
            _positive_int,
            80,
            "demo autoscaler: memory target, percent of request",
        ),
        Option(
            "cpu_request",
            ("--cpu-request",),
            _text,
            "100m",
            "demo target: CPU request per worker (Kubernetes quantity)",
        ),
        Option(
            "memory_request",
            ("--memory-request",),
            _text,
            "128Mi",
            "demo target: memory request per worker (Kubernetes quantity)",
        ),
    )
}


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
    local: bool = False
    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None
    image: str = "locustio/locust:2.47.0"
    keep: bool = False
    extra_files: tuple[Path, ...] = ()
    requirements: tuple[str, ...] = ()
    node_selector: tuple[tuple[str, str], ...] = ()
    tolerations: tuple[Toleration, ...] = ()
    affinity: Mapping[str, Any] | None = None
    worker_cpu: str | None = None  # None: one core per Locust process
    worker_memory: str | None = None  # None: WORKER_MEMORY_MI_PER_PROCESS MiB per process
    master_cpu: str = "1"
    master_memory: str = "1Gi"
    deadline_s: float | None = None  # None: run time + autoquit + STARTUP_MARGIN_S
    ttl_s: float = 3600.0
    open_browser: bool = False
    extras: Mapping[str, Any] = field(default_factory=dict)


def merge_sources(
    flags: Mapping[str, Any],
    environ: Mapping[str, str],
    config_file: Path | None,
    names: tuple[str, ...],
) -> dict[str, Any]:
    """Raw values by option name: flags over ``KUBESWARM_*`` over the YAML file over defaults."""
    from_file = _read_config_file(config_file, names) if config_file else {}
    values: dict[str, Any] = {}
    for name in names:
        option = OPTIONS[name]
        env_text = environ.get(f"KUBESWARM_{name.upper()}")
        if flags.get(name) not in (None, [], ()):
            values[name] = _parse_flag(option, flags[name])
        elif env_text is not None:
            values[name] = _parse_env(option, env_text)
        elif name in from_file:
            values[name] = _parse_file_value(option, from_file[name])
        else:
            values[name] = option.default
    return values


def _parse_flag(option: Option, raw: Any) -> Any:
    if option.switch:
        return bool(raw)
    try:
        if option.multiple:
            return tuple(option.parse(str(item)) for item in raw)
        return option.parse(str(raw))
    except ValueError as e:
        raise UsageError(f"{option.flags[-1]}: {e}") from e


def _parse_env(option: Option, text: str) -> Any:
    try:
        if option.multiple:
            return tuple(option.parse(part) for part in text.split(",") if part.strip())
        return option.parse(text)
    except ValueError as e:
        raise UsageError(f"KUBESWARM_{option.name.upper()}: {e}") from e


def _parse_file_value(option: Option, raw: Any) -> Any:
    try:
        if option.multiple:
            items = raw if isinstance(raw, list) else [raw]
            return tuple(option.parse(str(item)) for item in items)
        if option.switch and isinstance(raw, bool):
            return raw
        return option.parse(str(raw))
    except ValueError as e:
        raise UsageError(f"config file, {option.name}: {e}") from e


def _read_config_file(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from e
    except yaml.YAMLError as e:
        raise UsageError(f"config file {path} is not valid YAML: {e}") from e
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(f"config file {path} must be a mapping of option: value")
    by_key = {_config_key(n): n for n in names} | {n: n for n in names}
    unknown = sorted(str(k) for k in loaded if str(k) not in by_key)
    if unknown:
        known = ", ".join(sorted(_config_key(n) for n in names))
        raise UsageError(
            f"config file {path}: unknown option(s) {', '.join(unknown)}; known: {known}"
        )
    return {by_key[str(k)]: v for k, v in loaded.items()}


def _config_key(name: str) -> str:
    """The config-file key of an option is its long flag without dashes: ``spawn-rate``."""
    return OPTIONS[name].flags[-1].lstrip("-")


def check_locustfile(path: Path) -> Path:
    """The locustfile must exist and compile; returns its absolute path."""
    if not path.is_file():
        raise UsageError(f"locustfile {path} does not exist")
    source = path.read_text(encoding="utf-8")
    try:
        compile(source, str(path), "exec")
    except SyntaxError as e:
        raise UsageError(f"locustfile {path} does not compile: line {e.lineno}: {e.msg}") from e
    return path.resolve()


def build_run_config(values: Mapping[str, Any]) -> RunConfig:
    """Validate merged option values (see ``merge_sources``) into a frozen RunConfig."""
    locustfile = values.get("locustfile")
    if locustfile is None:
        raise UsageError("no locustfile: pass -f FILE (examples ship in kubeswarm's locustfiles/)")
    host = values.get("host")
    if not host:
        raise UsageError("no target host: pass -H URL, e.g. -H http://web.shop.svc:8080")
    if not str(host).startswith(("http://", "https://")):
        raise UsageError(f"host {host!r} must start with http:// or https://")
    load = LoadConfig(
        locustfile=check_locustfile(Path(locustfile)),
        host=str(host).rstrip("/"),
        users=values["users"],
        spawn_rate=values["spawn_rate"],
        run_time_s=values["run_time_s"],
        workers=values["workers"],
        processes=values["processes"],
        autoquit_s=values["autoquit_s"],
    )
    name = values.get("name") or _name_from_file(load.locustfile)
    return RunConfig(
        load=load,
        watch=tuple(values.get("watch", ())),
        slos=tuple(values.get("slos", ())),
        out_dir=Path(values.get("out_dir") or OPTIONS["out_dir"].default),
        name=name,
        sample_interval_s=values["sample_interval_s"],
        local=bool(values.get("local", False)),
        kubeconfig=values.get("kubeconfig"),
        context=values.get("context"),
        namespace=values.get("namespace"),
        image=values.get("image", OPTIONS["image"].default),
        keep=bool(values.get("keep", False)),
        extra_files=tuple(values.get("extra_files", ())),
        requirements=_requirements(values.get("requirements", ())),
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
    )


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
    busy_s = load.run_time_s + load.autoquit_s
    if deadline_s is not None and deadline_s <= busy_s:
        raise UsageError(
            f"--deadline {deadline_s:g}s would stop the Jobs before the test ends: it must be "
            f"longer than --run-time + --autoquit ({busy_s:g}s), plus time for pods to start"
        )
    return deadline_s


def _name_from_file(path: Path) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", path.stem.lower()).strip("-")
    return (cleaned or "run")[:40].rstrip("-") or "run"
