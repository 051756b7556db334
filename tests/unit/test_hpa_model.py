"""The HPA model against numbers worked out by hand from the controller's rules.

Pods have a 100m CPU request and a 100Mi memory request unless a test says otherwise, so a pod
"at 90 %" uses 90m (or 90Mi) and the utilization in percent equals its usage.
"""

from __future__ import annotations

import pytest

from analysis.hpa.controller import HpaController
from analysis.hpa.model import (
    DEFAULT_BEHAVIOR,
    Behavior,
    Decision,
    HpaSpec,
    MetricTarget,
    PodUsage,
    ScalingPolicy,
    ScalingRules,
    metric_proposal,
)

pytestmark = pytest.mark.unit

MI = 1024 * 1024
CPU_50 = MetricTarget("cpu", 50)
MEMORY_50 = MetricTarget("memory", 50)


def cpu_pods(*pcts: float | None, ready: bool = True, first: int = 0) -> list[PodUsage]:
    """Pods at the given % of a 100m CPU request; None = no metrics for that pod."""
    return [PodUsage(f"p{first + i}", ready, pct, None, 100.0, None) for i, pct in enumerate(pcts)]


def memory_pods(*pcts: float | None, ready: bool = True, first: int = 0) -> list[PodUsage]:
    """Pods at the given % of a 100Mi memory request; None = no metrics for that pod."""
    return [
        PodUsage(f"m{first + i}", ready, None, None if pct is None else pct * MI, None, 100.0 * MI)
        for i, pct in enumerate(pcts)
    ]


def both_pods(cpu_pct: float, memory_pct: float, count: int) -> list[PodUsage]:
    return [
        PodUsage(f"b{i}", True, cpu_pct, memory_pct * MI, 100.0, 100.0 * MI) for i in range(count)
    ]


def spec(
    *metrics: MetricTarget, low: int = 1, high: int = 50, behavior: Behavior | None = None
) -> HpaSpec:
    return HpaSpec(low, high, metrics or (CPU_50,), behavior)


def run(ctrl: HpaController, times: range, current: int, pods: list[PodUsage]) -> list[int]:
    """Reconcile at each time, applying every decision, and return the desired replicas."""
    desired = []
    for t in times:
        current = ctrl.reconcile(float(t), current, pods).desired_replicas
        desired.append(current)
    return desired


# --- one metric (replica_calculator.go) ---------------------------------------------------------


def test_utilization_is_total_usage_over_total_requests_truncated() -> None:
    # requests 100m + 200m, usage 101m + 101m -> int(202 * 100 / 300) = int(67.3) = 67 %;
    # 67 / 67 = 1.0 keeps 2; averageValue = 202m / 2 = 101m
    pods = [PodUsage("a", True, 101, None, 100, None), PodUsage("b", True, 101, None, 200, None)]
    proposal = metric_proposal(MetricTarget("cpu", 67), pods, current_replicas=2)
    assert (proposal.utilization_pct, proposal.replicas, proposal.average_value) == (67, 2, 101)


def test_within_tolerance_keeps_current_replicas() -> None:
    # 54 / 50 = 1.08 and 46 / 50 = 0.92 are inside [0.9, 1.1] -> keep 3
    assert metric_proposal(CPU_50, cpu_pods(54, 54, 54), 3).replicas == 3
    assert metric_proposal(CPU_50, cpu_pods(46, 46, 46), 3).replicas == 3


def test_scale_up_is_ratio_times_ready_pods_rounded_up() -> None:
    # 3 pods at 90 %, target 50 % -> ceil(1.8 * 3) = ceil(5.4) = 6
    proposal = metric_proposal(CPU_50, cpu_pods(90, 90, 90), 3)
    assert (proposal.utilization_pct, proposal.replicas) == (90, 6)


def test_scale_down_is_ratio_times_ready_pods_rounded_up() -> None:
    # 4 pods at 20 %, target 50 % -> ceil(0.4 * 4) = ceil(1.6) = 2
    assert metric_proposal(CPU_50, cpu_pods(20, 20, 20, 20), 4).replicas == 2


def test_missing_pods_count_as_zero_on_scale_up() -> None:
    # 4 pods at 80 % + 2 without metrics: ratio 1.6 (alone: ceil(1.6 * 4) = 7);
    # missing at 0 -> 320 / 600 = 53 % -> 1.06, inside tolerance -> keep 6
    assert metric_proposal(CPU_50, cpu_pods(80, 80, 80, 80, None, None), 6).replicas == 6


