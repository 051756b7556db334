"""A run's capacity put together, and what it takes to carry ``--target-rps``.

Sizing stands on one assumption, stated in every result: a pod's CPU is linear in the requests/s it
serves (``cpu = intercept + slope x rps``), fitted on the bins that met the SLOs. The fit's R^2
and relative residual say when the run contradicts it. From the knee it follows how many replicas
the target needs, whether maxReplicas allows them, and which CPU target keeps each pod under the
knee: the HPA holds utilization within its tolerance above target, so the target is the knee's
utilization divided by (1 + tolerance). That target is then checked by replaying the recorded load,
scaled so its peak is the target, through the HPA model (``analysis.hpa``), with the run's HPA
behavior and sync period, as ``--whatif`` does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data import summary_model as model
from analysis.data.load import RunData, read_table
from analysis.data.timeline import Window
from analysis.hpa.controller import HpaController
from analysis.hpa.model import Behavior, HpaSpec, MetricTarget, PodUsage
from analysis.judge.capacity import (
    BIN_S,
    BreakPoint,
    Knee,
    Thresholds,
    capacity_curve,
    find_break,
    find_knee,
    ramp_stop_detail,
    thresholds_from_slos,
)
from analysis.judge.scaling import TOLERANCE, HpaResult
from analysis.judge.slo import Slo

GENERATOR_SATURATED_PCT: Final = 90.0  # Locust's own CPU warning threshold
MIN_FIT_POINTS: Final = 4
MIN_R2: Final = 0.8  # below this, and with residuals above MAX_RELATIVE_RESIDUAL: not linear
MAX_RELATIVE_RESIDUAL: Final = 0.1
SETTLE_SYNCS: Final = 10  # syncs held at the target load in the replay, so the HPA can settle
ASSUMPTION: Final = (
    "CPU per pod is linear in requests/s per pod, as fitted on the bins that met the SLOs; the "
    "recorded load is scaled so its peak is the target and held there; all requests reach each "
    "target; only CPU is replayed (memory per pod is judged by the workload findings); replayed "
    "pods are ready at the next sync"
)


@dataclass(frozen=True)
class Linearity:
    slope_m_per_rps: float  # millicores per request/s, i.e. CPU ms per request
    intercept_m: float
    r2: float | None
    relative_residual: float  # RMS residual over mean CPU per pod
    points: int
    linear: bool


def fit_linearity(curve: pd.DataFrame) -> Linearity | None:
    """CPU per pod against requests/s per pod over the bins that met the SLOs; None with fewer
    than ``MIN_FIT_POINTS`` or no spread of load."""
    points = curve[curve["meets"].astype(bool)].dropna(subset=["rps_per_replica", "cpu_m_per_pod"])
    x = points["rps_per_replica"].to_numpy(float)
    y = points["cpu_m_per_pod"].to_numpy(float)
    if x.size < MIN_FIT_POINTS or np.ptp(x) <= 0.1 * max(float(np.mean(x)), 1e-9):
        return None
    slope, intercept = np.polyfit(x, y, 1)
    residual = y - (slope * x + intercept)
    total = float(np.sum((y - y.mean()) ** 2))
    r2 = 1.0 - float(np.sum(residual**2)) / total if total > 0 else None
    relative = float(np.sqrt(np.mean(residual**2))) / max(float(np.mean(y)), 1e-9)
    linear = (r2 is not None and r2 >= MIN_R2) or relative <= MAX_RELATIVE_RESIDUAL
    return Linearity(float(slope), float(intercept), r2, relative, int(x.size), linear)


@dataclass(frozen=True)
class Sizing:
    target_rps: float
    knee_rps_per_replica: float | None
    knee_is_lower_bound: bool  # the SLOs never broke: the replicas needed are an upper bound
    replicas_needed: int | None
    max_replicas: int | None
    fits_max: bool | None
    cpu_request_m: float | None
    utilization_at_knee_pct: float | None
    recommended_cpu_target_pct: int | None
    current_cpu_target_pct: float | None
    replay_replicas: int | None  # where the HPA model settles at the target load
    replay_rps_per_replica: float | None
    holds_under_knee: bool | None
    notes: tuple[str, ...]
    assumption: str = ASSUMPTION
    # When the target above is over 100 %: each pod uses more CPU than it requests at the knee,
    # and the scheduler packs pods by requests. A request of the knee's usage and this target.
    suggested_cpu_request_m: float | None = None
    suggested_cpu_target_pct: int | None = None


def replicas_needed(target_rps: float, knee_rps_per_replica: float) -> int:
    return max(1, math.ceil(target_rps / knee_rps_per_replica - 1e-9))


def cpu_target_for(utilization_at_knee_pct: float, tolerance: float = TOLERANCE) -> int:
    """The CPU target whose upper tolerance edge is the knee's utilization."""
    return max(1, math.floor(utilization_at_knee_pct / (1 + tolerance)))


