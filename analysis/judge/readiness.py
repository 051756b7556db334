"""Scale-ups that never delivered ready pods, and why.

desiredReplicas going up is only the controller's wish: capacity arrives when the new pods are
Ready. A pod stuck Pending (no node fits it), pulling an image, crash-looping or failing its
readiness probe adds nothing, while the HPA believes it has scaled. The reason is read from the
pods' phases and restarts in pods.csv and the cluster's events in events.csv.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pandas as pd

from analysis.data.load import RunData
from analysis.judge.findings import Finding
from analysis.judge.scaling import HpaResult, ScaleEvent

# A scale-up gets this long to show ready pods before its absence is judged: pods that start in
# under a minute are the norm, and a scale-up in the last seconds of a run proves nothing.
READY_GRACE_S = 60.0

# Event reasons (kubelet, scheduler, controllers) and what they say about a pod that is not ready.
_EVENT_CAUSES: tuple[tuple[str, str, str], ...] = (
    # (reason, text the message must contain or "", cause in words)
    ("FailedScheduling", "", "Pending: unschedulable (FailedScheduling)"),
    ("FailedCreate", "", "pods not created (FailedCreate: quota or admission)"),
    ("Failed", "pull", "image pull failing"),
    ("BackOff", "pull", "image pull failing"),
    ("BackOff", "restart", "crash loop (BackOff restarting the container)"),
    ("Unhealthy", "readiness", "readiness probe failing"),
    ("Failed", "", "container failed to start"),
)


@dataclass(frozen=True)
class NotReady:
    event: ScaleEvent
    ready_reached: int | None  # highest ready count after the scale-up
    waited_s: float  # from the scale-up to the end of the samples
    causes: tuple[str, ...]  # most frequent first
    example: str  # one event message or pod state that shows it


def _needed(series: pd.DataFrame, event: ScaleEvent) -> pd.DataFrame:
    """Ticks after the scale-up with what was needed then: a later scale-down lowers the bar."""
    after = series[series["ts"] >= event.ts]
    need = after["desired"].fillna(event.to_replicas).clip(upper=event.to_replicas)
    return after.assign(need=need)


def _pod_causes(data: RunData, hpa: HpaResult, since: float) -> Counter[str]:
    pods = data.pods[
        (data.pods["namespace"] == hpa.namespace)
        & (data.pods["workload"] == hpa.target_name)
        & (data.pods["ts"] >= since)
    ]
    causes: Counter[str] = Counter()
    unready = pods[~pods["ready"].fillna(False).astype(bool)]
    for _, rows in unready.groupby("pod"):
        phase = str(rows["phase"].iloc[-1])
        reason = str(rows["last_termination_reason"].iloc[-1])
        restarts = rows["restarts"].dropna()
        if phase == "Pending":
            causes["Pending"] += 1
        elif reason == "OOMKilled":
            causes["OOM-killed while starting"] += 1
        elif len(restarts) > 1 and float(restarts.iloc[-1]) > float(restarts.iloc[0]):
            causes["crash loop (restarting)"] += 1
        elif phase == "Running":
            causes["running but not Ready (readiness failing)"] += 1
    return causes


def _event_causes(data: RunData, hpa: HpaResult, since: float) -> tuple[Counter[str], str]:
    events = data.events[
        (data.events["namespace"] == hpa.namespace)
        & (data.events["ts"] >= since)
        & (data.events["name"].str.startswith(hpa.target_name + "-"))
    ]
    causes: Counter[str] = Counter()
    example = ""
    for reason, message in zip(events["reason"], events["message"], strict=True):
        lowered = str(message).lower()
        for wanted, text, cause in _EVENT_CAUSES:
            if reason == wanted and text in lowered:
                causes[cause] += 1
                example = example or f"{reason}: {' '.join(str(message).split())[:200]}"
                break
    return causes, example


def not_ready(data: RunData, hpa: HpaResult, end_s: float) -> list[NotReady]:
    """Scale-ups whose pods were not all Ready by the end of the run (given READY_GRACE_S)."""
    series = hpa.series
    if series["ready"].isna().all():
        return []  # readiness was never sampled: nothing to judge (the SLO still fails)
    found: list[NotReady] = []
    for event in hpa.events:
        if not event.up or end_s - event.ts < READY_GRACE_S:
            continue
        ticks = _needed(series, event).dropna(subset=["ready"])
        if ticks.empty or bool((ticks["ready"] >= ticks["need"]).any()):
            continue
        pods = _pod_causes(data, hpa, event.ts)
        events, example = _event_causes(data, hpa, event.ts)
        # The events say why (FailedScheduling explains Pending), so they come first.
        causes = [c for c, _ in events.most_common()] + [c for c, _ in pods.most_common()]
        found.append(
            NotReady(
                event, round(float(ticks["ready"].max())), end_s - event.ts, tuple(causes), example
            )
        )
    return found


def scale_up_not_ready(data: RunData, hpa: HpaResult, end_s: float) -> list[Finding]:
    """``scale_up_not_ready``: one finding per HPA, about its first such scale-up."""
    stuck = not_ready(data, hpa, end_s)
    if not stuck:
        return []
    first = stuck[0]
    event = first.event
    cause = ", ".join(first.causes[:3]) if first.causes else "no reason recorded"
    example = f" ({first.example})" if first.example else ""
    return [
        Finding(
            "scale_up_not_ready",
            "high",
            hpa.key,
            f"{hpa.key} scaled {event.from_replicas}->{event.to_replicas} but ready replicas "
            f"reached only {first.ready_reached} in the {first.waited_s:.0f} s left of the run: "
            f"{cause}{example}. {len(stuck)} scale-up(s) of this HPA never became ready.",
            "The HPA counts the pods it asked for; until they are Ready the existing pods take "
            "all the load, so the scale-up added no capacity.",
            "Look at the pods (kubectl describe pod): free node capacity or lower requests for "
            "Pending, the image name and pull secrets for pulls, the previous logs for crash "
            "loops, the readiness probe's path and timeout for readiness.",
            {
                "from": event.from_replicas,
                "to": event.to_replicas,
                "ready_reached": first.ready_reached,
                "waited_s": round(first.waited_s, 1),
                "cause": first.causes[0] if first.causes else None,
                "scale_ups_not_ready": len(stuck),
            },
        )
    ]