def test_missing_pods_count_as_full_request_on_scale_down() -> None:
    # 4 pods at 10 % + 1 missing: ratio 0.2 (alone: ceil(0.2 * 4) = 1);
    # missing at 100 % -> (40 + 100) / 500 = 28 % -> 0.56 -> ceil(0.56 * 5) = ceil(2.8) = 3
    assert metric_proposal(CPU_50, cpu_pods(10, 10, 10, 10, None), 5).replicas == 3


def test_missing_pods_count_at_target_when_target_is_above_100() -> None:
    # target 200 %, 2 pods at 20 % + 1 missing: ratio 0.1; missing at max(100, 200) = 200 %
    # -> (20 + 20 + 200) / 300 = 80 % -> 0.4 -> ceil(0.4 * 3) = ceil(1.2) = 2
    assert metric_proposal(MetricTarget("cpu", 200), cpu_pods(20, 20, None), 3).replicas == 2


def test_unready_pods_count_as_zero_on_scale_up() -> None:
    # 3 ready at 100 % + 1 unready at 100 %: ratio 2.0 from ready pods;
    # unready at 0 -> 300 / 400 = 75 % -> 1.5 -> ceil(1.5 * 4) = 6 (its own 100 % would give 8)
    pods = cpu_pods(100, 100, 100) + cpu_pods(100, ready=False, first=3)
    proposal = metric_proposal(CPU_50, pods, 4)
    assert (proposal.utilization_pct, proposal.replicas) == (100, 6)


def test_unready_pods_are_left_out_on_scale_down() -> None:
    # 2 ready at 10 % + 2 unready at 90 %: ratio 0.2, no rebalance below 1 -> ceil(0.2 * 2) = 1
    pods = cpu_pods(10, 10) + cpu_pods(90, 90, ready=False, first=2)
    assert metric_proposal(CPU_50, pods, 4).replicas == 1


def test_fewer_pods_than_replicas_never_turn_a_scale_up_into_a_scale_down() -> None:
    # current 10 but 1 pod at 200 % + 1 missing: ratio 4; missing at 0 -> 100 % -> 2.0
    # -> ceil(2.0 * 2) = 4 < 10 would shrink while scaling up -> keep 10
    assert metric_proposal(CPU_50, cpu_pods(200, None), 10).replicas == 10


def test_readiness_only_matters_for_cpu() -> None:
    # 2 ready at 100 % + 1 Running-but-unready at 100 %, target 50 %.
    # memory: all 3 count -> ceil(2.0 * 3) = 6;
    # cpu: unready rebalanced at 0 -> 200 / 300 = 66 % -> 1.32 -> ceil(1.32 * 3) = ceil(3.96) = 4
    memory = memory_pods(100, 100) + memory_pods(100, ready=False, first=2)
    cpu = cpu_pods(100, 100) + cpu_pods(100, ready=False, first=2)
    assert metric_proposal(MEMORY_50, memory, 3).replicas == 6
    assert metric_proposal(CPU_50, cpu, 3).replicas == 4


def test_pending_pods_are_unready_for_memory_too() -> None:
    # 2 ready at 100 % + 1 Pending: same numbers as the cpu case above -> 4
    pending = PodUsage("new", False, None, None, None, 100.0 * MI, phase="Pending")
    assert metric_proposal(MEMORY_50, [*memory_pods(100, 100), pending], 3).replicas == 4


def test_missing_request_fails_the_metric() -> None:
    pods = [*cpu_pods(90, 90), PodUsage("no-request", True, 90, None, None, None)]
    proposal = metric_proposal(CPU_50, pods, 3)
    assert (proposal.replicas, proposal.utilization_pct) == (None, None)
    assert "missing request for cpu" in proposal.error


def test_no_metrics_at_all_fails_the_metric() -> None:
    proposal = metric_proposal(CPU_50, cpu_pods(None, None), 2)
    assert proposal.replicas is None
    assert "no metrics returned" in proposal.error


def test_average_value_target_needs_no_request() -> None:
    # 3 pods at 300Mi, target average 200Mi, no requests -> ceil(1.5 * 3) = ceil(4.5) = 5
    pods = [PodUsage(f"v{i}", True, None, 300.0 * MI, None, None) for i in range(3)]
    target = MetricTarget("memory", 0, target_average_value=200.0 * MI)
    proposal = metric_proposal(target, pods, 3)
    assert (proposal.replicas, proposal.average_value) == (5, 300.0 * MI)


