"""Object, External, Pods and ContainerResource metrics against the controller's own unit tests.

Every case translates one test of kube-controller-manager's
``pkg/controller/podautoscaler/replica_calculator_test.go`` (Kubernetes v1.35.4), named in its
docstring, with the upstream inputs and expected values. Upstream gives metric levels as
milli-values; here they are in the metric's unit (20000 milli-qps = 20.0 qps). Upstream's pods are
``test-pod-N``, Running and Ready unless the case says otherwise, with two containers of 1 CPU
request each; its CPU initialization period is 2 min and its metric window 1 min.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from analysis.hpa.controller import HpaController
from analysis.hpa.model import (
    AnyTarget,
    ContainerUsage,
    HpaSpec,
    MetricProposal,
    PodUsage,
    Tolerances,
)
from analysis.hpa.readiness import ReadinessTiming
from analysis.hpa.sources import source_proposal
from analysis.hpa.targets import (
    ContainerResourceTarget,
    ExternalTarget,
    MetricReadings,
    ObjectTarget,
    PodsTarget,
)

pytestmark = pytest.mark.unit

NOW = 1_800_000_000.0
GO_TIMING = ReadinessTiming(cpu_initialization_period_s=120.0, initial_readiness_delay_s=10.0)
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1
DEPLOYMENT = "Deployment/some-deployment"
# replica_calculator_test.go: Tolerances{defaultTestingTolerance, .01} = down 0.1, up 0.01
UP_1_PCT = Tolerances(scale_down=0.1, scale_up=0.01)


def pods(
    count: int,
    *,
    ready: Sequence[bool] = (),
    phase: Sequence[str] = (),
    deleting: Sequence[bool] = (),
    hot: Sequence[int] = (),
    qps: Sequence[float] = (),
    cpu: Sequence[Sequence[float]] = (),
) -> list[PodUsage]:
    """Upstream's pod list: ``qps`` per pod (Pods metric), ``cpu`` per pod per container in
    millicores; a pod past the end of a list has no metric; ``hot`` pods started just now."""
    out = []
    for i in range(count):
        containers = {
            f"container{j + 1}": ContainerUsage(
                cpu[i][j] if i < len(cpu) and j < len(cpu[i]) else None, None, 1000.0, None
            )
            for j in range(2)
        }
        started = NOW - 1 if i in hot else NOW - 3600
        out.append(
            PodUsage(
                f"test-pod-{i}",
                ready[i] if i < len(ready) else True,
                None,
                None,
                None,
                None,
                phase=phase[i] if i < len(phase) else "Running",
                deleting=deleting[i] if i < len(deleting) else False,
                start_ts=started,
                ready_since_ts=started,
                metric_ts=started if i in hot else NOW,
                metric_window_s=60.0,
                pod_metrics={"qps": qps[i]} if i < len(qps) else {},
                containers=containers,
            )
        )
    return out


def propose(
    target: object,
    listed: list[PodUsage],
    current: int,
    *,
    objects: float | None = None,
    external: Sequence[float] = (),
    tolerances: Tolerances | None = None,
) -> MetricProposal:
    readings = MetricReadings(
        object_values={} if objects is None else {"qps": objects},
        external_values={"qps": tuple(external)} if external else {},
    )
    proposal = source_proposal(
        target,  # type: ignore[arg-type]
        listed,
        current,
        readings,
        tolerances or Tolerances(),
        now_s=NOW,
        timing=GO_TIMING,
    )
    assert proposal.error == ""
    return proposal


def qps_object(value: float | None = None, average: float | None = None) -> ObjectTarget:
    return ObjectTarget("qps", DEPLOYMENT, target_value=value, target_average_value=average)


def qps_external(value: float | None = None, average: float | None = None) -> ExternalTarget:
    return ExternalTarget("qps", value, average, selector="label=value")


# --- Pods metrics (podMetric: GetMetricReplicas) ------------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "current", "levels", "target", "ready", "hot", "expected", "usage"),
    [
        ("TestReplicaCalcScaleUpCM", 3, (20.0, 10.0, 30.0), 15.0, (), (), 4, 20.0),
        # readiness and start times do not matter for a metric that is not CPU
        (
            "TestReplicaCalcScaleUpCMUnreadyHotCpuNoLessScale",
            3,
            (50.0, 10.0, 30.0),
            15.0,
            (True, True, False),
            (2,),
            6,
            30.0,
        ),
        (
            "TestReplicaCalcScaleUpCMUnreadyHotCpuScaleWouldScaleDown",
            3,
            (50.0, 15.0, 30.0),
            15.0,
            (False, True, False),
            (0, 2),
            7,
            31.666,
        ),
        ("TestReplicaCalcScaleUpCMExternal (a Pods metric)", 1, (8.6,), 4.4, (), (), 2, 8.6),
        ("TestReplicaCalcScaleUpCMExternalNoLabels", 1, (8.6,), 4.4, (), (), 2, 8.6),
        ("TestReplicaCalcScaleDownCM", 5, (12.0,) * 5, 20.0, (), (), 3, 12.0),
        ("TestReplicaCalcToleranceCM", 3, (20.0, 21.0, 21.0), 20.0, (), (), 3, 20.666),
        # two pods without a value: the ratio is exactly 1, so nothing is filled in
        (
            "TestPlainMetricReplicaCalcMissingMetricsNoChangeEq",
            5,
            (20.0, 19.0, 21.0),
            20.0,
            (),
            (),
            5,
            20.0,
        ),
    ],
)
def test_pods_metric(
    *,
    upstream: str,
    current: int,
    levels: tuple[float, ...],
    target: float,
    ready: tuple[bool, ...],
    hot: tuple[int, ...],
    expected: int,
    usage: float,
) -> None:
    listed = pods(current, ready=ready, hot=hot, qps=levels)
    proposal = propose(PodsTarget("qps", target), listed, current)
    assert (proposal.replicas, proposal.average_value) == (expected, usage), upstream


def test_pods_metric_rolling_update_with_max_surge() -> None:
    """TestReplicaCalcDuringRollingUpdateWithMaxSurgeCM: 2 replicas, 3 Running pods, one without
    a value; on a scale down it counts at the target, which would need 3 pods: keep 2."""
    proposal = propose(PodsTarget("qps", 17.0), pods(3, qps=(10.0, 10.0)), 2)
    assert (proposal.replicas, proposal.average_value) == (2, 10.0)


def test_pods_metric_configurable_tolerance() -> None:
    """TestReplicaCalcConfigurableToleranceCM: 20.666 / 20 = 1.033 is above a 1 % up-tolerance."""
    listed = pods(3, qps=(20.0, 21.0, 21.0))
    proposal = propose(PodsTarget("qps", 20.0), listed, 3, tolerances=UP_1_PCT)
    assert (proposal.replicas, proposal.average_value) == (4, 20.666)


# --- Object metrics (objectMetric, objectPerPodMetric) ------------------------------------------


@pytest.mark.parametrize(
    ("upstream", "current", "value", "target", "ready", "tolerances", "expected"),
    [
        ("TestReplicaCalcScaleUpCMObject", 3, 20.0, 15.0, (), None, 4),
        # 50 / 10 = 5 times the ready pods: 1 of 3 is Ready (15 if the unready counted)
        (
            "TestReplicaCalcScaleUpCMObjectIgnoresUnreadyPods",
            3,
            50.0,
            10.0,
            (False, True, False),
            None,
            5,
        ),
        ("TestReplicaCalcScaleDownCMObject", 5, 12.0, 20.0, (), None, 3),
        ("TestReplicaCalcToleranceCMObject", 3, 20.666, 20.0, (), None, 3),
        ("TestReplicaCalcConfigurableToleranceCMObject", 3, 20.666, 20.0, (), UP_1_PCT, 4),
    ],
)
def test_object_value_target(
    *,
    upstream: str,
    current: int,
    value: float,
    target: float,
    ready: tuple[bool, ...],
    tolerances: Tolerances | None,
    expected: int,
) -> None:
    listed = pods(current, ready=ready)
    proposal = propose(
        qps_object(value=target), listed, current, objects=value, tolerances=tolerances
    )
    assert (proposal.replicas, proposal.value) == (expected, value), upstream


@pytest.mark.parametrize(
    ("upstream", "current", "value", "target", "tolerances", "expected", "average"),
    [
        ("TestReplicaCalcScaleUpCMPerPodObject", 3, 20.0, 5.0, None, 4, 6.667),
        ("TestReplicaCalcScaleDownPerPodCMObject", 5, 6.0, 2.0, None, 3, 1.2),
        ("TestReplicaCalcTolerancePerPodCMObject", 4, 20.166, 5.0, None, 4, 5.042),
        ("TestReplicaCalcConfigurableTolerancePerPodCMObject", 4, 20.208, 5.0, UP_1_PCT, 5, 5.052),
    ],
)
def test_object_average_value_target(
    *,
    upstream: str,
    current: int,
    value: float,
    target: float,
    tolerances: Tolerances | None,
    expected: int,
    average: float,
) -> None:
    listed = pods(current)
    proposal = propose(
        qps_object(average=target), listed, current, objects=value, tolerances=tolerances
    )
    assert (proposal.replicas, proposal.average_value) == (expected, average), upstream


# --- External metrics (externalMetric, externalPerPodMetric) ------------------------------------


@pytest.mark.parametrize(
    ("upstream", "current", "series", "target", "ready", "tolerances", "expected"),
    [
        # 8.6 / 4.4 = 1.95 times the 1 Ready pod of 3 (6 if the unready counted)
        (
            "TestReplicaCalcScaleUpCMExternalIgnoresUnreadyPods",
            3,
            (8.6,),
            4.4,
            (False, True, False),
            None,
            2,
        ),
        ("TestReplicaCalcScaleDownCMExternal", 5, (8.6,), 14.334, (), None, 3),
        ("TestReplicaCalcToleranceCMExternal", 3, (8.6,), 8.888, (), None, 3),
        ("TestReplicaCalcConfigurableToleranceCMExternal", 3, (8.9,), 8.8, (), UP_1_PCT, 4),
    ],
)
def test_external_value_target(
    *,
    upstream: str,
    current: int,
    series: tuple[float, ...],
    target: float,
    ready: tuple[bool, ...],
    tolerances: Tolerances | None,
    expected: int,
) -> None:
    listed = pods(current, ready=ready)
    proposal = propose(
        qps_external(value=target), listed, current, external=series, tolerances=tolerances
    )
    assert (proposal.replicas, proposal.value) == (expected, sum(series)), upstream


@pytest.mark.parametrize(
    ("upstream", "current", "target", "tolerances", "expected", "average"),
    [
        ("TestReplicaCalcScaleUpPerPodCMExternal", 3, 2.15, None, 4, 2.867),
        ("TestReplicaCalcScaleDownPerPodCMExternal", 5, 2.867, None, 3, 1.72),
        ("TestReplicaCalcTolerancePerPodCMExternal", 3, 2.9, None, 3, 2.867),
        ("TestReplicaCalcConfigurableTolerancePerPodCMExternal", 3, 2.8, UP_1_PCT, 4, 2.867),
    ],
)
def test_external_average_value_target(
    *,
    upstream: str,
    current: int,
    target: float,
    tolerances: Tolerances | None,
    expected: int,
    average: float,
) -> None:
    listed = pods(current)
    proposal = propose(
        qps_external(average=target), listed, current, external=(8.6,), tolerances=tolerances
    )
    assert (proposal.replicas, proposal.average_value) == (expected, average), upstream


def test_external_per_pod_replicas_capped_at_int32() -> None:
    """TestExternalPerPodMetricReplicaOverflow: MaxInt64 milli against a 1-milli target."""
    proposal = propose(qps_external(average=0.001), pods(1), 1, external=(INT64_MAX / 1000,))
    assert (proposal.replicas, proposal.average_value) == (INT32_MAX, INT64_MAX / 1000)


def test_external_per_pod_usage_at_int64() -> None:
    """TestExternalPerPodMetricUsageOverflow: MaxInt64 against a MaxInt64 target keeps 1."""
    big = INT64_MAX / 1000
    proposal = propose(qps_external(average=big), pods(1), 1, external=(big,))
    assert (proposal.replicas, proposal.average_value) == (1, INT64_MAX / 1000)


def test_external_sum_capped_at_int64() -> None:
    """TestReplicaCalcExternalMetricUsageOverflow: two halves of MaxInt64 + 1 sum past it; the
    usage is capped, the ratio to a MaxInt64 target is 1, and 3 replicas stay."""
    half = (INT64_MAX // 2 + 1) / 1000
    proposal = propose(qps_external(value=INT64_MAX / 1000), pods(3), 3, external=(half, half))
    assert (proposal.replicas, proposal.value) == (3, INT64_MAX / 1000)


def test_object_and_external_value_from_zero_replicas() -> None:
    """getUsageRatioReplicaCount: with 0 replicas the ratio alone decides (ceil(ratio)), with no
    tolerance and no pod count; not an upstream case of replica_calculator_test.go."""
    assert propose(qps_object(value=4.0), [], 0, objects=9.0).replicas == 3
    assert propose(qps_external(value=4.0), [], 0, external=(2.0, 2.0)).replicas == 1


# --- ContainerResource metrics (resource with container) ----------------------------------------


def cpu2(target: int, container: str = "container2") -> ContainerResourceTarget:
    return ContainerResourceTarget("cpu", container, target)


@pytest.mark.parametrize(
    ("upstream", "current", "listed", "target", "expected", "utilization", "raw_m"),
    [
        (
            "TestReplicaCalcContainerScaleUp",
            3,
            pods(3, cpu=((1000, 300), (1000, 500), (1000, 700))),
            cpu2(30),
            5,
            50,
            500,
        ),
        (
            "TestReplicaCalcScaleUpContainerHotCpuLessScale",
            3,
            pods(3, hot=(0,), cpu=((0, 300), (0, 500), (0, 700))),
            cpu2(30),
            4,
            60,
            600,
        ),
        (
            "TestReplicaCalcMissingContainerMetricScaleUpIgnoresFailedPods",
            2,
            pods(
                4,
                ready=(True, True, False, False),
                phase=("Running", "Running", "Failed", "Failed"),
                cpu=((1000, 500), (9000, 700), (1000,), (9000,)),
            ),
            cpu2(30),
            4,
            60,
            600,
        ),
        (
            "TestReplicaCalcScaleUpContainerIgnoresFailedPods",
            2,
            pods(
                4,
                ready=(True, True, False, False),
                phase=("Running", "Running", "Failed", "Failed"),
                cpu=((1000, 500), (9000, 700)),
            ),
            cpu2(30),
            4,
            60,
            600,
        ),
        (
            "TestReplicaCalcScaleUpContainerIgnoresDeletionPods",
            2,
            pods(
                4,
                ready=(True, True, False, False),
                deleting=(False, False, True, True),
                cpu=((500, 500), (700, 700)),
            ),
            cpu2(30, "container1"),
            4,
            60,
            600,
        ),
        (
            "TestReplicaCalcContainerScaleDown",
            5,
            pods(5, cpu=((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250))),
            cpu2(50),
            3,
            28,
            280,
        ),
        (
            "TestReplicaCalcScaleDownContainerExcludeUnreadyPods",
            5,
            pods(
                5,
                ready=(True, True, True, False, False),
                cpu=((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
            ),
            cpu2(50),
            2,
            30,
            300,
        ),
        (
            "TestReplicaCalcScaleDownContainerExcludeUnscheduledPods",
            5,
            pods(
                5,
                ready=(True, False, False, False, False),
                phase=("Running", "Pending", "Pending", "Pending", "Pending"),
                cpu=((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
            ),
            cpu2(50),
            1,
            10,
            100,
        ),
        (
            "TestReplicaCalcScaleDownContainerIgnoreHotCpuPods",
            5,
            pods(
                5,
                hot=(3, 4),
                cpu=((1000, 100), (1000, 300), (1000, 500), (1000, 1000), (1000, 1000)),
            ),
            cpu2(50),
            2,
            30,
            300,
        ),
        (
            "TestReplicaCalcScaleDownContainerIgnoresFailedPods",
            5,
            pods(
                7,
                ready=(True,) * 5 + (False, False),
                phase=("Running",) * 5 + ("Failed", "Failed"),
                cpu=((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
            ),
            cpu2(50),
            3,
            28,
            280,
        ),
        (
            "TestReplicaCalcScaleDownIgnoresDeletionPods_StillRunning",
            5,
            pods(
                7,
                ready=(True,) * 5 + (False, False),
                deleting=(False,) * 5 + (True, True),
                cpu=((1000, 100), (1000, 300), (1000, 500), (1000, 250), (1000, 250)),
            ),
            cpu2(50),
            3,
            28,
            280,
        ),
    ],
)
def test_container_resource(
    *,
    upstream: str,
    current: int,
    listed: list[PodUsage],
    target: ContainerResourceTarget,
    expected: int,
    utilization: int,
    raw_m: float,
) -> None:
    proposal = propose(target, listed, current)
    assert (proposal.replicas, proposal.utilization_pct, proposal.average_value) == (
        expected,
        utilization,
        raw_m,
    ), upstream


def test_container_missing_from_a_pod_fails_the_metric() -> None:
    """TestCalculatePodRequestsFromContainers_NonExistentContainer: a container the pod does not
    have fails the metric (and the controller keeps the replicas)."""
    listed = pods(2, cpu=((100, 100), (100, 100)))
    proposal = source_proposal(cpu2(50, "sidecar"), listed, 2)
    assert proposal.replicas is None
    assert "container sidecar not found in Pod test-pod-0" in proposal.error


# --- through the controller: the rescale reason in the controller's words ----------------------


def test_rescale_reasons_name_each_source() -> None:
    """horizontal.go computeStatusFor*Metric: the metric name in the SuccessfulRescale reason."""
    cases: list[tuple[AnyTarget, str]] = [
        (PodsTarget("qps", 1.0), "pods metric qps above target"),
        (qps_object(value=1.0), "Deployment metric qps above target"),
        (qps_external(average=1.0), "external metric qps(label=value) above target"),
        (cpu2(10), "cpu container resource utilization (percentage of request) above target"),
    ]
    listed = pods(2, qps=(5.0, 5.0), cpu=((0, 500), (0, 500)))
    readings = MetricReadings({"qps": 10.0}, {"qps": (10.0,)})
    for target, reason in cases:
        controller = HpaController(HpaSpec(1, 10, (target,)))
        decision = controller.reconcile(NOW, 2, listed, readings)
        assert decision.desired_replicas > 2
        assert decision.rescale_reason == reason
        assert decision.driving_metric == ("cpu" if target is cases[3][0] else "qps")
