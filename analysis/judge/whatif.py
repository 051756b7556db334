"""``--whatif``: replay the recorded per-pod usage through the HPA model with changed settings.

Each what-if is replayed twice, with the change and without it, so the report can say whether the
change alters the HPA's decisions at all (a higher memory limit never does: the HPA divides usage by
requests, never by limits) separately from how closely the model follows the recorded run.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.data.timeline import merge_nearest
from analysis.data.units import format_bytes, parse_cpu_millicores, parse_duration, parse_quantity
from analysis.hpa.controller import HpaController
from analysis.hpa.model import (
    DEFAULT_BEHAVIOR,
    AnyTarget,
    Behavior,
    HpaSpec,
    MetricTarget,
    PodUsage,
    ScalingPolicy,
    ScalingRules,
)
from analysis.hpa.targets import ExternalTarget, MetricReadings, ObjectTarget, PodsTarget
from analysis.judge.model_check import target_from_row
from analysis.judge.resources import WorkloadResult
from analysis.judge.scaling import HpaResult

SYNC_S: Final = 15.0  # kube-controller-manager's --horizontal-pod-autoscaler-sync-period default
BASELINE_QUANTILE: Final = 0.10
KEYS: Final = (
    "memory_request",
    "memory_limit",
    "cpu_request",
    "memory_target",
    "cpu_target",
    "min",
    "max",
    "scale_up_window",
    "scale_down_window",
    "metric_target",
)
ASSUMPTION: Final = (
    "recorded load redistributed over the replayed replicas: for CPU and memory each pod keeps the "
    "workload's baseline (10th percentile of per-pod usage) and the rest of the recorded total "
    "usage of ready pods is split evenly; replayed pods are ready at the next sync (every 15 s); "
    "the HPA's behavior is the one run.json records (demo runs) or else the controller's default "
    "(the samples do not record spec.behavior); Object and External metrics keep their recorded "
    "values (a queue's length does not depend on the replicas), a Pods metric's recorded total "
    "is split over the replayed replicas"
)


@dataclass(frozen=True)
class WhatIf:
    hpa: str  # as the user wrote it: name or namespace/name
    changes: dict[str, str]  # key -> value as written


@dataclass(frozen=True)
class WhatIfResult:
    hpa: str
    changes: dict[str, str]
    recorded_peak_replicas: int | None
    predicted_peak_replicas: int | None
    predicted_final_replicas: int | None
    unchanged_peak_replicas: int | None  # the model replaying the recorded settings
    changes_decisions: bool | None  # None when nothing could be replayed
    notes: tuple[str, ...]
    assumption: str = ASSUMPTION
    series: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)


def _percent(key: str, text: str) -> float:
    # An HPA's averageUtilization is a whole percent, 1 or more; below 1 the replay divides by 0.
    try:
        value = float(text.strip().rstrip("%"))
    except ValueError:
        raise ValueError(f"{key} must be a percentage from 1 to 1000") from None
    if not 1 <= value <= 1000:
        raise ValueError(f"{key} must be a percentage from 1 to 1000")
    return value


def _check_value(key: str, text: str) -> None:
    if key in ("memory_request", "memory_limit"):
        if parse_quantity(text) <= 0:
            raise ValueError(f"{key} must be above 0")
    elif key == "cpu_request":
        if parse_cpu_millicores(text) <= 0:
            raise ValueError(f"{key} must be above 0")
    elif key in ("memory_target", "cpu_target"):
        _percent(key, text)
    elif key == "metric_target":
        try:
            number = float(text)
        except ValueError:
            raise ValueError(f"{key} must be a number above 0, in the metric's unit") from None
        if not number > 0 or number == float("inf"):
            raise ValueError(f"{key} must be a number above 0, in the metric's unit")
    elif key in ("min", "max"):
        if not text.strip().isdecimal() or int(text) < 1:  # isdigit() takes "²", int() not
            raise ValueError(f"{key} must be a whole number of replicas, 1 or more")
    else:
        parse_duration(text)


def parse_whatif(text: str) -> WhatIf:
    """``"web:memory_request=768Mi,max=10"`` -> WhatIf; ValueError with one line otherwise."""
    hpa, sep, rest = text.partition(":")
    if not sep or not hpa.strip() or not rest.strip():
        raise ValueError(
            f"--whatif {text!r}: expected HPA:key=value,... such as web:memory_request=768Mi,max=10"
        )
    changes: dict[str, str] = {}
    for part in rest.split(","):
        key, eq, value = (s.strip() for s in part.partition("="))
        if not eq or not value:
            raise ValueError(f"--whatif {text!r}: {part!r} is not key=value")
        if key not in KEYS:
            raise ValueError(f"--whatif {text!r}: unknown key {key!r}; known: {', '.join(KEYS)}")
        try:
            _check_value(key, value)
        except ValueError as e:
            raise ValueError(f"--whatif {text!r}: {key}={value}: {e}") from None
        changes[key] = value
    if "min" in changes and "max" in changes and int(changes["min"]) > int(changes["max"]):
        raise ValueError(f"--whatif {text!r}: min is above max")
    return WhatIf(hpa.strip(), changes)


def find_hpa(name: str, hpas: Sequence[HpaResult]) -> HpaResult:
    """By ``namespace/name`` or by a name that is unique in the run; ValueError otherwise."""
    matches = [h for h in hpas if name in (h.key, h.name)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(h.key for h in hpas) or "none recorded"
    if not matches:
        raise ValueError(f"--whatif: unknown HPA {name!r}; this run has: {known}")
    raise ValueError(f"--whatif: HPA name {name!r} is ambiguous; use namespace/name ({known})")


def recorded_sync_period_s(meta: Mapping[str, Any]) -> float:
    """``run.json``'s ``hpa_sync_period_s`` (the demo's autoscaler syncs faster), else 15 s."""
    value = meta.get("hpa_sync_period_s")
    return float(value) if isinstance(value, int | float) and value > 0 else SYNC_S


def recorded_behavior(meta: Mapping[str, Any]) -> Behavior | None:
    """``run.json``'s ``hpa_spec.behavior`` (the demo's autoscaler writes it), else None."""
    spec = meta.get("hpa_spec")
    behavior = spec.get("behavior") if isinstance(spec, dict) else None
    if not isinstance(behavior, dict):
        return None

    def rules(raw: Mapping[str, Any]) -> ScalingRules:
        return ScalingRules(
            float(raw["stabilization_window_s"]),
            tuple(
                ScalingPolicy(p["kind"], int(p["value"]), float(p["period_s"]))
                for p in raw["policies"]
            ),
            raw.get("select_policy", "Max"),
            float(raw.get("tolerance", 0.1)),
        )

    try:
        return Behavior(rules(behavior["scale_up"]), rules(behavior["scale_down"]))
    except (KeyError, TypeError, ValueError):
        return None


def _other_targets(
    metrics: pd.DataFrame, changes: Mapping[str, str]
) -> tuple[list[AnyTarget], list[str]]:
    """The HPA's Pods, Object and External metrics, with ``metric_target`` applied."""
    out: list[AnyTarget] = []
    skipped: list[str] = []
    for name, rows in metrics.groupby("metric", sort=True):
        if name in ("cpu", "memory"):
            continue
        target = target_from_row({str(k): v for k, v in rows.iloc[-1].to_dict().items()})
        if not isinstance(target, PodsTarget | ObjectTarget | ExternalTarget):
            skipped.append(str(name))
            continue
        if "metric_target" in changes:
            new = float(changes["metric_target"])
            if isinstance(target, PodsTarget):
                target = replace(target, target_average_value=new)
            elif target.target_value is not None:
                target = replace(target, target_value=new)
            else:
                target = replace(target, target_average_value=new)
        out.append(target)
    return out, skipped


