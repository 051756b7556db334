"""The CPU readiness timing rules against the cases of the controller's own TestGroupPods
(replica_calculator_test.go), whose settings are a 2 min CPU initialization period and a 10 s
initial readiness delay; times here are seconds relative to the sync at ``NOW``."""

from __future__ import annotations

import pytest

from analysis.hpa.model import MetricTarget, PodUsage, metric_proposal
from analysis.hpa.readiness import ReadinessTiming, cpu_unready

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
GO_TEST = ReadinessTiming(cpu_initialization_period_s=120.0, initial_readiness_delay_s=10.0)


def unready(
    ready: bool,
    start: float | None,
    since: float | None,
    *,
    metric_at: float = 0.0,
    window: float = 60.0,
) -> bool:
    return cpu_unready(
        ready=ready,
        start_ts=None if start is None else NOW + start,
        ready_since_ts=None if since is None else NOW + since,
        metric_ts=NOW + metric_at,
        metric_window_s=window,
        now_s=NOW,
        timing=GO_TEST,
    )


@pytest.mark.parametrize(
    ("case", "ready", "times", "expected"),
    [
        # started 1 min ago (inside 2 min), Ready 30 s ago, metric now over 30 s:
        # now >= (-30 s) + 30 s, a whole window since Ready -> counted
        ("ready, fresh metrics, initializing", True, (-60, -30, 0, 30), False),
        # same with a 60 s window: now < -30 s + 60 s -> left out
        ("ready, stale window, initializing", True, (-60, -30, 0, 60), True),
        # started 10 min ago (past 2 min), not Ready since -9m54s:
        # start + 10 s = -9m50s is after -9m54s -> never Ready: left out
        ("unready, never ready after init", False, (-600, -594, 0, 60), True),
        # started 3 min ago, Ready 3 min ago, metric 2 min old: past init -> counted
        ("ready, old metric after init", True, (-180, -180, -120, 60), False),
        # not Ready since -9m, start + 10 s = -9m50s is before it: it was Ready once -> counted
        ("unready that was ready after init", False, (-600, -540, 0, 60), False),
        # not Ready since -9m50s, start + 10 s = -9m50s is not after it -> counted
        ("unready at exactly the delay", False, (-600, -590, 0, 60), False),
    ],
)
def test_group_pods_cpu_cases(
    case: str, ready: bool, times: tuple[float, float, float, float], expected: bool
) -> None:
    """``times``: pod start, Ready transition, metric timestamp (s from the sync), window (s)."""
    start, since, metric_at, window = times
    assert unready(ready, start, since, metric_at=metric_at, window=window) is expected, case


def test_without_times_only_readiness_counts() -> None:
    # runs recorded before pods.csv had start and readiness times
    assert unready(False, None, None) is True
    assert unready(True, None, None) is False
    assert unready(True, -60, None) is False


def test_deleted_and_failed_pods_are_left_out_entirely() -> None:
    # One pod at 80% of 100m and three at 0%: counted, int(80 x 100 / 400) = 20%; left out, the
    # utilization is the busy pod's 80%. (The replicas agree either way, ceil(usage / target per
    # pod) = ceil(80 / 50) = 2, so the utilization is what tells.)
    busy = PodUsage("busy", True, 80.0, None, 100.0, None)
    idle = [PodUsage(f"i{i}", True, 0.0, None, 100.0, None) for i in range(3)]
    target = MetricTarget("cpu", 50)
    assert metric_proposal(target, [busy, *idle], 4).utilization_pct == 20
    for leaving in (
        [PodUsage(p.name, True, 0.0, None, 100.0, None, deleting=True) for p in idle],
        [PodUsage(p.name, True, 0.0, None, 100.0, None, phase="Failed") for p in idle],
    ):
        proposal = metric_proposal(target, [busy, *leaving], 4)
        assert (proposal.replicas, proposal.utilization_pct) == (2, 80)


def test_a_starting_pods_cpu_burst_does_not_scale_up() -> None:
    # Two settled pods at 40% (target 50%) and one started 20 s ago, Ready 5 s ago, at 200%.
    # Counted: int(280 x 100 / 300) = 93% -> ceil(3 x 93/50) = ceil(5.58) = 6.
    # Left out (inside its initialization period, less than a 15 s metrics window since Ready):
    # 40/50 = 0.8, a scale-down ignores unready pods -> ceil(2 x 0.8) = ceil(1.6) = 2.
    settled = [
        PodUsage(
            f"s{i}", True, 40.0, None, 100.0, None, start_ts=NOW - 900, ready_since_ts=NOW - 880
        )
        for i in range(2)
    ]
    starting = PodUsage(
        "new", True, 200.0, None, 100.0, None, start_ts=NOW - 20, ready_since_ts=NOW - 5
    )
    target = MetricTarget("cpu", 50)
    assert metric_proposal(target, [*settled, starting], 3).replicas == 6  # no sync time given
    timed = metric_proposal(target, [*settled, starting], 3, now_s=NOW)
    assert (timed.replicas, timed.utilization_pct) == (2, 40)
