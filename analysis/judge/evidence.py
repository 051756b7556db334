"""What counts as evidence that the load made an HPA act, and what does not.

Replicas going up is not by itself proof of load: a memory metric held above target by a per-pod
baseline scales an idle service to max, and an HPA can start a run already scaled up by the
previous one (the scale-down stabilization window keeps the highest recommendation of the last
5 minutes). These rules tell those cases apart so the load judgement and the HPA findings agree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.data.timeline import Window
from analysis.judge.findings import Finding, Severity
from analysis.judge.resources import WorkloadResult
from analysis.judge.scaling import TOLERANCE, HpaResult, metric_ratios

# Peak utilization of every load-following metric under half its target at full users: the load
# gave the HPA no reason to scale.
LOW_SHARE_OF_TARGET = 0.5
# kube-controller-manager's --horizontal-pod-autoscaler-sync-period default, and metrics-server's
# --metric-resolution default (15 s since v0.6): a load change shows in an HPA decision no sooner.
SYNC_PERIOD_S = 15.0
METRICS_RESOLUTION_S = 15.0
# The controller's default scale-down stabilization window (kube-controller-manager's
# --horizontal-pod-autoscaler-downscale-stabilization: 300 s).
DOWNSCALE_WINDOW_S = 300.0


@dataclass(frozen=True)
class MetricEvidence:
    metric: str
    follows_load: bool
    peak_utilization: float | None
    target_utilization: float | None
    baseline_note: str  # why it does not follow load; empty when it does

    @property
    def far_under_target(self) -> bool:
        peak, target = self.peak_utilization, self.target_utilization
        return peak is not None and target is not None and peak < LOW_SHARE_OF_TARGET * target


@dataclass(frozen=True)
class HpaEvidence:
    hpa: HpaResult
    metrics: tuple[MetricEvidence, ...]
    load_scale_ups: int  # scale-ups driven by a metric that follows load (or by an unknown one)
    baseline_scale_ups: int  # scale-ups driven by a metric that holds a baseline

    @property
    def load_following(self) -> tuple[MetricEvidence, ...]:
        return tuple(m for m in self.metrics if m.follows_load and m.peak_utilization is not None)

    @property
    def unpushed(self) -> bool:
        """Nothing says the load pushed this HPA: no load-driven scale-up and every measured
        load-following metric far under its target."""
        following = self.load_following
        return (
            self.load_scale_ups == 0
            and bool(following)
            and all(m.far_under_target for m in following)
        )

    @property
    def silent(self) -> bool:
        """Says nothing about the load either way: no load-driven scale-up and no measured
        metric that follows load (memory alone, holding a baseline). Such an HPA neither
        proves nor disproves that the load was enough."""
        return self.load_scale_ups == 0 and not self.load_following

    def silence(self) -> str:
        """Why this HPA says nothing about the load, with its numbers."""
        parts = []
        for m in self.metrics:
            peak = (
                "never measured"
                if m.peak_utilization is None
                else (f"peaked at {m.peak_utilization:.0f}% of request")
            )
            target = (
                ""
                if m.target_utilization is None
                else f" against its {m.target_utilization:.0f}% target"
            )
            why = f", which {m.baseline_note}" if m.baseline_note else ""
            parts.append(f"{m.metric} ({peak}{target}{why})")
        return f"{self.hpa.key} scales only on {', '.join(parts) or 'no metric'}"

    def state(self) -> str:
        """What the HPA did, in words that match its other findings."""
        h = self.hpa
        start, peak, top = h.start_replicas, h.peak_replicas, h.max_replicas
        if self.baseline_scale_ups and not self.load_scale_ups:
            metric = next(m for m in self.metrics if not m.follows_load)
            return (
                f"{h.key} went {start}->{peak} replicas on {metric.metric}, which "
                f"{metric.baseline_note}, not on load"
            )
        if start is not None and h.min_replicas is not None and start > h.min_replicas:
            where = "its max of" if start == top else "already"
            return f"{h.key} started at {where} {start} replicas (from before the load)"
        return f"{h.key} stayed at {start} replicas (min {h.min_replicas})"


def _memory_evidence(workload: WorkloadResult | None) -> str:
    """Why memory is not a load signal for this workload; empty when it may be."""
    if workload is None:
        return ""
    baseline_pct = workload.pct_of_request(workload.baseline_memory_bytes)
    target = workload.hpa_memory_target
    if baseline_pct is not None and target is not None and baseline_pct >= target:
        return (
            f"holds a baseline of {baseline_pct:.0f}% of request against its {target:.0f}% "
            "target (see memory_not_load_proportional)"
        )
    if workload.memory_follows_load is False:
        return "does not follow load per pod (see memory_not_load_proportional)"
    return ""


def hpa_evidence(
    hpa: HpaResult, workloads: Mapping[tuple[str, str], WorkloadResult]
) -> HpaEvidence:
    workload = workloads.get((hpa.namespace, hpa.target_name))
    metrics = []
    for metric in sorted(set(hpa.target_utilization) | set(hpa.peak_utilization)):
        note = _memory_evidence(workload) if metric == "memory" else ""
        metrics.append(
            MetricEvidence(
                metric,
                not note,
                hpa.peak_utilization.get(metric),
                hpa.target_utilization.get(metric),
                note,
            )
        )
    baseline = {m.metric for m in metrics if not m.follows_load}
    ups = [e for e in hpa.events if e.up]
    by_baseline = sum(1 for e in ups if e.metric in baseline)
    return HpaEvidence(hpa, tuple(metrics), len(ups) - by_baseline, by_baseline)


def unpushed_note(evidence: Sequence[HpaEvidence]) -> str | None:
    """The reason ``load_too_low`` gives when every HPA was left unpushed by the load."""
    if not any(e.unpushed for e in evidence) or not all(e.unpushed or e.silent for e in evidence):
        return None
    parts = []
    for e in evidence:
        if not e.unpushed:
            parts.append(e.silence())
            continue
        peaks = ", ".join(
            f"{'CPU' if m.metric == 'cpu' else m.metric} peaked at {m.peak_utilization:.0f}% of "
            "request against a "
            f"{m.target_utilization:.0f}% target"
            for m in e.load_following
            if m.peak_utilization is not None and m.target_utilization is not None
        )
        parts.append(f"{e.hpa.key} {peaks}")
    scaled = any(e.baseline_scale_ups for e in evidence)
    tail = " and no HPA scaled up on load" if scaled else " and no HPA scaled up"
    return "; ".join(parts) + tail


def reaction_time_s(meta: Mapping[str, Any], mode: str, interval_s: float) -> float:
    """How long a load change takes to reach an HPA decision at best: one sync period plus one
    metrics window (the local autoscaler averages the samples since its last sync)."""
    value = meta.get("hpa_sync_period_s")
    sync = float(value) if isinstance(value, int | float) and value > 0 else SYNC_PERIOD_S
    resolution = interval_s if mode in ("demo", "local") else METRICS_RESOLUTION_S
    return sync + resolution


def loaded_duration_s(window: Window) -> float | None:
    if window.load_start_s is None:
        return None
    lo, hi = window.loaded
    return max(0.0, hi - lo)


def run_too_short(window: Window, hpas: Sequence[HpaResult], reaction_s: float) -> Finding | None:
    """``run_too_short``: the load lasted less than an HPA needs to react at all."""
    duration = loaded_duration_s(window)
    if not hpas or duration is None or duration >= reaction_s:
        return None
    return Finding(
        "run_too_short",
        "medium",
        "run",
        f"The load lasted {duration:.0f} s; an HPA needs at least {reaction_s:.0f} s to react "
        "(one sync period plus one metrics window).",
        "No scale-up could have happened in time: this run cannot show whether the service "
        "scales, and replicas, lags and the HPA's status say nothing about the load.",
        "Run for several minutes (-t 5m or more) to judge autoscaling; short runs are for "
        "checking the locustfile.",
        {"loaded_s": round(duration, 1), "reaction_s": round(reaction_s, 1)},
    )


def _ratios_before(hpa_metrics: pd.DataFrame, hpa: HpaResult, until_s: float) -> dict[str, float]:
    """Each metric's last current/target ratio at or before ``until_s`` (else its first one)."""
    rows = hpa_metrics[
        (hpa_metrics["namespace"] == hpa.namespace) & (hpa_metrics["hpa"] == hpa.name)
    ]
    ratios = metric_ratios(rows).dropna(subset=["ratio"])
    out: dict[str, float] = {}
    for metric, group in ratios.groupby("metric"):
        before = group[group["ts"] <= until_s]
        chosen = before.iloc[-1] if not before.empty else group.iloc[0]
        out[str(metric)] = float(chosen["ratio"])
    return out


