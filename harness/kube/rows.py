"""API objects (the API server's JSON, as plain dicts) to rows of ``samples/*.csv``.

Pure functions, one per table of ``analysis.data.schema``, so what the sampler records can be
checked against hand-written objects. Units are those of the schema: CPU in millicores, memory in
bytes; anything the API did not say stays ``None`` (an empty cell: not measured), never zero.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from analysis.data.units import parse_quantity
from harness.kube.api import Body

Row = dict[str, Any]


def dig(obj: Any, *path: str) -> Any:
    """``obj[path[0]][path[1]]...``, or None where a level is missing."""
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def _condition(conditions: Iterable[Body] | None, kind: str) -> bool | None:
    for condition in conditions or ():
        if condition.get("type") == kind:
            status = condition.get("status")
            return True if status == "True" else False if status == "False" else None
    return None


def _quantity(value: Any, scale: float = 1.0) -> float | None:
    if value is None or value == "":
        return None
    try:
        return parse_quantity(value) * scale
    except (ValueError, ArithmeticError):
        return None


def _resource_scale(resource: str) -> float:
    """CPU is recorded in millicores; everything else in the quantity's base unit."""
    return 1000.0 if resource == "cpu" else 1.0


def timestamp(text: str | None) -> float | None:
    """An RFC 3339 time of the API (``2024-05-01T12:00:00Z``, ``...00.123456Z``) as epoch s."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


# ------------------------------------------------------------------ HPAs


def hpa_row(ts: float, hpa: Body) -> Row:
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    conditions = status.get("conditions")
    desired = status.get("desiredReplicas")
    current = status.get("currentReplicas")
    if desired == 0 and (current is None or current > 0):
        # A new HPA reports 0 until its first successful computation (and while its metrics are
        # missing); with pods running, or before it has even counted them, 0 is "not computed
        # yet", never a decision to scale to 0.
        desired = None
    return {
        "ts": ts,
        "namespace": dig(hpa, "metadata", "namespace"),
        "hpa": dig(hpa, "metadata", "name"),
        "target_kind": dig(spec, "scaleTargetRef", "kind"),
        "target_name": dig(spec, "scaleTargetRef", "name"),
        "min_replicas": spec.get("minReplicas", 1),  # the API's default when unset
        "max_replicas": spec.get("maxReplicas"),
        "current_replicas": status.get("currentReplicas"),
        "desired_replicas": desired,
        "able_to_scale": _condition(conditions, "AbleToScale"),
        "scaling_active": _condition(conditions, "ScalingActive"),
        "scaling_limited": _condition(conditions, "ScalingLimited"),
        "last_scale_ts": timestamp(status.get("lastScaleTime")),
        **_owner(hpa),
        "behavior": json.dumps(spec["behavior"], sort_keys=True) if spec.get("behavior") else None,
    }


def _owner(obj: Body) -> Row:
    """The controller ownerReference (KEDA's ScaledObject owns the HPAs it creates)."""
    refs = dig(obj, "metadata", "ownerReferences") or []
    ref = next((r for r in refs if r.get("controller")), refs[0] if refs else None)
    if not isinstance(ref, Mapping):
        return {"owner_kind": None, "owner_name": None}
    return {"owner_kind": ref.get("kind"), "owner_name": ref.get("name")}


def selector_text(selector: Any) -> str | None:
    """A LabelSelector as ``kubectl`` writes one: ``app=web,tier in (a,b)``; None if empty."""
    if not isinstance(selector, Mapping):
        return None
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), str(expr.get("operator", "")), expr.get("values") or []
        if op in ("Exists", "DoesNotExist"):
            parts.append(key if op == "Exists" else f"!{key}")
        else:
            parts.append(f"{key} {op.lower()} ({','.join(values)})")
    return ",".join(parts) or None


def _metric_key(metric: Body) -> tuple[str, str]:
    """(type, name) of an HPA metric spec or status: ``("Resource", "memory")``."""
    kind = str(metric.get("type", ""))
    source = metric.get(kind[:1].lower() + kind[1:]) or {}
    name = source.get("name") or dig(source, "metric", "name") or kind
    return kind, str(name)


