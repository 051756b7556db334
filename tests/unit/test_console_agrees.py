"""The console's summary lines say what summary.json says, without contradicting themselves:
the count of regressions and the ones listed, the knee beside the break point, and no capacity
line for a run that did not look for one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analysis.report import format_summary

pytestmark = pytest.mark.unit


def _summary(**extra: Any) -> dict[str, Any]:
    return {
        "run_id": "r1",
        "verdict": "warn",
        "mode": "local",
        "load": {},
        "hpas": [],
        "workloads": [],
        "findings": [],
        "slos": [],
        "whatif": [],
        **extra,
    }


def _knee(rps: float | None, reached: bool) -> dict[str, Any]:
    return {"rps_per_replica": rps, "reached": reached, "p95_ms": 230.0}


def _capacity(knee: dict[str, Any], *, broke: bool, searched: bool = True) -> dict[str, Any]:
    point = {"users": 12, "rps": 17.3, "broken": ["p95_ms"], "limit": "replicas_at_max"}
    return {
        "searched": searched,
        "target_rps": None,
        "refused": None,
        "break_point": point if broke else None,
        "hpas": [{"hpa": "local/web", "knee": knee, "sizing": None}],
    }


def _lines(summary: dict[str, Any]) -> list[str]:
    return format_summary(summary, Path("runs/r1")).splitlines()


def test_every_regression_counted_is_listed_or_said_to_be_in_the_report() -> None:
    regressions = [{"subject": f"s{i}", "message": f"m{i}"} for i in range(4)]
    lines = _lines(_summary(regressions=regressions, comparison={"baseline": {"run_id": "base"}}))
    assert "baseline base: 4 regression(s) beyond tolerance" in lines
    listed = [line for line in lines if line.startswith("  s")]
    assert len(listed) == 3
    assert "  ... and 1 more in the report" in lines


def test_a_knee_beside_a_break_point_never_says_the_slos_never_broke() -> None:
    text = "\n".join(_lines(_summary(capacity=_capacity(_knee(5.2, False), broke=True))))
    assert "never broke" not in text
    assert "capacity local/web: knee 5.2 req/s per replica at p95 230 ms (no load per" in text
    assert "break point: 12 users, 17.3 req/s, p95_ms broke first" in text
    alone = "\n".join(_lines(_summary(capacity=_capacity(_knee(5.2, False), broke=False))))
    assert "(the SLOs never broke: a lower bound)" in alone


def test_no_knee_is_said_in_words_not_as_not_measured_numbers() -> None:
    text = "\n".join(_lines(_summary(capacity=_capacity(_knee(None, True), broke=True))))
    assert "not measured" not in text
    assert "capacity local/web: no knee: the SLOs broke at the lowest load per replica" in text


def test_a_run_that_searched_for_nothing_prints_no_capacity_line() -> None:
    capacity = _capacity(_knee(19.5, False), broke=False, searched=False)
    assert not [line for line in _lines(_summary(capacity=capacity)) if "capacity" in line]
    capacity["target_rps"] = 400.0  # asked for a sizing: shown
    assert any(
        line.startswith("capacity local/web") for line in _lines(_summary(capacity=capacity))
    )


def test_every_finding_counted_is_listed_or_said_to_be_in_the_report() -> None:
    findings = [
        {"severity": "medium", "code": f"c{i}", "subject": "s", "seen": "x"} for i in range(5)
    ]
    lines = _lines(_summary(findings=findings))
    assert "findings: 0 high, 5 medium, 0 info" in lines
    assert len([line for line in lines if line.startswith("  [medium]")]) == 3
    assert "  ... and 2 more in the report" in lines


def _disruption(ts: float, **fields: Any) -> dict[str, Any]:
    return {
        "ts": ts,
        "action": "pod-kill",
        "target": "deployment/web",
        "pods": ["web-1"],
        "skipped": None,
        "recovered": True,
        "recovery_s": 12.34,
        "error_rate": 0.031,
        "p95_ms_before": 40.0,
        "p95_ms_during": 180.0,
        **fields,
    }


def test_disruptions_are_timed_from_the_test_start_as_the_live_view_and_the_page_are() -> None:
    from analysis.render.markdown import render_markdown

    window = {"start": 1000.0, "end": 1100.0, "load_start": 1003.0, "load_end": 1090.0}
    summary = _summary(
        window=window,
        disruptions=[
            _disruption(1029.2),
            _disruption(1040.0, pods=[], skipped="no pod was running"),
            _disruption(1050.0, pods=["web-2"], recovered=False, recovery_s=None),
            _disruption(1060.0, pods=["web-3"]),
        ],
    )
    lines = _lines(summary)
    expected = [
        # 1029.2 is 26 s after the test started at 1003 (not 29 s after the run's start)
        "chaos pod-kill web-1 at 26 s: recovered in 12.3 s; 3.1% errors (p95 40 -> 180 ms)",
        "chaos pod-kill deployment/web at 37 s: skipped (no pod was running)",
        "chaos pod-kill web-2 at 47 s: not recovered by the end of the run; 3.1% errors "
        "(p95 40 -> 180 ms)",
    ]
    assert [line for line in lines if line.startswith("chaos ")] == expected
    assert "  ... and 1 more in the report" in lines  # four counted, three shown
    markdown = render_markdown(summary)
    assert all(f"- {line}" in markdown for line in expected)
    assert "web-3 at 57 s" in markdown  # the page and report.md list every one
