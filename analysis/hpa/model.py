"""The autoscaling/v2 HorizontalPodAutoscaler replica calculation, as a pure model.

kubeswarm needs to know what a real HPA *would* do: the local autoscaler of `kubeswarm demo` and
`--local` runs must scale the target exactly as the cluster would, and the what-if replay
(`kubeswarm report --whatif`) re-runs a recorded load against changed requests, targets or bounds.
Both only make sense if the numbers match kube-controller-manager, so this module follows the
controller's Go source rule by rule (file names are cited where a rule comes from):

- ``pkg/controller/podautoscaler/replica_calculator.go``: groupPods, calculateRequests,
  GetResourceReplicas (Utilization targets), GetRawResourceReplicas/calcPlainMetricReplicas
  (AverageValue targets), Tolerances.isWithin;
- ``pkg/controller/podautoscaler/metrics/utilization.go``: GetResourceUtilizationRatio,
  GetMetricUsageRatio (integer arithmetic on milli-units);
- ``pkg/controller/podautoscaler/horizontal.go``: computeReplicasForMetrics (the max over
  metrics); what the controller keeps between syncs (reconcileAutoscaler, stabilization,
  scale-rate limits) is ``analysis.hpa.controller``;
- ``pkg/apis/autoscaling/v2/defaults.go``: the behavior defaults (DEFAULT_BEHAVIOR).

For CPU the controller also looks at when a pod started and when its Ready condition last changed
(``--horizontal-pod-autoscaler-cpu-initialization-period``, default 5 min, and
``--horizontal-pod-autoscaler-initial-readiness-delay``, default 30 s): ``analysis.hpa.readiness``
groupPods when a pod's start and readiness transition times are known. Without them (runs recorded
before pods.csv had them) a not-Ready pod is unready for CPU, which is what the controller does
during the initialization period and for pods that never became Ready.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from analysis.hpa.readiness import ReadinessTiming, cpu_unready
from analysis.hpa.targets import ContainerResourceTarget, ExternalTarget, ObjectTarget, PodsTarget

Resource = Literal["cpu", "memory"]
SelectPolicy = Literal["Max", "Min", "Disabled"]

# Quantity.MilliValue() units the controller computes with: CPU is given here in millicores
# (already milli-units), memory in bytes (x 1000 milli-bytes).
_MILLI_PER_UNIT: dict[Resource, int] = {"cpu": 1, "memory": 1000}


@dataclass(frozen=True)
class PodUsage:
    """One pod as the HPA sees it at one sync."""

    name: str
    ready: bool
    cpu_m: float | None  # usage in millicores; None = no metrics for this pod
    memory_bytes: float | None  # working set in bytes; None = no metrics
    cpu_request_m: float | None  # None = no request set
    memory_request_bytes: float | None
    # Pod phase: "Pending" pods are unready for every resource, "Failed" pods are ignored
    # (replica_calculator.go groupPods). Default "Running" because most recorded pods are.
    phase: str = "Running"
    # Epoch s: status.startTime and the Ready condition's lastTransitionTime; None = not known.
    start_ts: float | None = None
    ready_since_ts: float | None = None
    deleting: bool = False  # metadata.deletionTimestamp set: ignored like a failed pod
    # When the usage was measured and over what window (PodMetrics timestamp and window);
    # None = at the sync, over ReadinessTiming.metric_window_s.
    metric_ts: float | None = None
    metric_window_s: float | None = None
    # Pods metrics (custom metrics API) of this pod by metric name, in the metric's unit;
    # a name absent = no value for this pod. Per-container usage and requests for
    # ContainerResource metrics by container name; absent = the container has no metrics.
    pod_metrics: Mapping[str, float] = field(default_factory=dict)
    containers: Mapping[str, ContainerUsage] = field(default_factory=dict)


@dataclass(frozen=True)
class ContainerUsage:
    """One container of a pod: usage (None = no metrics) and requests (None = none set)."""

    cpu_m: float | None
    memory_bytes: float | None
    cpu_request_m: float | None
    memory_request_bytes: float | None


@dataclass(frozen=True)
class MetricTarget:
    resource: Resource
    target_utilization_pct: int  # percent of request
    # AverageValue target (millicores for cpu, bytes for memory); when set it wins over the
    # utilization target, as in horizontal.go computeStatusForResourceMetricGeneric. None = unused.
    target_average_value: float | None = None


AnyTarget = MetricTarget | ContainerResourceTarget | PodsTarget | ObjectTarget | ExternalTarget


@dataclass(frozen=True)
class ScalingPolicy:
    kind: Literal["Pods", "Percent"]
    value: int
    period_s: float


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_s: float
    policies: tuple[ScalingPolicy, ...]
    select_policy: SelectPolicy = "Max"
    tolerance: float = 0.1  # the controller's --horizontal-pod-autoscaler-tolerance default


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules
    scale_down: ScalingRules


# defaults.go: scale up by max(4 pods, 100 %) per 15 s without stabilization; scale down by up to
# 100 % per 15 s after the controller's 300 s downscale stabilization window.
DEFAULT_BEHAVIOR = Behavior(
    scale_up=ScalingRules(
        stabilization_window_s=0.0,
        policies=(ScalingPolicy("Pods", 4, 15.0), ScalingPolicy("Percent", 100, 15.0)),
    ),
    scale_down=ScalingRules(
        stabilization_window_s=300.0, policies=(ScalingPolicy("Percent", 100, 15.0),)
    ),
)


@dataclass(frozen=True)
class HpaSpec:
    min_replicas: int
    max_replicas: int
    metrics: tuple[AnyTarget, ...]
    behavior: Behavior | None = None  # None = the controller's path without spec.behavior


@dataclass(frozen=True)
class ControllerSettings:
    """kube-controller-manager flags that shape the HPA when spec.behavior does not."""

    tolerance: float = 0.1  # --horizontal-pod-autoscaler-tolerance default
    downscale_stabilization_s: float = 300.0  # --horizontal-pod-autoscaler-downscale-stabilization
    readiness: ReadinessTiming = field(default_factory=ReadinessTiming)


@dataclass(frozen=True)
class MetricProposal:
    # ``cpu`` or ``memory`` for Resource and ContainerResource metrics, else the metric's name
    resource: str
    utilization_pct: int | None  # None when the metric failed or the target is an AverageValue
    target_pct: int
    replicas: int | None  # this metric's proposal; None when it failed
    error: str = ""  # why it failed, e.g. "missing request for cpu"
    # status.currentMetrics[].resource.current.averageValue in millicores or bytes; None on failure
    average_value: float | None = None
    target_average_value: float | None = None
    # status.currentMetrics[].*.current.value of Object and External Value targets; the source
    # type (Resource, ContainerResource, Pods, Object, External); the controller's words for the
    # metric in its SuccessfulRescale reason ("pods metric queue_depth")
    value: float | None = None
    target_value: float | None = None
    source: str = "Resource"
    reason_name: str = ""


@dataclass(frozen=True)
class Decision:
    desired_replicas: int
    proposals: tuple[MetricProposal, ...]
    driving_metric: str | None  # the metric whose proposal was highest (first on ties)
    able_to_scale: bool
    scaling_active: bool
    scaling_limited: bool
    limited_reason: str  # TooManyReplicas, TooFewReplicas, ScaleUpLimit, ScaleDownLimit, ...
    # Additions: condition reasons as the controller writes them, the SuccessfulRescale reason,
    # and the max of the metric proposals before stabilization and limits (None if not computed).
    able_to_scale_reason: str = ""
    scaling_active_reason: str = ""
    rescale_reason: str = ""
    metric_desired_replicas: int | None = None


@dataclass(frozen=True)
class Tolerances:
    """replica_calculator.go Tolerances: a ratio inside [1 - down, 1 + up] changes nothing."""

    scale_down: float = 0.1
    scale_up: float = 0.1

    def is_within(self, usage_ratio: float) -> bool:
        return 1.0 - self.scale_down <= usage_ratio <= 1.0 + self.scale_up


class MetricFailedError(Exception):
    """A metric the controller could not compute (the message is the controller's reason)."""


@dataclass(frozen=True)
class PodGroups:
    ready_count: int
    metrics: dict[str, int]  # usage in milli-units of ready pods that have metrics
    unready: tuple[str, ...]
    missing: tuple[str, ...]


def _milli(resource: Resource, value: float) -> int:
    return milli(value, _MILLI_PER_UNIT[resource])


def milli(value: float, milli_per_unit: int = 1000) -> int:
    """Quantity.MilliValue(): rounds up; round() first so float noise does not add a milli-unit."""
    return math.ceil(round(value * milli_per_unit, 6))


def _usage_of(pod: PodUsage, resource: Resource) -> float | None:
    return pod.cpu_m if resource == "cpu" else pod.memory_bytes


def _request_of(pod: PodUsage, resource: Resource) -> float | None:
    return pod.cpu_request_m if resource == "cpu" else pod.memory_request_bytes


def _group_pods(
    pods: Sequence[PodUsage],
    resource: Resource,
    now_s: float | None = None,
    timing: ReadinessTiming | None = None,
) -> PodGroups:
    """replica_calculator.go groupPods: readiness only matters for CPU; Pending is unready;
    deleted and failed pods are left out entirely."""
    if all(_usage_of(p, resource) is None for p in pods):
        # metrics/client.go: an empty PodMetricsList is an error before pods are even listed
        msg = "no metrics returned from resource metrics API"
        raise MetricFailedError(f"unable to get metrics for resource {resource}: {msg}")
    return group_pod_values(
        pods,
        lambda pod: _usage_of(pod, resource),
        _MILLI_PER_UNIT[resource],
        cpu_rules=resource == "cpu",
        now_s=now_s,
        timing=timing,
    )


def group_pod_values(
    pods: Sequence[PodUsage],
    value_of: Callable[[PodUsage], float | None],
    milli_per_unit: int,
    *,
    cpu_rules: bool = False,
    now_s: float | None = None,
    timing: ReadinessTiming | None = None,
) -> PodGroups:
    """groupPods for any per-pod value (a resource, or a Pods metric with no resource: then
    only Pending makes a pod unready)."""
    timing = timing or ReadinessTiming()
    metrics: dict[str, int] = {}
    unready: list[str] = []
    missing: list[str] = []
    for pod in pods:
        usage = value_of(pod)
        if pod.phase == "Failed" or pod.deleting:
            continue
        if pod.phase == "Pending" or (
            usage is not None
            and cpu_rules
            and cpu_unready(
                ready=pod.ready,
                start_ts=pod.start_ts,
                ready_since_ts=pod.ready_since_ts,
                metric_ts=pod.metric_ts,
                metric_window_s=pod.metric_window_s,
                now_s=now_s,
                timing=timing,
            )
        ):
            unready.append(pod.name)
        elif usage is None:
            missing.append(pod.name)
        else:
            metrics[pod.name] = milli(usage, milli_per_unit)
    if not metrics:
        raise MetricFailedError("did not receive metrics for targeted pods (pods might be unready)")
    return PodGroups(len(metrics), metrics, tuple(unready), tuple(missing))


def _pod_requests(pods: Sequence[PodUsage], resource: Resource) -> dict[str, int]:
    """replica_calculator.go calculateRequests: every listed pod needs a request."""
    requests: dict[str, int] = {}
    for pod in pods:
        request = _request_of(pod, resource)
        if request is None:
            raise MetricFailedError(f"missing request for {resource} in Pod {pod.name}")
        requests[pod.name] = _milli(resource, request)
    return requests


def replicas_with_rebalance(
    current_replicas: int,
    usage_ratio: float,
    groups: PodGroups,
    tolerances: Tolerances,
    *,
    ratio_of: Callable[[dict[str, int]], float],
    missing_on_scale_down: Callable[[str], int],
) -> int:
    """The part of GetResourceReplicas/calcPlainMetricReplicas after the first ratio."""
    scale_up_with_unready = bool(groups.unready) and usage_ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if tolerances.is_within(usage_ratio):
            return current_replicas
        return math.ceil(usage_ratio * groups.ready_count)
    metrics = dict(groups.metrics)
    if usage_ratio < 1.0:
        metrics.update({name: missing_on_scale_down(name) for name in groups.missing})
    elif usage_ratio > 1.0:
        metrics.update(dict.fromkeys(groups.missing, 0))
    if scale_up_with_unready:
        metrics.update(dict.fromkeys(groups.unready, 0))
    new_ratio = ratio_of(metrics)
    flipped = (usage_ratio < 1.0 < new_ratio) or (usage_ratio > 1.0 > new_ratio)
    if tolerances.is_within(new_ratio) or flipped:
        return current_replicas
    new_replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and new_replicas > current_replicas) or (
        new_ratio > 1.0 and new_replicas < current_replicas
    ):
        return current_replicas
    return new_replicas


