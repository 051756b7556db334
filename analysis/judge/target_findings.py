"""Findings about the target: each HPA (status, slow scale-ups) and each workload (OOM kills,
memory near its limit, restarts, memory that does not follow load). Run-wide findings and the
``Finding`` type are in ``analysis.judge.findings``.
"""

from __future__ import annotations

import math

from analysis.data.units import format_bytes
from analysis.judge.adequacy import LoadSummary
from analysis.judge.findings import Finding, Severity
from analysis.judge.resources import WorkloadResult
from analysis.judge.scaling import FLAP_WINDOW_S, NOT_SCALING_S, HpaResult

# Memory at 80 % of the limit is one traffic spike from an OOM kill; at 90 % it is likely.
NEAR_LIMIT_MEDIUM_PCT = 80.0
NEAR_LIMIT_HIGH_PCT = 90.0
# The first scale-up after a load step should come within 90 s of the end of the ramp (worst case
# of the controller is ~55 s); ready pods within a further 120 s.
SCALE_UP_SLOW_S = 90.0
READY_SLOW_S = 120.0


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}%"


def _wanted(hpa: HpaResult) -> int | None:
    metric = hpa.driving_metric
    peak = hpa.peak_utilization.get(metric or "")
    target = hpa.target_utilization.get(metric or "")
    if not peak or not target or hpa.peak_replicas is None:
        return None
    return math.ceil(hpa.peak_replicas * peak / target)


def hpa_findings(hpa: HpaResult, load: LoadSummary) -> list[Finding]:
    """Status findings and ``scale_up_slow`` for one HPA."""
    out: list[Finding] = []
    metric = hpa.driving_metric or "its metric"
    peak = hpa.peak_utilization.get(hpa.driving_metric or "")
    target = hpa.target_utilization.get(hpa.driving_metric or "")
    if hpa.status == "no_metrics":
        out.append(
            Finding(
                "metrics_missing",
                "high",
                hpa.key,
                f"{hpa.key} had no current metric values while the test ran.",
                "An HPA without metrics cannot scale: it held "
                f"{hpa.final_replicas} replicas whatever the load.",
                "Check that every container of the target sets the requests the HPA's metrics use "
                "and that metrics-server serves the pods (kubectl describe hpa).",
                {"status": hpa.status},
            )
        )
    if hpa.status == "at_max":
        wanted = _wanted(hpa)
        out.append(
            Finding(
                "hpa_at_max",
                "high",
                hpa.key,
                f"{hpa.key} sat at its max of {hpa.max_replicas} replicas for "
                f"{hpa.at_max_wanting_share:.0%} of the loaded time ({hpa.time_at_max_s:.0f} s at "
                f"max) while it wanted more; {metric} peaked at {_pct(peak)} against a "
                f"{_pct(target)} target.",
                "At max the HPA cannot add capacity: extra load goes into latency and errors "
                f"(p95 {load.p95_ms if load.p95_ms is not None else 'n/a'} ms).",
                f"Raise maxReplicas (the metric asked for about {wanted or 'more'} replicas) or "
                "make "
                "each pod handle more; if memory drives it and stays flat per pod, fix the memory "
                "request first (see memory_not_load_proportional).",
                {
                    "max_replicas": hpa.max_replicas,
                    "share_of_loaded_time": round(hpa.at_max_wanting_share, 3),
                    "time_at_max_s": hpa.time_at_max_s,
                    "wanted_replicas": wanted,
                },
            )
        )
    if hpa.status == "not_scaling" and hpa.unanswered is not None:
        u = hpa.unanswered
        out.append(
            Finding(
                "hpa_not_scaling",
                "high",
                hpa.key,
                f"{hpa.key}: {u.metric} stayed above its {u.target_utilization:.0f}% target (up to "
                f"{u.peak_utilization:.0f}%) for {u.duration_s:.0f} s at {u.replicas} replicas, "
                f"below max {hpa.max_replicas}, and replicas did not rise.",
                f"The controller reacts within ~55 s; {NOT_SCALING_S:.0f} s without a scale-up "
                "means "
                "it could not (AbleToScale false, quota, unschedulable pods) or was held back.",
                "Run kubectl describe hpa and look at its conditions and events; check the "
                "target's "
                "pods for Pending and the namespace's ResourceQuota.",
                {
                    "metric": u.metric,
                    "duration_s": round(u.duration_s, 1),
                    "peak_utilization": round(u.peak_utilization, 1),
                    "replicas": u.replicas,
                },
            )
        )
    if hpa.status == "flapping":
        out.append(
            Finding(
                "hpa_flapping",
                "medium",
                hpa.key,
                f"{hpa.key} reversed its scaling direction {hpa.reversals} times within "
                f"{FLAP_WINDOW_S:.0f} s of the previous change.",
                "Each reversal starts or kills pods for nothing: cold caches, lost connections.",
                "Lengthen behavior.scaleDown.stabilizationWindowSeconds, or raise the target so "
                "normal load sits well inside the 10% tolerance band.",
                {"reversals": hpa.reversals},
            )
        )
    slow = _slow_scale_up(hpa)
    if slow is not None:
        out.append(slow)
    return out