def replay_at_target(
    rps: Sequence[float],
    fit: Linearity,
    cpu_request_m: float,
    spec: HpaSpec,
    *,
    start: int,
    sync_period_s: float,
) -> list[int]:
    """Replicas the HPA model chooses, one sync per entry of ``rps`` (the load at that sync)."""
    controller = HpaController(spec)
    current = min(max(start, spec.min_replicas), spec.max_replicas)
    replicas = []
    for i, load in enumerate(rps):
        cpu = max(0.0, fit.intercept_m + fit.slope_m_per_rps * load / current)
        pods = [
            PodUsage(f"replay-{n}", True, cpu, None, cpu_request_m, None) for n in range(current)
        ]
        current = controller.reconcile(i * sync_period_s, current, pods).desired_replicas
        replicas.append(current)
    return replicas


def size_for(
    target_rps: float,
    knee: Knee | None,
    fit: Linearity | None,
    hpa: HpaResult,
    *,
    curve: pd.DataFrame,
    recorded_rps: Sequence[float],
    behavior: Behavior | None,
    sync_period_s: float,
    run_broke: bool = False,
) -> Sizing:
    """What carrying ``target_rps`` takes for one HPA target (see the module's docstring);
    ``run_broke``: the run has a break point, so "the SLOs held everywhere" would be untrue."""
    notes: list[str] = []
    knee_rps = knee.rps_per_replica if knee is not None else None
    lower_bound = knee is not None and not knee.reached
    current_target = hpa.target_utilization.get("cpu")
    requests = curve["cpu_pct_of_request"].notna()
    cpu_request = None
    if requests.any():
        ratio = curve["cpu_m_per_pod"][requests] * 100 / curve["cpu_pct_of_request"][requests]
        cpu_request = float(ratio.median())
    sized = Sizing(
        target_rps,
        knee_rps,
        lower_bound,
        None,
        hpa.max_replicas,
        None,
        cpu_request,
        None,
        None,
        current_target,
        None,
        None,
        None,
        (),
    )
    if knee_rps is None:
        notes.append("no knee: the SLOs broke at the lowest load per replica measured")
        return replace(sized, notes=tuple(notes))
    needed = replicas_needed(target_rps, knee_rps)
    fits = None if hpa.max_replicas is None else needed <= hpa.max_replicas
    sized = replace(sized, replicas_needed=needed, fits_max=fits)
    if lower_bound:
        held = (
            "no load per replica broke the SLOs for good (the run broke for another reason: "
            "see the break point's limit)"
            if run_broke
            else "the SLOs held at every load measured"
        )
        notes.append(
            f"{held}, so the knee is at least {knee_rps:.1f} requests/s per replica and "
            f"{needed} replicas are an upper bound"
        )
    if fit is None or cpu_request is None or cpu_request <= 0:
        notes.append(
            "no CPU target: per-pod CPU and its request were not measured over enough load"
        )
        return replace(sized, notes=tuple(notes))
    if not fit.linear:
        notes.append(
            f"this run contradicts the linear assumption (R^2 {fit.r2 or 0:.2f}, relative residual "
            f"{100 * fit.relative_residual:.0f}%): the CPU target below is a rough guide"
        )
    if fit.slope_m_per_rps <= 0:
        notes.append("CPU per pod did not grow with load: a CPU target cannot protect the knee")
        return replace(sized, notes=tuple(notes))
    usage_at_knee_m = fit.intercept_m + fit.slope_m_per_rps * knee_rps
    utilization = 100 * usage_at_knee_m / cpu_request
    recommended = cpu_target_for(utilization)
    suggested_request = suggested_target = None
    if recommended > 100:
        suggested_request = float(math.ceil(usage_at_knee_m / 5) * 5)  # Kubernetes-ish: 5m steps
        suggested_target = cpu_target_for(100 * usage_at_knee_m / suggested_request)
        notes.append(
            f"at the knee each pod uses {usage_at_knee_m:.0f}m of CPU, {utilization:.0f}% of its "
            f"{cpu_request:.0f}m request: a target above 100% keeps pods running above what the "
            f"scheduler reserved for them; a request of {suggested_request:.0f}m with a "
            f"{suggested_target}% target protects the knee as well"
        )
    peak = max(recorded_rps, default=0.0)
    sized = replace(
        sized,
        utilization_at_knee_pct=utilization,
        recommended_cpu_target_pct=recommended,
        suggested_cpu_request_m=suggested_request,
        suggested_cpu_target_pct=suggested_target,
        notes=tuple(notes),
    )
    if peak <= 0:
        return sized
    load = [r * target_rps / peak for r in recorded_rps] + [target_rps] * SETTLE_SYNCS
    low = hpa.min_replicas or 1
    spec = HpaSpec(
        low, max(low, needed, hpa.max_replicas or 1), (MetricTarget("cpu", recommended),), behavior
    )
    replayed = replay_at_target(
        load, fit, cpu_request, spec, start=low, sync_period_s=sync_period_s
    )
    final = replayed[-1]
    per_replica = target_rps / final
    holds = per_replica <= knee_rps * 1.001
    return replace(
        sized, replay_replicas=final, replay_rps_per_replica=per_replica, holds_under_knee=holds
    )


