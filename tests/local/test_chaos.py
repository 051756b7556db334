"""``--chaos`` on this machine: a real gunicorn on 127.0.0.1 loses a worker and replaces it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from analysis.data.chaosmark import parse_chaos_detail
from harness.actions.chaos import PodChaos, chaos_actions
from harness.actions.process_pods import ProcessPods
from harness.config.chaos import parse_chaos
from harness.config.values import WatchTarget
from harness.demo.run import start_target
from harness.errors import UsageError
from harness.processes import Child, ProcessGroup, free_port
from harness.session.core import Observation, TickContext
from harness.session.store import RunStore
from tests.local.helpers import alive, csv_rows

pytestmark = pytest.mark.local


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[Child]:
    group = ProcessGroup(tmp_path / "logs")
    try:
        child = start_target(group, 2, free_port())
        _wait_for(lambda: len(_workers(child.pid)) == 2)
        yield child
    finally:
        group.stop_all()


def _workers(master_pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(master_pid).children() if p.status() != "zombie"}


def _wait_for(condition: object, timeout_s: float = 20.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return bool(condition())


def _tick(spec: str, master_pid: int, store: RunStore) -> Observation:
    (action,) = chaos_actions(
        [parse_chaos(spec)],
        WatchTarget("pid", str(master_pid)),
        workload_name="demo-target",
    )
    now = time.time()
    observation = action.tick(TickContext(now=now, run_start=now - 5.0, test_start=now - 3.0))
    for table, rows in observation.rows:
        store.append(table, rows)
    store.flush()
    return observation


def test_pod_kill_hits_a_worker_which_gunicorn_replaces(gunicorn: Child, tmp_path: Path) -> None:
    store = RunStore.create(
        tmp_path / "runs", name="chaos", mode="local", config={}, sample_interval_s=1.0
    )
    before = _workers(gunicorn.pid)

    observation = _tick("pod-kill@1s", gunicorn.pid, store)

    marks = csv_rows(store.directory / "samples" / "marks.csv")
    assert [m["kind"] for m in marks] == ["chaos"]
    mark = parse_chaos_detail(marks[0]["detail"])
    assert mark is not None and mark.skipped is None
    assert mark.action == "pod-kill" and mark.ready_before == 2 and mark.grace_s == 0
    (pod,) = mark.pods
    killed = int(pod.rsplit("-", 1)[1])
    assert killed in before
    assert observation.events == [f"chaos pod-kill {pod} at 3s"]
    assert _wait_for(lambda: not alive([killed]))
    assert _wait_for(
        lambda: len(_workers(gunicorn.pid)) == 2 and killed not in _workers(gunicorn.pid)
    )
    assert (_workers(gunicorn.pid) - before) != set()  # a new worker took its place
    assert alive([gunicorn.pid]) == [gunicorn.pid]  # the master itself was never signalled
    store.close()


def test_pod_delete_terminates_the_oldest_worker(gunicorn: Child, tmp_path: Path) -> None:
    store = RunStore.create(
        tmp_path / "runs", name="chaos", mode="local", config={}, sample_interval_s=1.0
    )
    oldest = min(psutil.Process(gunicorn.pid).children(), key=lambda p: p.create_time()).pid

    observation = _tick("pod-delete@0s", gunicorn.pid, store)

    assert observation.events == [f"chaos pod-delete demo-target-{oldest} at 3s"]
    assert _wait_for(lambda: not alive([oldest]))
    assert _wait_for(lambda: len(_workers(gunicorn.pid)) == 2)
    store.close()


def _refusal(target: str) -> str:
    """The one line a local --chaos on ``target`` is refused with (nothing is ever signalled:
    the target is resolved before an action exists)."""
    from harness.config.values import parse_watch

    with pytest.raises(UsageError) as refused:
        chaos_actions([parse_chaos("pod-kill@0s")], parse_watch(target))
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_a_shell_with_sleep_children_is_refused_and_nothing_is_signalled(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path / "logs")
    try:
        shell = group.start("shell", ["bash", "-c", "sleep 30 & sleep 30 & wait"])
        assert _wait_for(lambda: len(psutil.Process(shell.pid).children()) == 2)
        sleeps = [c.pid for c in psutil.Process(shell.pid).children()]
        message = _refusal(f"pid/{shell.pid}")
        assert f"process {shell.pid} (bash) is not a pre-fork server" in message
        assert "sleep" in message  # what it would have hit
        assert alive([shell.pid, *sleeps]) == [shell.pid, *sleeps]
    finally:
        group.stop_all()


def test_pid_1_kubeswarm_itself_and_its_parent_are_refused() -> None:
    assert "pid 1 is the machine's init" in _refusal("pid/1")
    assert "is kubeswarm, its Locust or a process that started it" in _refusal(f"pid/{os.getpid()}")
    assert "is kubeswarm" in _refusal(f"pid/{os.getppid()}")


def test_another_users_server_is_refused(tmp_path: Path) -> None:
    if os.getuid() != 0:
        pytest.skip("starting a process as another user needs root")
    # A bash whose child is a bash subshell: the same program, like a pre-fork server's workers.
    forker = "(while true; do sleep 1; done) & wait"
    server = subprocess.Popen(["bash", "-c", forker], user=65534, start_new_session=True)
    try:
        assert _wait_for(lambda: len(psutil.Process(server.pid).children()) == 1)
        message = _refusal(f"pid/{server.pid}")
        assert f"belongs to uid 65534, kubeswarm runs as uid {os.getuid()}" in message
        assert alive([server.pid]) == [server.pid]
    finally:
        os.killpg(server.pid, signal.SIGKILL)  # its own session: only what this test started
        server.wait()


def test_a_pattern_must_match_exactly_one_server_tree(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path / "logs")
    try:
        ports = [free_port(), free_port()]
        servers = [start_target(group, 1, port) for port in ports]
        for server in servers:
            assert _wait_for(lambda s=server: len(_workers(s.pid)) == 1)
        message = _refusal("cmd/harness.demo.target:app")
        assert "matches 2 process trees" in message
        assert all(str(s.pid) in message for s in servers) and "name one with pid/PID" in message
        # The port makes the pattern name one tree: accepted, pinned to that server.
        (action,) = chaos_actions(
            [parse_chaos("pod-kill@0s")], WatchTarget("cmd", f"127.0.0.1:{ports[1]}")
        )
        assert isinstance(action, PodChaos) and isinstance(action.source, ProcessPods)
        assert action.source.server.pid == servers[1].pid
        assert alive([s.pid for s in servers]) == [s.pid for s in servers]
    finally:
        group.stop_all()


def test_run_refuses_a_bad_target_before_anything_starts(tmp_path: Path) -> None:
    """The CLI, as a user runs it: exit 2, one line, no run directory, the tree untouched."""
    group = ProcessGroup(tmp_path / "logs")
    try:
        shell = group.start("shell", ["bash", "-c", "sleep 30 & wait"])
        assert _wait_for(lambda: len(psutil.Process(shell.pid).children()) == 1)
        (sleep,) = [c.pid for c in psutil.Process(shell.pid).children()]
        locustfile = Path(__file__).parents[2] / "locustfiles" / "health.py"
        argv = [
            sys.executable, "-m", "harness", "run", "--local", "-H", "http://127.0.0.1:9",
            "-f", str(locustfile), "-t", "10s", "--watch", f"pid/{shell.pid}",
            "--chaos", "pod-kill@5s", "--out", str(tmp_path / "runs"),
        ]  # fmt: skip
        done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert f"pid/{shell.pid} refused" in line and "not a pre-fork server" in line
        assert not (tmp_path / "runs").exists()
        assert alive([shell.pid, sleep]) == [shell.pid, sleep]
    finally:
        group.stop_all()


def test_dry_run_lists_the_worker_it_would_kill_and_kills_nothing(
    gunicorn: Child, tmp_path: Path
) -> None:
    before = _workers(gunicorn.pid)
    oldest = min(psutil.Process(gunicorn.pid).children(), key=lambda p: p.create_time()).pid
    locustfile = Path(__file__).parents[2] / "locustfiles" / "health.py"
    argv = [
        sys.executable, "-m", "harness", "run", "--local", "-H", "http://127.0.0.1:9",
        "-f", str(locustfile), "-t", "10s", "--watch", f"pid/{gunicorn.pid}",
        "--chaos", "pod-kill@5s", "--chaos-dry-run", "--out", str(tmp_path / "runs"),
    ]  # fmt: skip
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"chaos dry run: pod-kill:1@5s on local/pid/{gunicorn.pid}: would kill "
        f"pid-{gunicorn.pid}-{oldest} (oldest of 2 ready of 2 pods now)"
    ]
    assert not (tmp_path / "runs").exists()
    assert _workers(gunicorn.pid) == before