def _slow_scale_up(hpa: HpaResult) -> Finding | None:
    worst = None
    for event in hpa.events:
        if not (event.up and event.first_after_step and event.step and event.lag_s is not None):
            continue
        ramp = event.step.end_s - event.step.start_s
        late = event.lag_s - ramp - SCALE_UP_SLOW_S
        ready_late = (
            event.ready_lag_s - event.lag_s - READY_SLOW_S
            if event.ready_lag_s is not None
            else -1.0
        )
        if max(late, ready_late) > 0 and (worst is None or max(late, ready_late) > worst[0]):
            worst = (max(late, ready_late), event, ramp)
    if worst is None:
        return None
    _, event, ramp = worst
    ready = (
        f"; ready replicas reached {event.to_replicas} after {event.ready_lag_s:.0f} s"
        if event.ready_lag_s is not None
        else ""
    )
    return Finding(
        "scale_up_slow",
        "medium",
        hpa.key,
        f"{hpa.key}: after users rose from {event.step.users_from:.0f} to "  # type: ignore[union-attr]
        f"{event.step.users_to:.0f} (ramp {ramp:.0f} s), desiredReplicas went "  # type: ignore[union-attr]
        f"{event.from_replicas}->{event.to_replicas} only {event.lag_s:.0f} s after the step"
        f"{ready}.",
        f"Until new pods are ready, existing pods take all the load; over {SCALE_UP_SLOW_S:.0f} s "
        "after the ramp (or pods taking over "
        f"{READY_SLOW_S:.0f} s to become ready) is long enough to breach latency SLOs.",
        "Lower the target so scaling starts earlier, shorten readiness (image pull, startup "
        "probes), and check metrics-server's resolution.",
        {
            "lag_s": round(event.lag_s or 0.0, 1),
            "ready_lag_s": None if event.ready_lag_s is None else round(event.ready_lag_s, 1),
            "ramp_s": round(ramp, 1),
        },
    )