def started_scaled_up(hpa: HpaResult, hpa_metrics: pd.DataFrame, window: Window) -> Finding | None:
    """``started_scaled_up``: replicas above min when the load began."""
    start, low, top = hpa.start_replicas, hpa.min_replicas, hpa.max_replicas
    if start is None or low is None or start <= low:
        return None
    at = window.load_start_s if window.load_start_s is not None else window.start_s
    ratios = _ratios_before(hpa_metrics, hpa, at)
    under = {m: r for m, r in ratios.items() if r <= 1 + TOLERANCE}
    if ratios and len(under) == len(ratios):
        readings = ", ".join(f"{m} at {r:.0%} of target" for m, r in sorted(under.items()))
        why_up = (
            f"its metrics were under target when the load began ({readings}), so it was held "
            f"there by the scale-down stabilization window (the highest recommendation of the "
            f"last {DOWNSCALE_WINDOW_S:.0f} s by default), most likely left over from a previous "
            "run"
        )
    else:
        why_up = "its metrics already asked for more when the load began (load from elsewhere?)"
    at_max = top is not None and start >= top
    severity: Severity = "medium" if at_max else "info"
    where = f"its max of {top}" if at_max else f"{start} (min {low})"
    return Finding(
        "started_scaled_up",
        severity,
        hpa.key,
        f"{hpa.key} was already at {where} replicas when the load began: {why_up}.",
        "A run that starts scaled up cannot show a scale-up, its lags or whether the starting "
        "replicas were needed; time at max is not the load's doing.",
        f"Wait {DOWNSCALE_WINDOW_S / 60:.0f} minutes (or the HPA's "
        "behavior.scaleDown.stabilizationWindowSeconds) after a run, until the HPA is back at "
        "min, before the next one.",
        {
            "start_replicas": start,
            "min_replicas": low,
            "max_replicas": top,
            **{f"{m}_ratio_at_start": round(r, 3) for m, r in sorted(ratios.items())},
        },
    )