def test_scale_down_tolerance_can_differ_from_scale_up() -> None:
    # 10 pods at 42 %: 0.84 is outside 0.1 -> ceil(8.4) = 9, but inside a 0.2 scale-down tolerance
    pods = cpu_pods(*[42] * 10)
    assert metric_proposal(CPU_50, pods, 10).replicas == 9
    assert metric_proposal(CPU_50, pods, 10, scale_down_tolerance=0.2).replicas == 10


# --- several metrics (horizontal.go computeReplicasForMetrics) ----------------------------------


def test_several_metrics_take_the_max_and_name_the_driver() -> None:
    # cpu 90 % -> ceil(1.8 * 3) = 6; memory 60 % -> ceil(1.2 * 3) = 4 -> 6, driven by cpu
    decision = HpaController(spec(CPU_50, MEMORY_50)).reconcile(0, 3, both_pods(90, 60, 3))
    assert [p.replicas for p in decision.proposals] == [6, 4]
    assert (decision.desired_replicas, decision.driving_metric) == (6, "cpu")
    assert decision.rescale_reason == (
        "cpu resource utilization (percentage of request) above target"
    )


def test_a_tie_is_driven_by_the_first_metric() -> None:
    pods = both_pods(90, 90, 3)  # both propose 6
    assert HpaController(spec(CPU_50, MEMORY_50)).reconcile(0, 3, pods).driving_metric == "cpu"
    assert HpaController(spec(MEMORY_50, CPU_50)).reconcile(0, 3, pods).driving_metric == "memory"


def test_all_metrics_failing_stops_scaling() -> None:
    pods = [PodUsage("p0", True, 90, None, None, None)]
    decision = HpaController(spec(CPU_50)).reconcile(0, 1, pods)
    assert (decision.desired_replicas, decision.scaling_active) == (1, False)
    assert decision.scaling_active_reason == "FailedGetResourceMetric"
    assert "missing request" in decision.proposals[0].error


def test_a_failed_metric_does_not_block_a_scale_up() -> None:
    # cpu has no request (fails); memory 90 % -> 6 > 3: scale up on the valid metric
    pods = [PodUsage(f"p{i}", True, 90, 90.0 * MI, None, 100.0 * MI) for i in range(3)]
    decision = HpaController(spec(CPU_50, MEMORY_50)).reconcile(0, 3, pods)
    assert (decision.desired_replicas, decision.scaling_active) == (6, True)
    assert decision.driving_metric == "memory"


def test_a_failed_metric_blocks_a_scale_down() -> None:
    # cpu fails; memory 20 % -> ceil(0.4 * 3) = 2 < 3: no scale down on partial information
    pods = [PodUsage(f"p{i}", True, 20, 20.0 * MI, None, 100.0 * MI) for i in range(3)]
    decision = HpaController(spec(CPU_50, MEMORY_50)).reconcile(0, 3, pods)
    assert (decision.desired_replicas, decision.scaling_active) == (3, False)


# --- without spec.behavior (horizontal.go normalizeDesiredReplicas) -----------------------------


def test_legacy_scale_up_is_limited_to_twice_current_or_4() -> None:
    # 1 pod at 500 % -> ceil(10 * 1) = 10, limit max(2 * 1, 4) = 4
    one = HpaController(spec()).reconcile(0, 1, cpu_pods(500))
    assert (one.desired_replicas, one.scaling_limited, one.limited_reason) == (
        4,
        True,
        "ScaleUpLimit",
    )
    assert one.metric_desired_replicas == 10
    # 3 pods at 500 % -> 30, limit max(2 * 3, 4) = 6
    assert HpaController(spec()).reconcile(0, 3, cpu_pods(500, 500, 500)).desired_replicas == 6


def test_legacy_clamps_to_max_with_too_many_replicas() -> None:
    # 4 pods at 100 % -> 8; scale-up limit 8 is not below max 5 -> 5, TooManyReplicas
    decision = HpaController(spec(high=5)).reconcile(0, 4, cpu_pods(100, 100, 100, 100))
    assert (decision.desired_replicas, decision.limited_reason) == (5, "TooManyReplicas")


def test_legacy_clamps_to_min_with_too_few_replicas() -> None:
    # t=0 at 50 % keeps 2; t=400 at 10 % -> ceil(0.2 * 2) = 1, the t=0 recommendations are older
    # than 300 s -> 1, below min 2 -> 2, TooFewReplicas
    ctrl = HpaController(spec(low=2))
    ctrl.reconcile(0, 2, cpu_pods(50, 50))
    decision = ctrl.reconcile(400, 2, cpu_pods(10, 10))
    assert (decision.desired_replicas, decision.scaling_limited) == (2, True)
    assert decision.limited_reason == "TooFewReplicas"


