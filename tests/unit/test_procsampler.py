"""The local sampler on real processes: a pre-fork parent's children are the pods."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from harness.config.values import WatchTarget
from harness.samplers.processes import PodResources, ProcessSampler

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
    first = sampler.sample(time.time())
    time.sleep(0.5)
    second = sampler.sample(time.time())
    assert len(second) == 2
    assert parent.pid not in {pod.pid for pod in second}
    assert all(pod.cpu_m is None for pod in first)  # no rate before a second look
    assert all(pod.cpu_m is not None and pod.cpu_m > 100 for pod in second)  # busy loops
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
