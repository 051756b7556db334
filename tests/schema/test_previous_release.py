"""Run directories written by the previous release still load in ``report`` and ``compare``.

The fixture is a demo recorded by kubeswarm 0.1.0 before ``schema_version`` existed (see its
README): what a CI job that keeps last month's baseline run directory hands to today's kubeswarm.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from tests.fixtures.contract import assert_valid_run_directory

OLD_RUN = Path(__file__).parents[1] / "fixtures" / "previous_release" / "demo"


@pytest.fixture
def old_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "old-demo"
    shutil.copytree(OLD_RUN, run_dir)
    return run_dir


def _run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    return main(argv, environ={}, out=out), out.getvalue()


def test_report_reads_a_previous_release_run_directory(old_run: Path) -> None:
    old_summary = json.loads((old_run / "report" / "summary.json").read_text(encoding="utf-8"))
    assert "schema_version" not in old_summary  # really the old format

    code, text = _run(["report", str(old_run)])

    assert code == 0, text
    # What the old release recorded is what today's report says of it.
    assert "hpa local/demo-target: 1 -> 4 -> 2 replicas (min 1, max 6)" in text
    assert "peak 131Mi = 102% of request" in text
    assert (old_run / "report" / "report.html").is_file()
    # The rewritten report is in today's format, and so is the run directory as a whole.
    assert_valid_run_directory(old_run)


def test_compare_uses_a_previous_release_run_as_the_baseline(old_run: Path, tmp_path: Path) -> None:
    # The baseline keeps its old summary.json; the candidate is reported by today's kubeswarm.
    candidate = tmp_path / "candidate"
    shutil.copytree(OLD_RUN, candidate)
    assert _run(["report", str(candidate)])[0] == 0

    code, text = _run(["compare", str(old_run), str(candidate)])

    assert code == 0, text
    assert "peak_memory_bytes" in text and "131Mi" in text
    assert "no regression beyond tolerance" in text
