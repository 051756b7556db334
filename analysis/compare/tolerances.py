"""How much worse a measure may get before it counts as a regression.

A candidate run regresses on a measure when it is worse than the baseline's by more than the
tolerance. Defaults (``kubeswarm compare --tolerance NAME=VALUE`` overrides them):

===========================  =========  =====================================================
name                         default    worse when
===========================  =========  =====================================================
p50_ms, p95_ms, p99_ms       10 %       higher by more than 10 % of the baseline (and 5 ms)
error_rate                   0.5        higher by more than 0.5 percentage points
peak_rps                     10 %       lower by more than 10 % (and 1 req/s)
peak_replicas                1          more than 1 replica above the baseline's peak
time_at_max_s                30         more than 30 s longer pinned at max
scale_up_lag_s               15         the slowest scale-up more than 15 s slower
memory_pct_of_request        10         peak memory 10 points closer to (or past) the request
memory_pct_of_limit          10         peak memory 10 points closer to the limit
oom_kills, restarts          0          any more than the baseline
high_findings                0          any high-severity finding the baseline did not have
recovery_s                   15         a disruption took more than 15 s longer to recover
===========================  =========  =====================================================

Relative tolerances also need a minimum absolute change (``min_change``): a p95 going from 4 to
5 ms is +25 % and says nothing about the service.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Tolerance:
    name: str
    default: float
    relative: bool  # a percentage of the baseline's value, else in ``unit``
    higher_is_worse: bool
    unit: str  # of the tolerance value: "%", "points", "s", "replicas", "count"
    min_change: float = 0.0  # in the measure's own unit; smaller changes are noise


_ALL: Final = (
    Tolerance("p50_ms", 10.0, True, True, "%", min_change=5.0),
    Tolerance("p95_ms", 10.0, True, True, "%", min_change=5.0),
    Tolerance("p99_ms", 10.0, True, True, "%", min_change=5.0),
    Tolerance("error_rate", 0.5, False, True, "points"),
    Tolerance("peak_rps", 10.0, True, False, "%", min_change=1.0),
    Tolerance("peak_replicas", 1.0, False, True, "replicas"),
    Tolerance("time_at_max_s", 30.0, False, True, "s"),
    Tolerance("scale_up_lag_s", 15.0, False, True, "s"),
    Tolerance("memory_pct_of_request", 10.0, False, True, "points"),
    Tolerance("memory_pct_of_limit", 10.0, False, True, "points"),
    Tolerance("oom_kills", 0.0, False, True, "count"),
    Tolerance("restarts", 0.0, False, True, "count"),
    Tolerance("high_findings", 0.0, False, True, "count"),
    Tolerance("recovery_s", 15.0, False, True, "s"),
)
TOLERANCES: Final[Mapping[str, Tolerance]] = {t.name: t for t in _ALL}
DEFAULT_TOLERANCES: Final[Mapping[str, float]] = {t.name: t.default for t in _ALL}
# Suffixes a value may carry, by unit: "15%" for relative ones, "30s" for seconds; error rate
# and memory are in percentage points, so "0.5%" reads naturally there too.
_SUFFIXES: Final = {"%": ("%",), "points": ("%", "pt"), "s": ("s",), "replicas": (), "count": ()}


def parse_tolerance(text: str) -> tuple[str, float]:
    """``"p95_ms=15%"`` -> ``("p95_ms", 15.0)``. ValueError (one line) for an unknown name, a
    missing ``=``, or a value that is not a non-negative number in the measure's unit."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name or not raw:
        raise ValueError(f"tolerance {text!r} is not NAME=VALUE (for example p95_ms=15%)")
    tolerance = TOLERANCES.get(name)
    if tolerance is None:
        raise ValueError(f"unknown tolerance {name!r}; known: {', '.join(TOLERANCES)}")
    number = raw
    for suffix in _SUFFIXES[tolerance.unit]:
        if number.endswith(suffix):
            number = number.removesuffix(suffix).strip()
            break
    try:
        value = float(number)
    except ValueError:
        raise ValueError(
            f"tolerance {name}: {raw!r} is not a number of {tolerance.unit}"
            f" (for example {name}={_example(tolerance)})"
        ) from None
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"tolerance {name}: {raw!r} must be zero or more {tolerance.unit}")
    return name, value


def _example(tolerance: Tolerance) -> str:
    suffix = {"%": "%", "s": "s"}.get(tolerance.unit, "")
    return f"{tolerance.default:g}{suffix}"


def resolve(overrides: Mapping[str, float] | None) -> dict[str, float]:
    """The defaults with ``overrides`` applied; ValueError for an unknown name or a negative
    value (overrides may come from code as well as from ``parse_tolerance``)."""
    resolved = dict(DEFAULT_TOLERANCES)
    for name, value in (overrides or {}).items():
        if name not in TOLERANCES:
            raise ValueError(f"unknown tolerance {name!r}; known: {', '.join(TOLERANCES)}")
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"tolerance {name}: {value!r} must be zero or more")
        resolved[name] = float(value)
    return resolved


def worse_by(tolerance: Tolerance, baseline: float, candidate: float) -> float:
    """How much worse the candidate is, in the tolerance's unit (negative: better). A relative
    measure that was zero and grew is infinitely worse."""
    change = candidate - baseline if tolerance.higher_is_worse else baseline - candidate
    if tolerance.relative:
        if baseline == 0:
            return math.inf if change > 0 else 0.0
        return 100.0 * change / abs(baseline)
    if tolerance.name == "error_rate":  # a 0..1 ratio judged in percentage points
        return 100.0 * change
    return change


def is_regression(tolerance: Tolerance, limit: float, baseline: float, candidate: float) -> bool:
    if abs(candidate - baseline) < tolerance.min_change:
        return False
    return worse_by(tolerance, baseline, candidate) > limit
