"""``--chaos`` on this machine: a real gunicorn on 127.0.0.1 loses a worker and replaces it."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from analysis.data.chaosmark import parse_chaos_detail
from harness.actions.chaos import chaos_actions
from harness.config.chaos import parse_chaos
from harness.config.values import WatchTarget
from harness.demo.run import start_target
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


def test_a_process_without_workers_is_a_skipped_disruption(tmp_path: Path) -> None:
    group = ProcessGroup(tmp_path / "logs")
    try:
        lone = group.start("lone", ["sleep", "30"])
        store = RunStore.create(
            tmp_path / "runs", name="chaos", mode="local", config={}, sample_interval_s=1.0
        )
        observation = _tick("pod-kill@0s", lone.pid, store)
        assert alive([lone.pid]) == [lone.pid]
        mark = parse_chaos_detail(csv_rows(store.directory / "samples" / "marks.csv")[0]["detail"])
        assert mark is not None and mark.pods == () and mark.skipped
        assert observation.events[0].startswith("chaos pod-kill skipped at 3s: ")
        store.close()
    finally:
        group.stop_all()
