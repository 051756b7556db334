"""``report/summary.json`` as types: the one model the analysis fills and every output renders.

The builders in ``analysis.render.summary`` and ``analysis.judge.sizing`` return these, so mypy
holds them to it; ``docs/schemas/summary.schema.json`` is generated from them
(``python -m analysis.data.contract --schemas docs/schemas``) and a test keeps it current and
validates real runs against it. Fields may be added, never removed or changed in meaning without
bumping ``SUMMARY_SCHEMA_VERSION``. Numbers are null where not measured.
"""

from __future__ import annotations

from typing import Any, Final, Literal, NotRequired

# typing_extensions: the TypedDict pydantic reads on Python 3.11 to generate the JSON Schema
from typing_extensions import TypedDict

SUMMARY_SCHEMA_VERSION: Final = 1

Verdict = Literal["pass", "warn", "fail", "incomplete"]


class Window(TypedDict):
    start: float  # epoch seconds, UTC
    end: float
    load_start: float | None  # the test's start: time zero on the page and the live view
    load_end: float | None


class Load(TypedDict):
    peak_users: int | None
    peak_rps: float | None
    total_requests: int | None
    error_rate: float | None  # 0..1
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    rps_per_user: float | None
    source: str  # which file the totals came from


class SloResult(TypedDict):
    expr: str
    observed: float | None
    passed: bool
    at_least: NotRequired[bool]  # a lag still running at the end: at least the time left


ScaleEvent = TypedDict(
    "ScaleEvent",
    {
        "ts": float,
        "from": int,
        "to": int,
        "lag_s": float | None,  # from the load step before it to the controller's decision
        "ready_lag_s": float | None,  # from that step to the new pods being ready
        "metric": str | None,  # as the controller named it, else the highest ratio sampled
        "step_users": list[float] | None,
    },
)


class RpsPerReplica(TypedDict):
    mean: float | None
    peak: float | None


class ModelMismatch(TypedDict):
    ts: float
    model: int
    controller: int
    why: str  # the inputs at that sync, in the metric's own terms


class ModelCheck(TypedDict):
    """The model replayed at the controller's syncs (analysis.judge.model_check)."""

    decisions: int  # the controller's decisions the recording showed
    exact: int  # the model decided the same replicas
    within_one: int  # at most one replica apart (exact included)
    exact_pct: float | None
    mismatches: list[ModelMismatch]  # the first 20
    sync_period_s: float  # the controller's sync period the replay assumed
    not_checked: str | None  # why the recording could not support the comparison
    sentence: str  # the line the console, report.md and the page print


class HpaMetric(TypedDict):
    """One spec metric in its own terms: its peak reading as the controller reported it."""

    metric: str
    type: str  # Resource, ContainerResource, Pods, Object, External
    target_type: str  # Utilization, AverageValue, Value
    peak: float | None  # percent of request, per pod or in total, as target_type says
    target: float | None
    selector: str | None
    container: str | None
    described_object: str | None
    sentence: str


class Hpa(TypedDict):
    namespace: str
    name: str
    target: str  # Kind/name
    min_replicas: int | None
    max_replicas: int | None
    start_replicas: int | None
    peak_replicas: int | None
    final_replicas: int | None
    time_at_max_s: float
    status: str  # healthy, at_max, not_scaling, flapping, no_metrics
    driving_metric: str | None
    peak_utilization: dict[str, float | None]
    target_utilization: dict[str, float | None]
    scale_events: list[ScaleEvent]
    rps_per_ready_replica: RpsPerReplica | None
    p95_ms_by_replicas: dict[str, float]  # replica counts held at least 5 ticks
    ticks_by_replicas: dict[str, int]
    # added later: who made the HPA (``ScaledObject/orders``; "KEDA"), each metric in its own
    # terms, and how closely the model reproduced the controller on this run
    owner: NotRequired[str | None]
    managed_by: NotRequired[str | None]
    metrics: NotRequired[list[HpaMetric]]
    model_check: NotRequired[ModelCheck]


class Formulas(TypedDict):
    memory_request: str
    memory_limit: str
    cpu_request: str


class Workload(TypedDict):
    namespace: str
    name: str
    pods_seen: int
    peak_memory_bytes: float | None
    baseline_memory_bytes: float | None
    memory_request_bytes: float | None
    memory_limit_bytes: float | None
    peak_memory_pct_of_request: float | None
    peak_memory_pct_of_limit: float | None
    oom_kills: int
    restarts: int
    memory_follows_load: bool | None
    peak_cpu_m: float | None
    p95_cpu_m: float | None
    cpu_request_m: float | None
    recommended_memory_request_bytes: float | None
    recommended_memory_limit_bytes: float | None
    recommended_cpu_request_m: float | None
    formulas: Formulas


