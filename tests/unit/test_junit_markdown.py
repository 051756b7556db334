"""JUnit XML and report.md: the files CI reads. The XML is parsed back with ``xml.etree``; the
Markdown must carry the verdict and every SLO."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from analysis.render.junit import write_junit
from analysis.render.markdown import render_markdown
from analysis.report import write_report
from tests.fixtures import scenarios as sc

pytestmark = pytest.mark.unit

SLOS = ["p95_ms<500", "oom_kills==0", "p95_ms<100"]


def _parse(path: Path) -> ET.Element:
    return ET.parse(path).getroot()  # noqa: S314 -- a file this test just wrote


def _cases(root: ET.Element, suite: str) -> dict[str, str | None]:
    """Test case name -> failure message (None when it passed) in one suite."""
    found = root.find(f"testsuite[@name='kubeswarm.{suite}']")
    assert found is not None, suite
    out: dict[str, str | None] = {}
    for case in found.findall("testcase"):
        failure = case.find("failure")
        out[case.get("name", "")] = None if failure is None else failure.get("message")
    assert int(found.get("tests", "-1")) == len(out)
    assert int(found.get("failures", "-1")) == sum(1 for m in out.values() if m is not None)
    return out


@pytest.fixture(scope="module")
def pinned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A run pinned at max by memory (two high findings), judged on three SLOs, one failing."""
    run_dir = sc.pinned_by_memory(tmp_path_factory.mktemp("junit") / "run")
    return write_report(run_dir, slos=SLOS)


def test_junit_has_a_case_per_slo_and_high_finding(pinned: dict[str, Any], tmp_path: Path) -> None:
    path = write_junit(tmp_path / "out" / "junit.xml", pinned)
    root = _parse(path)
    assert root.tag == "testsuites"
    assert _cases(root, "slo") == {
        "p95_ms<500": None,
        "oom_kills==0": None,
        "p95_ms<100": "SLO p95_ms<100 failed: observed 120",
    }
    findings = _cases(root, "findings")
    assert set(findings) == {"hpa_at_max shop/web", "memory_not_load_proportional shop/web"}
    assert all(m and "shop/web" in m for m in findings.values())
    assert _cases(root, "run") == {"verdict of run": "verdict fail"}
    assert root.find("testsuite[@name='kubeswarm.regressions']") is None
    assert int(root.get("failures", "0")) == 1 + 2 + 1
    assert int(root.get("tests", "0")) == 3 + 2 + 1


def test_junit_regressions_and_escaping(tmp_path: Path) -> None:
    summary = {
        "run_id": "cand",
        "verdict": "fail",
        "slos": [{"expr": 'p95_ms<5 & "quoted"', "observed": None, "passed": False}],
        "findings": [],
    }
    comparison = {
        "baseline": {"run_id": "base"},
        "regressions": [
            {"metric": "p95_ms", "subject": "run", "message": "p95_ms 100 ms -> 150 ms <worse>"},
            {"metric": "oom_kills", "subject": "web", "message": "oom_kills 0 -> 1"},
        ],
    }
    root = _parse(write_junit(tmp_path / "j.xml", summary, comparison))
    assert _cases(root, "slo") == {
        'p95_ms<5 & "quoted"': 'SLO p95_ms<5 & "quoted" failed: observed nothing (not measured)'
    }
    assert _cases(root, "regressions") == {
        "p95_ms run": "p95_ms 100 ms -> 150 ms <worse>",
        "oom_kills web": "oom_kills 0 -> 1",
    }
    clean = {"baseline": {"run_id": "base"}, "regressions": []}
    root = _parse(write_junit(tmp_path / "k.xml", summary, clean))
    assert _cases(root, "regressions") == {"no regression against base": None}


def test_markdown_has_the_verdict_and_every_slo(pinned: dict[str, Any]) -> None:
    text = render_markdown(pinned)
    assert text.startswith("### kubeswarm: FAIL\n")
    for expr in SLOS:
        assert f"| `{expr}` |" in text
    assert "| `p95_ms<100` | 120 | **FAILED** |" in text
    assert "**high** `hpa_at_max` shop/web" in text
    assert "- `shop/web`: 3 → 4 → 4 replicas (min 2, max 4), **at_max**, driven by memory" in text
    assert text.count("\n| ") == len(SLOS) + 1  # header and one row per SLO


def test_report_md_is_written_and_table_safe(tmp_path: Path) -> None:
    n = 10
    run_dir = sc.build(tmp_path / "run", n, {"locust": sc.locust([5] * n)})
    summary = write_report(run_dir, slos=["p95_ms<1"])
    written = (run_dir / "report" / "report.md").read_text()
    assert written == render_markdown(summary)
    assert "### kubeswarm: FAIL" in written and "| `p95_ms<1` |" in written
    summary["slos"][0]["expr"] = "a|b\nc"
    assert "| `a\\|b c` |" in render_markdown(summary)
