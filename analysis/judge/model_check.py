"""The HPA model checks itself: the recorded HPA replayed at the controller's syncs, compared.

Every run that sampled an HPA can say how closely ``analysis.hpa`` reproduces the controller that
really scaled it. The controller writes its status only when something changed, so each change
of (desired replicas, status.currentMetrics) in hpa.csv/hpa_metrics.csv is one observed decision;
between two changes the syncs it made are filled in every sync period with the same inputs, so
the stabilization windows see the recommendations the controller saw. At each sync the model is
given what the controller read, as recorded: the metric readings of its own status, the
replicas it started from, and the pods (readiness, start and Ready times, which had metrics)
from pods.csv; its stabilization history and scale events are its own. A decision the model
makes differently is a mismatch, with the inputs that produced it.

The readings are the controller's status, not usage re-measured by kubeswarm, so the check
covers everything after the metrics API: ratios, tolerance, readiness and missing-pod rules,
stabilization, rate limits and bounds. Two things the recording can make impossible are said
instead of a number: a sampling interval coarser than the sync period (syncs go unseen) and an
HPA whose metric readings were never recorded.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import numpy as np
import pandas as pd

from analysis.data.load import RunData
from analysis.hpa.controller import HpaController
from analysis.hpa.model import (
    DEFAULT_BEHAVIOR,
    AnyTarget,
    Behavior,
    ControllerSettings,
    HpaSpec,
    MetricTarget,
    PodUsage,
    ScalingPolicy,
    ScalingRules,
)
from analysis.hpa.readiness import ReadinessTiming
from analysis.hpa.targets import (
    ContainerResourceTarget,
    ExternalTarget,
    MetricReadings,
    ObjectTarget,
    PodsTarget,
)
from analysis.judge.findings import Finding
from analysis.judge.scaling import HpaResult, rescale_metric

# Synthetic pods carry the recorded utilization against a 1000-milli request, exactly.
_REQUEST: Final = 1000.0
_MAX_MISMATCHES: Final = 20  # listed in summary.json; the counts cover all of them


@dataclass(frozen=True)
class Mismatch:
    ts: float
    model: int
    controller: int
    why: str  # the inputs at that sync, in the metric's own terms


@dataclass(frozen=True)
class ModelCheck:
    """How the model's decisions compared with the controller's on this run."""

    hpa: str  # namespace/name
    decisions: int
    exact: int
    within_one: int
    mismatches: tuple[Mismatch, ...]
    sync_period_s: float
    not_checked: str | None = None  # why no comparison was possible; the counts are 0 then
    all_mismatches: int = 0

    @property
    def exact_share(self) -> float | None:
        return self.exact / self.decisions if self.decisions else None

    def sentence(self) -> str:
        """One line for the console, report.md and the page."""
        if self.not_checked is not None:
            return f"the model was not checked: {self.not_checked}"
        if not self.decisions:
            return "the model was not checked: no decision of the controller was recorded"
        near = self.within_one - self.exact
        line = (
            f"the model reproduced {self.exact} of {self.decisions} of the controller's "
            f"decisions ({100 * self.exact / self.decisions:.0f} %)"
        )
        if near:
            line += f"; {near} within one replica"
        far = self.decisions - self.within_one
        if far:
            line += f"; {far} off by more"
        return line


@dataclass(frozen=True)
class _Decision:
    ts: float
    current: int
    desired: int
    readings: dict[str, tuple[float, float, float]]  # metric -> (utilization, value, total)
    # the sample before the one that showed the change: the sync happened after it
    after_ts: float = -math.inf


@dataclass
class _Inputs:
    spec: HpaSpec
    settings: ControllerSettings
    kinds: dict[str, str] = field(default_factory=dict)  # metric -> source type


def behavior_from_api(text: object) -> Behavior | None:
    """hpa.csv's ``behavior`` (spec.behavior as JSON) as the model's Behavior; None if unset.

    The API server fills what a behavior leaves out with the defaults (defaults.go), so a rule
    missing here takes DEFAULT_BEHAVIOR's."""
    if not isinstance(text, str) or not text.strip():
        return None
    try:
        raw = json.loads(text)
    except ValueError:
        return None

    def rules(part: Any, default: ScalingRules) -> ScalingRules:
        if not isinstance(part, Mapping):
            return default
        policies = tuple(
            ScalingPolicy(p["type"], int(p["value"]), float(p["periodSeconds"]))
            for p in part.get("policies") or ()
        )
        window = part.get("stabilizationWindowSeconds")
        return ScalingRules(
            default.stabilization_window_s if window is None else float(window),
            policies or default.policies,
            part.get("selectPolicy") or default.select_policy,
            float(part["tolerance"]) if part.get("tolerance") is not None else default.tolerance,
        )

    try:
        return Behavior(
            rules(raw.get("scaleUp"), DEFAULT_BEHAVIOR.scale_up),
            rules(raw.get("scaleDown"), DEFAULT_BEHAVIOR.scale_down),
        )
    except (KeyError, TypeError, ValueError):
        return None


