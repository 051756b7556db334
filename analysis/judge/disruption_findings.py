"""Findings about ``--chaos`` disruptions: what each did to the service and what to change.

Codes: ``disruption_not_recovered`` (high), ``disruption_single_replica`` (high),
``disruption_errors`` (a graceful delete dropped requests: medium, high from 5 %; after a kill,
info), ``disruption_slow_recovery`` (medium), ``disruption_latency_spike`` (medium),
``disruption_skipped`` (info). The subject is the disrupted workload, ``namespace/name``.
"""

from __future__ import annotations

from typing import Final

from analysis.judge.disruption import Disruption
from analysis.judge.findings import ERROR_RATE_HIGH, Finding, Severity

# A replacement pod that starts in seconds and passes a readiness probe with common settings
# (period 10 s, first check soon after start) is ready well within this.
SLOW_RECOVERY_S: Final = 30.0
# A spike is p95 at least doubled and at least this much slower: survivors absorbing the share
# of a lost replica, not the jitter of a 10 s percentile.
SPIKE_RATIO: Final = 2.0
SPIKE_MIN_INCREASE_MS: Final = 50.0


def _what(d: Disruption) -> str:
    pods = ", ".join(d.mark.pods)
    return f"{d.mark.action} of {pods} ({d.mark.target})"


def _ms(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.0f} ms"


def _rate(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.1%}"


def disruption_findings(disruptions: list[Disruption], elapsed_of: float | None) -> list[Finding]:
    """Every finding of every disruption; ``elapsed_of`` is the test's start (epoch s), to say
    when each happened in test time."""
    found: list[Finding] = []
    for d in disruptions:
        at = d.ts - elapsed_of if elapsed_of is not None else None
        when = f" at {at:.0f} s" if at is not None else ""
        if d.skipped:
            found.append(
                Finding(
                    "disruption_skipped",
                    "info",
                    d.subject,
                    f"{d.mark.action}{when} on {d.mark.target} was skipped: {d.mark.skipped}.",
                    "Nothing was disrupted, so this run says nothing about recovery.",
                    "Check --chaos-target names the workload that serves the load and that its "
                    "pods are running when the disruption is due.",
                    {"action": d.mark.action},
                )
            )
            continue
        found += _recovery_findings(d, when)
        found += _load_findings(d, when)
    return found


def _recovery_findings(d: Disruption, when: str) -> list[Finding]:
    out: list[Finding] = []
    data: dict[str, float | int | str | None] = {
        "ready_before": d.ready_before,
        "pods_hit": len(d.mark.pods),
        "recovery_s": None if d.recovery_s is None else round(d.recovery_s, 1),
    }
    if d.took_all_ready:
        out.append(
            Finding(
                "disruption_single_replica",
                "high",
                d.subject,
                f"The {_what(d)}{when} took every ready replica ({d.ready_before}): no pod was "
                f"left to serve until a replacement was ready"
                + (f" ({d.recovery_s:.0f} s)." if d.recovery_s is not None else "."),
                "A node drain, a rollout or a crash does the same in production: a full outage.",
                "Run at least 2 replicas (HPA minReplicas >= 2), spread them over nodes "
                "(topologySpreadConstraints) and add a PodDisruptionBudget (minAvailable: 1) so "
                "voluntary evictions keep one.",
                data,
            )
        )
    if d.recovered is False:
        out.append(
            Finding(
                "disruption_not_recovered",
                "high",
                d.subject,
                f"After the {_what(d)}{when}, {d.subject} never got back to {d.ready_before} "
                f"ready replica(s) within the run ({d.window_s:.0f} s measured).",
                "A lost pod that is not replaced leaves the service short until someone acts.",
                "Look at the workload's events (FailedScheduling, image pull, CrashLoopBackOff), "
                "the readiness probe of the new pods and the namespace's ResourceQuota.",
                data,
            )
        )
    elif d.recovery_s is not None and d.recovery_s > SLOW_RECOVERY_S:
        out.append(
            Finding(
                "disruption_slow_recovery",
                "medium",
                d.subject,
                f"{d.subject} took {d.recovery_s:.0f} s to recover from the {_what(d)}{when}"
                f"{_time_went(d)}.",
                f"A pod start and a readiness probe with common settings take under "
                f"{SLOW_RECOVERY_S:.0f} s; the service ran short for longer.",
                "Shorten the readiness probe's initialDelaySeconds/periodSeconds, pre-pull or "
                "slim the image, speed up start-up, or keep a spare replica (minReplicas).",
                {
                    **data,
                    "replacement_seen_s": d.replacement_seen_s,
                    "replacement_ready_s": d.replacement_ready_s,
                },
            )
        )
    return out


def _time_went(d: Disruption) -> str:
    seen, ready = d.replacement_seen_s, d.replacement_ready_s
    if seen is None:
        return " (no replacement pod was sampled)"
    text = f": the replacement pod appeared after {seen:.0f} s (controller, scheduling)"
    if ready is not None:
        text += f" and was ready after {ready:.0f} s (image, start-up, readiness probe)"
    return text


def _load_findings(d: Disruption, when: str) -> list[Finding]:
    out: list[Finding] = []
    during, before = d.during, d.before
    rate, rate_before = during.error_rate, before.error_rate
    if during.failures and rate is not None and (rate_before is None or rate > rate_before):
        graceful = d.mark.grace_s is None
        severity: Severity = (
            ("high" if rate >= ERROR_RATE_HIGH else "medium") if graceful else "info"
        )
        why = (
            "A graceful delete should drop nothing: in-flight requests were cut or new ones "
            "were sent to a pod that was shutting down."
            if graceful
            else "A killed pod loses its in-flight requests; clients see that as errors."
        )
        change = (
            "Add a readiness probe, a preStop delay (sleep 5-10 s) so endpoints drop the pod "
            "before it stops, handle SIGTERM by finishing in-flight requests, keep "
            "terminationGracePeriodSeconds above the slowest request, and a "
            "PodDisruptionBudget for evictions."
            if graceful
            else "Retry idempotent requests in clients or the mesh, and keep enough replicas that "
            "one lost pod is a small share of the traffic."
        )
        out.append(
            Finding(
                "disruption_errors",
                severity,
                d.subject,
                f"During the {_what(d)}{when}, {during.failures:.0f} of {during.requests or 0:.0f} "
                f"requests failed ({_rate(rate)}, before: {_rate(rate_before)}).",
                why,
                change,
                {
                    "failures": during.failures,
                    "requests": during.requests,
                    "error_rate": round(rate, 4),
                    "error_rate_before": None if rate_before is None else round(rate_before, 4),
                },
            )
        )
    p95, p95_before = during.p95_ms, before.p95_ms
    if (
        p95 is not None
        and p95_before is not None
        and p95 >= SPIKE_RATIO * p95_before
        and p95 - p95_before >= SPIKE_MIN_INCREASE_MS
    ):
        out.append(
            Finding(
                "disruption_latency_spike",
                "medium",
                d.subject,
                f"p95 rose from {_ms(p95_before)} to {_ms(p95)} during the {_what(d)}{when} "
                f"(p99 {_ms(before.p99_ms)} -> {_ms(during.p99_ms)}).",
                "The surviving pods took the lost pod's share and slowed down: they had no "
                "headroom.",
                "Keep headroom for one lost pod: a lower HPA utilization target or a higher "
                "minReplicas; check the survivors' CPU limits (throttling).",
                {"p95_ms_before": p95_before, "p95_ms_during": p95},
            )
        )
    return out
