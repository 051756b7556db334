"""The results commands as a user runs them: ``compare``, ``report --format md``, ``--junit``,
``--baseline``; exit codes 0 (no regression), 1 (regression), 2 (bad input)."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.cli import main
from tests.unit.test_compare import _run

pytestmark = pytest.mark.unit


def cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(list(argv), environ={}, out=out)
    return code, out.getvalue()


def test_compare_exits_1_on_a_regression_and_writes_what_ci_reads(tmp_path: Path) -> None:
    base, cand = _run(tmp_path / "base"), _run(tmp_path / "cand", p95_ms=150.0)
    junit = tmp_path / "junit.xml"
    code, text = cli(
        "compare", str(base), str(cand), "--out", str(tmp_path / "cmp"), "--junit", str(junit)
    )
    assert code == 1
    assert "p95_ms" in text
    assert (tmp_path / "cmp" / "compare.json").is_file()
    assert (tmp_path / "cmp" / "compare.html").is_file()
    cases = ET.parse(junit).getroot().iter("testcase")  # noqa: S314 -- a file this test wrote
    failures = [c for c in cases if c.find("failure") is not None]
    assert any("p95" in (c.get("name") or "") for c in failures)


def test_compare_of_identical_runs_exits_0(tmp_path: Path) -> None:
    base, cand = _run(tmp_path / "base"), _run(tmp_path / "cand")
    assert cli("compare", str(base), str(cand))[0] == 0


def test_a_looser_tolerance_turns_the_regression_into_a_pass(tmp_path: Path) -> None:
    base, cand = _run(tmp_path / "base"), _run(tmp_path / "cand", p95_ms=150.0)
    wide = [
        "--tolerance",
        "p95_ms=100%",
        "--tolerance",
        "p50_ms=100%",
        "--tolerance",
        "p99_ms=100%",
    ]
    assert cli("compare", str(base), str(cand), *wide)[0] == 0


def test_compare_refuses_bad_input_with_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = _run(tmp_path / "base")
    assert cli("compare", str(base), str(tmp_path / "nowhere"))[0] == 2
    assert cli("compare", str(base), str(base), "--tolerance", "speed=3")[0] == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all(e.startswith("kubeswarm: error:") for e in errors)


def test_report_with_a_baseline_fails_on_the_regression(tmp_path: Path) -> None:
    base, cand = _run(tmp_path / "base"), _run(tmp_path / "cand", p95_ms=150.0)
    code, text = cli("report", str(cand), "--baseline", str(base))
    assert code == 1
    assert "regression(s) beyond tolerance" in text
    assert cli("report", str(cand), "--baseline", str(tmp_path / "nowhere"))[0] == 2


def test_report_as_markdown_prints_the_verdict_and_every_slo(tmp_path: Path) -> None:
    run = _run(tmp_path / "run")
    code, text = cli(
        "report", str(run), "--format", "md", "--slo", "p95_ms<500", "--slo", "error_rate<1%"
    )
    assert code == 0
    assert "PASS" in text.upper()
    assert "p95_ms<500" in text and "error_rate<1%" in text
    assert (run / "report" / "report.md").is_file()
    assert cli("report", str(run), "--format", "pdf")[0] == 2