def workload_findings(w: WorkloadResult) -> list[Finding]:
    """``oom_killed``, ``near_memory_limit``, ``pod_restarts`` and memory proportionality."""
    out: list[Finding] = []
    rec = w.recommendation
    limit_text = format_bytes(w.memory_limit_bytes) if w.memory_limit_bytes else "no limit"
    if w.oom_kills:
        measured = w.peak_memory_bytes is not None and rec.memory_limit_bytes is not None
        peak_text = (
            f"peak working set {format_bytes(w.peak_memory_bytes or 0)}"
            if w.peak_memory_bytes is not None
            else "its memory was never measured (the pods restarted before metrics-server "
            "reported them)"
        )
        advice = (
            "Raise the memory limit to at least "
            f"{format_bytes(rec.memory_limit_bytes or 0)} ({rec.memory_limit_formula})."
            if measured
            else f"Raise the memory limit well above {limit_text} (try doubling it) and run "
            "again: with the pods alive long enough to be measured, the report sizes it."
        )
        out.append(
            Finding(
                "oom_killed",
                "high",
                w.key,
                f"{w.oom_kills} container(s) of {w.key} were OOM-killed; {peak_text} against "
                f"a {limit_text} limit.",
                "An OOM kill drops every request in flight on that pod and restarts it cold.",
                advice,
                {
                    "oom_kills": w.oom_kills,
                    "recommended_memory_limit_bytes": rec.memory_limit_bytes,
                },
            )
        )
    pct = w.peak_memory_pct_of_limit
    if not w.oom_kills and pct is not None and pct >= NEAR_LIMIT_MEDIUM_PCT:
        out.append(
            Finding(
                "near_memory_limit",
                "high" if pct >= NEAR_LIMIT_HIGH_PCT else "medium",
                w.key,
                f"{w.key}: peak working set {format_bytes(w.peak_memory_bytes or 0)} is "
                f"{pct:.0f}% of the {limit_text} limit.",
                "The OOM killer acts at the limit, not the request; a little more load or a larger "
                "payload kills the pod.",
                f"Raise the memory limit to {format_bytes(rec.memory_limit_bytes or 0)} "
                f"({rec.memory_limit_formula}).",
                {"peak_memory_pct_of_limit": round(pct, 1)},
            )
        )
    other = w.restarts - w.oom_kills
    if other > 0:
        out.append(
            Finding(
                "pod_restarts",
                "medium",
                w.key,
                f"{other} container restart(s) of {w.key} during the run were not OOM kills.",
                "Restarts under load usually mean failing liveness probes or crashes.",
                "Check the previous container logs (kubectl logs --previous) and the liveness "
                "probe's timeout under load.",
                {"restarts": other},
            )
        )
    proportional = _memory_proportionality(w)
    if proportional is not None:
        out.append(proportional)
    return out


def _memory_proportionality(w: WorkloadResult) -> Finding | None:
    baseline_pct = w.pct_of_request(w.baseline_memory_bytes)
    target = w.hpa_memory_target
    pinned = target is not None and baseline_pct is not None and baseline_pct >= target
    if not pinned and w.memory_follows_load is not False:
        return None
    rec = w.recommendation
    swing = (
        ""
        if w.memory_swing is None or w.load_swing is None
        else f"; memory per pod moved {w.memory_swing:.0%} while load per pod moved "
        f"{w.load_swing:.0%}"
    )
    request = format_bytes(w.memory_request_bytes) if w.memory_request_bytes else "unset"
    if w.unloaded_memory_bytes is not None:
        where = "even without load (sampled before the first user or after the last)"
        everywhere = "at any load"
    else:
        where = "even at its lowest under load (no pod was sampled without load)"
        everywhere = "at every load this run applied"
    seen = (
        f"Each {w.key} pod holds {format_bytes(w.baseline_memory_bytes or 0)} {where} "
        f"({_pct(baseline_pct)} of its {request} memory request){swing}."
    )
    if pinned:
        why = (
            f"The HPA divides memory usage by the request: with a {target:.0f}% target this "
            f"baseline alone keeps utilization above target {everywhere}, so the HPA climbs to "
            "max and stays there whatever the traffic."
        )
        severity: Severity = "high"
    else:
        why = (
            "Memory does not follow load here, so a memory metric makes replicas follow the "
            "baseline rather than the traffic."
            if target is not None
            else "Memory does not follow load: it is not a signal to scale this workload on."
        )
        severity = "medium" if target is not None else "info"
    change = (
        f"Set the memory request to at least {format_bytes(rec.memory_request_bytes or 0)} "
        f"({rec.memory_request_formula}), or scale on CPU instead of memory."
        if target is not None
        else "Keep memory out of this workload's HPA metrics."
    )
    return Finding(
        "memory_not_load_proportional",
        severity,
        w.key,
        seen,
        why,
        change,
        {
            "baseline_memory_bytes": w.baseline_memory_bytes,
            "baseline_measured": "without load"
            if w.unloaded_memory_bytes is not None
            else "under load",
            "baseline_pct_of_request": None if baseline_pct is None else round(baseline_pct, 1),
            "memory_target_pct": target,
            "memory_swing": None if w.memory_swing is None else round(w.memory_swing, 3),
            "load_swing": None if w.load_swing is None else round(w.load_swing, 3),
            "recommended_memory_request_bytes": rec.memory_request_bytes,
        },
    )
