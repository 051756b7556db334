"""A run that did not measure what it was asked to cannot pass: interrupted, killed or failed
runs, a watched HPA never sampled, and a lag still running when the run ended (issue 17)."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from tests.fixtures import scenarios as sc
from tests.unit.test_analysis_findings import finding, report, steady

pytestmark = pytest.mark.unit


def _healthy(run_dir: Path, **meta: object) -> Path:
    n = 10
    return sc.build(run_dir, n, steady("api", n, 2), meta=dict(meta))


def _report_cli(run_dir: Path, *extra: str) -> tuple[int, str, str]:
    """``kubeswarm report RUN`` as a user runs it: exit code, printed summary, report.md."""
    out = io.StringIO()
    code = main(["report", str(run_dir), *extra], {}, out)
    markdown = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    return code, out.getvalue(), markdown


def test_a_completed_healthy_run_still_passes(tmp_path: Path) -> None:
    code, printed, _ = _report_cli(_healthy(tmp_path / "run"), "--slo", "p95_ms<500")
    assert (code, printed.splitlines()[0].split()[:2]) == (0, ["verdict:", "PASS"])


@pytest.mark.parametrize("status", ["interrupted", "failed", "running"])
def test_a_run_that_did_not_finish_is_incomplete_everywhere(tmp_path: Path, status: str) -> None:
    # "running": kubeswarm was SIGKILLed, so run.json was never closed; reported later.
    run_dir = _healthy(tmp_path / "run", status=status)
    junit = tmp_path / "junit.xml"
    code, printed, markdown = _report_cli(run_dir, "--slo", "p95_ms<500", "--junit", str(junit))
    summary = json.loads((run_dir / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "incomplete"
    assert finding(summary, "run_incomplete", "run")["severity"] == "medium"
    assert code == 1  # a CI gate on `kubeswarm report` does not pass it
    assert printed.startswith("verdict: INCOMPLETE")
    assert "### kubeswarm: INCOMPLETE" in markdown
    verdict_case = ET.parse(junit).getroot().find("testsuite/testcase")  # noqa: S314 -- ours
    assert verdict_case is not None
    assert verdict_case.find("failure") is not None


def test_a_failed_slo_still_says_fail_on_an_incomplete_run(tmp_path: Path) -> None:
    summary = report(_healthy(tmp_path / "run", status="interrupted"), slos=["p95_ms<100"])
    assert summary["verdict"] == "fail"


def test_a_watched_hpa_never_sampled_does_not_pass(tmp_path: Path) -> None:
    run_dir = _healthy(tmp_path / "run", watch=["hpa/api", "shop/hpa/checkout"])
    summary = report(run_dir, slos=["p95_ms<500"])
    missing = finding(summary, "hpa_not_sampled", "shop/checkout")
    assert missing["severity"] == "high"
    assert summary["verdict"] == "incomplete"
    assert [f for f in summary["findings"] if f["code"] == "hpa_not_sampled"] == [missing]


def test_a_scale_up_never_ready_is_not_hidden_by_a_faster_one(tmp_path: Path) -> None:
    # The load steps up at tick 2; 2 -> 3 is ready at tick 5 (45 s), then 3 -> 5 at tick 8 whose
    # pods are never ready. The first lag must not stand in for the second: ready_lag_s is at
    # least the 255 s from the step to the end of the run, and the gate fails.
    n = 20
    samples = steady("api", n, 2, cpu_util=90.0)
    desired = [2] * 4 + [3] * 4 + [5] * 12
    samples.update(
        {
            "locust": sc.locust([0] * 2 + [80] * 18),
            "hpa": sc.hpa("api", [2] * 4 + [3] * 4 + [5] * 12, desired=desired, high=10),
            "workloads": sc.workloads("api", [2] * 5 + [3] * 15),
            "marks": sc.marks(2, 19),
        }
    )
    summary = report(sc.build(tmp_path / "run", n, samples), slos=["ready_lag_s<60"])
    events = summary["hpas"][0]["scale_events"]
    assert [(e["from"], e["to"]) for e in events] == [(2, 3), (3, 5)]
    assert summary["slos"] == [
        {"expr": "ready_lag_s<60", "observed": 17 * sc.STEP, "passed": False, "at_least": True}
    ]
    assert summary["verdict"] == "fail"
    failed = finding(summary, "slo_failed", "run")
    assert "at least 255" in failed["seen"]


def test_a_lower_bound_gate_passes_on_a_censored_lag_it_already_exceeds(tmp_path: Path) -> None:
    from analysis.judge.slo import AtLeast, evaluate, parse_slos

    results = evaluate(
        parse_slos(["ready_lag_s>100", "ready_lag_s<=500", "ready_lag_s>300"]),
        {"ready_lag_s": AtLeast(255.0)},
    )
    assert [(r.passed, r.at_least) for r in results] == [(True, True), (False, True), (False, True)]