def _target_type(target: Body) -> str | None:
    kind = target.get("type")
    if kind:
        return str(kind)
    for key, name in (("averageUtilization", "Utilization"), ("averageValue", "AverageValue")):
        if key in target:
            return name
    return "Value" if "value" in target else None


def _described(source: Body) -> str | None:
    kind, name = dig(source, "describedObject", "kind"), dig(source, "describedObject", "name")
    return f"{kind}/{name}" if kind and name else None


def _metric_values(source: Body, part: str, scale: float) -> tuple[float | None, float | None]:
    """(utilization %, per-pod value) of a metric's ``target`` or ``current``."""
    values = source.get(part) or {}
    utilization = values.get("averageUtilization")
    value = values.get("averageValue", values.get("value"))
    return (None if utilization is None else float(utilization)), _quantity(value, scale)


def hpa_metric_rows(ts: float, hpa: Body) -> list[Row]:
    """One row per metric of the HPA's spec, with the controller's current reading if any."""
    spec_metrics = dig(hpa, "spec", "metrics") or []
    current = {_metric_key(m): m for m in dig(hpa, "status", "currentMetrics") or []}
    rows: list[Row] = []
    for metric in spec_metrics:
        key = _metric_key(metric)
        kind, name = key
        field = kind[:1].lower() + kind[1:]
        source = metric.get(field) or {}
        scale = _resource_scale(name) if kind in ("Resource", "ContainerResource") else 1.0
        target_util, target_value = _metric_values(source, "target", scale)
        seen = current.get(key)
        current_util, current_value = (
            _metric_values(seen.get(field) or {}, "current", scale) if seen else (None, None)
        )
        rows.append(
            {
                "ts": ts,
                "namespace": dig(hpa, "metadata", "namespace"),
                "hpa": dig(hpa, "metadata", "name"),
                "metric": name,
                "current_utilization": current_util,
                "target_utilization": target_util,
                "current_value": current_value,
                "target_value": target_value,
                "metric_type": kind,
                "target_type": _target_type(source.get("target") or {}),
                "current_total": _quantity(dig(seen, field, "current", "value"), scale),
                "target_total": _quantity(dig(source, "target", "value"), scale),
                "selector": selector_text(dig(source, "metric", "selector")),
                "container": source.get("container"),
                "described_object": _described(source),
            }
        )
    return rows


# ------------------------------------------------------------------ workloads and pods


def workload_row(ts: float, workload: Body) -> Row:
    status = workload.get("status") or {}
    return {
        "ts": ts,
        "namespace": dig(workload, "metadata", "namespace"),
        "kind": workload.get("kind"),
        "name": dig(workload, "metadata", "name"),
        "replicas": dig(workload, "spec", "replicas"),
        "ready_replicas": status.get("readyReplicas", 0),
        "available_replicas": status.get("availableReplicas", 0),
    }


def _sum_resources(containers: Iterable[Body], part: str, resource: str) -> float | None:
    """Sum over containers of a request or limit; None when no container sets it."""
    values = [
        _quantity(dig(c, "resources", part, resource), _resource_scale(resource))
        for c in containers
    ]
    present = [v for v in values if v is not None]
    return sum(present) if present else None


def last_termination_reason(pod: Body) -> str | None:
    """The newest reason a container of the pod stopped for (``OOMKilled``, ``Error``, ...)."""
    newest: tuple[float, str] | None = None
    for status in dig(pod, "status", "containerStatuses") or []:
        for state in (dig(status, "state", "terminated"), dig(status, "lastState", "terminated")):
            if not state or not state.get("reason"):
                continue
            when = timestamp(state.get("finishedAt")) or 0.0
            if newest is None or when > newest[0]:
                newest = (when, str(state["reason"]))
    return None if newest is None else newest[1]


def pod_usage(metrics: Body | None) -> tuple[float | None, float | None]:
    """(cpu_m, memory_bytes) of one PodMetrics, summed over its containers."""
    if metrics is None:
        return None, None
    usages = (dig(c, "usage") for c in metrics.get("containers") or [])
    return usage_sum(u for u in usages if isinstance(u, Mapping))


