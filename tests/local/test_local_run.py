"""``kubeswarm run --local``: real Locust master and workers against a real local server."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from analysis.data import schema
from tests.fixtures.contract import assert_valid_run_directory
from tests.local.helpers import (
    REPO,
    clean_env,
    csv_rows,
    descendants_alive,
    kubeswarm_argv,
    run_dir,
    run_json,
)

pytestmark = pytest.mark.local


def local_run_argv(http_target: str, *flags: str) -> list[str]:
    """``kubeswarm run --local`` of the shipped health check against the test's server."""
    health = str(REPO / "locustfiles" / "health.py")
    return kubeswarm_argv("run", "--local", "-f", health, "-H", http_target, *flags)


def test_local_run_writes_locust_files_and_samples(http_target: str, tmp_path: Path) -> None:
    completed = subprocess.run(
        local_run_argv(
            http_target,
            "-u",
            "10",
            "-r",
            "10",
            "-t",
            "8s",
            "--workers",
            "2",
            "--interval",
            "1s",
            "--autoquit",
            "5",
            "--out",
            str(tmp_path),
        ),
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env=clean_env(),
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr
    directory = run_dir(tmp_path)
    assert f"run directory: {directory}" in completed.stdout
    assert "Locust web UI: http://127.0.0.1:" in completed.stdout
    history = (directory / "locust" / "stats_history.csv").read_text(encoding="utf-8")
    assert history.splitlines()[0].split(",") == list(schema.LOCUST_STATS_HISTORY_COLUMNS)
    for name in schema.LOCUST_FILES:
        assert (directory / "locust" / name).stat().st_size > 0, name
    samples = csv_rows(directory / "samples" / "locust.csv")
    running = [r for r in samples if r["state"] == "running"]
    assert running, samples
    assert max(int(r["user_count"]) for r in running) == 10
    assert max(int(r["worker_count"]) for r in running) == 2
    assert max(float(r["rps"]) for r in running) > 3  # ten users at one request per second
    marks = [r["kind"] for r in csv_rows(directory / "samples" / "marks.csv")]
    assert marks[0] == "test_start"
    assert "test_stop" in marks
    meta = run_json(directory)
    assert meta["status"] == "completed"
    assert descendants_alive(meta["processes"], timeout_s=2) == []
    assert (directory / "report" / "summary.json").is_file()
    # the master process's own RSS each tick, and how fresh each series was
    master = csv_rows(directory / "samples" / "master.csv")
    assert master and all(float(r["memory_bytes"]) > 10 * 2**20 for r in master)
    summary = json.loads((directory / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["master_memory"]["source"] == "master.csv"
    assert summary["master_memory"]["shown"] is False  # 8 s is not a long run
    sentences = [s["sentence"] for s in summary["sampling"]]
    assert any(s.startswith("Locust load: sampled every 1.0 s") for s in sentences), sentences
    assert "**Sampling:** Locust load" in (directory / "report" / "report.md").read_text("utf-8")
    assert_valid_run_directory(directory)  # the shipped JSON Schemas hold for a local run


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_stops_everything_and_keeps_what_was_measured(
    http_target: str, tmp_path: Path, signum: signal.Signals
) -> None:
    process = subprocess.Popen(
        local_run_argv(
            http_target,
            "-u",
            "5",
            "-r",
            "5",
            "-t",
            "120s",
            "--workers",
            "2",
            "--interval",
            "1s",
            "--out",
            str(tmp_path / "runs"),
            "--junit",
            str(tmp_path / "junit.xml"),
        ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(),
        cwd=REPO,
    )
    try:
        directory = _wait_for_running(tmp_path / "runs", process)
        pids = run_json(directory)["processes"]
        children = [c.pid for p in pids for c in psutil.Process(p).children(recursive=True)]
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    # 128 + the signal, as a shell reports it: 130 for Ctrl-C, 143 for a cancelled CI job
    assert process.returncode == 128 + signum, stderr
    assert "interrupted" in stderr
    # an interrupted run cannot pass: console, summary.json and JUnit say so alike
    assert "verdict: INCOMPLETE" in stdout and "verdict: PASS" not in stdout
    summary = json.loads((directory / "report" / "summary.json").read_text(encoding="utf-8"))
    assert summary["verdict"] == "incomplete"
    junit = (tmp_path / "junit.xml").read_text(encoding="utf-8")
    assert '<failure message="verdict incomplete"' in junit
    meta = run_json(directory)
    assert meta["status"] == "interrupted"
    assert descendants_alive([*pids, *children], timeout_s=5) == []
    assert (directory / "locust" / "stats.csv").stat().st_size > 0
    assert (directory / "report" / "summary.json").is_file()
    assert "run directory" in stdout


def test_sigkilled_harness_leaves_no_locust_processes(http_target: str, tmp_path: Path) -> None:
    process = subprocess.Popen(
        local_run_argv(
            http_target,
            "-u",
            "2",
            "-r",
            "2",
            "-t",
            "120s",
            "--workers",
            "1",
            "--interval",
            "1s",
            "--out",
            str(tmp_path),
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=clean_env(),
        cwd=REPO,
    )
    try:
        directory = _wait_for_running(tmp_path, process)
        pids = run_json(directory)["processes"]
    finally:
        process.kill()
        process.wait()
    assert descendants_alive(pids, timeout_s=20) == []


def _wait_for_running(
    out: Path, process: subprocess.Popen[str] | subprocess.Popen[bytes], timeout_s: float = 90.0
) -> Path:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "kubeswarm exited before the test was running"
        runs = list(out.iterdir()) if out.exists() else []
        if runs:
            samples = runs[0] / "samples" / "locust.csv"
            if samples.exists() and any(r["state"] == "running" for r in csv_rows(samples)):
                return runs[0]
        time.sleep(0.3)
    raise AssertionError("the local test never reached the running state")