def read_workers(data: RunData) -> pd.DataFrame:
    """``samples/workers.csv`` typed (empty when the run has none)."""
    rel = f"{schema.SAMPLES_DIR}/{schema.WORKERS.file_name}"
    frame, _ = read_table(data.run_dir / rel, schema.WORKERS, rel)
    return frame


def generator_saturation(
    workers: pd.DataFrame, start_s: float, end_s: float, *, auto_max_workers: int | None = None
) -> str | None:
    """Why a capacity result is refused: a worker above 90 % CPU in two consecutive samples.
    ``auto_max_workers``: the run's ``--max-workers`` if it had ``--workers auto``."""
    rows = workers[(workers["ts"] >= start_s) & (workers["ts"] <= end_s)]
    for worker, own in rows.sort_values("ts").groupby("worker", sort=True):
        hot = (own["cpu_pct"] > GENERATOR_SATURATED_PCT).to_numpy(bool)
        both = np.flatnonzero(hot[1:] & hot[:-1])
        if both.size:
            at = own.iloc[int(both[0]) + 1]
            if auto_max_workers is None:
                advice = "rerun with more workers (--workers, or --workers auto)"
            else:  # auto adds a worker past 85 %: too late here, or --max-workers was reached
                advice = (
                    f"--workers auto (up to {auto_max_workers}) did not keep up: rerun starting "
                    "with more workers (--workers N) or with a higher --max-workers"
                )
            return (
                f"load generator saturated: Locust worker {worker} at {at['cpu_pct']:.0f}% CPU "
                f"{at['ts'] - start_s:.0f}s into the load (above {GENERATOR_SATURATED_PCT:g}% "
                f"its latencies include its own queueing); {advice}"
            )
    return None