def test_legacy_scale_down_is_held_for_300_s() -> None:
    # t=0 at 50 % recommends 6; from t=15 at 10 % -> ceil(0.2 * 6) = 2. The max of the last 300 s
    # keeps 6 up to t=300 (the t=0 sample is exactly at the cutoff, still inside); t=315 -> 2
    ctrl = HpaController(spec())
    assert ctrl.reconcile(0, 6, cpu_pods(*[50] * 6)).desired_replicas == 6
    held = run(ctrl, range(15, 301, 15), 6, cpu_pods(*[10] * 6))
    assert held == [6] * 20
    after = ctrl.reconcile(315, 6, cpu_pods(*[10] * 6))
    assert (after.desired_replicas, after.rescale_reason) == (2, "All metrics below target")


def test_a_new_controller_holds_the_current_count_as_a_recommendation() -> None:
    # recordInitialRecommendation: the first sync records 6 at t=0, so a low first reading
    # (-> 2) is held: ScaleDownStabilized
    decision = HpaController(spec()).reconcile(0, 6, cpu_pods(*[10] * 6))
    assert (decision.desired_replicas, decision.metric_desired_replicas) == (6, 2)
    assert decision.able_to_scale_reason == "ScaleDownStabilized"


def test_replicas_outside_min_max_are_brought_back_without_metrics() -> None:
    decision = HpaController(spec(high=10)).reconcile(0, 12, cpu_pods(*[90] * 12))
    assert (decision.desired_replicas, decision.proposals) == (10, ())
    assert decision.rescale_reason == "Current number of replicas above Spec.MaxReplicas"


def test_zero_replicas_disables_scaling() -> None:
    decision = HpaController(spec(low=1)).reconcile(0, 0, [])
    assert (decision.desired_replicas, decision.scaling_active) == (0, False)
    assert decision.scaling_active_reason == "ScalingDisabled"


# --- with spec.behavior (horizontal.go normalizeDesiredReplicasWithBehaviors) -------------------


def with_rules(
    scale_up: ScalingRules | None = None, scale_down: ScalingRules | None = None
) -> Behavior:
    """DEFAULT_BEHAVIOR with one or both directions replaced."""
    return Behavior(
        scale_up or DEFAULT_BEHAVIOR.scale_up, scale_down or DEFAULT_BEHAVIOR.scale_down
    )


def first_decision(behavior: Behavior, current: int, pods: list[PodUsage]) -> Decision:
    return HpaController(spec(behavior=behavior)).reconcile(0, current, pods)


def test_behavior_scale_up_policies_max_and_min() -> None:
    # 1 pod at 1000 % -> 20. Pods 4: 1 + 4 = 5; Percent 100: ceil(1 * 2) = 2 -> Max 5, Min 2
    max_rules = DEFAULT_BEHAVIOR.scale_up
    min_rules = ScalingRules(0, max_rules.policies, select_policy="Min")
    by_max = first_decision(DEFAULT_BEHAVIOR, 1, cpu_pods(1000))
    assert (by_max.desired_replicas, by_max.limited_reason) == (5, "ScaleUpLimit")
    assert first_decision(with_rules(min_rules), 1, cpu_pods(1000)).desired_replicas == 2
    # 10 pods at 100 % -> 20. Pods: 14; Percent: 20 -> Max 20 (not limited), Min 14
    ten = cpu_pods(*[100] * 10)
    assert first_decision(DEFAULT_BEHAVIOR, 10, ten).desired_replicas == 20
    assert first_decision(with_rules(min_rules), 10, ten).desired_replicas == 14


def test_behavior_percent_policies_round_in_favour_of_the_change() -> None:
    # Percent 50: up from 3 -> ceil(3 * 1.5) = ceil(4.5) = 5; down from 5 -> int(5 * 0.5) = 2
    half = (ScalingPolicy("Percent", 50, 15),)
    up = first_decision(with_rules(scale_up=ScalingRules(0, half)), 3, cpu_pods(*[1000] * 3))
    assert (up.desired_replicas, up.limited_reason) == (5, "ScaleUpLimit")
    down_rules = with_rules(scale_down=ScalingRules(0, half))
    down = first_decision(down_rules, 5, cpu_pods(*[1] * 5))
    assert (down.desired_replicas, down.limited_reason) == (2, "ScaleDownLimit")


