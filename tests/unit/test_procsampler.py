"""The local sampler on real processes: a pre-fork parent's children are the pods."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from analysis.hpa.model import HpaSpec, MetricTarget
from harness.config.values import WatchTarget
from harness.demo.autoscaler import GunicornScaler, LocalAutoscaler, ScaledTarget
from harness.samplers.processes import PodResources, ProcessPod, ProcessSampler
from harness.session.store import RunStore

pytestmark = pytest.mark.unit


@pytest.fixture
def prefork() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """A parent that forks two busy children, all with a unique marker in their command line."""
    marker = f"kubeswarm-test-{uuid.uuid4().hex[:8]}"
    script = textwrap.dedent("""
        import os, sys, time
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                buffer = bytearray(8 * 2**20)  # 8 MiB each, so RSS shows it
                deadline = time.time() + 60
                while time.time() < deadline:
                    sum(range(20000))
                    buffer[0] = 1
                os._exit(0)
            children.append(pid)
        print("ready", flush=True)
        for pid in children:
            os.waitpid(pid, 0)
    """)
    process = subprocess.Popen(
        [sys.executable, "-c", script, marker], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "ready"
    try:
        yield process, marker
    finally:
        for child in psutil.Process(process.pid).children():
            child.kill()
        process.kill()
        process.wait()
        process.stdout.close()


def test_cmd_target_records_the_workers_of_a_prefork_parent(
    prefork: tuple[subprocess.Popen[str], str],
) -> None:
    parent, marker = prefork
    sampler = ProcessSampler(WatchTarget("cmd", marker), PodResources(cpu_request_m=100.0))
    children = psutil.Process(parent.pid).children()
    busy_before = {c.pid: sum(c.cpu_times()[:2]) for c in children}
    first_at = time.time()
    first = sampler.sample(first_at)
    # Wait for CPU time actually spent, not wall time: on a busy machine the busy loops may get
    # little of a core, and the rate must still be their CPU time over the elapsed time.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(
        sum(c.cpu_times()[:2]) - busy_before[c.pid] < 0.05 for c in children
    ):
        time.sleep(0.05)
    # At least a second between the looks: the sampler reads CPU times a little after the
    # timestamp it is given, and that skew must stay small next to the interval.
    time.sleep(max(0.0, first_at + 1.0 - time.time()))
    second_at = time.time()
    second = sampler.sample(second_at)
    busy_after = {c.pid: sum(c.cpu_times()[:2]) for c in children}
    assert len(second) == 2
    assert parent.pid not in {pod.pid for pod in second}
    assert all(pod.cpu_m is None for pod in first)  # no rate before a second look
    for pod in second:
        assert pod.cpu_m is not None
        # CPU seconds between the looks / wall seconds x 1000, bounded by what the test read
        # around them (times tick in 10 ms steps); one process uses at most one core
        spent_max = busy_after[pod.pid] - busy_before[pod.pid] + 0.02
        assert 0 < pod.cpu_m <= min(1000.0, spent_max / (second_at - first_at) * 1000) * 1.1
        assert pod.started_s == pytest.approx(psutil.Process(pod.pid).create_time())
    assert all(pod.memory_bytes > 8 * 2**20 for pod in second)
    rows = sampler.rows(time.time(), second)
    assert {row["workload"] for row in rows} == {marker}
    assert {row["cpu_request_m"] for row in rows} == {100.0}


def test_cmd_target_never_counts_kubeswarm_or_what_started_it(tmp_path: Path) -> None:
    # `timeout 60 kubeswarm run ... --watch cmd/x`: both command lines name the pattern.
    marker = f"kubeswarm-self-{uuid.uuid4().hex[:8]}"
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys, time\n"
        "from harness.samplers.processes import ProcessSampler\n"
        "from harness.config.values import WatchTarget\n"
        "print(len(ProcessSampler(WatchTarget('cmd', sys.argv[1])).sample(time.time())))\n",
        encoding="utf-8",
    )
    # The shell stays the parent (its script does more than one thing) and names the marker too.
    script = f'"{sys.executable}" "{probe}" "$1"; true'
    wrapper = subprocess.run(
        ["bash", "-c", script, marker, marker],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrapper.stdout.strip() == "0"


def test_pid_target_is_the_same_two_pods(prefork: tuple[subprocess.Popen[str], str]) -> None:
    parent, _ = prefork
    pods = ProcessSampler(WatchTarget("pid", str(parent.pid))).sample(time.time())
    assert sorted(pod.pid for pod in pods) == sorted(
        c.pid for c in psutil.Process(parent.pid).children()
    )
    assert len(pods) == 2


def test_autoscaler_syncs_from_the_workers_the_master_really_has(
    prefork: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    # The autoscaler last asked for 4 workers, but the master has its 2 children. Both run at
    # 60% of a 100m request against a 50% target: ceil(2 x 60/50) = ceil(2.4) = 3, one more than
    # there are: one SIGTTIN. Trusting the 4 it asked for, it would have sent nothing (3 < 4,
    # held by the scale-down stabilization window).
    parent, _ = prefork
    sent: list[int] = []
    scaler = GunicornScaler(parent.pid, send=lambda _pid, signum: sent.append(signum), spacing_s=0)
    assert scaler.workers() == 2
    autoscaler = LocalAutoscaler(
        HpaSpec(1, 6, (MetricTarget("cpu", 50),)),
        ScaledTarget("local", "demo", "demo"),
        PodResources(cpu_request_m=100.0, memory_request_bytes=2.0**30),
        scaler,
        sync_period_s=5.0,
        replicas=4,
    )
    now = time.time()
    pods = [ProcessPod(f"w{i}", i, 60.0, 2.0**20, started_s=now - 900) for i in range(2)]
    store = RunStore.create(
        tmp_path, name="t", mode="demo", config={}, sample_interval_s=1.0, now_s=now
    )
    try:
        autoscaler.tick(now, pods, store)
    finally:
        store.close()
    assert sent == [signal.SIGTTIN]
    assert autoscaler.replicas == 3
