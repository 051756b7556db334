"""Every option of every command, defined once, and where its value comes from.

An option's value comes from, strongest first: the command-line flag, the ``KUBESWARM_<FLAG>``
environment variable (``--run-time`` -> ``KUBESWARM_RUN_TIME``), the YAML ``--config`` file (key
``run-time``), then the default below. Each ``Option`` names its unit and why its default is what
it is; the CLI builds its flags from the same table, so a flag, an environment variable and a
config key can never disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import yaml

from harness.config.chaos import parse_chaos, parse_chaos_pick, parse_chaos_target
from harness.config.env import parse_env_assignment, parse_env_file, parse_env_from
from harness.config.values import (
    affinity_file,
    any_text,
    boolean,
    node_selector,
    non_negative_duration,
    non_negative_int,
    parse_cidr,
    parse_watch,
    positive_duration,
    positive_float,
    positive_int,
    quantity,
    run_name,
    sample_interval,
    slo_expression,
    toleration,
    whatif_spec,
)
from harness.errors import UsageError

# Pods of an in-cluster run need time before the load starts: scheduling, pulling the Locust image
# on a cold node, pip installing --requirement, workers connecting. Five minutes covers a slow
# pull; it is also how long the master waits for its workers before giving up.
STARTUP_MARGIN_S: Final = 300.0
# A --deadline must leave at least this to start: two pods scheduled and running on a warm node
# take 10-20 s; less would fail every run at its start.
MIN_STARTUP_S: Final = 30
# After the run-time bound, how long a run may take to stop (a LoadTestShape's last tick, the
# /stop request) before the autoquit window; part of every run's budget.
STOP_GRACE_S: Final = 15
# Measured (docs/DECISIONS.md, "Load pod requests"): a Locust 2.47 worker process holds 53 MiB
# RSS with 20 users and 62 MiB with 300 (about 32 KiB a user); 256 MiB is four times the busy
# figure, room for ~6,000 users per process, more than one core can drive.
WORKER_MEMORY_MI_PER_PROCESS: Final = 256


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
    # Read from the command line only, never from KUBESWARM_* or the --config file (--env: a
    # value in a file belongs in --env-file, which says where it is; docs/DECISIONS.md).
    flag_only: bool = False


def workers_count(text: str) -> int | str:
    """``--workers``: a count, or ``auto`` (decided while the load runs)."""
    return "auto" if text.strip().lower() == "auto" else positive_int(text)


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
            any_text,
            None,
            "base URL of the target, as the load generators see it",
            metavar="URL",
        ),
        # 10 users with a spawn rate of 10/s is Locust's own quick-try scale: visible, not heavy.
        Option(
            "users",
            ("-u", "--users"),
            positive_int,
            10,
            "peak number of concurrent users",
            metavar="N",
        ),
        Option(
            "spawn_rate",
            ("-r", "--spawn-rate"),
            positive_float,
            10.0,
            "users started per second",
            metavar="R",
        ),
        # One minute is long enough for an HPA sync (15 s) plus metrics delay to show a reaction.
        Option(
            "run_time_s",
            ("-t", "--run-time"),
            positive_duration,
            60.0,
            "how long the load runs (90s, 5m, 1h30m)",
            metavar="DURATION",
        ),
        Option(
            "workers",
            ("--workers",),
            workers_count,
            2,
            "Locust worker processes (local) or worker pods (cluster); auto: start with one and "
            "add workers while their CPU stays above 85%% (up to --max-workers)",
            metavar="W|auto",
        ),
        # Without a bound, auto would add workers for as long as the load generator is busy.
        Option(
            "max_workers",
            ("--max-workers",),
            positive_int,
            None,
            "with --workers auto: the most workers to run (locally at most one per core)",
            metavar="N",
        ),
        Option(
            "target_rps",
            ("--target-rps",),
            positive_float,
            None,
            "size for this load: replicas needed at the measured knee and the HPA CPU target "
            "that keeps each pod under it (requests/s)",
            metavar="N",
        ),
        # One Locust process per core; a pod gets one core unless --processes says otherwise.
        Option(
            "processes",
            ("--processes",),
            positive_int,
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
            slo_expression,
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
            run_name,
            None,
            "run name used in the run id and object names (default: from the locustfile)",
        ),
        # Two seconds resolves Locust's 1 s stats and the HPA's 15 s sync without bloating files;
        # bounded to 1-15 s, what those sources can give (harness.config.values.sample_interval).
        Option(
            "sample_interval_s",
            ("--interval",),
            sample_interval,
            2.0,
            "seconds between samples (1s to 15s)",
            metavar="DURATION",
        ),
        # kube-controller-manager's --horizontal-pod-autoscaler-sync-period by default; managed
        # control planes keep it. The model check and the what-ifs replay at this pace.
        Option(
            "hpa_sync_period_s",
            ("--hpa-sync-period",),
            positive_duration,
            15.0,
            "cluster: the HPA controller's sync period (kube-controller-manager "
            "--horizontal-pod-autoscaler-sync-period), which the model check and what-ifs replay",
            metavar="DURATION",
        ),
        Option(
            "local",
            ("--local",),
            boolean,
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
        Option("context", ("--context",), any_text, None, "kubeconfig context to use"),
        Option(
            "namespace",
            ("-n", "--namespace"),
            run_name,
            None,
            "namespace for the load Jobs and default namespace of watch targets",
        ),
        Option(
            "image",
            ("--image",),
            any_text,
            "locustio/locust:2.47.0",
            "container image of master and workers (must contain locust)",
        ),
        Option(
            "keep",
            ("--keep",),
            boolean,
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
            any_text,
            (),
            "pip requirement installed in the pods before Locust starts (repeatable)",
            multiple=True,
            metavar="REQ",
        ),
        # The master's NetworkPolicy is on by default (k8s-jobs/networkpolicy.yaml says why).
        Option(
            "no_network_policy",
            ("--no-network-policy",),
            boolean,
            False,
            "create no NetworkPolicy for the master (its web port and zmq port open to any pod)",
            switch=True,
        ),
        Option(
            "ui_from",
            ("--ui-from",),
            parse_cidr,
            (),
            "CIDR the API server's service proxy connects from, allowed to the master's web port "
            "(default: the nodes' addresses; repeatable)",
            multiple=True,
            metavar="CIDR",
        ),
        # None: pip's own default index; pods often cannot reach it, a mirror they can is given.
        Option(
            "pip_index_url",
            ("--pip-index-url",),
            any_text,
            None,
            "package index the pods install --requirement from (a plain-http index is trusted "
            "for its host)",
            metavar="URL",
        ),
        # Scheduling of the load pods: empty by default, so they go wherever the cluster puts them.
        Option(
            "node_selector",
            ("--node-selector",),
            node_selector,
            (),
            "cluster: run the load pods only on nodes with this label, key=value (repeatable)",
            multiple=True,
            metavar="KEY=VALUE",
        ),
        Option(
            "tolerations",
            ("--toleration",),
            toleration,
            (),
            "cluster: let the load pods onto nodes with this taint, key=value:Effect or "
            "key:Effect (repeatable)",
            multiple=True,
            metavar="TAINT",
        ),
        Option(
            "affinity",
            ("--affinity",),
            affinity_file,
            None,
            "cluster: YAML file with the load pods' affinity (nodeAffinity, podAffinity, "
            "podAntiAffinity)",
            metavar="FILE",
        ),
        # Requests equal limits (Guaranteed QoS). A worker gets one core per Locust process: a
        # process is single-threaded, so one core is what it uses when pushed (measured 480m at
        # 940 req/s with the target, not Locust, the limit), and a throttled load generator
        # reports its own slowness as the target's latency.
        Option(
            "worker_cpu",
            ("--worker-cpu",),
            quantity,
            None,
            "cluster: CPU of each worker pod, Kubernetes quantity (default: --processes cores)",
            metavar="QUANTITY",
        ),
        Option(
            "worker_memory",
            ("--worker-memory",),
            quantity,
            None,
            f"cluster: memory of each worker pod, Kubernetes quantity (default: "
            f"{WORKER_MEMORY_MI_PER_PROCESS}Mi per process)",
            metavar="QUANTITY",
        ),
        # The master only aggregates stats and serves the UI: measured at most 20m CPU and 52 MiB
        # RSS with one worker at 940 req/s. 500m leaves room for many workers' reports and the
        # UI; 512 MiB for stats growing with request names x run time (Locust issue #2045).
        Option(
            "master_cpu",
            ("--master-cpu",),
            quantity,
            "500m",
            "cluster: CPU of the master pod, Kubernetes quantity",
            metavar="QUANTITY",
        ),
        Option(
            "master_memory",
            ("--master-memory",),
            quantity,
            "512Mi",
            "cluster: memory of the master pod, Kubernetes quantity",
            metavar="QUANTITY",
        ),
        Option(
            "deadline_s",
            ("--deadline",),
            positive_duration,
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
            non_negative_duration,
            3600.0,
            "cluster: seconds finished Jobs stay (ttlSecondsAfterFinished)",
            metavar="DURATION",
        ),
        # Unattended runs (harness/unattended): the run's controller is kubeswarm itself, a Job.
        Option(
            "detach",
            ("--detach",),
            boolean,
            False,
            "cluster: run the whole run (sampling, results, report) as a controller Job in the "
            "cluster; prints the run id and returns once the controller runs",
            switch=True,
        ),
        Option(
            "results_pvc",
            ("--results-pvc",),
            any_text,
            None,
            "--detach: PersistentVolumeClaim the run directory is written to (kept after the "
            "controller ends)",
            metavar="NAME",
        ),
        # A nightly run is fetched the next morning: a day covers it, and a finished controller
        # holds only a few MiB of memory while it serves the run directory.
        Option(
            "keep_results_s",
            ("--keep-results",),
            non_negative_duration,
            86400.0,
            "--detach: how long the finished controller serves the run directory to `kubeswarm "
            "fetch` (0: it exits with the verdict's exit code at once)",
            metavar="DURATION",
        ),
        Option(
            "controller_run",
            ("--controller-run",),
            any_text,
            None,
            "set by --detach and --cronjob, not by hand: run as the in-cluster controller of run "
            "RUN ('new': a run id of its own)",
            metavar="RUN",
        ),
        Option(
            "cronjob",
            ("--cronjob",),
            boolean,
            False,
            "print a CronJob that starts this run on --schedule, compared with the previous "
            "completed run of the same name (needs --results-pvc)",
            switch=True,
        ),
        Option(
            "schedule",
            ("--schedule",),
            any_text,
            None,
            "--cronjob: when, in cron syntax ('0 3 * * *': 03:00 every day)",
            metavar="CRON",
        ),
        Option(
            "rbac",
            ("--rbac",),
            boolean,
            False,
            "print the ServiceAccount, Role and RoleBinding kubeswarm needs in -n NAMESPACE",
            switch=True,
        ),
        # The last seconds of a run are when results are fetched; 30 s leaves room for retries.
        Option(
            "autoquit_s",
            ("--autoquit",),
            positive_duration,
            30.0,
            "seconds the master stays up after the run so results can be fetched",
            metavar="DURATION",
        ),
        # 90 s is long enough for two scale-ups and a hold at the demo's 5 s autoscaler sync.
        # --run-time as in `run` (so KUBESWARM_RUN_TIME and the run-time key serve both);
        # --duration is the demo's first spelling.
        Option(
            "duration_s",
            ("-t", "--duration", "--run-time"),
            positive_duration,
            90.0,
            "how long the demo load runs (90s, 2m)",
            metavar="DURATION",
        ),
        Option(
            "open_browser",
            ("--open",),
            boolean,
            False,
            "open the Locust web UI in a browser",
            switch=True,
        ),
        Option(
            "whatif",
            ("--whatif",),
            whatif_spec,
            (),
            "replay the run with changed HPA settings: HPA:key=value,... (repeatable)",
            multiple=True,
            metavar="SPEC",
        ),
        # Results teams gate on: a baseline to compare with, JUnit for CI, markdown for a PR.
        Option(
            "baseline",
            ("--baseline",),
            Path,
            None,
            "run directory to compare with: regressions beyond tolerance fail the verdict",
            metavar="RUN",
        ),
        Option(
            "tolerances",
            ("--tolerance",),
            any_text,
            (),
            "regression tolerance NAME=VALUE, e.g. p95_ms=15%% or error_rate=1 (repeatable)",
            multiple=True,
            metavar="NAME=VALUE",
        ),
        Option(
            "junit",
            ("--junit",),
            Path,
            None,
            "write a JUnit XML file: one case per SLO, high finding and regression",
            metavar="FILE",
        ),
        Option(
            "report_format",
            ("--format",),
            any_text,
            "text",
            "summary printed: text, or md (the markdown of report/report.md)",
            metavar="FORMAT",
        ),
        Option(
            "compare_out",
            ("--out",),
            Path,
            None,
            "directory for compare.json and compare.html (default: print only)",
            metavar="DIR",
        ),
        # Disruptions under load; none by default: deleting pods is never done unasked.
        Option(
            "chaos",
            ("--chaos",),
            parse_chaos,
            (),
            "disrupt the target while the load runs: pod-delete or pod-kill, COUNT pods (default "
            "1), WHEN after the test started, e.g. pod-kill:2@60s (repeatable)",
            multiple=True,
            metavar="ACTION[:COUNT]@WHEN",
        ),
        Option(
            "chaos_target",
            ("--chaos-target",),
            parse_chaos_target,
            None,
            "workload whose pods --chaos disrupts: deployment/NAME, NAMESPACE/deployment/NAME; "
            "local: pid/PID, cmd/PATTERN (default: the first watched HPA's workload or process)",
            metavar="TARGET",
        ),
        # `render --rbac --chaos`: the same flag as a switch, for the one command that prints
        # permissions instead of running disruptions.
        Option(
            "rbac_chaos",
            ("--chaos",),
            boolean,
            False,
            "with --rbac: add the Role that lets --chaos delete pods",
            switch=True,
        ),
        # The oldest ready pods are the ones a rollout or a node drain takes first.
        Option(
            "chaos_pick",
            ("--chaos-pick",),
            parse_chaos_pick,
            "oldest",
            "which pods --chaos hits: oldest (ready ones first) or random",
            metavar="oldest|random",
        ),
        # Seeing what would be hit before hitting it: the safety check a careful user runs first.
        Option(
            "chaos_dry_run",
            ("--chaos-dry-run",),
            boolean,
            False,
            "with --chaos: print which pods or worker processes each disruption would hit now, "
            "then exit without starting anything",
            switch=True,
        ),
        # --- the locustfile's environment (harness/config/env.py); none by default ---
        Option(
            "env",
            ("--env",),
            parse_env_assignment,
            (),
            "environment variable for master and workers, NAME=VALUE; the value is never "
            "written or shown (repeatable; command line only)",
            multiple=True,
            metavar="NAME=VALUE",
            flag_only=True,
        ),
        Option(
            "env_files",
            ("--env-file",),
            parse_env_file,
            (),
            "dotenv file of NAME=VALUE lines for master and workers; --env wins (repeatable)",
            multiple=True,
            metavar="FILE",
        ),
        Option(
            "env_from",
            ("--env-from",),
            parse_env_from,
            (),
            "every key of your Secret or ConfigMap as a variable for master and workers: "
            "secret/NAME or configmap/NAME (in -n; --local reads it once; repeatable)",
            multiple=True,
            metavar="KIND/NAME",
        ),
        # --- end of the locustfile's environment ---
        Option("all_runs", ("--all",), boolean, False, "every kubeswarm run", switch=True),
        # 0 lets the operating system pick a free port, so two UIs never collide.
        Option("port", ("--port",), non_negative_int, 0, "local port of the UI proxy (0 = any)"),
        # The demo's autoscaler mirrors an HPA; these are its spec, with Kubernetes' units.
        # 16 users at 5 requests/s each peak at 80 requests/s: about five demo workers' worth.
        Option(
            "demo_users",
            ("-u", "--users"),
            positive_int,
            16,
            "demo: peak users of the step load (5 requests/s each)",
            metavar="N",
        ),
        Option(
            "min_replicas",
            ("--min-replicas",),
            positive_int,
            1,
            "demo autoscaler: minimum gunicorn workers",
        ),
        Option(
            "max_replicas",
            ("--max-replicas",),
            positive_int,
            6,
            "demo autoscaler: maximum gunicorn workers (each costs a process on this machine)",
        ),
        Option(
            "cpu_target_pct",
            ("--cpu-target",),
            positive_int,
            70,
            "demo autoscaler: CPU target, percent of request",
        ),
        Option(
            "memory_target_pct",
            ("--memory-target",),
            positive_int,
            80,
            "demo autoscaler: memory target, percent of request",
        ),
        Option(
            "cpu_request",
            ("--cpu-request",),
            any_text,
            "100m",
            "demo target: CPU request per worker (Kubernetes quantity)",
        ),
        Option(
            "memory_request",
            ("--memory-request",),
            any_text,
            "128Mi",
            "demo target: memory request per worker (Kubernetes quantity)",
        ),
    )
}


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
        env_text = environ.get(env_name(name))
        if option.flag_only:
            _refuse_flag_only(option, env_text is not None, name in from_file)
        if flags.get(name) not in (None, [], ()):
            values[name] = _parse_flag(option, flags[name])
        elif env_text is not None:
            values[name] = _parse_env(option, env_text)
        elif name in from_file:
            values[name] = _parse_file_value(option, from_file[name])
        else:
            values[name] = option.default
    return values


def _refuse_flag_only(option: Option, in_environ: bool, in_file: bool) -> None:
    where = env_name(option.name) if in_environ else "the config file" if in_file else ""
    if where:
        raise UsageError(
            f"{option.flags[-1]} is read from the command line only, not from {where}; put "
            "values in a file given with --env-file"
        )


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
        raise UsageError(f"{env_name(option.name)}: {e}") from e


def _parse_file_value(option: Option, raw: Any) -> Any:
    try:
        if option.multiple:
            items = raw if isinstance(raw, list) else [raw]
            return tuple(option.parse(str(item)) for item in items)
        if option.switch and isinstance(raw, bool):
            return raw
        return option.parse(str(raw))
    except ValueError as e:
        raise UsageError(f"config file, {config_key(option.name)}: {e}") from e


def _read_config_file(path: Path, names: tuple[str, ...]) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read config file {path}: {e.strerror}") from e
    except UnicodeDecodeError as e:
        raise UsageError(f"config file {path} is not UTF-8 text (byte {e.start})") from None
    except yaml.YAMLError as e:
        raise UsageError(f"config file {path} is not valid YAML: {_one_line(e)}") from e
    except ValueError as e:  # a YAML timestamp or number its constructor refuses: 2026-13-01
        raise UsageError(f"config file {path} is not valid YAML: {e}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise UsageError(f"config file {path} must be a mapping of option: value")
    by_key = {config_key(n): n for n in names} | {n: n for n in names}
    unknown = sorted(str(k) for k in loaded if str(k) not in by_key)
    if unknown:
        known = ", ".join(sorted(config_key(n) for n in names))
        raise UsageError(
            f"config file {path}: unknown option(s) {', '.join(unknown)}; known: {known}"
        )
    return {by_key[str(k)]: v for k, v in loaded.items()}


def _one_line(error: yaml.YAMLError) -> str:
    """PyYAML's message spans lines (a snippet under a caret); the problem and where is one."""
    if isinstance(error, yaml.MarkedYAMLError) and error.problem:
        mark = error.problem_mark
        where = "" if mark is None else f" at line {mark.line + 1}, column {mark.column + 1}"
        return f"{error.problem}{where}"
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def env_name(name: str) -> str:
    """The environment variable of an option, from its long flag: ``--spawn-rate`` ->
    ``KUBESWARM_SPAWN_RATE``, ``--run-time`` -> ``KUBESWARM_RUN_TIME``."""
    return "KUBESWARM_" + config_key(name).upper().replace("-", "_")


def config_key(name: str) -> str:
    """The config-file key of an option is its long flag without dashes: ``spawn-rate``."""
    return OPTIONS[name].flags[-1].lstrip("-")