def _spec(
    hpa: HpaResult,
    changes: Mapping[str, str],
    base: Behavior | None,
    metrics: pd.DataFrame | None = None,
) -> tuple[HpaSpec, list[str]]:
    notes: list[str] = []
    targets = {m: t for m, t in hpa.target_utilization.items() if m in ("cpu", "memory")}
    others, skipped = _other_targets(metrics, changes) if metrics is not None else ([], [])
    if metrics is None:
        skipped = sorted(set(hpa.target_utilization) - set(targets))
    if skipped:
        notes.append("metrics not replayed: " + ", ".join(skipped))
    for resource in ("cpu", "memory"):
        if f"{resource}_target" in changes:
            targets[resource] = _percent(resource, changes[f"{resource}_target"])
    metrics_out: tuple[AnyTarget, ...] = (
        *(
            MetricTarget("cpu" if m == "cpu" else "memory", round(t))
            for m, t in sorted(targets.items())
        ),
        *others,
    )
    behavior = base
    if "scale_up_window" in changes or "scale_down_window" in changes:
        up, down = (base or DEFAULT_BEHAVIOR).scale_up, (base or DEFAULT_BEHAVIOR).scale_down
        if "scale_up_window" in changes:
            up = replace(up, stabilization_window_s=parse_duration(changes["scale_up_window"]))
        if "scale_down_window" in changes:
            down = replace(
                down, stabilization_window_s=parse_duration(changes["scale_down_window"])
            )
        behavior = Behavior(up, down)
    low = int(changes.get("min", hpa.min_replicas or 1))
    high = int(changes.get("max", hpa.max_replicas or low))
    return HpaSpec(low, max(low, high), metrics_out, behavior), notes


