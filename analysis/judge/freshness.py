"""How fresh each sampled series was: the harness's interval against what its source can give.

A series sampled every 2 s is not 2 s fresh if its source refreshes every 15 s: the metrics API
measures pod usage at its own resolution (metrics-server: 15 s) and the harness records the
usage's own timestamp (``pods.csv`` ``usage_ts``), so the age of the usage at the tick that
recorded it is measured, not assumed. Locust's rates and percentiles are over its last 10 s
(REFERENCE: Locust), and an HPA's status changes only at the controller's syncs.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from analysis.data.load import RunData
from analysis.judge.whatif import recorded_sync_period_s

# REFERENCE (Locust): current requests/s and the current percentiles are over a 10 s window.
LOCUST_WINDOW_S = 10.0


@dataclass(frozen=True)
class SeriesFreshness:
    series: str  # locust, hpa, pod_usage
    interval_s: float  # the harness's --interval
    samples: int  # ticks that recorded this series
    median_gap_s: float | None  # between consecutive recorded ticks
    resolution_s: float | None  # how often the source itself refreshes (measured or known)
    median_age_s: float | None  # age of the value at the tick that recorded it (pod usage)
    max_age_s: float | None
    sentence: str


def _median_gap(ts: pd.Series) -> float | None:
    gaps = ts.drop_duplicates().sort_values().diff().dropna()
    return float(gaps.median()) if gaps.size else None


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"


def locust_freshness(data: RunData) -> SeriesFreshness:
    ts = data.locust["ts"]
    gap = _median_gap(ts)
    return SeriesFreshness(
        "locust",
        data.sample_interval_s,
        int(ts.size),
        gap,
        LOCUST_WINDOW_S,
        None,
        None,
        f"Locust load: sampled every {_s(gap or data.sample_interval_s)}; its rates and "
        f"percentiles are over its last {_s(LOCUST_WINDOW_S)}",
    )


def hpa_freshness(data: RunData) -> SeriesFreshness:
    ts = data.hpa["ts"]
    gap = _median_gap(ts)
    sync_s = recorded_sync_period_s(data.meta)
    return SeriesFreshness(
        "hpa",
        data.sample_interval_s,
        int(ts.drop_duplicates().size),
        gap,
        sync_s,
        None,
        None,
        f"HPA status: sampled every {_s(gap or data.sample_interval_s)}; the controller "
        f"updates it every {_s(sync_s)} (its sync period)",
    )


def pod_usage_freshness(data: RunData) -> SeriesFreshness:
    """Pod CPU/memory: the age of the usage when recorded and the resolution it was measured at
    (the median step between a pod's distinct usage timestamps)."""
    pods = data.pods[data.pods["memory_bytes"].notna() | data.pods["cpu_m"].notna()]
    gap = _median_gap(pods["ts"])
    measured = pods[pods["usage_ts"].notna()]
    if measured.empty:
        every = _s(gap or data.sample_interval_s)
        return SeriesFreshness(
            "pod_usage",
            data.sample_interval_s,
            int(pods["ts"].drop_duplicates().size),
            gap,
            None,
            None,
            None,
            f"pod CPU/memory: sampled every {every}; the time of each measurement was not "
            "recorded (local processes are read at the tick itself)"
            if not pods.empty
            else "pod CPU/memory: not sampled",
        )
    age = (measured["ts"] - measured["usage_ts"]).clip(lower=0.0)
    distinct = measured[["pod", "usage_ts"]].drop_duplicates().sort_values(["pod", "usage_ts"])
    steps = distinct.groupby("pod")["usage_ts"].diff().dropna()
    resolution = float(steps.median()) if steps.size else None
    median_age, max_age = float(age.median()), float(age.max())
    measured_every = f"measured every {_s(resolution)}" if resolution else "measured"
    return SeriesFreshness(
        "pod_usage",
        data.sample_interval_s,
        int(measured["ts"].drop_duplicates().size),
        gap,
        resolution,
        median_age,
        max_age,
        f"pod CPU/memory: {measured_every} by the metrics API, at most {_s(max_age)} old when "
        f"sampled (median {_s(median_age)})",
    )


def sampling_freshness(data: RunData) -> tuple[SeriesFreshness, ...]:
    """One entry per series the run recorded; a series it did not record is left out."""
    out = []
    if not data.locust.empty:
        out.append(locust_freshness(data))
    if not data.hpa.empty:
        out.append(hpa_freshness(data))
    if not data.pods.empty:
        out.append(pod_usage_freshness(data))
    return tuple(out)
