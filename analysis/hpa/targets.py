"""The metric sources of an autoscaling/v2 HPA besides Resource, and what they read at a sync.

``analysis.hpa.model.MetricTarget`` is a Resource metric (pod CPU or memory); these are the
other four ``spec.metrics[].type`` values. Values are in the metric's own unit (a queue length,
requests per second), as the API's quantities say them; the controller computes with their
milli-values (``Quantity.MilliValue()``), and so does ``analysis.hpa.sources``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

ContainerResourceName = Literal["cpu", "memory"]


@dataclass(frozen=True)
class ContainerResourceTarget:
    """``type: ContainerResource``: one container's usage, against that container's request."""

    resource: ContainerResourceName
    container: str
    target_utilization_pct: int
    target_average_value: float | None = None  # millicores or bytes; wins over utilization


@dataclass(frozen=True)
class PodsTarget:
    """``type: Pods``: a per-pod metric (custom metrics API) averaged over the pods."""

    name: str
    target_average_value: float
    selector: str = ""  # the metric's label selector as written (``queue=orders``)


@dataclass(frozen=True)
class ObjectTarget:
    """``type: Object``: one value describing one object (an Ingress's requests per second).

    ``target_value`` (``target.type: Value``) compares the value with the target and scales the
    ready pods; ``target_average_value`` (``AverageValue``) divides the value by the target.
    """

    name: str
    described_object: str  # ``Kind/name``
    target_value: float | None = None
    target_average_value: float | None = None
    selector: str = ""


@dataclass(frozen=True)
class ExternalTarget:
    """``type: External``: the sum of a metric's series outside the cluster (a queue's length).

    KEDA's ScaledObjects create HPAs of this type, mostly with ``AverageValue`` targets.
    """

    name: str
    target_value: float | None = None
    target_average_value: float | None = None
    selector: str = ""


@dataclass(frozen=True)
class MetricReadings:
    """What the custom and external metrics APIs return at one sync, by metric name.

    Pods metrics are per pod, on ``PodUsage.pod_metrics``; ``status_replicas`` is the scale's
    ``status.replicas`` (every pod the workload has, ready or not), which the per-pod Object and
    External calculations divide by; None = the current replicas.
    """

    object_values: Mapping[str, float] = field(default_factory=dict)
    external_values: Mapping[str, tuple[float, ...]] = field(default_factory=dict)
    status_replicas: int | None = None