def _snapshots(pods: pd.DataFrame, ticks: np.ndarray) -> list[pd.DataFrame]:
    """The last pods sample at or before each tick."""
    times = np.sort(pods["ts"].unique())
    groups = pods.groupby("ts").indices
    out = []
    for tick in ticks:
        i = int(np.searchsorted(times, tick, side="right")) - 1
        out.append(pods.iloc[groups[times[max(i, 0)]]])
    return out


def _usage(total: float, recorded_n: int, baseline: float, replicas: int) -> float:
    return baseline + max(0.0, total - recorded_n * baseline) / replicas


@dataclass(frozen=True)
class _Recorded:
    """The Pods, Object and External metrics at one replayed sync: totals over the workload."""

    pods_totals: dict[str, float]
    readings: MetricReadings


def _recorded(spec: HpaSpec, hpa: HpaResult, metrics: pd.DataFrame, tick: float) -> _Recorded:
    seen = metrics[metrics["ts"] <= tick]
    latest = seen[seen["ts"] == seen["ts"].max()] if not seen.empty else seen
    at = hpa.series[hpa.series["ts"] <= tick]["current"].dropna()
    replicas = float(at.iloc[-1]) if not at.empty else 1.0
    values = {
        str(m): (float(v), float(t))
        for m, v, t in zip(
            latest["metric"],
            latest["current_value"],
            latest["current_total"] if "current_total" in latest else [np.nan] * len(latest),
            strict=True,
        )
    }
    pods_totals: dict[str, float] = {}
    objects: dict[str, float] = {}
    external: dict[str, tuple[float, ...]] = {}
    for target in spec.metrics:
        if not isinstance(target, PodsTarget | ObjectTarget | ExternalTarget):
            continue
        average, total = values.get(target.name, (np.nan, np.nan))
        if isinstance(target, PodsTarget):
            if np.isfinite(average):
                pods_totals[target.name] = average * replicas
            continue
        value = total if np.isfinite(total) else average * replicas
        if not np.isfinite(value):
            continue
        if isinstance(target, ObjectTarget):
            objects[target.name] = value
        else:
            external[target.name] = (value,)
    return _Recorded(pods_totals, MetricReadings(objects, external))


