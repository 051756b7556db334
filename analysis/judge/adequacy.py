"""How much load the test applied, and whether it was enough to judge autoscaling at all.

A test that never loads the target ends with every HPA "healthy" at min, which reads like a pass;
this module says when that is because the load was too low, and puts RPS and p95 next to replicas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import pandas as pd

from analysis.data.load import RunData
from analysis.data.timeline import Window, resample, time_weights
from analysis.judge.scaling import HpaResult

# A user that makes fewer than one request every 10 s is waiting, not loading.
MIN_RPS_PER_USER = 0.1
# Locust's current RPS is a 10 s rolling window and reads 0 for the first seconds: with fewer
# samples than this at full users, or a shorter span, the rate comes from Locust's own totals.
MIN_RATE_SAMPLES = 3
LOCUST_RPS_WINDOW_S = 10.0


@dataclass(frozen=True)
class LoadSummary:
    peak_users: float | None
    peak_rps: float | None
    total_requests: float | None
    total_failures: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    source: str  # where the totals and percentiles came from

    @property
    def error_rate(self) -> float | None:
        if self.total_requests is None or self.total_failures is None or self.total_requests <= 0:
            return None
        return self.total_failures / self.total_requests


# A replica count held for fewer ticks than this gives no p95 worth comparing: three or four
# points, most of them taken while pods were starting, invite wrong conclusions.
MIN_TICKS_PER_REPLICA_COUNT = 5


@dataclass(frozen=True)
class ReplicaLoad:
    """RPS per ready replica and p95 by replica count for one HPA's target; only replica counts
    held for at least ``MIN_TICKS_PER_REPLICA_COUNT`` ticks, with how many ticks each was."""

    rps_per_ready_replica_mean: float | None
    rps_per_ready_replica_peak: float | None
    p95_ms_by_replicas: dict[int, float] = field(default_factory=dict)
    ticks_by_replicas: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Adequacy:
    too_low: bool
    nothing_sent: bool
    reasons: tuple[str, ...]
    rps_per_user: float | None
    per_hpa: dict[str, ReplicaLoad]
    rps_per_user_source: str = "samples"
    broken_locustfile: bool = False  # the locustfile raised: advice must not be "more users"
    hpa_states: tuple[str, ...] = ()  # what each HPA did, in words that match its findings


def _opt(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def summarize_load(
    data: RunData, load: pd.DataFrame, window: Window, interval_s: float
) -> LoadSummary:
    """Totals and percentiles from Locust's stats.csv; else its history; else the sampler."""
    peak_users = _opt(load["users"].max()) if not load.empty else None
    peak_rps = _opt(load["rps"].max()) if not load.empty else None
    aggregated = data.stats[data.stats["Name"] == "Aggregated"]
    if not aggregated.empty:
        row = aggregated.iloc[-1]
        return LoadSummary(
            peak_users,
            peak_rps,
            _opt(row["Request Count"]),
            _opt(row["Failure Count"]),
            _opt(row["50%"]),
            _opt(row["95%"]),
            _opt(row["99%"]),
            "locust/stats.csv",
        )
    lo, hi = window.loaded
    loaded = load[(load["ts"] >= lo) & (load["ts"] <= hi)]

    def median(column: str) -> float | None:
        return _opt(loaded[column].median()) if not loaded.empty else None

    history = data.stats_history[data.stats_history["Name"] == "Aggregated"]
    if not history.empty:
        last = history.iloc[-1]
        return LoadSummary(
            peak_users,
            peak_rps,
            _opt(last["Total Request Count"]),
            _opt(last["Total Failure Count"]),
            median("p50_ms"),
            median("p95_ms"),
            median("p99_ms"),
            "locust/stats_history.csv (percentiles: median of the per-window values)",
        )
    if load.empty:
        return LoadSummary(None, None, None, None, None, None, None, "none")
    weights = time_weights(load["ts"].to_numpy(float), interval_s)
    total = float((load["rps"].fillna(0.0).to_numpy(float) * weights).sum())
    failures = float((load["fail_per_s"].fillna(0.0).to_numpy(float) * weights).sum())
    return LoadSummary(
        peak_users,
        peak_rps,
        round(total),
        round(failures),
        median("p50_ms"),
        median("p95_ms"),
        median("p99_ms"),
        "samples/locust.csv (totals integrated from RPS; percentiles: median)",
    )


