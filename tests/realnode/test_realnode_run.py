"""`kubeswarm run` on a real node: real Locust pods, a real target, its real HPA and OOM kills.

Each test drives the `kubeswarm` command as a user would (a separate process, the local
Locust image through --image) and asserts what that user would see: the run directory, the
report, and what is left in the cluster and in containerd afterwards. Loads are a few dozen
requests per second for at most two minutes, only to Services in the test's namespace.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import re
import signal
import subprocess
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from . import _hostnet as net
from ._node import RealNode
from ._workloads import (
    EXAMPLE_HOST,
    copy_locustfile,
    cri_containers,
    deploy_and_wait,
    example_target,
    finish,
    get,
    read_samples,
    run_args,
    run_dir,
    run_objects,
    start_run,
    summary,
    wait_for,
    write_wheel,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]

SAMPLE_INTERVAL_S = 2.0


def _nothing_left(node: RealNode, namespace: str) -> None:
    """Every object of the run gone from the API, and no container of it left in containerd."""

    def gone() -> bool:
        left = run_objects(node, namespace)
        return not any(left.values()) and not cri_containers(node, namespace)

    wait_for("the run's objects and containers to be gone", gone, timeout_s=60)


def _rescale_events(node: RealNode, namespace: str) -> list[tuple[float, int]]:
    """(time, new size) of the HPA's SuccessfulRescale events, as `kubectl describe` shows."""
    found = []
    for event in get(node, f"/api/v1/namespaces/{namespace}/events")["items"]:
        match = re.search(r"New size: (\d+)", event.get("message") or "")
        if event.get("reason") != "SuccessfulRescale" or not match:
            continue
        stamps = {event.get("firstTimestamp"), event.get("lastTimestamp"), event.get("eventTime")}
        for stamp in stamps - {None}:
            when = dt.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))
            found.append((when.timestamp(), int(match.group(1))))
    return found


def test_step_load_scales_the_real_hpa(realnode: RealNode, namespace: str, tmp_path: Path) -> None:
    deploy_and_wait(realnode, namespace, example_target())
    out = tmp_path / "runs"
    args = run_args(
        realnode,
        namespace,
        out,
        "-f",
        str(copy_locustfile("step_load.py", tmp_path)),
        "-H",
        EXAMPLE_HOST,
        "-u",
        "12",
        "-r",
        "12",
        "-t",
        "90s",
        "--workers",
        "2",
        "--processes",
        "1",
        "--watch",
        "hpa/example-web",
        "--interval",
        f"{SAMPLE_INTERVAL_S:g}s",
    )
    log = tmp_path / "kubeswarm.log"
    code = finish(start_run(args, log), log, timeout_s=300)
    assert code == 0, log.read_text()[-3000:]
    run = run_dir(out)

    locust = read_samples(run, "locust.csv")
    users = [int(float(r["user_count"])) for r in locust if r["user_count"]]
    rps = [float(r["rps"]) for r in locust if r["rps"]]
    workers = [int(float(r["worker_count"])) for r in locust if r["worker_count"]]
    assert max(workers) == 2, "master and both workers ran"
    assert users[0] <= 3 < max(users) == 12, f"the step load rose to 12 users: {users}"
    assert max(rps) > 30, f"real requests were answered: peak {max(rps)} req/s"
    for name in ("stats.csv", "stats_history.csv", "report.html"):
        assert (run / "locust" / name).stat().st_size > 0, f"locust/{name} fetched"

    hpa = read_samples(run, "hpa.csv")
    replicas = [int(float(r["current_replicas"])) for r in hpa if r["current_replicas"]]
    assert replicas[0] == 1 and max(replicas) > 1, f"the real HPA scaled up: {replicas}"
    pods = read_samples(run, "pods.csv")
    working_sets = [
        float(r["memory_bytes"])
        for r in pods
        if r["memory_bytes"] and r["workload"] == "example-web"
    ]
    assert working_sets and max(working_sets) > 20 * 2**20, "real working sets from the kubelet"

    report = summary(run)
    (hpa_summary,) = report["hpas"]
    reported = [(e["ts"], e["to"]) for e in hpa_summary["scale_events"]]
    assert reported, "the report lists the scale-ups"
    # The model replayed at the real controller's syncs, on real CPU (issue 19)
    check = hpa_summary["model_check"]
    print(json.dumps(check))
    assert check["not_checked"] is None and check["decisions"] >= 3, check
    assert check["exact"] >= 0.98 * check["decisions"], check["mismatches"]
    assert check["within_one"] == check["decisions"], check["mismatches"]
    # The Locust master pod's own memory, from the metrics API (issue 21): a real Python process
    # with Locust loaded holds tens of MiB.
    master = report["master_memory"]
    assert master is not None and master["source"] == "pods.csv", master
    assert master["peak_bytes"] > 20 * 2**20, master
    start, end = min(float(r["ts"]) for r in locust), max(float(r["ts"]) for r in locust)
    for ts, size in _rescale_events(realnode, namespace):
        if not start <= ts <= end:
            continue
        # Event times have one-second resolution; the sampler sees a change within one tick.
        assert any(
            to == size and abs(rts - ts) <= SAMPLE_INTERVAL_S + 1.5 for rts, to in reported
        ), f"SuccessfulRescale to {size} at {ts:.0f} matches a reported scale event: {reported}"
    _nothing_left(realnode, namespace)