def _replay(
    spec: HpaSpec,
    snapshots: list[pd.DataFrame],
    ticks: np.ndarray,
    *,
    start: int,
    baselines: tuple[float, float],
    requests: tuple[float | None, float | None],
    recorded: list[_Recorded] | None = None,
) -> list[int]:
    controller = HpaController(spec)
    current = min(max(start, spec.min_replicas), spec.max_replicas)
    replicas = []
    for i, (tick, snap) in enumerate(zip(ticks, snapshots, strict=True)):
        other = recorded[i] if recorded is not None else _Recorded({}, MetricReadings())
        if snap.empty:  # no per-pod usage: only Pods, Object and External metrics replay
            pods = [
                PodUsage(
                    f"replay-{j}",
                    True,
                    None,
                    None,
                    None,
                    None,
                    pod_metrics={k: v / current for k, v in other.pods_totals.items()},
                )
                for j in range(current)
            ]
            readings = replace(other.readings, status_replicas=current)
            current = controller.reconcile(float(tick), current, pods, readings).desired_replicas
            replicas.append(current)
            continue
        # a pod being deleted is ignored by the controller like a failed one (groupPods)
        leaving = snap["deleting"].fillna(False).astype(bool)
        ready = snap[snap["ready"].fillna(False).astype(bool) & ~leaving]
        n = len(ready)
        cpu_total, memory_total = float(ready["cpu_m"].sum()), float(ready["memory_bytes"].sum())
        cpu = _usage(cpu_total, n, baselines[0], current) if ready["cpu_m"].notna().any() else None
        memory = (
            _usage(memory_total, n, baselines[1], current)
            if ready["memory_bytes"].notna().any()
            else None
        )
        cpu_request = requests[0] if requests[0] is not None else _median(snap["cpu_request_m"])
        memory_request = (
            requests[1] if requests[1] is not None else _median(snap["memory_request_bytes"])
        )
        per_pod = {k: v / current for k, v in other.pods_totals.items()}
        pods = (
            [
                PodUsage(
                    f"replay-{j}",
                    True,
                    cpu,
                    memory,
                    cpu_request,
                    memory_request,
                    pod_metrics=per_pod,
                )
                for j in range(current)
            ]
            if n
            else []
        )
        readings = replace(other.readings, status_replicas=current)
        current = controller.reconcile(float(tick), current, pods, readings).desired_replicas
        replicas.append(current)
    return replicas


def _median(values: pd.Series[float]) -> float | None:
    valid = values.dropna()
    return float(valid.median()) if not valid.empty else None


def _notes(
    changes: Mapping[str, str], hpa: HpaResult, workload: WorkloadResult | None
) -> list[str]:
    notes = []
    if "memory_limit" in changes:
        limit = parse_quantity(changes["memory_limit"])
        notes.append(
            "memory_limit cannot change what the HPA does: it computes utilization from "
            "requests, never limits; the limit only decides when the OOM killer acts"
        )
        if workload is not None and workload.peak_memory_bytes is not None:
            peak = workload.peak_memory_bytes
            verdict = "would have been OOM-killed" if peak >= limit else "stays under it"
            notes.append(
                f"with a {changes['memory_limit']} limit the recorded peak working set "
                f"{format_bytes(peak)} ({100 * peak / limit:.0f}% of it) {verdict}"
            )
    for resource in ("memory", "cpu"):
        if (
            f"{resource}_request" in changes
            and resource not in hpa.target_utilization
            and (f"{resource}_target" not in changes)
        ):
            notes.append(
                f"{resource}_request cannot change what {hpa.key} does: it does not "
                f"scale on {resource}"
            )
    return notes


def _baseline(usage: pd.Series[float]) -> float:
    valid = usage.dropna()
    return float(valid.quantile(BASELINE_QUANTILE)) if not valid.empty else 0.0


