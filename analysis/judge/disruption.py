"""Each ``--chaos`` disruption measured: how long the workload took to recover, and what the
load saw meanwhile, against the same length of time just before it.

Recovery runs from the action until the workload again has as many ready replicas as it had just
before it, or as its HPA desires at that moment when the HPA wants fewer (``recovered_to`` says
which). Readiness comes from ``pods.csv`` when the workload's pods were sampled, counting ready
pods other than those hit (a deleted pod can still look ready during its grace period, and a
replaced local worker is back before the next tick), else from ``workloads.csv``'s
ready_replicas. Requests, failures and percentiles come from Locust's per-second history
(Aggregated rows: cumulative counts, percentiles of the last 10 s), else from the sampler's
``locust.csv``. The disruption window lasts until recovery and at least ``MIN_WINDOW_S``, so the
burst of a worker replaced within a second still shows; a workload that never recovered is
measured until the load ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd

from analysis.data.chaosmark import ChaosMark, parse_chaos_detail
from analysis.data.timeline import time_weights
from analysis.judge.slo import AtLeast, Observed, longest

# Locust's per-second rows describe the last 10 s (its current RPS and percentiles), so a shorter
# window would cut the burst in half.
MIN_WINDOW_S: Final = 10.0
# A dip in ready replicas that starts later than this after the action is not its doing.
DIP_LOOKAHEAD_S: Final = 30.0

RecoveredTo = Literal["replicas_before", "hpa_desired"]


@dataclass(frozen=True)
class HpaReaction:
    """What the workload's HPA did during the disruption."""

    hpa: str
    desired_before: float | None
    desired_peak: float | None  # highest desired replicas during the disruption
    desired_changed: bool
    scaled_up: bool  # its current replicas rose above what they were before


@dataclass(frozen=True)
class LoadWindow:
    """Requests, failures and the worst latency percentiles of one stretch of time."""

    requests: float | None
    failures: float | None
    p95_ms: float | None
    p99_ms: float | None

    @property
    def error_rate(self) -> float | None:
        if self.requests is None or self.failures is None or self.requests <= 0:
            return None
        return self.failures / self.requests


@dataclass(frozen=True)
class Disruption:
    """One ``chaos`` mark and what followed it; times in epoch s, durations in s."""

    ts: float
    mark: ChaosMark
    recovery_s: float | None  # None: never recovered (or skipped, or nothing sampled after)
    recovered: bool | None  # None when skipped
    recovered_to: RecoveredTo | None
    readiness_source: str | None  # samples/pods.csv or samples/workloads.csv
    ready_before: int | None
    window_s: float
    before: LoadWindow
    during: LoadWindow
    load_source: str | None
    hpa: HpaReaction | None
    replacement_seen_s: float | None  # a pod not seen before the action first appeared
    replacement_ready_s: float | None  # ... and was first ready

    @property
    def skipped(self) -> bool:
        return self.mark.skipped is not None

    @property
    def subject(self) -> str:
        return f"{self.mark.namespace}/{self.mark.workload}"

    @property
    def took_all_ready(self) -> bool:
        """The action hit every ready replica: nothing was left to serve."""
        ready = self.ready_before
        return ready is not None and ready >= 1 and len(self.mark.pods) >= ready


def chaos_marks(marks: pd.DataFrame) -> list[tuple[float, ChaosMark]]:
    """The parsable ``chaos`` marks, in time order."""
    found = []
    for ts, kind, detail in marks[["ts", "kind", "detail"]].itertuples(index=False):
        mark = parse_chaos_detail(str(detail)) if kind == "chaos" else None
        if mark is not None and pd.notna(ts):
            found.append((float(ts), mark))
    return sorted(found, key=lambda item: item[0])


def readiness(
    pods: pd.DataFrame, workloads: pd.DataFrame, mark: ChaosMark, *, without_hit: bool = True
) -> tuple[pd.DataFrame, str | None]:
    """Ready replicas over time (columns ts, ready), the pods hit not counted unless
    ``without_hit`` is False, and the source."""
    mine = pods[(pods["namespace"] == mark.namespace) & (pods["workload"] == mark.workload)]
    if not mine.empty:
        counted = mine["ready"].fillna(False).astype(bool)
        if without_hit:
            counted &= ~mine["pod"].isin(mark.pods)
        series = counted.groupby(mine["ts"]).sum().astype(float)
        return pd.DataFrame({"ts": series.index.to_numpy(float), "ready": series.to_numpy()}), (
            "samples/pods.csv"
        )
    rows = workloads[
        (workloads["namespace"] == mark.namespace) & (workloads["name"] == mark.workload)
    ]
    rows = rows[rows["ready_replicas"].notna()]
    if rows.empty:
        return pd.DataFrame({"ts": [], "ready": []}, dtype=float), None
    return (
        pd.DataFrame(
            {"ts": rows["ts"].to_numpy(float), "ready": rows["ready_replicas"].to_numpy(float)}
        ),
        "samples/workloads.csv",
    )


