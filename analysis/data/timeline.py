"""One UTC timeline for a run: when load was applied, its steps, and resampling to the tick.

Every judgement ("over the loaded part of the run") needs the same window, so it is computed once
here from, in order of trust: the harness's marks, the sampler's Locust rows, Locust's own history,
and run.json's start/end.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import numpy as np
import pandas as pd

from analysis.data.load import RunData, as_float

LOAD_COLUMNS = ("ts", "users", "rps", "fail_per_s", "p50_ms", "p95_ms", "p99_ms")


@dataclass(frozen=True)
class Window:
    """Epoch seconds. ``load_*`` are None when no load was ever seen."""

    start_s: float
    end_s: float
    load_start_s: float | None
    full_users_s: float | None  # when the user count first reached its peak
    load_end_s: float | None

    @property
    def loaded(self) -> tuple[float, float]:
        """The part of the run under load; the whole run if load was never seen."""
        if self.load_start_s is None:
            return self.start_s, self.end_s
        return self.load_start_s, self.load_end_s if self.load_end_s is not None else self.end_s

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)

    @property
    def origin_s(self) -> float:
        """Time zero for people: the test's start, as ``-t``, ``--chaos @WHEN`` and the live
        view count; the run's start when no load was seen. Before it, times are negative."""
        return self.start_s if self.load_start_s is None else self.load_start_s


@dataclass(frozen=True)
class LoadStep:
    """A change of the user count: a ramp from ``users_from`` to ``users_to``."""

    start_s: float
    end_s: float
    users_from: float
    users_to: float

    @property
    def rising(self) -> bool:
        return self.users_to > self.users_from


def load_series(data: RunData) -> pd.DataFrame:
    """Users, RPS, failures/s and latency percentiles over time (``LOAD_COLUMNS``).

    The sampler's ``samples/locust.csv`` comes first (it is the live view); Locust's own
    ``stats_history.csv`` fills in when the sampler has nothing, and always provides p99.
    """
    history = data.stats_history
    aggregated = history[history["Name"] == "Aggregated"]
    own = pd.DataFrame(
        {
            "ts": aggregated["Timestamp"].to_numpy(dtype=float),
            "users": aggregated["User Count"].to_numpy(dtype=float),
            "rps": aggregated["Requests/s"].to_numpy(dtype=float),
            "fail_per_s": aggregated["Failures/s"].to_numpy(dtype=float),
            "p50_ms": aggregated["50%"].to_numpy(dtype=float),
            "p95_ms": aggregated["95%"].to_numpy(dtype=float),
            "p99_ms": aggregated["99%"].to_numpy(dtype=float),
        }
    )
    own = own[own["ts"].notna()].sort_values("ts")
    sampled = data.locust
    if sampled.empty:
        return own.reset_index(drop=True)
    live = pd.DataFrame(
        {
            "ts": sampled["ts"].to_numpy(dtype=float),
            "users": sampled["user_count"].to_numpy(dtype=float),
            "rps": sampled["rps"].to_numpy(dtype=float),
            "fail_per_s": sampled["fail_per_s"].to_numpy(dtype=float),
            "p50_ms": sampled["p50_ms"].to_numpy(dtype=float),
            "p95_ms": sampled["p95_ms"].to_numpy(dtype=float),
        }
    )
    if own.empty:
        return live.assign(p99_ms=np.nan)
    p99 = own[["ts", "p99_ms"]].dropna()
    if p99.empty:
        return live.assign(p99_ms=np.nan)
    return merge_nearest(live, p99, tolerance_s=10.0)


def _all_timestamps(data: RunData) -> list[float]:
    ends: list[float] = []
    for frame in (data.locust, data.hpa, data.hpa_metrics, data.workloads, data.pods, data.marks):
        if not frame.empty:
            ends.extend((float(frame["ts"].min()), float(frame["ts"].max())))
    history_ts = data.stats_history["Timestamp"].dropna()
    if not history_ts.empty:
        ends.extend((float(history_ts.min()), float(history_ts.max())))
    return ends


def _mark_ts(data: RunData, kind: str, last: bool = False) -> float | None:
    rows = data.marks[data.marks["kind"] == kind]["ts"]
    if rows.empty:
        return None
    return float(rows.max() if last else rows.min())


