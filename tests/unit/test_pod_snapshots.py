"""pods.csv snapshots: a workload's pods are written when any of them changed, else at the
heartbeat; a pod that comes or goes, a new usage reading or a readiness change is written
at once."""

from __future__ import annotations

from typing import Any

import pytest

from harness.samplers.pod_snapshots import PodSnapshots

pytestmark = pytest.mark.unit

KEY = ("app", "web")


def _row(ts: float, pod: str, **changes: Any) -> dict[str, Any]:
    return {"ts": ts, "pod": pod, "ready": True, "memory_bytes": 1.0, "usage_ts": None, **changes}


def test_each_change_is_written_and_repeats_are_not() -> None:
    snapshots = PodSnapshots(heartbeat_s=60.0)
    written = [
        ts
        for ts, rows in [
            (0.0, [_row(0, "a"), _row(0, "b")]),
            (2.0, [_row(2, "b"), _row(2, "a")]),  # same pods in another order: unchanged
            (4.0, [_row(4, "a"), _row(4, "b", memory_bytes=2.0, usage_ts=3.0)]),  # new usage
            (6.0, [_row(6, "a"), _row(6, "b", memory_bytes=2.0, usage_ts=3.0)]),
            (8.0, [_row(8, "a")]),  # b went away
            (10.0, [_row(10, "a", ready=False)]),
            (12.0, [_row(12, "a", ready=False)]),
            (70.0, [_row(70, "a", ready=False)]),  # the heartbeat
        ]
        if snapshots.due(KEY, ts, rows)
    ]
    assert written == [0.0, 4.0, 8.0, 10.0, 70.0]


def test_workloads_are_tracked_apart() -> None:
    snapshots = PodSnapshots()
    assert snapshots.due(("app", "web"), 0.0, [_row(0, "a")])
    assert snapshots.due(("app", "api"), 0.0, [_row(0, "a")])
    assert not snapshots.due(("app", "web"), 1.0, [_row(1, "a")])