def test_memory_limit_below_load_gives_real_oom_kills(
    realnode: RealNode, namespace: str, tmp_path: Path
) -> None:
    # Each request keeps 256 KiB for 10 s: 30 req/s hold ~75 MiB, above a 48 MiB limit.
    deploy_and_wait(
        realnode, namespace, example_target(memory_request="32Mi", memory_limit="48Mi", hpa=False)
    )
    out = tmp_path / "runs"
    args = run_args(
        realnode,
        namespace,
        out,
        "-f",
        str(copy_locustfile("health.py", tmp_path)),
        "-H",
        EXAMPLE_HOST,
        "-u",
        "30",
        "-r",
        "30",
        "-t",
        "45s",
        "--workers",
        "1",
        "--watch",
        "deployment/example-web",
    )
    log = tmp_path / "kubeswarm.log"
    finish(start_run(args, log), log, timeout_s=240)
    report = summary(run_dir(out))
    (workload,) = report["workloads"]
    assert workload["oom_kills"] >= 1, f"real OOM kills recorded: {workload}"
    assert workload["memory_limit_bytes"] == 48 * 2**20
    codes = {f["code"] for f in report["findings"]}
    assert "oom_killed" in codes, f"the report says so: {report['findings']}"
    pods = read_samples(run_dir(out), "pods.csv")
    assert any(r["last_termination_reason"] == "OOMKilled" for r in pods)
    _nothing_left(realnode, namespace)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    requested: list[str] = []  # noqa: RUF012 - shared on purpose: the test reads it

    def log_message(self, format: str, *args: Any) -> None:
        _QuietHandler.requested.append(self.path)


