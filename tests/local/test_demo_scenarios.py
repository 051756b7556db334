"""``kubeswarm demo`` with a disruption and with the capacity ramp: what the issue's users run.

Both are real: gunicorn serving the demo target, the local autoscaler, a Locust master and
workers on 127.0.0.1, the session, the report. Assertions are about what the numbers mean (a
kill is recovered from, a single-threaded worker cannot serve more than 1000 / CPU ms requests/s),
never about how fast this machine is.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.local.helpers import REPO, clean_env, csv_rows, kubeswarm_argv, run_dir, run_json

pytestmark = pytest.mark.local


def demo(
    tmp_path: Path, *flags: str, env: dict[str, str] | None = None
) -> tuple[int, Path, str, str]:
    completed = subprocess.run(
        kubeswarm_argv("demo", "--out", str(tmp_path), *flags),
        check=False,
        capture_output=True,
        text=True,
        timeout=400,
        env=clean_env() | (env or {}),
        cwd=REPO,
    )
    return completed.returncode, run_dir(tmp_path), completed.stdout, completed.stderr


def summary_of(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "report" / "summary.json").read_text())
    return data


def test_a_killed_worker_is_replaced_and_its_recovery_gates_the_verdict(tmp_path: Path) -> None:
    code, directory, stdout, stderr = demo(
        tmp_path, "-t", "40s", "--chaos", "pod-kill@15s", "--slo", "recovery_s<0.001"
    )
    # A recovery cannot take under a millisecond: the SLO fails on the measured number.
    assert code == 1, stderr
    chaos = [m for m in csv_rows(directory / "samples" / "marks.csv") if m["kind"] == "chaos"]
    assert len(chaos) == 1 and "pod-kill" in chaos[0]["detail"]
    assert "chaos pod-kill demo-target-" in stderr
    (disruption,) = summary_of(directory)["disruptions"]
    assert disruption["recovered"] is True
    assert 0 < disruption["recovery_s"] < 25
    assert disruption["load_source"] == "locust/stats_history.csv"
    assert disruption["requests"] > 0
    (killed,) = disruption["pods"]
    pods_after = {
        r["pod"]
        for r in csv_rows(directory / "samples" / "pods.csv")
        if float(r["ts"]) > float(chaos[0]["ts"]) + 5
    }
    assert killed not in pods_after  # gone, and replaced: the workload kept its pods
    assert pods_after
    (slo,) = summary_of(directory)["slos"]
    assert slo["expr"] == "recovery_s<0.001" and slo["passed"] is False
    assert slo["observed"] == pytest.approx(disruption["recovery_s"], abs=0.01)
    assert run_json(directory)["config"]["chaos"] == ["pod-kill:1@15s"]
    # The console said it live, and says it again at the end, as summary.json and the page do:
    # the same pod at the same second since the test started, and the same recovery.
    (live,) = re.findall(rf"chaos pod-kill {killed} at (\d+)s", stderr)
    (said,) = re.findall(rf"chaos pod-kill {killed} at (\d+) s: recovered in ([\d.]+) s", stdout)
    assert abs(int(said[0]) - int(live)) <= 1
    assert float(said[1]) == pytest.approx(disruption["recovery_s"], abs=0.051)
    page = (directory / "report" / "report.html").read_text(encoding="utf-8")
    assert f"+{said[0]} s (" in page
    assert (
        f"chaos pod-kill {killed} at {said[0]} s"
        in (directory / "report" / "report.md").read_text()
    )


CPU_MS = 20.0  # CPU the demo target burns per request, single-threaded per worker
RAMP_ENV = {
    "KUBESWARM_DEMO_CPU_MS": str(CPU_MS),
    "KUBESWARM_DEMO_KIB_PER_REQUEST": "0",
    "KUBESWARM_RAMP_STEP_USERS": "4",
    "KUBESWARM_RAMP_HOLD_S": "12",
    "KUBESWARM_RAMP_BREAK_S": "6",
}


def test_the_ramp_finds_where_the_demo_target_breaks_and_sizes_a_target(tmp_path: Path) -> None:
    ramp = str(REPO / "locustfiles" / "ramp.py")
    code, directory, stdout, stderr = demo(
        tmp_path,
        "-f", ramp, "-u", "60", "-t", "200s", "--max-replicas", "2", "--target-rps", "400",
        env=RAMP_ENV,
    )  # fmt: skip
    assert code == 0, stderr
    marks = csv_rows(directory / "samples" / "marks.csv")
    stop = [m for m in marks if m["kind"] == "ramp_stop"]
    assert len(stop) == 1, stderr
    assert "reason=p95_ms" in stop[0]["detail"] or "reason=error_rate" in stop[0]["detail"]
    # It stopped by itself, before the -t bound (which kubeswarm would have enforced).
    assert not any("stopped by kubeswarm" in m["detail"] for m in marks)
    assert "ramp: stopped at" in stderr

    capacity = summary_of(directory)["capacity"]
    assert capacity["refused"] is None
    point = capacity["break_point"]
    assert point is not None and point["limit"] == "replicas_at_max"
    (hpa,) = capacity["hpas"]
    knee = hpa["knee"]["rps_per_replica"]
    # One single-threaded worker burning 20 ms per request serves at most 50 requests/s; Locust's
    # 10 s moving window smears a bin by up to 15 %.
    assert 0 < knee <= 1000 / CPU_MS * 1.15
    sizing = hpa["sizing"]
    assert sizing["replicas_needed"] == math.ceil(400 / knee)
    assert sizing["fits_max_replicas"] is False  # 400 req/s cannot be 2 replicas' worth
    assert "capacity local/demo-target: knee" in stdout
    assert f"400 req/s needs {sizing['replicas_needed']} replicas (does NOT fit max 2)" in stdout
