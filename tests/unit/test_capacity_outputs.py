"""The capacity a run found reads the same on the console, in report.md and on the page; a run
that did not look for one says plainly what its numbers are (issue: the page had no capacity
section at all, and every plain demo printed a capacity line against an invented bound)."""

from __future__ import annotations

import html
import json
from pathlib import Path

import pytest

from analysis.report import format_summary, write_report
from tests.unit.test_capacity import at_max_run

pytestmark = pytest.mark.unit


def _searched(run_dir: Path) -> Path:
    """As run.json records a run of locustfiles/ramp.py."""
    meta_path = run_dir / "run.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["config"] = {**(meta.get("config") or {}), "shape": "RampShape"}
    meta_path.write_text(json.dumps(meta), encoding="utf-8")
    return run_dir


def test_console_markdown_and_page_tell_the_same_capacity(tmp_path: Path) -> None:
    run_dir = _searched(at_max_run(tmp_path))
    summary = write_report(run_dir, slos=["p95_ms<150"], target_rps=1000)
    console = [
        line.strip()
        for line in format_summary(summary, run_dir).splitlines()
        if line.startswith(("capacity ", "  1,000 req/s", "break point:"))
    ]
    assert console == [
        "capacity shop/web: knee 75 req/s per replica at p95 50 ms",
        "1,000 req/s needs 14 replicas (does NOT fit max 4); a CPU target of 61% holds each pod "
        "under the knee",
        "break point: 70 users, 350 req/s, p95_ms broke first; limit: replicas_at_max",
    ]
    markdown = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    page = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    assert "**Capacity:**" in markdown and "<h2>Capacity</h2>" in page
    for line in console:
        assert f"- {line}" in markdown
        assert html.escape(line) in page
    assert "no load shape searched" not in page


def test_a_run_that_did_not_search_says_what_its_numbers_are(tmp_path: Path) -> None:
    run_dir = at_max_run(tmp_path)
    summary = write_report(run_dir, slos=["p95_ms<150"])
    assert summary["capacity"]["searched"] is False
    assert "capacity" not in format_summary(summary, run_dir)
    assert "**Capacity:**" not in (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    page = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    assert "no load shape searched for the capacity in this run" in page
    assert "within your --slo bounds (p95 150 ms)" in page


def test_a_cpu_target_above_100_percent_comes_with_the_request_that_avoids_it(
    tmp_path: Path,
) -> None:
    """12 ms of CPU per request: at the knee (75 req/s per replica) a pod uses 920m of its
    250m request, so the target that protects the knee is 334 %; the report also says which
    request makes an ordinary target do the same."""
    run_dir = _searched(at_max_run(tmp_path, cpu_m=lambda per: 20.0 + 12.0 * per))
    summary = write_report(run_dir, slos=["p95_ms<150"], target_rps=1000)
    sizing = summary["capacity"]["hpas"][0]["sizing"]
    assert sizing["recommended_cpu_target_pct"] == 334  # floor(368 / 1.1)
    assert (sizing["suggested_cpu_request_m"], sizing["suggested_cpu_target_pct"]) == (920.0, 90)
    line = "above 100%, pods run past their CPU request: better a request of 920m with a 90% target"
    assert f"  {line}" in format_summary(summary, run_dir).splitlines()
    assert f"- {line}" in (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert html.escape(line) in (run_dir / "report" / "report.html").read_text(encoding="utf-8")
