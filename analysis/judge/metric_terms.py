"""An HPA's metrics in their own terms, and who made the HPA.

A report that says "ratio 3.4" explains nothing to the owner of a queue consumer; "queue_depth
340 per pod against a target of 100" does. This module reads hpa_metrics.csv (every source type
with its target type, selector, container or described object) and hpa.csv's owner columns, and
says each metric's peak reading as the controller reported it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from analysis.data.load import RunData
from analysis.data.units import format_bytes
from analysis.judge.scaling import HpaResult


@dataclass(frozen=True)
class MetricReading:
    metric: str
    source: str  # Resource, ContainerResource, Pods, Object, External
    target_type: str  # Utilization, AverageValue, Value
    peak: float | None  # in the unit of the target: percent, per pod or total
    target: float | None
    selector: str | None
    container: str | None
    described_object: str | None
    sentence: str


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _num(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _amount(metric: str, value: float) -> str:
    if metric == "memory":
        return format_bytes(value)
    if metric == "cpu":
        return f"{value:.0f}m"
    return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"


def _sentence(reading: MetricReading) -> str:
    name = reading.metric
    if reading.container:
        name = f"{name} of container {reading.container}"
    if reading.described_object:
        name = f"{name} of {reading.described_object}"
    if reading.selector:
        name = f"{name} ({reading.selector})"
    if reading.peak is None or reading.target is None:
        return f"{name}: no reading recorded"
    if reading.target_type == "Utilization":
        return (
            f"{name} peaked at {reading.peak:.0f}% of request "
            f"against a target of {reading.target:.0f}%"
        )
    peak, target = _amount(reading.metric, reading.peak), _amount(reading.metric, reading.target)
    if reading.target_type == "Value":
        return f"{name} peaked at {peak} in total against a target of {target}"
    return f"{name} peaked at {peak} per pod against a target of {target}"


def metric_readings(data: RunData, hpa: HpaResult) -> list[MetricReading]:
    """Each metric of the HPA with its peak reading while the run lasted, in its own terms."""
    rows = data.hpa_metrics[
        (data.hpa_metrics["namespace"] == hpa.namespace) & (data.hpa_metrics["hpa"] == hpa.name)
    ]
    out = []
    for name, group in rows.groupby("metric", sort=True):
        last = group.iloc[-1]
        kind = _text(last.get("metric_type")) or (
            "Resource" if name in ("cpu", "memory") else "Pods"
        )
        target_type = _text(last.get("target_type"))
        if target_type is None:
            target_type = "Utilization" if _num(last["target_utilization"]) else "AverageValue"
        column, goal = {
            "Utilization": ("current_utilization", "target_utilization"),
            "Value": ("current_total", "target_total"),
        }.get(target_type, ("current_value", "target_value"))
        values = pd.to_numeric(group.get(column, pd.Series(dtype=float)), errors="coerce")
        reading = MetricReading(
            metric=str(name),
            source=kind,
            target_type=target_type,
            peak=_num(values.max()) if values.notna().any() else None,
            target=_num(last.get(goal)),
            selector=_text(last.get("selector")),
            container=_text(last.get("container")),
            described_object=_text(last.get("described_object")),
            sentence="",
        )
        out.append(MetricReading(**{**reading.__dict__, "sentence": _sentence(reading)}))
    return out


def owner_of(data: RunData, hpa: HpaResult) -> tuple[str | None, str | None]:
    """(``Kind/name`` of the HPA's owner, the tool that made it: "KEDA" for a ScaledObject)."""
    rows = data.hpa[(data.hpa["namespace"] == hpa.namespace) & (data.hpa["hpa"] == hpa.name)]
    if "owner_kind" not in rows or rows.empty:
        return None, None
    kind, name = _text(rows["owner_kind"].iloc[-1]), _text(rows["owner_name"].iloc[-1])
    if kind is None:
        return None, None
    return f"{kind}/{name}", "KEDA" if kind == "ScaledObject" else None