def usage_sum(usages: Iterable[Mapping[str, Any]]) -> tuple[float | None, float | None]:
    """(cpu_m, memory_bytes) summed over containers' ``usage``; None where none reports it."""
    cpu_m: float | None = None
    memory_bytes: float | None = None
    for usage in usages:
        cpu = _quantity(usage.get("cpu"), 1000.0)
        if cpu is not None:
            cpu_m = cpu if cpu_m is None else cpu_m + cpu
        memory = _quantity(usage.get("memory"))
        if memory is not None:
            memory_bytes = memory if memory_bytes is None else memory_bytes + memory
    return cpu_m, memory_bytes


def _ready_since(pod: Body) -> float | None:
    """lastTransitionTime of the pod's Ready condition: with the start time it tells the HPA
    controller whether a pod's CPU is still its start-up burst."""
    for condition in dig(pod, "status", "conditions") or []:
        if condition.get("type") == "Ready":
            return timestamp(condition.get("lastTransitionTime"))
    return None


def pod_row(ts: float, pod: Body, workload: str, metrics: Body | None) -> Row:
    containers = dig(pod, "spec", "containers") or []
    statuses = dig(pod, "status", "containerStatuses") or []
    cpu_m, memory_bytes = pod_usage(metrics)
    return {
        "ts": ts,
        "namespace": dig(pod, "metadata", "namespace"),
        "pod": dig(pod, "metadata", "name"),
        "workload": workload,
        "phase": dig(pod, "status", "phase"),
        "ready": bool(_condition(dig(pod, "status", "conditions"), "Ready")),
        "restarts": sum(int(s.get("restartCount") or 0) for s in statuses),
        "last_termination_reason": last_termination_reason(pod),
        "cpu_m": cpu_m,
        "memory_bytes": memory_bytes,
        "cpu_request_m": _sum_resources(containers, "requests", "cpu"),
        "cpu_limit_m": _sum_resources(containers, "limits", "cpu"),
        "memory_request_bytes": _sum_resources(containers, "requests", "memory"),
        "memory_limit_bytes": _sum_resources(containers, "limits", "memory"),
        "start_ts": timestamp(dig(pod, "status", "startTime"))
        or timestamp(dig(pod, "metadata", "creationTimestamp")),
        "ready_since_ts": _ready_since(pod),
        "deleting": dig(pod, "metadata", "deletionTimestamp") is not None,
        "usage_ts": None if metrics is None else timestamp(metrics.get("timestamp")),
    }


# ------------------------------------------------------------------ events


def event_time(event: Body) -> float | None:
    """When an event last happened: the newest of its timestamps (old and new event API fields)."""
    candidates = (
        event.get("lastTimestamp"),
        dig(event, "series", "lastObservedTime"),
        event.get("eventTime"),
        event.get("firstTimestamp"),
        dig(event, "metadata", "creationTimestamp"),
    )
    times = [t for t in (timestamp(c) for c in candidates) if t is not None]
    return max(times) if times else None


def event_row(event: Body) -> Row:
    return {
        "ts": event_time(event),
        "namespace": dig(event, "metadata", "namespace"),
        "kind": dig(event, "involvedObject", "kind"),
        "name": dig(event, "involvedObject", "name"),
        "reason": event.get("reason"),
        "type": event.get("type"),
        "message": " ".join(str(event.get("message") or "").split()),
    }


# ------------------------------------------------------------------ label selectors


def selector_query(selector: Body | None) -> str | None:
    """A LabelSelector as the ``labelSelector`` query string (``app=web,tier in (a,b)``)."""
    if not selector:
        return None
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression.get("key"), expression.get("operator")
        values = ",".join(expression.get("values") or [])
        if operator == "In":
            parts.append(f"{key} in ({values})")
        elif operator == "NotIn":
            parts.append(f"{key} notin ({values})")
        elif operator == "Exists":
            parts.append(str(key))
        elif operator == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts) or None