def run_whatif(
    whatif: WhatIf,
    hpas: Sequence[HpaResult],
    workloads: Sequence[WorkloadResult],
    pods: pd.DataFrame,
    behavior: Behavior | None = None,
    *,
    sync_period_s: float = SYNC_S,
    hpa_metrics: pd.DataFrame | None = None,
) -> WhatIfResult:
    """Replays one what-if (see ``ASSUMPTION``); the HPA must exist (``find_hpa``).
    ``behavior`` is the recorded HPA's spec.behavior when known (``recorded_behavior``);
    ``sync_period_s`` how often the autoscaler decided (``recorded_sync_period_s``)."""
    hpa = find_hpa(whatif.hpa, hpas)
    workload = next(
        (w for w in workloads if (w.namespace, w.name) == (hpa.namespace, hpa.target_name)), None
    )
    notes = _notes(whatif.changes, hpa, workload)
    mine = pods[(pods["namespace"] == hpa.namespace) & (pods["workload"] == hpa.target_name)]
    recorded_peak = hpa.peak_replicas
    metrics = None
    if hpa_metrics is not None:
        metrics = hpa_metrics[
            (hpa_metrics["namespace"] == hpa.namespace) & (hpa_metrics["hpa"] == hpa.name)
        ]
    spec, spec_notes = _spec(hpa, whatif.changes, behavior, metrics)
    unchanged_spec, _ = _spec(hpa, {}, behavior, metrics)
    notes.extend(spec_notes)
    others = any(isinstance(t, PodsTarget | ObjectTarget | ExternalTarget) for t in spec.metrics)
    if "metric_target" in whatif.changes and not others:
        notes.append(
            f"metric_target cannot change what {hpa.key} does: it has no Pods, Object "
            "or External metric"
        )
    if (mine.empty and not others) or hpa.series.empty or not spec.metrics:
        notes.append("nothing to replay: no per-pod usage or no cpu/memory metric was recorded")
        return WhatIfResult(
            whatif.hpa, dict(whatif.changes), recorded_peak, None, None, None, None, tuple(notes)
        )
    start_s, end_s = float(hpa.series["ts"].min()), float(hpa.series["ts"].max())
    ticks = np.arange(start_s, end_s + 1e-9, sync_period_s)
    snapshots = _snapshots(mine, ticks) if not mine.empty else [mine] * len(ticks)
    others_at = (
        [_recorded(spec, hpa, metrics, float(t)) for t in ticks] if metrics is not None else None
    )
    baselines = (_baseline(mine["cpu_m"]), _baseline(mine["memory_bytes"]))
    changes = whatif.changes
    changed = (
        parse_cpu_millicores(changes["cpu_request"]) if "cpu_request" in changes else None,
        parse_quantity(changes["memory_request"]) if "memory_request" in changes else None,
    )
    first = hpa.series["current"].dropna()
    start = round(float(first.iloc[0])) if not first.empty else spec.min_replicas
    predicted = _replay(
        spec,
        snapshots,
        ticks,
        start=start,
        baselines=baselines,
        requests=changed,
        recorded=others_at,
    )
    unchanged = _replay(
        unchanged_spec,
        snapshots,
        ticks,
        start=start,
        baselines=baselines,
        requests=(None, None),
        recorded=others_at,
    )
    recorded = merge_nearest(
        pd.DataFrame({"ts": ticks}), hpa.series[["ts", "current"]].dropna(), None, "backward"
    )["current"]
    series = pd.DataFrame(
        {
            "ts": ticks,
            "recorded": recorded.to_numpy(float),
            "predicted": predicted,
            "unchanged": unchanged,
        }
    )
    differs = predicted != unchanged
    if not differs:
        notes.append("the replayed replicas are the same with and without this change")
    return WhatIfResult(
        whatif.hpa,
        dict(whatif.changes),
        recorded_peak,
        max(predicted),
        predicted[-1],
        max(unchanged),
        differs,
        tuple(notes),
        series=series,
    )


def run_whatifs(
    whatifs: Sequence[WhatIf],
    hpas: Sequence[HpaResult],
    workloads: Sequence[WorkloadResult],
    pods: pd.DataFrame,
    behavior: Behavior | None = None,
    *,
    sync_period_s: float = SYNC_S,
    hpa_metrics: pd.DataFrame | None = None,
) -> list[WhatIfResult]:
    return [
        run_whatif(
            w,
            hpas,
            workloads,
            pods,
            behavior,
            sync_period_s=sync_period_s,
            hpa_metrics=hpa_metrics,
        )
        for w in whatifs
    ]