def _hpa_rows(hpa: pd.DataFrame, mark: ChaosMark) -> pd.DataFrame:
    return hpa[(hpa["namespace"] == mark.namespace) & (hpa["target_name"] == mark.workload)]


def _ready_before(
    pods: pd.DataFrame, workloads: pd.DataFrame, mark: ChaosMark, ts: float
) -> int | None:
    """Ready replicas when the action hit: what the action itself counted, else (a mark
    without the count) the last sample before it. A sample is up to a tick older than the
    action and can miss a pod that became ready since: a recovery would then look instant."""
    if mark.ready_before is not None:
        return mark.ready_before
    everyone, _ = readiness(pods, workloads, mark, without_hit=False)
    before = everyone[everyone["ts"] < ts]
    return None if before.empty else int(before["ready"].iloc[-1])


def _last_at(frame: pd.DataFrame, column: str, ts: float) -> float | None:
    known = frame[(frame["ts"] <= ts) & frame[column].notna()]
    return None if known.empty else float(known[column].iloc[-1])


def _recovery(
    ready: pd.DataFrame,
    ts: float,
    before: float,
    desired: pd.DataFrame,
    excludes_hit: bool,
) -> tuple[float | None, RecoveredTo | None]:
    """When readiness was back (epoch s) and to what; (None, None) if it never was.

    Without the hit pods excluded (workloads.csv), a sample just after the action may not show
    the loss yet: recovery then counts from the first dip, if one starts soon enough."""
    after = ready[ready["ts"] >= ts] if excludes_hit else ready[ready["ts"] > ts]
    if after.empty:
        return None, None
    required = np.full(len(after), before)
    wanted = [_last_at(desired, "desired_replicas", float(t)) for t in after["ts"]]
    lower = np.array([w if w is not None and w < before else before for w in wanted])
    required = np.minimum(required, lower)
    met = after["ready"].to_numpy(float) >= required
    if not excludes_hit:
        dips = np.flatnonzero(~met & (after["ts"].to_numpy(float) <= ts + DIP_LOOKAHEAD_S))
        if dips.size:
            met[: dips[0]] = False
    hits = np.flatnonzero(met)
    if not hits.size:
        return None, None
    i = int(hits[0])
    return float(after["ts"].iloc[i]), "hpa_desired" if lower[i] < before else "replicas_before"


def _replacement(
    pods: pd.DataFrame, mark: ChaosMark, ts: float
) -> tuple[float | None, float | None]:
    mine = pods[(pods["namespace"] == mark.namespace) & (pods["workload"] == mark.workload)]
    known = set(mine.loc[mine["ts"] < ts, "pod"])
    new = mine[(mine["ts"] >= ts) & ~mine["pod"].isin(known) & ~mine["pod"].isin(mark.pods)]
    if new.empty:
        return None, None
    ready = new[new["ready"].fillna(False).astype(bool)]
    seen = float(new["ts"].min()) - ts
    return seen, (float(ready["ts"].min()) - ts) if not ready.empty else None


def load_window(
    history: pd.DataFrame, locust: pd.DataFrame, lo: float, hi: float, interval_s: float
) -> tuple[LoadWindow, str | None]:
    """What the load saw in (lo, hi]: Locust's own history first, else the sampler's rows."""
    aggregated = history[history["Name"] == "Aggregated"].sort_values("Timestamp")
    if not aggregated.empty and aggregated["Total Request Count"].notna().any():
        ts = aggregated["Timestamp"].to_numpy(float)
        inside = aggregated[(ts > lo) & (ts <= hi)]

        def total(column: str, at: float) -> float:
            upto = aggregated[(ts <= at) & aggregated[column].notna()]
            return float(upto[column].iloc[-1]) if not upto.empty else 0.0

        return (
            LoadWindow(
                total("Total Request Count", hi) - total("Total Request Count", lo),
                total("Total Failure Count", hi) - total("Total Failure Count", lo),
                _max(inside["95%"]),
                _max(inside["99%"]),
            ),
            "locust/stats_history.csv",
        )
    inside = locust[(locust["ts"] > lo) & (locust["ts"] <= hi)]
    if inside.empty:
        return LoadWindow(None, None, None, None), None
    weights = time_weights(inside["ts"].to_numpy(float), interval_s)
    return (
        LoadWindow(
            float((inside["rps"].fillna(0.0).to_numpy(float) * weights).sum()),
            float((inside["fail_per_s"].fillna(0.0).to_numpy(float) * weights).sum()),
            _max(inside["p95_ms"]),
            None,
        ),
        "samples/locust.csv",
    )


