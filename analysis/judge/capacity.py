"""Capacity: the requests/s one replica carries within the SLOs, and where the run broke.

The run is cut into ``BIN_S`` bins (Locust's RPS and percentiles cover 10 s, so finer bins would
repeat the same window). Per HPA target, each bin gives requests/s per ready replica (all of the
test's requests are counted against each watched target, as ``adequacy`` does) with p95, p99,
error rate and CPU per pod. The **knee** is the highest requests/s per replica that still meets
the SLOs, read along the bins sorted by that rate: it ends at the first bin that breaks an SLO and
is followed by more broken bins (``SUSTAINED``), so one slow bin below the knee is noise, not the
knee. The **break point** is the same rule along time: when the run first broke an SLO for good,
with its users, RPS, replicas and what limited it.
``analysis.judge.sizing`` puts these together per run and sizes for ``--target-rps``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import pandas as pd

from analysis.data import schema
from analysis.data.timeline import Window, bin_index
from analysis.judge.scaling import HpaResult
from analysis.judge.slo import Slo

BIN_S: Final = 10.0
DEFAULT_P95_MS: Final = 500.0  # when no --slo bounds latency: a page that feels slow
DEFAULT_ERROR_RATE: Final = 0.01
# (broken bins, out of the next bins) that make a break sustained.
SUSTAINED: Final = (2, 3)
# CPU per pod at or above this percentage of its limit (of its request without a limit): the pod
# has no more CPU to give.
SATURATED_CPU_PCT: Final = 90.0
# CPU per pod under this percentage of its request while latency broke: the pods were not busy,
# so the time went elsewhere (a database, a downstream service, a lock, a pool).
IDLE_CPU_PCT: Final = 50.0
# The HPA's worst-case reaction beyond its sync period: kubelet 10 s + metrics-server 30 s.
METRICS_DELAY_S: Final = 40.0
RAMP_BREAK_S: Final = 20.0  # locustfiles/ramp.py judges the last 20 s of each step
RAMP_LINE_PREFIX: Final = "kubeswarm ramp:"
CURVE_COLUMNS: Final = (
    "ts",
    "users",
    "rps",
    "error_rate",
    "p95_ms",
    "p99_ms",
    "replicas",
    "at_max",
    "rps_per_replica",
    "cpu_m_per_pod",
    "cpu_pct_of_request",
    "cpu_pct_of_limit",
    "meets",
    "broken",
)


@dataclass(frozen=True)
class Thresholds:
    """The SLOs a bin must meet; None: not judged."""

    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    source: str  # "--slo" or "default"

    def broken(self, p95: float, p99: float, error_rate: float) -> tuple[str, ...]:
        """The SLOs these values break (NaN: not measured, so not broken)."""
        out = []
        for name, value, bound in (
            ("p95_ms", p95, self.p95_ms),
            ("p99_ms", p99, self.p99_ms),
            ("error_rate", error_rate, self.error_rate),
        ):
            if bound is not None and math.isfinite(value) and value > bound:
                out.append(name)
        return tuple(out)


def thresholds_from_slos(slos: Sequence[Slo]) -> Thresholds:
    """Upper bounds (``<``, ``<=``) on p95_ms, p99_ms and error_rate from ``--slo``; the
    defaults (p95 500 ms, 1 % errors) when none of them is bounded."""
    bounds: dict[str, float] = {}
    for slo in slos:
        if slo.metric in ("p95_ms", "p99_ms", "error_rate") and slo.op in ("<", "<="):
            bounds[slo.metric] = min(bounds.get(slo.metric, math.inf), slo.threshold)
    if not bounds:
        return Thresholds(DEFAULT_P95_MS, None, DEFAULT_ERROR_RATE, "default")
    return Thresholds(bounds.get("p95_ms"), bounds.get("p99_ms"), bounds.get("error_rate"), "--slo")


def minimum_hold_s(
    sync_period_s: float = 15.0,
    *,
    metrics_delay_s: float = METRICS_DELAY_S,
    break_s: float = RAMP_BREAK_S,
) -> float:
    """The shortest ramp step in which the HPA can react and the settled part be judged."""
    return sync_period_s + metrics_delay_s + break_s


def check_ramp(
    hold_s: float,
    sync_period_s: float,
    *,
    metrics_delay_s: float = METRICS_DELAY_S,
    break_s: float = RAMP_BREAK_S,
) -> str | None:
    """A warning when ramp steps are shorter than the HPA can react in, else None."""
    least = minimum_hold_s(sync_period_s, metrics_delay_s=metrics_delay_s, break_s=break_s)
    if hold_s >= least:
        return None
    return (
        f"ramp steps of {hold_s:g}s are shorter than the HPA can react in: it syncs every "
        f"{sync_period_s:g}s, its metrics lag up to {metrics_delay_s:g}s and each step is judged "
        f"over its last {break_s:g}s; hold each step at least {least:g}s "
        f"(KUBESWARM_RAMP_HOLD_S={math.ceil(least)}), or the break point found is the HPA's "
        "reaction time, not the service's capacity"
    )


def parse_ramp_line(line: str) -> tuple[str, dict[str, str], str] | None:
    """A ``kubeswarm ramp: EVENT k=v ...: text`` log line of locustfiles/ramp.py as
    (event, fields, text); None for any other line. For the harness to turn into marks."""
    at = line.find(RAMP_LINE_PREFIX)
    if at < 0:
        return None
    head, _, text = line[at + len(RAMP_LINE_PREFIX) :].partition(": ")
    words = head.split()
    if not words:
        return None
    fields = dict(w.split("=", 1) for w in words[1:] if "=" in w)
    return words[0], fields, text.strip()


def _pod_cpu(pods: pd.DataFrame, hpa: HpaResult) -> pd.DataFrame:
    mine = pods[
        (pods["namespace"] == hpa.namespace)
        & (pods["workload"] == hpa.target_name)
        & pods["ready"].fillna(False).astype(bool)
    ]
    return mine.groupby("ts", as_index=False).agg(
        cpu_m=("cpu_m", "mean"),
        request_m=("cpu_request_m", "median"),
        limit_m=("cpu_limit_m", "median"),
    )


def capacity_curve(
    load: pd.DataFrame,
    hpa: HpaResult | None,
    pods: pd.DataFrame,
    window: Window,
    thresholds: Thresholds,
    *,
    bin_s: float = BIN_S,
) -> pd.DataFrame:
    """One row per loaded bin (``CURVE_COLUMNS``); without ``hpa`` the replica columns are NaN."""
    lo, hi = window.loaded
    loaded = load[(load["ts"] >= lo) & (load["ts"] <= hi) & (load["users"] > 0)]
    if loaded.empty:
        return pd.DataFrame({c: pd.Series([], dtype=float) for c in CURVE_COLUMNS})
    traffic = loaded.groupby(bin_index(loaded["ts"], lo, bin_s)).agg(
        users=("users", "max"),
        rps=("rps", "mean"),
        fail_per_s=("fail_per_s", "mean"),
        p95_ms=("p95_ms", "median"),
        p99_ms=("p99_ms", "median"),
    )
    curve = traffic.assign(error_rate=traffic["fail_per_s"] / traffic["rps"])
    curve = curve[curve["rps"] > 0]
    extra = {
        "replicas": np.nan,
        "at_max": False,
        "cpu_m": np.nan,
        "request_m": np.nan,
        "limit_m": np.nan,
    }
    if hpa is not None and not hpa.series.empty:
        series = hpa.series[(hpa.series["ts"] >= lo) & (hpa.series["ts"] <= hi)]
        ready = series["ready"].where(series["ready"].notna(), series["current"])
        replicas = series.assign(replicas=ready, at_max=series["current"] >= series["max"])
        by_bin = replicas.groupby(bin_index(replicas["ts"], lo, bin_s)).agg(
            replicas=("replicas", "mean"), at_max=("at_max", "max")
        )
        cpu = _pod_cpu(pods, hpa)
        cpu = cpu[(cpu["ts"] >= lo) & (cpu["ts"] <= hi)]
        cpu_by_bin = cpu.groupby(bin_index(cpu["ts"], lo, bin_s)).agg(
            cpu_m=("cpu_m", "mean"),
            request_m=("request_m", "median"),
            limit_m=("limit_m", "median"),
        )
        if not cpu_by_bin.empty:
            # pods.csv holds snapshots: a bin between two carries the last one's usage
            # (the bins are indexed by their left edge in seconds since ``lo``)
            first, last = float(cpu_by_bin.index.min()), float(curve.index.max())
            every_bin = np.arange(first, max(first, last) + bin_s / 2, bin_s)
            limit = math.ceil(schema.PODS_HEARTBEAT_S / bin_s)
            cpu_by_bin = cpu_by_bin.reindex(every_bin).ffill(limit=limit)
        curve = curve.join(by_bin, how="left").join(cpu_by_bin, how="left")
    else:
        curve = curve.assign(**extra)
    curve = curve.assign(
        ts=curve.index.to_numpy(float) + lo,
        at_max=curve["at_max"].fillna(False).astype(bool),
        rps_per_replica=curve["rps"] / curve["replicas"].where(curve["replicas"] > 0),
        cpu_m_per_pod=curve["cpu_m"],
        cpu_pct_of_request=100 * curve["cpu_m"] / curve["request_m"].where(curve["request_m"] > 0),
        cpu_pct_of_limit=100 * curve["cpu_m"] / curve["limit_m"].where(curve["limit_m"] > 0),
    )
    broken = [
        thresholds.broken(p95, p99, err)
        for p95, p99, err in curve[["p95_ms", "p99_ms", "error_rate"]].to_numpy(float)
    ]
    curve = curve.assign(broken=[",".join(b) for b in broken], meets=[not b for b in broken])
    return curve[list(CURVE_COLUMNS)].reset_index(drop=True)


def first_sustained_break(meets: Sequence[bool]) -> int | None:
    """Index of the first broken entry that more broken entries follow (``SUSTAINED``); a lone
    last entry counts, since nothing after it says otherwise."""
    need, span = SUSTAINED
    for i, ok in enumerate(meets):
        if ok:
            continue
        ahead = meets[i : i + span]
        if sum(not m for m in ahead) >= min(need, len(ahead)):
            return i
    return None


@dataclass(frozen=True)
class Knee:
    """The highest requests/s per ready replica that met the SLOs (see the module's docstring)."""

    rps_per_replica: float | None  # None: the SLOs broke at the lowest load tested
    reached: bool  # False: the SLOs held everywhere, so the knee is at least this
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    replicas: float | None
    cpu_pct_of_request: float | None
    first_broken_rps_per_replica: float | None
    points: int


def _opt(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def find_knee(curve: pd.DataFrame) -> Knee | None:
    """The knee of a ``capacity_curve``; None when no bin has replicas and traffic."""
    points = curve.dropna(subset=["rps_per_replica"]).sort_values("rps_per_replica")
    if points.empty:
        return None
    meets = [bool(m) for m in points["meets"]]
    cut = first_sustained_break(meets)
    below = points.iloc[: len(points) if cut is None else cut]
    passing = below[below["meets"].astype(bool)]
    broken_at = None if cut is None else _opt(points.iloc[cut]["rps_per_replica"])
    if passing.empty:
        return Knee(None, True, None, None, None, None, None, broken_at, len(points))
    top = passing.iloc[-1]
    return Knee(
        _opt(top["rps_per_replica"]),
        cut is not None,
        _opt(top["p95_ms"]),
        _opt(top["p99_ms"]),
        _opt(top["error_rate"]),
        _opt(top["replicas"]),
        _opt(top["cpu_pct_of_request"]),
        broken_at,
        len(points),
    )


@dataclass(frozen=True)
class BreakPoint:
    """When the run first broke an SLO for good, and what limited it."""

    ts: float
    elapsed_s: float  # since the load started
    users: float | None
    rps: float | None
    replicas: dict[str, float | None]  # HPA -> ready replicas then
    broken: tuple[str, ...]  # the SLOs broken first
    observed: dict[str, float | None]  # p95_ms, p99_ms, error_rate then
    limit: str  # replicas_at_max, pod_saturation, errors, dependency, undetermined
    explanation: str
    ramp_stop: str | None = None  # the ramp's own stop line, when the run recorded it


def _limit(row: pd.Series[Any], hpa: HpaResult | None, broken: tuple[str, ...]) -> tuple[str, str]:
    if hpa is None:
        return "undetermined", "no HPA was recorded, so replicas and pod CPU are unknown"
    name = hpa.key
    cpu_req, cpu_lim = _opt(row["cpu_pct_of_request"]), _opt(row["cpu_pct_of_limit"])
    busy = cpu_lim if cpu_lim is not None else cpu_req
    busy_of = "limit" if cpu_lim is not None else "request"
    if bool(row["at_max"]):
        return "replicas_at_max", (
            f"{name} was at its maxReplicas ({hpa.max_replicas}): more load needs a higher max "
            "or more requests/s per replica"
        )
    if busy is not None and busy >= SATURATED_CPU_PCT:
        return "pod_saturation", (
            f"{name} had room to scale, but its pods used {busy:.0f}% of their CPU {busy_of}: "
            "each pod ran out of CPU before the HPA added pods; lower the HPA's CPU target so it "
            "scales earlier, or give each pod more CPU"
        )
    if "error_rate" in broken:
        return "errors", (
            f"{name} had room to scale and its pods were not CPU-bound, yet requests failed: "
            "look at the failures (timeouts, connection limits, a dependency refusing)"
        )
    if cpu_req is not None and cpu_req < IDLE_CPU_PCT:
        return "dependency", (
            f"latency rose while {name} had room to scale and its pods used only {cpu_req:.0f}% "
            "of their CPU request: the time goes behind the service (a database, a downstream "
            "call, a connection pool or lock), and more replicas will not help"
        )
    return "undetermined", (
        f"{name} had room to scale and its pods were moderately busy "
        f"({'unknown' if busy is None else f'{busy:.0f}%'} CPU): the HPA may simply not have "
        "reacted yet (a ramp step shorter than its reaction time) or the target is set high"
    )


def find_break(
    curve: pd.DataFrame,
    hpas: Sequence[HpaResult],
    curves_by_hpa: dict[str, pd.DataFrame],
    load_start_s: float,
    ramp_stop: str | None = None,
) -> BreakPoint | None:
    """The first sustained break along time of ``curve`` (the run's bins)."""
    ordered = curve.sort_values("ts").reset_index(drop=True)
    at = first_sustained_break([bool(m) for m in ordered["meets"]])
    ramp_reason = _ramp_slo_reason(ramp_stop)
    if at is None and ramp_reason is not None and not ordered.empty:
        # The ramp judged its last step broken over a window finer than these bins: its own
        # verdict places the break in the last bin before it stopped.
        at = len(ordered) - 1
    if at is None:
        return None
    row = ordered.iloc[at]
    broken = tuple(b for b in str(row["broken"]).split(",") if b) or (
        (ramp_reason,) if ramp_reason else ()
    )
    replicas: dict[str, float | None] = {}
    limits: list[tuple[str, str]] = []
    for hpa in hpas:
        own = curves_by_hpa[hpa.key]
        match = own[own["ts"] == row["ts"]]
        replicas[hpa.key] = _opt(match["replicas"].iloc[0]) if not match.empty else None
        if not match.empty:
            limits.append(_limit(match.iloc[0], hpa, broken))
    if not limits:
        limits.append(_limit(row, None, broken))
    # One HPA pinned at max explains the break before any other reason does.
    order = ("replicas_at_max", "pod_saturation", "errors", "dependency", "undetermined")
    limit, explanation = min(limits, key=lambda item: order.index(item[0]))
    return BreakPoint(
        float(row["ts"]),
        float(row["ts"]) - load_start_s,
        _opt(row["users"]),
        _opt(row["rps"]),
        replicas,
        broken,
        {k: _opt(row[k]) for k in ("p95_ms", "p99_ms", "error_rate")},
        limit,
        explanation,
        ramp_stop,
    )


def _ramp_slo_reason(ramp_stop: str | None) -> str | None:
    """The SLO the ramp stopped on (``p95_ms``, ``error_rate``), if it stopped on one."""
    parsed = parse_ramp_line(ramp_stop) if ramp_stop else None
    if parsed is None or parsed[0] != "stop":
        return None
    reason = parsed[1].get("reason")
    return reason if reason in ("p95_ms", "error_rate", "no_responses") else None


def ramp_stop_detail(marks: pd.DataFrame) -> str | None:
    """The ramp's stop line if the harness recorded it (a ``ramp_stop`` mark, or any mark whose
    detail is the shape's own line)."""
    for kind, detail in marks[["kind", "detail"]].itertuples(index=False):
        parsed = parse_ramp_line(str(detail))
        if kind == "ramp_stop" or (parsed is not None and parsed[0] == "stop"):
            return str(detail)
    return None