def find_window(data: RunData, load: pd.DataFrame) -> Window:
    """The run's span and its loaded part (see ``Window``)."""
    seen = _all_timestamps(data)
    start = as_float(data.meta.get("start"))
    end = as_float(data.meta.get("end"))
    start_s = start if start is not None else min(seen, default=0.0)
    end_s = end if end is not None else max(seen, default=start_s)
    if seen:
        start_s, end_s = min(start_s, *seen), max(end_s, *seen)
    loaded = load[load["users"] > 0]
    load_start = _mark_ts(data, "test_start")
    load_end = _mark_ts(data, "test_stop", last=True)
    full_users = _mark_ts(data, "spawn_complete")
    if not loaded.empty:
        if load_start is None:
            load_start = float(loaded["ts"].min())
        if load_end is None:
            load_end = float(loaded["ts"].max())
        if full_users is None:
            peak = float(loaded["users"].max())
            full_users = float(loaded[loaded["users"] >= peak]["ts"].min())
    elif load_start is not None and load_end is None:
        load_end = end_s
    if load_start is not None and full_users is None:
        full_users = load_start
    return Window(start_s, end_s, load_start, full_users, load_end)


def load_steps(load: pd.DataFrame) -> list[LoadStep]:
    """Consecutive rises (or falls) of the user count merged into one step each."""
    users = load[["ts", "users"]].dropna()
    steps: list[LoadStep] = []
    previous_ts, previous_users = None, 0.0
    for ts, count in zip(users["ts"].to_numpy(float), users["users"].to_numpy(float), strict=True):
        if count != previous_users:
            direction = count > previous_users
            last = steps[-1] if steps else None
            if last is not None and last.rising == direction and last.end_s == previous_ts:
                steps[-1] = LoadStep(last.start_s, float(ts), last.users_from, float(count))
            else:
                # The first sample showing the change: lags measured from here are short by at
                # most one tick, and nothing recorded before the change counts as a reaction to it.
                steps.append(LoadStep(float(ts), float(ts), previous_users, float(count)))
        previous_ts, previous_users = float(ts), float(count)
    return steps


_USERS_DETAIL: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s+users?\b")


def mark_steps(marks: pd.DataFrame) -> list[LoadStep]:
    """Load steps from marks alone, for runs with no user count (load driven from elsewhere):
    ``test_start`` is a rise, ``test_stop`` a fall, a ``stage`` whose detail starts with a user
    count ("40 users") a change to that count; a ``stage`` without one says nothing to go by."""
    steps: list[LoadStep] = []
    level = 0.0
    for ts, kind, detail in marks[["ts", "kind", "detail"]].itertuples(index=False):
        count = _USERS_DETAIL.match(str(detail)) if kind == "stage" else None
        target = {"test_start": max(level, 1.0), "test_stop": 0.0}.get(str(kind))
        if count is not None:
            target = float(count.group(1))
        if target is not None and target != level and pd.notna(ts):
            steps.append(LoadStep(float(ts), float(ts), level, target))
            level = target
    return steps


def bin_index(ts: pd.Series[float], origin_s: float, interval_s: float) -> pd.Series[float]:
    """The tick each timestamp falls in, as seconds since ``origin_s`` (left edge of the bin)."""
    bins = np.floor((ts.to_numpy(float) - origin_s) / interval_s) * interval_s
    return pd.Series(bins, index=ts.index, dtype=float)


def resample(
    frame: pd.DataFrame, origin_s: float, interval_s: float, **columns: tuple[str, str]
) -> pd.DataFrame:
    """``frame`` on the run's tick grid: one row per ``interval_s`` tick counted from ``origin_s``
    (index: the tick's left edge, seconds since origin); each output column is a named aggregation
    ``(input column, how)`` such as ``rps=("rps", "mean")``. Frames resampled with the same origin
    and interval join on their index."""
    return frame.groupby(bin_index(frame["ts"], origin_s, interval_s)).agg(**columns)


def merge_nearest(
    left: pd.DataFrame,
    right: pd.DataFrame,
    tolerance_s: float | None,
    direction: Literal["nearest", "backward", "forward"] = "nearest",
) -> pd.DataFrame:
    """``merge_asof`` on the float ``ts`` column, both sides sorted by it."""
    # pandas accepts a float tolerance for float keys; pandas-stubs only knows int and timedelta.
    tolerance = cast(Any, tolerance_s)
    return pd.merge_asof(
        left.sort_values("ts"),
        right.sort_values("ts"),
        on="ts",
        direction=direction,
        tolerance=tolerance,
    )


def time_weights(ts: np.ndarray, interval_s: float) -> np.ndarray:
    """Seconds each sample stands for: the gap to the next sample, capped at 2 ticks."""
    if ts.size == 0:
        return np.zeros(0)
    gaps = np.diff(ts, append=ts[-1] + interval_s)
    return np.clip(gaps, 0.0, 2.0 * interval_s)