def _auto_max_workers(meta: Mapping[str, Any]) -> int | None:
    """run.json's ``--max-workers``: set exactly when the run had ``--workers auto``."""
    config = meta.get("config")
    bound = config.get("max_workers") if isinstance(config, Mapping) else None
    return bound if isinstance(bound, int) else None


@dataclass(frozen=True)
class HpaCapacity:
    hpa: str  # namespace/name
    target: str  # kind/name
    max_replicas: int | None
    knee: Knee | None
    linearity: Linearity | None
    sizing: Sizing | None
    curve: pd.DataFrame = field(repr=False)  # capacity.CURVE_COLUMNS, one row per bin


@dataclass(frozen=True)
class CapacityResult:
    thresholds: Thresholds
    refused: str | None  # why no result is given (a saturated load generator)
    break_point: BreakPoint | None
    hpas: tuple[HpaCapacity, ...]
    target_rps: float | None
    ramp_stop: str | None
    curve: pd.DataFrame = field(repr=False)  # the run's bins, without replicas
    # A load shape (locustfiles/ramp.py or the user's own) searched for the knee. Without one the
    # knee is only the highest load per replica this run happened to reach.
    searched: bool = False


def analyse_capacity(
    data: RunData,
    load: pd.DataFrame,
    window: Window,
    hpas: Sequence[HpaResult],
    *,
    slos: Sequence[Slo] = (),
    target_rps: float | None = None,
    behavior: Behavior | None = None,
    sync_period_s: float = 15.0,
) -> CapacityResult:
    """Knee per HPA target, the run's break point and, with ``target_rps``, the sizing.
    ValueError when ``target_rps`` is given and the run has no Locust data."""
    if target_rps is not None and (load.empty or not load["rps"].notna().any()):
        raise ValueError(
            f"--target-rps {target_rps:g}: this run has no Locust data (samples/locust.csv or "
            "locust/stats_history.csv), so there is no measured requests/s to size from"
        )
    thresholds = thresholds_from_slos(slos)
    curve = capacity_curve(load, None, data.pods, window, thresholds)
    curves = {h.key: capacity_curve(load, h, data.pods, window, thresholds) for h in hpas}
    ramp_stop = ramp_stop_detail(data.marks)
    config = data.meta.get("config")
    shape = config.get("shape") if isinstance(config, dict) else None
    searched = ramp_stop is not None or bool(shape)
    lo, hi = window.loaded
    found = find_break(curve, hpas, curves, lo, ramp_stop)
    until = hi if found is None else found.ts + BIN_S
    refused = generator_saturation(
        read_workers(data), lo, until, auto_max_workers=_auto_max_workers(data.meta)
    )
    if refused is not None:
        return CapacityResult(thresholds, refused, None, (), target_rps, ramp_stop, curve, searched)
    recorded = _recorded_rps(load, window, sync_period_s)
    results = []
    for hpa in hpas:
        own = curves[hpa.key]
        knee, fit = find_knee(own), fit_linearity(own)
        sizing = None
        if target_rps is not None:
            sizing = size_for(
                target_rps,
                knee,
                fit,
                hpa,
                curve=own,
                recorded_rps=recorded,
                behavior=behavior,
                sync_period_s=sync_period_s,
                run_broke=found is not None,
            )
        target = f"{hpa.target_kind}/{hpa.target_name}"
        results.append(HpaCapacity(hpa.key, target, hpa.max_replicas, knee, fit, sizing, own))
    return CapacityResult(
        thresholds, None, found, tuple(results), target_rps, ramp_stop, curve, searched
    )