def _num(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _col(rows: pd.DataFrame, name: str) -> pd.Series[Any]:
    return rows[name] if name in rows else pd.Series([None] * len(rows), index=rows.index)


def target_from_row(row: Mapping[str, Any]) -> AnyTarget | None:
    """The spec target a hpa_metrics row describes; None when it cannot be told."""
    name, kind = str(row["metric"]), row.get("metric_type")
    kind = kind if isinstance(kind, str) and kind else None
    util, value, total = (
        _num(row.get(c)) for c in ("target_utilization", "target_value", "target_total")
    )
    raw_selector = row.get("selector")
    selector = raw_selector if isinstance(raw_selector, str) else ""
    if kind in (None, "Resource", "ContainerResource") and name in ("cpu", "memory"):
        resource: Literal["cpu", "memory"] = "cpu" if name == "cpu" else "memory"
        if math.isfinite(util):
            return MetricTarget(resource, round(util))
        return MetricTarget(resource, 0, value) if math.isfinite(value) else None
    if kind == "Pods" and math.isfinite(value):
        return PodsTarget(name, value, selector)
    if kind in ("Object", "External"):
        return _valued_target(row, value, total, selector)
    return None


def _valued_target(
    row: Mapping[str, Any], value: float, total: float, selector: str
) -> ObjectTarget | ExternalTarget | None:
    target_type = row.get("target_type")
    by_value = target_type == "Value" or (target_type is None and math.isfinite(total))
    target_value = (total if math.isfinite(total) else value) if by_value else None
    average = None if by_value else value
    if target_value is None and (average is None or not math.isfinite(average)):
        return None
    name = str(row["metric"])
    if row.get("metric_type") == "Object":
        described = str(row.get("described_object") or "object")
        return ObjectTarget(name, described, target_value, average, selector)
    return ExternalTarget(name, target_value, average, selector)


def _inputs(
    rows: pd.DataFrame,
    metrics: pd.DataFrame,
    behavior: Behavior | None,
    metric_window_s: float,
) -> _Inputs | str:
    targets: list[AnyTarget] = []
    kinds: dict[str, str] = {}
    for name, per_metric in metrics.groupby("metric", sort=True):
        target = target_from_row({str(k): v for k, v in per_metric.iloc[-1].to_dict().items()})
        if target is None:
            return f"the recorded targets do not say how metric {name} is computed"
        targets.append(target)
        kinds[str(name)] = type(target).__name__
    last = rows.iloc[-1]
    recorded = behavior_from_api(last.get("behavior"))
    low, high = _num(last["min_replicas"]), _num(last["max_replicas"])
    spec = HpaSpec(
        round(low) if math.isfinite(low) else 1,
        round(high) if math.isfinite(high) else 1,
        tuple(targets),
        recorded or behavior,
    )
    timing = ReadinessTiming(metric_window_s=metric_window_s)
    return _Inputs(spec, ControllerSettings(readiness=timing), kinds)


def _observed(rows: pd.DataFrame, metrics: pd.DataFrame) -> list[_Decision]:
    """Each change of (desired, readings) in the recorded status: one decision."""
    readings_at: dict[float, dict[str, tuple[float, float, float]]] = {}
    # one pass over the rows, not a frame per tick: a day at 2 s is 43,200 ticks
    for ts, m, u, v, t in zip(
        metrics["ts"],
        metrics["metric"],
        metrics["current_utilization"],
        metrics["current_value"],
        _col(metrics, "current_total"),
        strict=True,
    ):
        readings_at.setdefault(_num(ts), {})[str(m)] = (_num(u), _num(v), _num(t))
    out: list[_Decision] = []
    previous: tuple[Any, ...] | None = None
    sampled = -math.inf
    for ts, current, desired in zip(
        rows["ts"], rows["current_replicas"], rows["desired_replicas"], strict=True
    ):
        readings = readings_at.get(float(ts), {})
        if not (math.isfinite(_num(desired)) and math.isfinite(_num(current))) or not readings:
            sampled = float(ts)
            continue
        signature = (round(_num(desired)), tuple(sorted((k, str(v)) for k, v in readings.items())))
        if signature != previous:
            out.append(
                _Decision(float(ts), round(_num(current)), round(_num(desired)), readings, sampled)
            )
        previous = signature
        sampled = float(ts)
    return out


class _PodTicks:
    """A workload's pods.csv split by tick once, so each sync finds its sample by bisection."""

    def __init__(self, pods: pd.DataFrame) -> None:
        ordered = pods.sort_values("ts", kind="stable")
        self.empty = ordered.iloc[:0]
        self.ticks = ordered["ts"].drop_duplicates().to_numpy(float)
        bounds = np.searchsorted(ordered["ts"].to_numpy(float), self.ticks, side="left")
        ends = [*bounds[1:], len(ordered)][: len(bounds)]
        self.frames = [ordered.iloc[a:b] for a, b in zip(bounds, ends, strict=True)]

    def at(self, ts: float, *, same_tick: bool) -> pd.DataFrame:
        """The pods sample the controller's sync saw: the last one before the status changed
        (the sync happened between two samples, and a scale-up's new pods are already listed in
        the sample that shows it), or the same tick's when the sync ran at the sample (the
        demo). pods.csv is written as snapshots: the last one before ``ts`` still held."""
        index = int(np.searchsorted(self.ticks, ts, side="right" if same_tick else "left")) - 1
        return self.frames[index] if index >= 0 else self.empty


def _synthetic_pods(
    recorded: pd.DataFrame, decision: _Decision, inputs: _Inputs
) -> tuple[list[PodUsage], int]:
    """The pods as the controller saw them, carrying the recorded per-pod readings; and the
    scale's status replicas (pods not terminating)."""
    readings = decision.readings
    cpu = readings.get("cpu", (math.nan,) * 3)
    memory = readings.get("memory", (math.nan,) * 3)

    def resource_usage(reading: tuple[float, float, float], name: str) -> float | None:
        target = next(
            (t for t in inputs.spec.metrics if isinstance(t, MetricTarget) and t.resource == name),
            None,
        )
        if target is None:
            return None
        if target.target_average_value is not None:
            return reading[1] if math.isfinite(reading[1]) else None
        return reading[0] * _REQUEST / 100 if math.isfinite(reading[0]) else None

    per_pod = {
        name: reading[1]
        for name, reading in readings.items()
        if inputs.kinds.get(name) == "PodsTarget" and math.isfinite(reading[1])
    }
    cpu_each, memory_each = resource_usage(cpu, "cpu"), resource_usage(memory, "memory")
    out = []
    if recorded.empty:
        for i in range(decision.current):
            out.append(
                PodUsage(
                    f"pod-{i}", True, cpu_each, memory_each, _REQUEST, _REQUEST, pod_metrics=per_pod
                )
            )
        return out, decision.current
    for row in recorded.itertuples(index=False):
        deleting = _true(getattr(row, "deleting", None))
        has_cpu = math.isfinite(_num(row.cpu_m))
        has_memory = math.isfinite(_num(row.memory_bytes))
        out.append(
            PodUsage(
                str(row.pod),
                _true(row.ready),
                cpu_each if has_cpu else None,
                memory_each if has_memory else None,
                _REQUEST,
                _REQUEST,
                phase=str(row.phase) if isinstance(row.phase, str) and row.phase else "Running",
                start_ts=_finite(getattr(row, "start_ts", None)),
                ready_since_ts=_finite(getattr(row, "ready_since_ts", None)),
                deleting=deleting,
                pod_metrics=per_pod,
            )
        )
    live = sum(1 for p in out if not p.deleting and p.phase not in ("Failed", "Succeeded"))
    return out, live


def _true(value: Any) -> bool:
    """A bool cell: numpy's bools, None and NaN (not measured: False) included."""
    return value is not None and value is not pd.NA and _num(value) == 1


def _finite(value: Any) -> float | None:
    number = _num(value)
    return number if math.isfinite(number) else None


def _readings(decision: _Decision, inputs: _Inputs, status_replicas: int) -> MetricReadings:
    objects: dict[str, float] = {}
    external: dict[str, tuple[float, ...]] = {}
    for target in inputs.spec.metrics:
        if not isinstance(target, ObjectTarget | ExternalTarget):
            continue
        _, average, total = decision.readings.get(target.name, (math.nan,) * 3)
        if target.target_value is not None:
            value = total if math.isfinite(total) else average
        else:  # the status says the average over the status replicas: undo it
            value = average * status_replicas
        if not math.isfinite(value):
            continue
        if isinstance(target, ObjectTarget):
            objects[target.name] = value
        else:
            external[target.name] = (value,)
    return MetricReadings(objects, external, status_replicas)


def _why(decision: _Decision, inputs: _Inputs, model: int, reason: str) -> str:
    parts = [f"current {decision.current}"]
    by_name = {
        t.resource if isinstance(t, MetricTarget | ContainerResourceTarget) else t.name: t
        for t in inputs.spec.metrics
    }
    for name, (util, value, total) in sorted(decision.readings.items()):
        target = by_name.get(name)
        if isinstance(target, MetricTarget) and target.target_average_value is None:
            parts.append(f"{name} {util:.0f}% against {target.target_utilization_pct}%")
        elif target is not None:
            shown = total if math.isfinite(total) else value
            goal = getattr(target, "target_value", None) or getattr(
                target, "target_average_value", None
            )
            parts.append(f"{name} {shown:g} against {goal:g}")
    parts.append(f"model {model}" + (f" ({reason})" if reason else ""))
    return ", ".join(parts)


def _sync_phase(rows: pd.DataFrame, period_s: float) -> float | None:
    """Where the controller's syncs fall, modulo its period: ``status.lastScaleTime`` is stamped
    at a sync (to the second, truncated) and the controller requeues each HPA a fixed period
    after the last sync. None when the HPA never scaled during the recording."""
    if "last_scale_ts" not in rows:
        return None
    stamps = pd.to_numeric(rows["last_scale_ts"], errors="coerce").dropna()
    if stamps.empty:
        return None
    return float(stamps.iloc[-1]) % period_s


def _grid(phase: float | None, period_s: float) -> Callable[[_Decision], float]:
    """A status change -> the sync that made it: the controller's grid point between the sample
    before the change and the one that showed it (the sampler sees a change up to one interval
    late). Without a known phase, or with no grid point there (the period given is not the
    controller's), the time the change was seen: never more than one interval off."""

    def sync_of(decision: _Decision) -> float:
        if phase is None:
            return decision.ts
        point = phase + math.floor((decision.ts - phase) / period_s + 1e-9) * period_s
        return point if point > decision.after_ts else decision.ts

    return sync_of


def _sync_times(
    decisions: list[_Decision], period_s: float, sync_of: Callable[[_Decision], float]
) -> list[tuple[float, int]]:
    """(time, index of the decision whose inputs hold) for every sync, observed or filled."""
    out: list[tuple[float, int]] = []
    for i, decision in enumerate(decisions):
        start = sync_of(decision)
        out.append((start, i))
        end = sync_of(decisions[i + 1]) if i + 1 < len(decisions) else start
        t = start + period_s
        # an unseen sync half a period from the next seen one is that one, a little late
        while t < end - period_s / 2:
            out.append((t, i))
            t += period_s
    return out


def _event_decisions(
    data: RunData, hpa: HpaResult, decisions: list[_Decision], slack_s: float
) -> int:
    """SuccessfulRescale events whose new size no observed decision near them shows."""
    events = data.events
    mine = events[
        (events["namespace"] == hpa.namespace)
        & (events["name"] == hpa.name)
        & (events["reason"] == "SuccessfulRescale")
    ]
    unseen = 0
    for ts, message in zip(mine["ts"], mine["message"], strict=True):
        parsed = rescale_metric(str(message))
        if parsed is None:
            continue
        near = [d for d in decisions if abs(d.ts - float(ts)) <= slack_s]
        if not any(d.desired == parsed[0] for d in near):
            unseen += 1
    return unseen


def check_model(
    data: RunData,
    hpa: HpaResult,
    *,
    sync_period_s: float,
    behavior: Behavior | None = None,
    metric_window_s: float = 15.0,
    syncs_at_samples: bool = False,
) -> ModelCheck:
    """Replays one recorded HPA through the model at its syncs and compares the decisions.

    ``behavior`` is the HPA's spec.behavior when hpa.csv does not carry it (the demo writes it
    to run.json); ``metric_window_s`` the window of the usage the controller read (metrics-server
    reports 15 s by default; the demo's autoscaler averages over its sync period);
    ``syncs_at_samples`` when the autoscaler decides at the sampler's ticks (the demo)."""
    rows = data.hpa[(data.hpa["namespace"] == hpa.namespace) & (data.hpa["hpa"] == hpa.name)]
    rows = rows.sort_values("ts")
    metrics = data.hpa_metrics[
        (data.hpa_metrics["namespace"] == hpa.namespace) & (data.hpa_metrics["hpa"] == hpa.name)
    ]

    def not_checked(why: str) -> ModelCheck:
        return ModelCheck(hpa.key, 0, 0, 0, (), sync_period_s, not_checked=why)

    interval = data.sample_interval_s
    if interval > sync_period_s + 1e-6:
        return not_checked(
            f"sampled every {interval:g} s, coarser than the controller's {sync_period_s:g} s "
            "sync: decisions between two samples are unseen"
        )
    readings = metrics[["current_utilization", "current_value"]].notna().any(axis=1)
    if "current_total" in metrics:
        readings |= metrics["current_total"].notna()
    if metrics.empty or not bool(readings.any()):
        return not_checked("the HPA's metric readings (status.currentMetrics) were never recorded")
    inputs = _inputs(rows, metrics, behavior, metric_window_s)
    if isinstance(inputs, str):
        return not_checked(inputs)
    decisions = _observed(rows, metrics)
    pods = _PodTicks(
        data.pods[
            (data.pods["namespace"] == hpa.namespace) & (data.pods["workload"] == hpa.target_name)
        ]
    )
    controller = HpaController(inputs.spec, inputs.settings)
    exact = within = 0
    mismatches: list[Mismatch] = []
    recommendation: int | None = None
    # The demo's autoscaler decides at the sampler's ticks; a controller on its own sync grid.
    sync_of = _grid(None if syncs_at_samples else _sync_phase(rows, sync_period_s), sync_period_s)
    for ts, index in _sync_times(decisions, sync_period_s, sync_of):
        decision = decisions[index]
        if ts != sync_of(decision):
            # unseen: its status was the same as the last seen one, so was its recommendation
            if recommendation is not None:
                controller.remember(ts, recommendation)
            continue
        seen = pods.at(decision.ts, same_tick=syncs_at_samples)
        synthetic, live = _synthetic_pods(seen, decision, inputs)
        readings_now = _readings(decision, inputs, live)
        result = controller.reconcile(ts, decision.current, synthetic, readings_now)
        recommendation = result.metric_desired_replicas
        model = result.desired_replicas
        exact += model == decision.desired
        within += abs(model - decision.desired) <= 1
        if model != decision.desired:
            reason = (
                result.limited_reason if result.scaling_limited else result.able_to_scale_reason
            )
            why = _why(decision, inputs, model, reason)
            mismatches.append(Mismatch(decision.ts, model, decision.desired, why))
    unseen = _event_decisions(data, hpa, decisions, sync_period_s + interval)
    return ModelCheck(
        hpa.key,
        len(decisions) + unseen,
        exact,
        within,
        tuple(mismatches[:_MAX_MISMATCHES]),
        sync_period_s,
        all_mismatches=len(mismatches) + unseen,
    )


def model_check_findings(check: ModelCheck) -> list[Finding]:
    """``model_mismatch`` (info): a decision the model made more than one replica apart."""
    far = [m for m in check.mismatches if abs(m.model - m.controller) > 1]
    if not far:
        return []
    first = far[0]
    return [
        Finding(
            "model_mismatch",
            "info",
            check.hpa,
            f"At tick {first.ts:.0f} the controller decided {first.controller} replicas for "
            f"{check.hpa} and the model {first.model} ({first.why}); "
            f"{len(far)} decision(s) were more than one replica apart.",
            "The what-if replay and the capacity sizing use this model, so their numbers are "
            "only as close as this check.",
            "Compare the HPA's spec and the controller's flags (sync period, tolerance, "
            "stabilization) with what the run recorded; a run sampled more often shows more.",
            {"ts": first.ts, "model": first.model, "controller": first.controller},
        )
    ]
