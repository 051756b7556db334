"""Summary.json's ``disruptions`` in sentences: the one wording the console and ``report.md``
share, timed from the test's start as the live view and the page are (``window.load_start``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.render.capacity_text import rounded


def origin(summary: Mapping[str, Any]) -> float | None:
    """Time zero of every "at": the test's start, else the run's."""
    window = summary.get("window") or {}
    start = window.get("load_start")
    return float(start) if start is not None else window.get("start")


def disruption_line(d: Mapping[str, Any], zero: float | None) -> str:
    """``chaos kill_pod web-1 at 26 s: recovered in 12 s; 3.1% errors (p95 40 -> 180 ms)``."""
    at = "" if zero is None else f" at {float(d['ts']) - zero:.0f} s"
    pods = ", ".join(d.get("pods") or ()) or d.get("target") or "no pod"
    head = f"chaos {d['action']} {pods}{at}"
    if d.get("skipped"):
        return f"{head}: skipped ({d['skipped']})"
    if d.get("recovered"):
        outcome = f"recovered in {rounded(d.get('recovery_s'))} s"
    elif d.get("recovered") is False:
        outcome = "not recovered by the end of the run"
    else:
        outcome = "recovery not measured"
    rate = d.get("error_rate")
    if rate is not None:
        outcome += f"; {100 * float(rate):.1f}% errors"
        before, during = d.get("p95_ms_before"), d.get("p95_ms_during")
        if before is not None or during is not None:
            outcome += f" (p95 {rounded(before)} -> {rounded(during)} ms)"
    return f"{head}: {outcome}"


def disruption_lines(summary: Mapping[str, Any]) -> list[str]:
    zero = origin(summary)
    return [disruption_line(d, zero) for d in summary.get("disruptions") or ()]
