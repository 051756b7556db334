"""One metric's proposal for every metric source type, as kube-controller-manager computes it.

``analysis.hpa.model`` holds the Resource calculation; this module adds the other source types
of ``replica_calculator.go`` and ``horizontal.go`` (computeStatusFor*Metric):

- ContainerResource: the Resource calculation (readiness and missing-pod rules included) on one
  container's usage and request (calculatePodRequestsFromContainers, getContainerMetrics);
- Pods: calcPlainMetricReplicas on the per-pod values, with no CPU readiness rule (groupPods is
  called without a resource) and a missing pod assumed at the target on a scale down;
- Object with a Value target: GetObjectMetricReplicas, the usage ratio times the pods that are
  Running and Ready (getReadyPodsCount), from the scale's spec replicas;
- Object with an AverageValue target: GetObjectPerPodMetricReplicas, ceil(value / target), from
  the scale's status replicas;
- External: GetExternalMetricReplicas (Value) and GetExternalPerPodMetricReplicas
  (AverageValue), the same two rules on the sum of the metric's series.

Tolerance is checked on the usage ratio before any pod is counted, as the controller does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

from analysis.hpa.model import (
    AnyTarget,
    MetricFailedError,
    MetricProposal,
    MetricTarget,
    PodUsage,
    Tolerances,
    group_pod_values,
    metric_proposal,
    milli,
    replicas_with_rebalance,
)
from analysis.hpa.readiness import ReadinessTiming
from analysis.hpa.targets import (
    ContainerResourceTarget,
    ExternalTarget,
    MetricReadings,
    ObjectTarget,
    PodsTarget,
)

_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1


def describe(target: AnyTarget) -> tuple[str, str]:
    """(source type, the controller's name for the metric in its rescale reason)."""
    if isinstance(target, MetricTarget | ContainerResourceTarget):
        source = "Resource" if isinstance(target, MetricTarget) else "ContainerResource"
        if target.target_average_value is not None:
            return source, f"{target.resource} resource"
        kind = "resource" if source == "Resource" else "container resource"
        return source, f"{target.resource} {kind} utilization (percentage of request)"
    if isinstance(target, PodsTarget):
        return "Pods", f"pods metric {target.name}"
    if isinstance(target, ObjectTarget) and target.target_value is not None:
        return "Object", f"{target.described_object.split('/')[0]} metric {target.name}"
    # horizontal.go names an Object metric with an AverageValue target "external metric" too
    source = "Object" if isinstance(target, ObjectTarget) else "External"
    return source, f"external metric {target.name}({target.selector})"


def _container_pod(pod: PodUsage, container: str) -> PodUsage:
    """The pod as its one container: getContainerMetrics and the container's request."""
    seen = pod.containers.get(container)
    if seen is None:
        return replace(pod, cpu_m=None, memory_bytes=None)
    return replace(
        pod,
        cpu_m=seen.cpu_m,
        memory_bytes=seen.memory_bytes,
        cpu_request_m=seen.cpu_request_m,
        memory_request_bytes=seen.memory_request_bytes,
    )


def _container_proposal(
    target: ContainerResourceTarget,
    *,
    pods: Sequence[PodUsage],
    current: int,
    tolerances: Tolerances,
    now_s: float | None,
    timing: ReadinessTiming | None,
) -> MetricProposal:
    for pod in pods:
        if pod.containers and target.container not in pod.containers:
            # calculatePodRequestsFromContainers: the container must exist in every pod
            raise MetricFailedError(f"container {target.container} not found in Pod {pod.name}")
    resource_target = MetricTarget(
        target.resource, target.target_utilization_pct, target.target_average_value
    )
    proposal = metric_proposal(
        resource_target,
        [_container_pod(p, target.container) for p in pods],
        current,
        tolerances.scale_up,
        scale_down_tolerance=tolerances.scale_down,
        now_s=now_s,
        timing=timing,
    )
    if proposal.replicas is None:
        raise MetricFailedError(proposal.error)
    return proposal


def _pods_proposal(
    target: PodsTarget, pods: Sequence[PodUsage], current: int, tolerances: Tolerances
) -> MetricProposal:
    """calcPlainMetricReplicas with no resource: GetMetricUsageRatio on milli-values."""
    if all(target.name not in p.pod_metrics for p in pods):
        raise MetricFailedError(f"unable to get metric {target.name}: no metrics returned")
    groups = group_pod_values(pods, lambda p: p.pod_metrics.get(target.name), 1000)
    target_milli = milli(target.target_average_value)

    def ratio_of(metrics: dict[str, int]) -> float:
        return (sum(metrics.values()) // len(metrics)) / target_milli

    replicas = replicas_with_rebalance(
        current,
        ratio_of(groups.metrics),
        groups,
        tolerances,
        ratio_of=ratio_of,
        missing_on_scale_down=lambda _name: target_milli,
    )
    average = sum(groups.metrics.values()) // len(groups.metrics)
    return MetricProposal(
        resource=target.name,
        utilization_pct=None,
        target_pct=0,
        replicas=replicas,
        average_value=average / 1000,
        target_average_value=target.target_average_value,
    )


def _ready_running(pods: Sequence[PodUsage]) -> int:
    """getReadyPodsCount: Running and Ready, whatever the metrics say."""
    if not pods:
        raise MetricFailedError("no pods returned by selector while calculating replica count")
    return sum(1 for p in pods if p.phase == "Running" and p.ready)


def _value_replicas(
    current: int, usage_ratio: float, pods: Sequence[PodUsage], tolerances: Tolerances
) -> int:
    """getUsageRatioReplicaCount: from 0 replicas, ceil(ratio) alone (scale from zero)."""
    if current == 0:
        return math.ceil(usage_ratio)
    if tolerances.is_within(usage_ratio):
        return current
    replicas = usage_ratio * _ready_running(pods)
    return _INT32_MAX if replicas > _INT32_MAX else math.ceil(replicas)


def _per_pod_replicas(
    usage: int, target_milli: int, status_replicas: int, tolerances: Tolerances
) -> tuple[int, int]:
    """GetObjectPerPodMetricReplicas / GetExternalPerPodMetricReplicas: (replicas, average)."""
    replicas = status_replicas
    ratio = usage / (target_milli * status_replicas) if status_replicas else math.inf
    if not tolerances.is_within(ratio):
        replicas = min(math.ceil(usage / target_milli), _INT32_MAX)
    if usage >= _INT64_MAX or not status_replicas:
        return replicas, min(usage, _INT64_MAX)
    return replicas, math.ceil(usage / status_replicas)


def _valued_proposal(
    target: ObjectTarget | ExternalTarget,
    pods: Sequence[PodUsage],
    current: int,
    readings: MetricReadings,
    tolerances: Tolerances,
) -> MetricProposal:
    if isinstance(target, ObjectTarget):
        if target.name not in readings.object_values:
            raise MetricFailedError(
                f"unable to get metric {target.name}: no value on {target.described_object}"
            )
        usage = milli(readings.object_values[target.name])
    else:
        series = readings.external_values.get(target.name)
        if not series:
            raise MetricFailedError(f"unable to get external metric {target.name}: no values")
        usage = min(sum(milli(v) for v in series), _INT64_MAX)  # capped, never overflowing
    if target.target_value is not None:
        target_milli = milli(target.target_value)
        replicas = _value_replicas(current, usage / target_milli, pods, tolerances)
        return MetricProposal(
            target.name,
            None,
            0,
            replicas,
            value=usage / 1000,
            target_value=target.target_value,
        )
    if target.target_average_value is None:
        raise MetricFailedError(
            "invalid metric source: neither a value target nor an average value target was set"
        )
    status = readings.status_replicas if readings.status_replicas is not None else current
    target_milli = milli(target.target_average_value)
    replicas, average = _per_pod_replicas(usage, target_milli, status, tolerances)
    return MetricProposal(
        target.name,
        None,
        0,
        replicas,
        average_value=average / 1000,
        target_average_value=target.target_average_value,
    )


def _name(target: AnyTarget) -> str:
    if isinstance(target, MetricTarget | ContainerResourceTarget):
        return target.resource
    return target.name


def source_proposal(
    target: AnyTarget,
    pods: Sequence[PodUsage],
    current_replicas: int,
    readings: MetricReadings | None = None,
    tolerances: Tolerances | None = None,
    *,
    now_s: float | None = None,
    timing: ReadinessTiming | None = None,
) -> MetricProposal:
    """One metric's proposal, whatever its source type, or a failed proposal that says why."""
    tolerances = tolerances or Tolerances()
    readings = readings or MetricReadings()
    source, reason_name = describe(target)
    try:
        if isinstance(target, MetricTarget):
            proposal = metric_proposal(
                target,
                pods,
                current_replicas,
                tolerances.scale_up,
                scale_down_tolerance=tolerances.scale_down,
                now_s=now_s,
                timing=timing,
            )
        elif isinstance(target, ContainerResourceTarget):
            proposal = _container_proposal(
                target,
                pods=pods,
                current=current_replicas,
                tolerances=tolerances,
                now_s=now_s,
                timing=timing,
            )
        elif isinstance(target, PodsTarget):
            proposal = _pods_proposal(target, pods, current_replicas, tolerances)
        else:
            proposal = _valued_proposal(target, pods, current_replicas, readings, tolerances)
    except MetricFailedError as e:
        proposal = MetricProposal(_name(target), None, 0, None, error=str(e))
    return replace(proposal, source=source, reason_name=reason_name)