def _max(values: pd.Series[float]) -> float | None:
    known = values.dropna()
    return None if known.empty else float(known.max())


def _hpa_reaction(hpa: pd.DataFrame, mark: ChaosMark, lo: float, hi: float) -> HpaReaction | None:
    rows = _hpa_rows(hpa, mark)
    if rows.empty:
        return None
    during = rows[(rows["ts"] > lo) & (rows["ts"] <= hi)]
    desired_before = _last_at(rows, "desired_replicas", lo)
    current_before = _last_at(rows, "current_replicas", lo)
    desired_peak = _max(during["desired_replicas"])
    current_peak = _max(during["current_replicas"])
    changed = bool(
        desired_before is not None and (during["desired_replicas"].dropna() != desired_before).any()
    )
    return HpaReaction(
        str(rows["hpa"].iloc[-1]),
        desired_before,
        desired_peak,
        changed,
        current_before is not None and current_peak is not None and current_peak > current_before,
    )


def measure(
    marks: pd.DataFrame,
    *,
    pods: pd.DataFrame,
    workloads: pd.DataFrame,
    hpa: pd.DataFrame,
    history: pd.DataFrame,
    locust: pd.DataFrame,
    end_s: float,
    load_start_s: float | None = None,
    interval_s: float = 2.0,
) -> list[Disruption]:
    """Every disruption of a run; ``end_s`` is when measuring stops (the load's end)."""
    measured = []
    for ts, mark in chaos_marks(marks):
        ready, source = readiness(pods, workloads, mark)
        ready_before = _ready_before(pods, workloads, mark, ts)
        recovered_at: float | None = None
        recovered_to: RecoveredTo | None = None
        if mark.skipped is None and ready_before is not None:
            recovered_at, recovered_to = _recovery(
                ready, ts, float(ready_before), _hpa_rows(hpa, mark), source == "samples/pods.csv"
            )
        recovery_s = None if recovered_at is None else max(0.0, recovered_at - ts)
        span = recovery_s if recovery_s is not None else max(end_s - ts, 0.0)
        window_s = max(span, MIN_WINDOW_S)
        lo_before = ts - window_s if load_start_s is None else max(ts - window_s, load_start_s)
        before, _ = load_window(history, locust, lo_before, ts, interval_s)
        during, load_source = load_window(history, locust, ts, ts + window_s, interval_s)
        seen_s, ready_s = _replacement(pods, mark, ts)
        measured.append(
            Disruption(
                ts=ts,
                mark=mark,
                recovery_s=recovery_s,
                recovered=None if mark.skipped is not None else recovery_s is not None,
                recovered_to=recovered_to,
                readiness_source=source,
                ready_before=ready_before,
                window_s=window_s,
                before=before,
                during=during,
                load_source=load_source,
                hpa=_hpa_reaction(hpa, mark, ts, ts + window_s),
                replacement_seen_s=seen_s,
                replacement_ready_s=ready_s,
            )
        )
    return measured


def disruption_values(disruptions: Sequence[Disruption], end_s: float) -> dict[str, Observed]:
    """The SLO names of ``--chaos`` (``judge.slo.METRICS``); None, which fails a gate, when
    nothing was disrupted. A disruption never recovered by ``end_s`` (the loaded window's end)
    took at least the time that was left: ``recovery_s`` is then that lower bound, which fails
    an upper bound however fast the other disruptions recovered."""
    done = [d for d in disruptions if not d.skipped]
    recoveries: list[float | AtLeast | None] = [
        d.recovery_s if d.recovery_s is not None else AtLeast(max(0.0, end_s - d.ts)) for d in done
    ]
    error_rates = [d.during.error_rate for d in done if d.during.error_rate is not None]
    p95s = [d.during.p95_ms for d in done if d.during.p95_ms is not None]
    return {
        "recovery_s": longest(recoveries),
        "disruption_error_rate": max(error_rates) if error_rates else None,
        "disruption_p95_ms": max(p95s) if p95s else None,
        "disruptions_recovered": sum(1 for d in done if d.recovered) / len(done) if done else None,
    }