def _recorded_rps(load: pd.DataFrame, window: Window, sync_period_s: float) -> list[float]:
    """The recorded requests/s at each sync of the loaded window."""
    lo, hi = window.loaded
    rows = load[(load["ts"] >= lo) & (load["ts"] <= hi)].dropna(subset=["rps"])
    if rows.empty:
        return []
    ticks = np.arange(lo, hi + 1e-9, sync_period_s)
    values = np.interp(ticks, rows["ts"].to_numpy(float), rows["rps"].to_numpy(float))
    return [float(v) for v in values]


def _num(value: float | None, digits: int = 2) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def capacity_summary(result: CapacityResult) -> model.Capacity:
    """summary.json's ``capacity``: plain values, rounded for people to read."""
    t = result.thresholds
    bp = result.break_point
    return {
        "slo_thresholds": {
            "p95_ms": t.p95_ms,
            "p99_ms": t.p99_ms,
            "error_rate": t.error_rate,
            "source": t.source,
        },
        "refused": result.refused,
        "searched": result.searched,
        "ramp_stop": result.ramp_stop,
        "break_point": None
        if bp is None
        else {
            "ts": bp.ts,
            "elapsed_s": _num(bp.elapsed_s, 1),
            "users": _num(bp.users, 0),
            "rps": _num(bp.rps),
            "replicas": {k: _num(v, 1) for k, v in bp.replicas.items()},
            "broken": list(bp.broken),
            "observed": {k: _num(v, 4) for k, v in bp.observed.items()},
            "limit": bp.limit,
            "explanation": bp.explanation,
        },
        "target_rps": result.target_rps,
        "hpas": [_hpa_summary(h) for h in result.hpas],
    }


def _hpa_summary(h: HpaCapacity) -> model.HpaCapacity:
    knee, fit, sizing = h.knee, h.linearity, h.sizing
    return {
        "hpa": h.hpa,
        "target": h.target,
        "max_replicas": h.max_replicas,
        "knee": None
        if knee is None
        else {
            "rps_per_replica": _num(knee.rps_per_replica),
            "reached": knee.reached,
            "p95_ms": _num(knee.p95_ms, 1),
            "p99_ms": _num(knee.p99_ms, 1),
            "error_rate": _num(knee.error_rate, 4),
            "replicas": _num(knee.replicas, 1),
            "cpu_pct_of_request": _num(knee.cpu_pct_of_request, 1),
            "first_broken_rps_per_replica": _num(knee.first_broken_rps_per_replica),
            "points": knee.points,
        },
        "linearity": None
        if fit is None
        else {
            "cpu_ms_per_request": _num(fit.slope_m_per_rps, 3),
            "baseline_cpu_m": _num(fit.intercept_m, 1),
            "r2": _num(fit.r2, 3),
            "relative_residual": _num(fit.relative_residual, 3),
            "points": fit.points,
            "linear": fit.linear,
        },
        "sizing": None
        if sizing is None
        else {
            "target_rps": sizing.target_rps,
            "replicas_needed": sizing.replicas_needed,
            "replicas_needed_is_upper_bound": sizing.knee_is_lower_bound,
            "max_replicas": sizing.max_replicas,
            "fits_max_replicas": sizing.fits_max,
            "cpu_request_m": _num(sizing.cpu_request_m, 1),
            "utilization_at_knee_pct": _num(sizing.utilization_at_knee_pct, 1),
            "recommended_cpu_target_pct": sizing.recommended_cpu_target_pct,
            "suggested_cpu_request_m": sizing.suggested_cpu_request_m,
            "suggested_cpu_target_pct": sizing.suggested_cpu_target_pct,
            "current_cpu_target_pct": _num(sizing.current_cpu_target_pct, 1),
            "replay_replicas": sizing.replay_replicas,
            "replay_rps_per_replica": _num(sizing.replay_rps_per_replica),
            "holds_under_knee": sizing.holds_under_knee,
            "notes": list(sizing.notes),
            "assumption": sizing.assumption,
        },
    }
