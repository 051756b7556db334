"""``--slo`` gates: ``NAME OP NUMBER`` expressions evaluated on a run's observed values.

A gate whose value was never measured (no scale-up to time, no pod memory sampled) fails: a CI
gate that cannot be checked must not pass silently. The observed value is then null.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

_OPERATORS: Final[dict[str, Callable[[float, float], bool]]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_EXPRESSION: Final = re.compile(
    r"^\s*([a-z][a-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)(%?)\s*$"
)

# What each name means; the observed values are computed in ``analysis.report``.
METRICS: Final[dict[str, str]] = {
    "p50_ms": "median response time over the run (ms)",
    "p95_ms": "95th percentile response time over the run (ms)",
    "p99_ms": "99th percentile response time over the run (ms)",
    "error_rate": "failed requests / all requests (0..1; 1% is accepted)",
    "peak_rps": "highest requests per second",
    "total_requests": "requests made",
    "peak_users": "highest user count",
    "scale_up_lag_s": "longest time from a load step to the first scale-up after it (s)",
    "ready_lag_s": "longest time from a load step to ready replicas reaching the scale-up (s)",
    "max_memory_pct_of_limit": "highest pod working set in percent of its memory limit",
    "max_memory_pct_of_request": "highest pod working set in percent of its memory request",
    "oom_kills": "containers OOM-killed during the run",
    "restarts": "container restarts during the run",
    "time_at_max_s": "longest time any HPA spent at max replicas (s)",
    "peak_replicas": "highest replica count of any HPA",
    "recovery_s": "longest --chaos recovery to the ready replicas before it (s; never: fails)",
    "disruption_error_rate": "highest failed share of requests during a --chaos disruption",
    "disruption_p95_ms": "highest p95 during a --chaos disruption (ms)",
    "disruptions_recovered": "share of --chaos disruptions the workload recovered from (0..1)",
}

# Shares from 0 to 1 (a bound may be written 1%); percentages, where 90% means 90.
SHARES: Final = frozenset(("error_rate", "disruption_error_rate", "disruptions_recovered"))
PERCENTS: Final = frozenset(("max_memory_pct_of_limit", "max_memory_pct_of_request"))


@dataclass(frozen=True)
class Slo:
    expr: str
    metric: str
    op: str
    threshold: float


@dataclass(frozen=True)
class AtLeast:
    """A lag that had not ended when the run did (pods never ready, a workload never recovered):
    it was at least ``value`` seconds, the time that was left. Censored, not measured: it never
    passes an upper bound, whatever other scale-ups or disruptions measured."""

    value: float


Observed = float | AtLeast | None


@dataclass(frozen=True)
class SloResult:
    expr: str
    observed: float | None
    passed: bool
    at_least: bool = False  # observed is a lower bound (see AtLeast)


def parse_slo(text: str) -> Slo:
    """``"p95_ms<500"`` -> Slo; ValueError with a one-line message for anything else."""
    match = _EXPRESSION.match(text)
    if not match:
        raise ValueError(
            f"--slo {text!r}: expected NAME OP NUMBER such as p95_ms<500 or oom_kills==0 "
            f"(OP: < <= > >= == !=)"
        )
    name, op, number, percent = match.groups()
    if name not in METRICS:
        raise ValueError(f"--slo {text!r}: unknown name {name!r}; known: {', '.join(METRICS)}")
    threshold = float(number)
    if not math.isfinite(threshold):
        raise ValueError(f"--slo {text!r}: {number} is too large a number")
    if name in SHARES:
        threshold /= 100.0 if percent else 1.0
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(
                f"--slo {text!r}: {name} is a share from 0 to 1 (0% to 100%), not "
                f"{number}{percent}; write e.g. {name}{op}1% or {name}{op}0.01"
            )
    elif percent and name not in PERCENTS:
        raise ValueError(f"--slo {text!r}: {name} is not a share or a percentage; drop the %")
    return Slo(text.strip(), name, op, threshold)


def parse_slos(texts: Sequence[str]) -> list[Slo]:
    return [parse_slo(text) for text in texts]


def evaluate(slos: Sequence[Slo], observed: Mapping[str, Observed]) -> list[SloResult]:
    """Each gate against ``observed`` (name -> value, None when not measured, AtLeast when cut
    off by the run's end: only a lower bound, ``>`` or ``>=``, can pass on it)."""
    results = []
    for slo in slos:
        value = observed.get(slo.metric)
        if isinstance(value, AtLeast):
            passed = slo.op in (">", ">=") and _OPERATORS[slo.op](value.value, slo.threshold)
            results.append(SloResult(slo.expr, value.value, passed, at_least=True))
            continue
        passed = value is not None and _OPERATORS[slo.op](value, slo.threshold)
        results.append(SloResult(slo.expr, value, passed))
    return results


def longest(values: Sequence[float | AtLeast | None]) -> Observed:
    """The longest of some lags: an AtLeast when any was cut off (the longest lower bound, or
    the longest measured lag if longer), None when none was measured."""
    measured = [v for v in values if isinstance(v, float | int)]
    bounds = [v.value for v in values if isinstance(v, AtLeast)]
    if bounds:
        return AtLeast(max([*bounds, *measured]))
    return float(max(measured)) if measured else None