def _utilization(
    metrics: dict[str, int], requests: dict[str, int], target_pct: int
) -> tuple[float, int, int]:
    """metrics/utilization.go GetResourceUtilizationRatio: (ratio, utilization %, raw average)."""
    usage_total = sum(metrics.values())
    requests_total = sum(requests[name] for name in metrics)
    if requests_total == 0:
        raise MetricFailedError("no metrics returned matched known pods")
    utilization = usage_total * 100 // requests_total
    return utilization / target_pct, utilization, usage_total // len(metrics)


def _utilization_proposal(
    target: MetricTarget,
    pods: Sequence[PodUsage],
    current_replicas: int,
    tolerances: Tolerances,
    *,
    now_s: float | None = None,
    timing: ReadinessTiming | None = None,
) -> MetricProposal:
    groups = _group_pods(pods, target.resource, now_s, timing)
    requests = _pod_requests(pods, target.resource)
    target_pct = target.target_utilization_pct
    ratio, utilization, raw_average = _utilization(groups.metrics, requests, target_pct)
    # on a scale down a missing pod is assumed at 100 % of its request, or at the target if higher
    fallback_pct = max(100, target_pct)
    replicas = replicas_with_rebalance(
        current_replicas,
        ratio,
        groups,
        tolerances,
        ratio_of=lambda metrics: _utilization(metrics, requests, target_pct)[0],
        missing_on_scale_down=lambda name: requests[name] * fallback_pct // 100,
    )
    return MetricProposal(
        resource=target.resource,
        utilization_pct=utilization,
        target_pct=target_pct,
        replicas=replicas,
        average_value=raw_average / _MILLI_PER_UNIT[target.resource],
    )


