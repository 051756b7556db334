"""The ramp against a real target: real gunicorn, real Locust master and worker on 127.0.0.1.

The demo target burns ``KUBESWARM_DEMO_CPU_MS`` of its own CPU time per request in one
single-threaded gunicorn worker, so whatever this machine's speed or load, one replica cannot
serve more than 1000 / CPU_MS requests/s: that bound, and the CPU per request itself, are what the
capacity found must agree with. The HPA is recorded as fixed at one replica (min = max = 1), so
the limit at the break must be its maxReplicas.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
import requests

from analysis.judge.capacity import parse_ramp_line
from analysis.pipeline import analyse
from harness.processes import free_port
from tests.fixtures.synthetic import write_run
from tests.local.helpers import REPO

pytestmark = pytest.mark.local

CPU_MS = 20.0
MAX_RPS_PER_REPLICA = 1000.0 / CPU_MS
# Locust's requests/s is a 10 s moving window and bins straddle steps: 15 % over the physical
# bound is measurement smear, not capacity.
RPS_TOLERANCE = 1.15
# CPU per request beyond the burned 20 ms: gunicorn's parsing, the WSGI call, the socket; on any
# machine well under 2.5 times the work itself.
CPU_PER_REQUEST_MS = (CPU_MS * 0.9, CPU_MS * 2.5)
RAMP_ENV = {
    "KUBESWARM_RAMP_STEP_USERS": "4",
    "KUBESWARM_RAMP_HOLD_S": "8",
    "KUBESWARM_RAMP_BREAK_S": "4",
    "KUBESWARM_RAMP_P95_MS": "400",
    "KUBESWARM_RAMP_MAX_USERS": "40",
    "KUBESWARM_DEMO_CPU_MS": str(CPU_MS),
    "KUBESWARM_DEMO_KIB_PER_REQUEST": "0",
}


def _stop(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def target(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """The demo target under gunicorn with one worker; yields its URL and the worker's PID."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
        "--timeout",
        "30",
        "harness.demo.target:app",
    ]
    log = (tmp_path / "gunicorn.log").open("wb")
    server = subprocess.Popen(argv, cwd=REPO, env=os.environ | RAMP_ENV, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                requests.get(url + "/healthz", timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline and server.poll() is None, "gunicorn down"
                time.sleep(0.2)
        (worker,) = psutil.Process(server.pid).children()
        yield url, worker.pid
    finally:
        _stop([server])
        log.close()


class CpuSampler(threading.Thread):
    """The gunicorn worker as the one pod of workload ``web``: CPU in millicores each second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.process = psutil.Process(pid)
        self.rows: list[dict[str, Any]] = []
        self.done = threading.Event()

    def run(self) -> None:
        last_t, last_cpu = time.time(), sum(self.process.cpu_times()[:2])
        while not self.done.wait(1.0):
            now, cpu = time.time(), sum(self.process.cpu_times()[:2])
            self.rows.append(
                {
                    "ts": now,
                    "namespace": "local",
                    "pod": "web-0",
                    "workload": "web",
                    "phase": "Running",
                    "ready": True,
                    "restarts": 0,
                    "cpu_m": 1000 * (cpu - last_cpu) / (now - last_t),
                    "memory_bytes": 5e7,
                    "cpu_request_m": 1000.0,
                    "cpu_limit_m": 1000.0,
                    "memory_request_bytes": 1e8,
                }
            )
            last_t, last_cpu = now, cpu


def run_ramp(url: str, out: Path) -> tuple[str, float, float]:
    """Locust master + worker on the ramp until it stops itself; its stderr and start/end."""
    port = free_port()
    ramp = str(REPO / "locustfiles" / "ramp.py")
    env = os.environ | RAMP_ENV
    master_log, worker_log = out / "master.log", out / "worker.log"
    master_argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ramp,
        "--headless",
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
        "--expect-workers",
        "1",
        "-H",
        url,
        "-u",
        "40",
        "-r",
        "10",
        "--csv",
        str(out / "locust"),
        "--csv-full-history",
        "--only-summary",
    ]
    worker_argv = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        ramp,
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(port),
    ]
    started = time.time()
    with master_log.open("wb") as m_out, worker_log.open("wb") as w_out:
        master = subprocess.Popen(master_argv, cwd=REPO, env=env, stdout=m_out, stderr=m_out)
        worker = subprocess.Popen(worker_argv, cwd=REPO, env=env, stdout=w_out, stderr=w_out)
        try:
            master.wait(timeout=120)
        finally:
            _stop([master, worker])
    return master_log.read_text(errors="replace"), started, time.time()


def test_ramp_finds_a_break_point_the_target_can_explain(
    target: tuple[str, int], tmp_path: Path
) -> None:
    url, worker_pid = target
    sampler = CpuSampler(worker_pid)
    sampler.start()
    try:
        log, start, end = run_ramp(url, tmp_path)
    finally:
        sampler.done.set()
        sampler.join()
    stops = [p for p in map(parse_ramp_line, log.splitlines()) if p and p[0] == "stop"]
    assert len(stops) == 1, log[-3000:]
    _, fields, text = stops[0]
    # 40 users want 200 requests/s of a service that can serve 50 (closed loop: p95 near
    # users / 50 s once overloaded, 800 ms at 40): it broke before max users.
    assert fields["reason"] in ("p95_ms", "error_rate", "no_responses"), text
    assert int(fields["users"]) < 40
    stop_line = next(line for line in log.splitlines() if "kubeswarm ramp: stop" in line)

    hpa = [
        {
            "ts": float(t),
            "namespace": "local",
            "hpa": "web",
            "target_kind": "Process",
            "target_name": "web",
            "min_replicas": 1,
            "max_replicas": 1,
            "current_replicas": 1,
            "desired_replicas": 1,
            "able_to_scale": True,
            "scaling_active": True,
            "scaling_limited": True,
        }
        for t in range(int(start), int(end) + 1)
    ]
    locust_files = {
        name: (tmp_path / f"locust_{name}").read_text()
        for name in ("stats.csv", "stats_history.csv")
    }
    run = write_run(
        tmp_path / "run",
        {"start": start, "end": end, "mode": "local"},
        {
            "hpa": hpa,
            "pods": sampler.rows,
            "marks": [{"ts": end, "kind": "ramp_stop", "detail": stop_line}],
        },
        locust_files,
    )
    capacity = analyse(run, slos=["p95_ms<400"]).capacity
    assert capacity is not None and capacity.refused is None
    assert capacity.ramp_stop == stop_line

    bound = MAX_RPS_PER_REPLICA * RPS_TOLERANCE
    bp = capacity.break_point
    assert bp is not None, capacity.curve.to_string()
    assert bp.limit == "replicas_at_max"
    assert bp.rps is not None and bp.rps <= bound
    (web,) = capacity.hpas
    assert web.knee is not None
    # No knee at all is possible on a machine busy enough to slow the first step.
    assert web.knee.rps_per_replica is None or web.knee.rps_per_replica <= bound

    # CPU per request as measured, against what the target burns.
    pods = pd.DataFrame(sampler.rows)
    history = pd.read_csv(tmp_path / "locust_stats_history.csv")
    requests_made = float(history[history["Name"] == "Aggregated"]["Total Request Count"].max())
    cpu_ms_per_request = float(pods["cpu_m"].sum()) / requests_made  # 1 s samples: m x s = ms
    low, high = CPU_PER_REQUEST_MS
    assert low <= cpu_ms_per_request <= high
    if web.linearity is not None:
        assert low / 2 <= web.linearity.slope_m_per_rps <= high * 2
