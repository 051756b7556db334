"""A LoadTestShape that outlives ``-t``: kubeswarm stops it at the bound, and nothing is lost.

Locust ignores ``-t`` when the locustfile has a shape; without a bound, a shape longer than the
user expected runs on (and in a cluster is killed by the Jobs' deadline, taking the results with
it). The run must end at ``-t`` plus a short grace, with Locust's files fetched and the report
written.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.config.options import STOP_GRACE_S
from tests.local.helpers import REPO, clean_env, csv_rows, kubeswarm_argv, run_dir, run_json

pytestmark = pytest.mark.local

ENDLESS_SHAPE = """
from locust import HttpUser, LoadTestShape, constant, task


class Health(HttpUser):
    wait_time = constant(0.5)

    @task
    def health(self):
        self.client.get("/")


class Forever(LoadTestShape):
    def tick(self):
        return (2, 2)
"""


def test_a_shape_that_outlives_the_run_time_is_stopped_and_reported(
    http_target: str, tmp_path: Path
) -> None:
    locustfile = tmp_path / "forever.py"
    locustfile.write_text(ENDLESS_SHAPE, encoding="utf-8")
    out = tmp_path / "runs"
    argv = kubeswarm_argv(
        "run", "--local", "-f", str(locustfile), "-H", http_target,
        "-t", "3s", "--autoquit", "3", "--interval", "1s", "--out", str(out),
    )  # fmt: skip
    completed = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=180, env=clean_env(), cwd=REPO
    )
    assert completed.returncode == 0, completed.stderr
    assert "ran past --run-time 3s: stopping it" in completed.stderr
    directory = run_dir(out)
    assert run_json(directory)["status"] == "completed"
    marks = csv_rows(directory / "samples" / "marks.csv")
    start = next(float(m["ts"]) for m in marks if m["kind"] == "test_start")
    stop = next(m for m in marks if m["kind"] == "test_stop")
    assert "stopped by kubeswarm at --run-time 3s" in stop["detail"]
    # Stopped at the bound, not at some later timeout (one tick of slack each side).
    assert 3 + STOP_GRACE_S - 1 <= float(stop["ts"]) - start <= 3 + STOP_GRACE_S + 2
    for name in ("stats.csv", "stats_history.csv", "report.html"):
        assert (directory / "locust" / name).stat().st_size > 0, name
    assert (directory / "report" / "summary.json").is_file()