def _replica_load(
    load: pd.DataFrame, hpa: HpaResult, window: Window, interval_s: float
) -> ReplicaLoad:
    lo, hi = window.loaded
    series = hpa.series[(hpa.series["ts"] >= lo) & (hpa.series["ts"] <= hi)]
    loaded = load[(load["ts"] >= lo) & (load["ts"] <= hi)]
    if series.empty or loaded.empty:
        return ReplicaLoad(None, None)
    replicas = series.assign(
        replicas=series["ready"].where(series["ready"].notna(), series["current"])
    )
    per_tick = resample(replicas, window.start_s, interval_s, replicas=("replicas", "last"))
    traffic = resample(
        loaded, window.start_s, interval_s, rps=("rps", "mean"), p95=("p95_ms", "mean")
    )
    joined = per_tick.join(traffic, how="inner").dropna(subset=["replicas"])
    joined = joined[joined["replicas"] > 0]
    if joined.empty:
        return ReplicaLoad(None, None)
    per_replica = (joined["rps"] / joined["replicas"]).dropna()
    grouped = joined.dropna(subset=["p95"]).groupby("replicas")["p95"]
    medians, counts = grouped.median(), grouped.count()
    held = counts[counts >= MIN_TICKS_PER_REPLICA_COUNT].index
    return ReplicaLoad(
        _opt(per_replica.mean()) if not per_replica.empty else None,
        _opt(per_replica.max()) if not per_replica.empty else None,
        {round(float(k)): float(medians[k]) for k in held},
        {round(float(k)): int(counts[k]) for k in held},
    )


def locust_total_rps(stats: pd.DataFrame) -> float | None:
    """Locust's own average RPS over the run (stats.csv ``Aggregated`` ``Requests/s``)."""
    aggregated = stats[stats["Name"] == "Aggregated"]
    return None if aggregated.empty else _opt(aggregated["Requests/s"].iloc[-1])


def _rps_per_user(
    load: pd.DataFrame, summary: LoadSummary, window: Window, locust_rps: float | None
) -> tuple[float | None, str]:
    """Requests/s per user at full users, from the samples when there are enough of them, else
    from Locust's totals (per peak user: a lower bound while users were still ramping)."""
    start = window.full_users_s if window.full_users_s is not None else window.loaded[0]
    full = load[(load["ts"] >= start) & (load["ts"] <= window.loaded[1]) & (load["users"] > 0)]
    rated = full.dropna(subset=["rps"])
    span = float(rated["ts"].max() - rated["ts"].min()) if not rated.empty else 0.0
    if len(rated) >= MIN_RATE_SAMPLES and span >= LOCUST_RPS_WINDOW_S:
        return _opt(rated["rps"].mean() / rated["users"].mean()), "samples"
    users = summary.peak_users
    if locust_rps is not None and users:
        return locust_rps / users, "locust/stats.csv"
    if not rated.empty:
        return _opt(rated["rps"].mean() / rated["users"].mean()), "samples"
    return None, "none"


def judge_adequacy(
    load: pd.DataFrame,
    summary: LoadSummary,
    hpas: list[HpaResult],
    window: Window,
    interval_s: float,
    *,
    scaling_note: str | None = None,
    locust_rps: float | None = None,
    exceptions: float = 0.0,
    hpa_states: tuple[str, ...] = (),
) -> Adequacy:
    """Was the load enough to make the HPAs act? ``scaling_note`` is the reason, if any, that no
    HPA was pushed by load (``analysis.judge.evidence``); ``locust_rps`` Locust's own average RPS;
    ``exceptions`` how many times the locustfile raised."""
    per_hpa = {h.key: _replica_load(load, h, window, interval_s) for h in hpas}
    reasons: list[str] = []
    nothing_sent = (summary.total_requests is not None and summary.total_requests <= 0) or (
        summary.peak_rps is not None and summary.peak_rps <= 0 and not summary.total_requests
    )
    if nothing_sent:
        reasons.append(
            f"no request was made during the run: the locustfile raised {exceptions:.0f} "
            "exception(s) instead (see locustfile_exceptions)"
            if exceptions > 0
            else "no request was made during the run"
        )
    rps_per_user, source = _rps_per_user(load, summary, window, locust_rps)
    if rps_per_user is not None and not nothing_sent and rps_per_user < MIN_RPS_PER_USER:
        origin = "" if source == "samples" else f" (from {source}: too few samples)"
        reasons.append(
            f"at full users each user made {rps_per_user:.3f} requests/s{origin} (under "
            f"{MIN_RPS_PER_USER}): users mostly waited (long wait_time, blocked calls, tasks "
            "that raise or an overloaded load generator)"
        )
    if scaling_note is not None:
        reasons.append(scaling_note)
    return Adequacy(
        bool(reasons),
        bool(nothing_sent),
        tuple(reasons),
        rps_per_user,
        per_hpa,
        rps_per_user_source=source,
        broken_locustfile=exceptions > 0,
        hpa_states=hpa_states,
    )
