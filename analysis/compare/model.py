"""What a comparison of two runs is made of: plain frozen dataclasses, JSON via ``to_dict``."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Presence = Literal["both", "baseline", "candidate"]


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    mode: str
    directory: str | None  # where the run directory was; None when compared from dicts
    verdict: str
    kubeswarm_version: str | None
    rebuilt: bool  # the summary was rebuilt for this comparison (missing, stale or older version)


@dataclass(frozen=True)
class Delta:
    """One measure in both runs. ``tolerance`` None: shown for context, never judged."""

    metric: str
    baseline: float | None
    candidate: float | None
    tolerance: float | None
    unit: str | None  # of ``tolerance`` and ``worse_by``: "%", "points", "s", "replicas", "count"
    worse_by: float | None  # negative is better; None unless both runs measured it
    regression: bool


@dataclass(frozen=True)
class SubjectComparison:
    """One HPA, workload or disruption (or the run's load) in both runs."""

    kind: Literal["load", "hpa", "workload", "disruption"]
    subject: str
    present: Presence
    baseline_status: str | None
    candidate_status: str | None
    deltas: tuple[Delta, ...]


@dataclass(frozen=True)
class FindingRef:
    code: str
    severity: str
    subject: str
    seen: str


@dataclass(frozen=True)
class SloComparison:
    expr: str
    baseline_observed: float | None
    baseline_passed: bool | None  # None: the run was not judged on this SLO
    candidate_observed: float | None
    candidate_passed: bool | None


@dataclass(frozen=True)
class WhatIfComparison:
    hpa: str
    changes: Mapping[str, Any]
    baseline_recorded_peak: float | None
    baseline_predicted_peak: float | None
    candidate_recorded_peak: float | None
    candidate_predicted_peak: float | None


@dataclass(frozen=True)
class Regression:
    metric: str
    subject: str
    baseline: float | None
    candidate: float | None
    tolerance: float | None
    message: str


@dataclass(frozen=True)
class Comparison:
    """Baseline against candidate. ``regressions`` decide: any one makes the comparison fail."""

    baseline: RunInfo
    candidate: RunInfo
    tolerances: Mapping[str, float]
    load: SubjectComparison
    hpas: tuple[SubjectComparison, ...]
    workloads: tuple[SubjectComparison, ...]
    disruptions: tuple[SubjectComparison, ...]
    slos: tuple[SloComparison, ...]
    new_findings: tuple[FindingRef, ...]
    resolved_findings: tuple[FindingRef, ...]
    unchanged_findings: tuple[FindingRef, ...]
    whatifs: tuple[WhatIfComparison, ...]
    notes: tuple[str, ...]
    regressions: tuple[Regression, ...]

    @property
    def verdict(self) -> Literal["regression", "ok"]:
        return "regression" if self.regressions else "ok"

    def to_dict(self) -> dict[str, Any]:
        """``compare.json``: every field, plus ``verdict``; infinities and NaN become null."""
        data = dataclasses.asdict(self)
        data["verdict"] = self.verdict
        cleaned: dict[str, Any] = _json_safe(data)
        return cleaned


def _json_safe(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, float):
        return round(value, 6)
    return value