def test_behavior_scale_up_counts_replicas_added_within_the_period() -> None:
    # t=0: 1 -> 5 (event +4). t=10: period start = 5 - 4 = 1 -> limit max(1 + 4, 2) = 5, held.
    # t=15: the t=0 event is no longer after the 15 s cutoff -> start 5 -> max(9, 10) = 10
    ctrl = HpaController(spec(behavior=DEFAULT_BEHAVIOR))
    assert ctrl.reconcile(0, 1, cpu_pods(1000)).desired_replicas == 5
    held = ctrl.reconcile(10, 5, cpu_pods(*[1000] * 5))
    assert (held.desired_replicas, held.limited_reason) == (5, "ScaleUpLimit")
    assert ctrl.reconcile(15, 5, cpu_pods(*[1000] * 5)).desired_replicas == 10


def test_behavior_scale_up_stabilization_takes_the_window_minimum() -> None:
    # up window 60 s. t=0 at 50 % -> 2; t=15..45 at 150 % -> ceil(3 * 2) = 6, but the window
    # still holds 2 -> stay 2. t=60: the t=0 samples leave the window -> 6 (Pods 2 + 4 = 6)
    rules = ScalingRules(60, DEFAULT_BEHAVIOR.scale_up.policies)
    ctrl = HpaController(spec(behavior=with_rules(scale_up=rules)))
    assert ctrl.reconcile(0, 2, cpu_pods(50, 50)).desired_replicas == 2
    held = ctrl.reconcile(15, 2, cpu_pods(150, 150))
    assert (held.desired_replicas, held.able_to_scale_reason) == (2, "ScaleUpStabilized")
    assert run(ctrl, range(30, 61, 15), 2, cpu_pods(150, 150)) == [2, 2, 6]


def test_behavior_scale_down_waits_for_the_window() -> None:
    # default 300 s window. t=0 at 50 % -> 10; from t=15 at 10 % -> ceil(0.2 * 10) = 2, held at
    # 10 until t=300, when the t=0 samples are no longer after the cutoff; 100 %/15 s allows 2
    ctrl = HpaController(spec(behavior=DEFAULT_BEHAVIOR))
    ctrl.reconcile(0, 10, cpu_pods(*[50] * 10))
    low = cpu_pods(*[10] * 10)
    assert run(ctrl, range(15, 286, 15), 10, low) == [10] * 19
    assert ctrl.reconcile(300, 10, low).desired_replicas == 2


def test_behavior_scale_down_rate_per_period() -> None:
    # no window, at most 1 pod per 60 s: t=0 10 -> 9 (ScaleDownLimit); t=15 start 9 + 1 = 10
    # -> limit 9, held; t=60 the t=0 event has left the period -> 8
    rules = ScalingRules(0, (ScalingPolicy("Pods", 1, 60),))
    ctrl = HpaController(spec(behavior=with_rules(scale_down=rules)))
    first = ctrl.reconcile(0, 10, cpu_pods(*[10] * 10))
    assert (first.desired_replicas, first.limited_reason) == (9, "ScaleDownLimit")
    assert ctrl.reconcile(15, 9, cpu_pods(*[10] * 9)).desired_replicas == 9
    assert ctrl.reconcile(60, 9, cpu_pods(*[10] * 9)).desired_replicas == 8


def test_disabled_select_policy_blocks_that_direction_only() -> None:
    # scale up disabled: 2 pods at 150 % -> 6 wanted, stays 2 (ScaleUpLimit); down still works
    rules = ScalingRules(0, DEFAULT_BEHAVIOR.scale_up.policies, select_policy="Disabled")
    blocked = first_decision(with_rules(scale_up=rules), 2, cpu_pods(150, 150))
    assert (blocked.desired_replicas, blocked.scaling_limited) == (2, True)
    assert blocked.limited_reason == "ScaleUpLimit"
    no_window = ScalingRules(0, DEFAULT_BEHAVIOR.scale_down.policies)
    down = first_decision(with_rules(rules, no_window), 4, cpu_pods(10, 10, 10, 10))
    assert down.desired_replicas == 1  # ceil(0.2 * 4) = 1


def test_behavior_tolerance_is_per_direction() -> None:
    # 5 pods at 52 %: 1.04 is inside the default 0.1 -> 5; with scaleUp tolerance 0 -> ceil(5.2) = 6
    pods = cpu_pods(*[52] * 5)
    assert first_decision(DEFAULT_BEHAVIOR, 5, pods).desired_replicas == 5
    eager = ScalingRules(0, DEFAULT_BEHAVIOR.scale_up.policies, tolerance=0.0)
    assert first_decision(with_rules(scale_up=eager), 5, pods).desired_replicas == 6
