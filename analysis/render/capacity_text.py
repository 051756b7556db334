"""Summary.json's ``capacity`` in sentences: the one wording the console, ``report.md`` and the
page share, so the three can never tell the same run's capacity differently.

A run that searched for the knee (a load shape such as ``locustfiles/ramp.py``) or asked for a
sizing (``--target-rps``) gets the knee, the sizing and the break point. Any other run's highest
load per replica is no capacity: the console says nothing of it, the page says plainly what it
is (``unsearched``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rounded(value: Any) -> str:
    """Values as people read them: 120, 97.5, 0.0123 (not 97.48333333)."""
    if value is None:
        return "not measured"
    number = float(value)
    if abs(number) >= 100:
        return f"{number:,.0f}"
    if abs(number) >= 1:
        return f"{number:.1f}".removesuffix(".0")
    return f"{number:.3g}"


def reported(capacity: Mapping[str, Any] | None) -> bool:
    """True when the run looked for its capacity (a load shape) or asked for a sizing."""
    if not capacity:
        return False
    return bool(capacity.get("searched") or capacity.get("target_rps"))


def knee_text(knee: Mapping[str, Any], *, broke: bool) -> str:
    """The knee in words that agree with the break point beside it."""
    if knee.get("rps_per_replica") is None:
        return "no knee: the SLOs broke at the lowest load per replica measured"
    text = (
        f"knee {rounded(knee['rps_per_replica'])} req/s per replica at p95 "
        f"{rounded(knee['p95_ms'])} ms"
    )
    if knee.get("reached"):
        return text
    if broke:
        return text + " (no load per replica broke the SLOs for good: a lower bound)"
    return text + " (the SLOs never broke: a lower bound)"


def sizing_text(sizing: Mapping[str, Any]) -> str:
    fits = "fits" if sizing["fits_max_replicas"] else "does NOT fit"
    target = sizing["recommended_cpu_target_pct"]
    advice = (
        f"a CPU target of {target}% holds each pod under the knee"
        if target is not None
        else "no CPU target could be derived (see the report's notes)"
    )

    return (
        f"{rounded(sizing['target_rps'])} req/s needs {sizing['replicas_needed']} replicas "
        f"({fits} max {sizing['max_replicas']}); {advice}"
    )


def suggestion_text(sizing: Mapping[str, Any]) -> str:
    """For a CPU target above 100 %: the request and target that protect the knee as well."""
    request, target = sizing["suggested_cpu_request_m"], sizing["suggested_cpu_target_pct"]
    return (
        "above 100%, pods run past their CPU request: better a request of "
        f"{rounded(request)}m with a {target}% target"
    )


def break_text(point: Mapping[str, Any]) -> str:
    return (
        f"break point: {rounded(point['users'])} users, {rounded(point['rps'])} req/s, "
        f"{', '.join(point['broken'])} broke first; limit: {point['limit']}"
    )


def unsearched_text(capacity: Mapping[str, Any]) -> str:
    """What a run that did not look for its capacity can say: the highest load per replica it
    happened to reach, and that it is no capacity."""
    bounds = capacity.get("slo_thresholds") or {}
    where = "the default bounds" if bounds.get("source") == "default" else "your --slo bounds"
    limits = []
    if bounds.get("p95_ms") is not None:
        limits.append(f"p95 {rounded(bounds['p95_ms'])} ms")
    if bounds.get("p99_ms") is not None:
        limits.append(f"p99 {rounded(bounds['p99_ms'])} ms")
    if bounds.get("error_rate") is not None:
        limits.append(f"errors {100 * float(bounds['error_rate']):.2g}%")
    return (
        "no load shape searched for the capacity in this run: the knee below is only the highest "
        f"load per replica it reached within {where} ({', '.join(limits) or 'none'}), a lower "
        "bound; run locustfiles/ramp.py to find the capacity"
    )


def capacity_lines(capacity: Mapping[str, Any] | None) -> list[str]:
    """The knee per HPA target (with its sizing), then the break point, one line each; none for
    a run that neither searched nor asked for a sizing."""
    if capacity is None or not reported(capacity):
        return []
    if capacity.get("refused"):
        return [f"capacity: not reported: {capacity['refused']}"]
    point = capacity.get("break_point")
    lines = []
    for hpa in capacity.get("hpas") or []:
        knee = hpa.get("knee")
        if knee is not None:
            lines.append(f"capacity {hpa['hpa']}: {knee_text(knee, broke=point is not None)}")
        sizing = hpa.get("sizing")
        if sizing is not None:
            lines.append("  " + sizing_text(sizing))
            if sizing.get("suggested_cpu_request_m") is not None:
                lines.append("  " + suggestion_text(sizing))
    if point is not None:
        lines.append(break_text(point))
    return lines