def test_requirement_installed_from_a_local_index(
    realnode: RealNode, namespace: str, tmp_path: Path
) -> None:
    wheels = tmp_path / "wheels"
    project = wheels / "kubeswarm-probe"  # a simple index: one directory per project (PEP 503)
    project.mkdir(parents=True)
    write_wheel(project, "kubeswarm-probe", "1.0", 'PATH = "/healthz?installed-by-pip"\n')
    # A package index on the bridge address: reachable from pods, from nowhere else.
    handler = partial(_QuietHandler, directory=str(wheels))
    server = http.server.ThreadingHTTPServer((net.NODE_IP, 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    index = f"http://{net.NODE_IP}:{server.server_address[1]}/"
    locustfile = tmp_path / "with_requirement.py"
    locustfile.write_text(
        "import kubeswarm_probe\n"
        "from locust import FastHttpUser, constant_pacing, task\n\n\n"
        "class ProbeUser(FastHttpUser):\n"
        "    wait_time = constant_pacing(0.5)\n\n"
        "    @task\n"
        "    def probe(self) -> None:\n"
        "        self.client.get(kubeswarm_probe.PATH, name='probe-from-requirement')\n"
    )
    deploy_and_wait(realnode, namespace, example_target(hpa=False))
    out = tmp_path / "runs"
    args = run_args(
        realnode,
        namespace,
        out,
        "-f",
        str(locustfile),
        "-H",
        EXAMPLE_HOST,
        "-u",
        "2",
        "-r",
        "2",
        "-t",
        "15s",
        "--workers",
        "1",
        # A plain-http index: kubeswarm trusts its host for pip, which would ignore it otherwise.
        "--pip-index-url",
        index,
        "--requirement",
        "kubeswarm-probe==1.0",
    )
    log = tmp_path / "kubeswarm.log"
    try:
        code = finish(start_run(args, log), log, timeout_s=240)
    finally:
        server.shutdown()
        server.server_close()
    assert code == 0, log.read_text()[-3000:]
    assert any(p.endswith(".whl") for p in _QuietHandler.requested), "pods fetched the wheel"
    stats = (run_dir(out) / "locust" / "stats.csv").read_text()
    row = next(line for line in stats.splitlines() if "probe-from-requirement" in line)
    assert int(row.split(",")[2]) > 0, f"requests named by the installed package: {row}"
    _nothing_left(realnode, namespace)


def _started(
    processes: list[subprocess.Popen[bytes]], proc: subprocess.Popen[bytes]
) -> subprocess.Popen[bytes]:
    processes.append(proc)
    return proc


def _wait_running(out: Path, timeout_s: float) -> Path:
    def running() -> bool:
        try:
            rows = read_samples(run_dir(out), "locust.csv")
        except (AssertionError, FileNotFoundError):
            return False
        return any(r["state"] == "running" and float(r["rps"] or 0) > 0 for r in rows)

    wait_for("Locust running with requests answered", running, timeout_s)
    return run_dir(out)


@pytest.fixture
def plain_target(realnode: RealNode, namespace: str) -> str:
    deploy_and_wait(realnode, namespace, example_target(hpa=False))
    return namespace


def _run_in_background(
    realnode: RealNode,
    namespace: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
    *extra: str,
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out = tmp_path / "runs"
    locustfile = str(copy_locustfile("health.py", tmp_path))
    args = run_args(realnode, namespace, out, "-f", locustfile, "-H", EXAMPLE_HOST)
    args += ["-u", "4", "-r", "4", "--workers", "1", *extra]
    log = tmp_path / "kubeswarm.log"
    return _started(processes, start_run(args, log)), out, log


def test_ctrl_c_stops_the_run_and_removes_its_pods(
    realnode: RealNode,
    plain_target: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    proc, out, log = _run_in_background(realnode, plain_target, tmp_path, processes, "-t", "5m")
    run = _wait_running(out, timeout_s=120)
    assert cri_containers(realnode, plain_target), "Locust containers run in containerd"
    proc.send_signal(signal.SIGINT)
    code = finish(proc, log, timeout_s=90)
    assert code == 130, log.read_text()[-2000:]
    assert '"interrupted"' in (run / "run.json").read_text()
    assert (run / "report" / "summary.json").exists(), "a partial report is still written"
    _nothing_left(realnode, plain_target)


def test_sigkill_leaves_jobs_that_end_by_themselves(
    realnode: RealNode,
    plain_target: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    # kubeswarm needs deadline >= run time + 15 s to stop + autoquit + 30 s to start (here
    # 20 + 15 + 10 + 30 = 75 s): Locust itself quits first, the deadline is the backstop.
    extra = ("-t", "20s", "--deadline", "80s")
    proc, out, _ = _run_in_background(realnode, plain_target, tmp_path, processes, *extra)
    _wait_running(out, timeout_s=120)
    proc.kill()
    proc.wait()
    killed_at = time.monotonic()
    jobs_path = f"/apis/batch/v1/namespaces/{plain_target}/jobs?labelSelector=kubeswarm.io/run"
    jobs = get(realnode, jobs_path)["items"]
    assert len(jobs) == 2, "a killed harness cannot clean up: both Jobs are still there"
    assert all(j["spec"]["activeDeadlineSeconds"] == 80 for j in jobs)
    assert cri_containers(realnode, plain_target), "and their Locust containers still run"

    def ended() -> bool:
        jobs = get(realnode, jobs_path)["items"]
        done = all(
            any(c["type"] in ("Complete", "Failed") and c["status"] == "True" for c in conditions)
            for conditions in (j.get("status", {}).get("conditions") or [] for j in jobs)
        )
        return done and not cri_containers(realnode, plain_target)

    wait_for("both Jobs to end and every Locust container to stop", ended, timeout_s=100)
    assert time.monotonic() - killed_at < 80 + 15, "nothing outlived the deadline"