def _average_value_proposal(
    target: MetricTarget,
    pods: Sequence[PodUsage],
    current_replicas: int,
    tolerances: Tolerances,
    *,
    now_s: float | None = None,
    timing: ReadinessTiming | None = None,
) -> MetricProposal:
    """replica_calculator.go calcPlainMetricReplicas: no requests needed."""
    assert target.target_average_value is not None
    groups = _group_pods(pods, target.resource, now_s, timing)
    target_milli = _milli(target.resource, target.target_average_value)

    def ratio_of(metrics: dict[str, int]) -> float:
        return (sum(metrics.values()) // len(metrics)) / target_milli

    ratio = ratio_of(groups.metrics)
    # on a scale down a missing pod is assumed exactly at the target
    replicas = replicas_with_rebalance(
        current_replicas,
        ratio,
        groups,
        tolerances,
        ratio_of=ratio_of,
        missing_on_scale_down=lambda _name: target_milli,
    )
    average_milli = sum(groups.metrics.values()) // len(groups.metrics)
    return MetricProposal(
        resource=target.resource,
        utilization_pct=None,
        target_pct=target.target_utilization_pct,
        replicas=replicas,
        average_value=average_milli / _MILLI_PER_UNIT[target.resource],
        target_average_value=target.target_average_value,
    )


def metric_proposal(
    target: MetricTarget,
    pods: Sequence[PodUsage],
    current_replicas: int,
    tolerance: float = 0.1,
    *,
    scale_down_tolerance: float | None = None,
    now_s: float | None = None,
    timing: ReadinessTiming | None = None,
) -> MetricProposal:
    """One metric's replica proposal, or a failed proposal that says why.

    ``tolerance`` applies to both directions unless ``scale_down_tolerance`` is given
    (behavior.scaleDown.tolerance, HPAConfigurableTolerance). ``now_s`` (the sync's time) turns
    on the CPU readiness timing rules for pods whose start and readiness times are known.
    """
    down = tolerance if scale_down_tolerance is None else scale_down_tolerance
    tolerances = Tolerances(scale_down=down, scale_up=tolerance)
    try:
        if target.target_average_value is not None:
            return _average_value_proposal(
                target, pods, current_replicas, tolerances, now_s=now_s, timing=timing
            )
        return _utilization_proposal(
            target, pods, current_replicas, tolerances, now_s=now_s, timing=timing
        )
    except MetricFailedError as e:
        return MetricProposal(
            resource=target.resource,
            utilization_pct=None,
            target_pct=target.target_utilization_pct,
            replicas=None,
            error=str(e),
            target_average_value=target.target_average_value,
        )


def combine_proposals(
    proposals: Sequence[MetricProposal], current_replicas: int
) -> tuple[int, MetricProposal] | None:
    """horizontal.go computeReplicasForMetrics: the max proposal and the proposal behind it.

    None when every metric failed, or when one failed and the others would scale down (an
    unreadable metric must not let the HPA remove pods).
    """
    replicas, driving, invalid = 0, None, 0
    for proposal in proposals:
        if proposal.replicas is None:
            invalid += 1
        elif replicas == 0 or proposal.replicas > replicas:  # Go's sentinel: first on ties
            replicas, driving = proposal.replicas, proposal
    if driving is None or (invalid > 0 and replicas < current_replicas):
        return None
    return replicas, driving