class WhatIf(TypedDict):
    hpa: str
    changes: dict[str, Any]
    recorded_peak_replicas: int | None
    predicted_peak_replicas: int | None
    predicted_final_replicas: int | None
    unchanged_peak_replicas: int | None
    changes_decisions: bool | None
    notes: list[str]
    assumption: str
    model_check: NotRequired[str]  # how far the model was checked on this run (its sentence)


class DisruptionHpa(TypedDict):
    name: str
    desired_before: float | None
    desired_peak: float | None
    desired_changed: bool
    scaled_up: bool


class Disruption(TypedDict):
    ts: float
    action: str
    target: str
    pods: list[str]
    skipped: str | None
    recovery_s: float | None
    recovered: bool | None
    recovered_to: str | None
    readiness_source: str | None
    ready_before: int | None
    window_s: float | None
    requests: int | None
    failures: int | None
    error_rate: float | None
    error_rate_before: float | None
    p95_ms_before: float | None
    p95_ms_during: float | None
    p99_ms_before: float | None
    p99_ms_during: float | None
    load_source: str | None
    replacement_seen_s: float | None
    replacement_ready_s: float | None
    hpa: DisruptionHpa | None


class SloThresholds(TypedDict):
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    source: str  # default or --slo


class BreakPoint(TypedDict):
    ts: float
    elapsed_s: float | None  # since the test started
    users: float | None
    rps: float | None
    replicas: dict[str, float | None]
    broken: list[str]
    observed: dict[str, float | None]
    limit: str  # replicas_at_max, pod_saturation, errors, dependency
    explanation: str


class Knee(TypedDict):
    rps_per_replica: float | None
    reached: bool
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    replicas: float | None
    cpu_pct_of_request: float | None
    first_broken_rps_per_replica: float | None
    points: int


class Linearity(TypedDict):
    cpu_ms_per_request: float | None
    baseline_cpu_m: float | None
    r2: float | None
    relative_residual: float | None
    points: int
    linear: bool


class Sizing(TypedDict):
    target_rps: float
    replicas_needed: int | None
    replicas_needed_is_upper_bound: bool
    max_replicas: int | None
    fits_max_replicas: bool | None
    cpu_request_m: float | None
    utilization_at_knee_pct: float | None
    recommended_cpu_target_pct: int | None
    # when the target above is over 100 %: a CPU request of the knee's usage, and its target
    suggested_cpu_request_m: NotRequired[float | None]
    suggested_cpu_target_pct: NotRequired[int | None]
    current_cpu_target_pct: float | None
    replay_replicas: int | None
    replay_rps_per_replica: float | None
    holds_under_knee: bool | None
    notes: list[str]
    assumption: str


class HpaCapacity(TypedDict):
    hpa: str
    target: str
    max_replicas: int | None
    knee: Knee | None
    linearity: Linearity | None
    sizing: Sizing | None


class Capacity(TypedDict):
    slo_thresholds: SloThresholds
    refused: str | None  # why no capacity is reported (a saturated load generator)
    searched: bool  # a load shape looked for the knee
    ramp_stop: str | None
    break_point: BreakPoint | None
    target_rps: float | None
    hpas: list[HpaCapacity]


class Finding(TypedDict):
    code: str
    severity: Literal["high", "medium", "info"]
    subject: str
    message: str
    seen: str
    why: str
    change: str
    data: dict[str, Any]


class SeriesSampling(TypedDict):
    """How fresh one sampled series was (analysis.judge.freshness)."""

    series: str  # locust, hpa, pod_usage
    interval_s: float  # the harness's --interval
    samples: int  # ticks that recorded the series
    median_gap_s: float | None  # between recorded ticks
    resolution_s: float | None  # how often the source refreshes (pod usage: measured)
    median_age_s: float | None  # age of the value when recorded (pod usage: ts - usage_ts)
    max_age_s: float | None
    sentence: str


class MasterMemory(TypedDict):
    """The Locust master's memory over the run (analysis.judge.master_memory)."""

    source: str  # master.csv (the local process) or pods.csv (the master pod)
    samples: int
    duration_s: float
    first_bytes: float
    last_bytes: float
    peak_bytes: float
    growth_bytes: float
    slope_mib_per_h: float | None
    shown: bool  # the run was long enough (>= 10 min) or it grew >= 64 MiB: the page shows it
    sentence: str


class Summary(TypedDict):
    schema_version: int
    run_id: str
    verdict: Verdict
    kubeswarm_version: str
    mode: str
    status: str | None
    settings: dict[str, Any]  # the run's settings from run.json; never --env values
    window: Window
    load: Load
    slos: list[SloResult]
    hpas: list[Hpa]
    workloads: list[Workload]
    whatif: list[WhatIf]
    disruptions: list[Disruption]
    capacity: Capacity | None
    findings: list[Finding]
    comparison: NotRequired[dict[str, Any]]  # with --baseline: compare.json
    regressions: NotRequired[list[dict[str, Any]]]
    # added later: how fresh each series was; the Locust master's memory (null: not recorded)
    sampling: NotRequired[list[SeriesSampling]]
    master_memory: NotRequired[MasterMemory | None]
