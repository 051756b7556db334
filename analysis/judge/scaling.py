"""What each HPA did under load: replicas, scale events and their lag, driving metric, status.

Statuses are judged over the loaded part of the run:
``no_metrics`` > ``at_max`` > ``flapping`` > ``not_scaling`` > ``healthy`` when several apply.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd

from analysis.data.load import RunData
from analysis.data.timeline import LoadStep, Window, merge_nearest, time_weights

# The HPA controller's default tolerance: ratios within 10 % of 1 leave replicas alone.
TOLERANCE = 0.1
# Share of the loaded time at max while the HPA wanted more before the status is at_max: a fifth
# of the test is too long to be a transient at the peak of a ramp.
AT_MAX_SHARE = 0.2
# How long a metric may stay above target without replicas rising: the controller's worst-case
# reaction is ~55 s (kubelet 10 s + metrics-server 30 s + sync 15 s), so 90 s leaves margin.
NOT_SCALING_S = 90.0
# The default scale-down stabilization window; two reversals inside it count as flapping.
FLAP_WINDOW_S = 300.0
FLAP_REVERSALS = 2


@dataclass(frozen=True)
class ScaleEvent:
    """desiredReplicas changed; lags are from the start of the load step that preceded it."""

    ts: float
    from_replicas: int
    to_replicas: int
    lag_s: float | None
    ready_lag_s: float | None  # until ready replicas reached ``to_replicas`` (scale-ups only)
    step: LoadStep | None
    first_after_step: bool
    metric: str | None

    @property
    def up(self) -> bool:
        return self.to_replicas > self.from_replicas


@dataclass(frozen=True)
class Unanswered:
    """The longest stretch a metric stayed above target while replicas did not rise."""

    metric: str
    duration_s: float
    peak_utilization: float
    target_utilization: float
    replicas: int


@dataclass(frozen=True)
class HpaResult:
    namespace: str
    name: str
    target_kind: str
    target_name: str
    min_replicas: int | None
    max_replicas: int | None
    start_replicas: int | None
    peak_replicas: int | None
    final_replicas: int | None
    time_at_max_s: float
    at_max_wanting_share: float  # of the loaded time
    status: str
    driving_metric: str | None
    peak_utilization: dict[str, float]
    target_utilization: dict[str, float]
    events: tuple[ScaleEvent, ...]
    unanswered: Unanswered | None
    reversals: int
    has_metrics: bool
    series: pd.DataFrame = field(repr=False)  # ts, current, desired, min, max, ready

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def _int(value: float) -> int | None:
    return None if value is None or not math.isfinite(value) else round(value)


def _last(series: pd.Series[float]) -> float:
    valid = series.dropna()
    return float(valid.iloc[-1]) if not valid.empty else math.nan


def ready_series(data: RunData, namespace: str, workload: str) -> pd.DataFrame:
    """``ts, ready`` of a workload: workloads.csv, else the count of ready pods per tick."""
    rows = data.workloads[
        (data.workloads["namespace"] == namespace) & (data.workloads["name"] == workload)
    ]
    if not rows.empty and rows["ready_replicas"].notna().any():
        return pd.DataFrame(
            {"ts": rows["ts"].to_numpy(float), "ready": rows["ready_replicas"].to_numpy(float)}
        ).dropna()
    pods = data.pods[(data.pods["namespace"] == namespace) & (data.pods["workload"] == workload)]
    if pods.empty:
        return pd.DataFrame({"ts": pd.Series([], dtype=float), "ready": pd.Series([], dtype=float)})
    ready = pods["ready"].fillna(False).astype(bool)
    counts = ready.groupby(pods["ts"]).sum()
    return pd.DataFrame({"ts": counts.index.to_numpy(float), "ready": counts.to_numpy(float)})


def metric_ratios(metrics: pd.DataFrame) -> pd.DataFrame:
    """``ts, metric, utilization, target, ratio``: current over target, utilization or value."""
    utilization = metrics["current_utilization"].to_numpy(float)
    target = metrics["target_utilization"].to_numpy(float)
    by_value = np.isnan(utilization) | np.isnan(target) | (target <= 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(
            by_value,
            metrics["current_value"].to_numpy(float) / metrics["target_value"].to_numpy(float),
            utilization / target,
        )
    ratio[~np.isfinite(ratio)] = np.nan
    return pd.DataFrame(
        {
            "ts": metrics["ts"].to_numpy(float),
            "metric": metrics["metric"].to_numpy(str),
            "utilization": utilization,
            "target": target,
            "ratio": ratio,
        }
    )


def _driving_at(ratios: pd.DataFrame) -> pd.DataFrame:
    """Per metrics tick, the metric with the highest ratio (so the highest proposal)."""
    valid = ratios.dropna(subset=["ratio"])
    if valid.empty:
        return pd.DataFrame({"ts": pd.Series([], dtype=float), "metric": pd.Series([], dtype=str)})
    top = valid.sort_values(["ts", "ratio"]).groupby("ts", sort=True).tail(1)
    return top[["ts", "metric"]].sort_values("ts").reset_index(drop=True)


def _preceding_step(steps: list[LoadStep], ts: float, rising: bool) -> LoadStep | None:
    candidates = [s for s in steps if s.rising == rising and s.start_s <= ts]
    return candidates[-1] if candidates else None


def controller_scale_times(
    data: RunData, namespace: str, name: str, rows: pd.DataFrame
) -> np.ndarray:
    """When the controller itself changed the scale: status.lastScaleTime (hpa.csv) and the times
    of its SuccessfulRescale events, sorted. Sample ticks only bound a change; these time it."""
    events = data.events
    rescales = events[
        (events["namespace"] == namespace)
        & (events["name"] == name)
        & (events["reason"] == "SuccessfulRescale")
    ]["ts"]
    times = np.concatenate(
        (rows["last_scale_ts"].dropna().to_numpy(float), rescales.to_numpy(float))
    )
    return np.unique(times[np.isfinite(times)])


# The controller's own words (horizontal.go): "New size: 5; reason: cpu resource utilization
# (percentage of request) above target", "pods metric queue_depth above target", "external metric
# jobs(&LabelSelector{...}) above target", "Service metric rps above target". Scale-downs say
# "All metrics below target" and name none.
_RESCALE = re.compile(r"New size: (?P<size>\d+); reason: (?P<reason>.*)")
_REASON_METRIC = re.compile(
    r"^(?:(?:pods|external|\w+) metric (?P<custom>[^\s(]+)"
    r"|(?P<resource>\S+) (?:container )?resource).* above target$"
)


def rescale_metric(message: str) -> tuple[int, str | None] | None:
    """The new size and the metric a SuccessfulRescale event names (None for a scale-down,
    which names none); None when the message is not the controller's."""
    match = _RESCALE.match(message.strip())
    if match is None:
        return None
    reason = _REASON_METRIC.match(match["reason"].strip())
    metric = None if reason is None else reason["custom"] or reason["resource"]
    return int(match["size"]), metric


def controller_reasons(data: RunData, namespace: str, name: str) -> list[tuple[float, int, str]]:
    """``(ts, new size, metric)`` of each scale-up the controller explained in an event."""
    events = data.events
    rescales = events[
        (events["namespace"] == namespace)
        & (events["name"] == name)
        & (events["reason"] == "SuccessfulRescale")
    ]
    out = []
    for ts, message in zip(rescales["ts"], rescales["message"], strict=True):
        parsed = rescale_metric(str(message))
        if parsed is not None and parsed[1] is not None:
            out.append((float(ts), parsed[0], parsed[1]))
    return out


def _scale_time(previous_tick: float, tick: float, scale_times: np.ndarray) -> float:
    """The controller's time of a change first seen at ``tick``, if it recorded one since the
    previous tick; else the tick."""
    inside = scale_times[(scale_times > previous_tick) & (scale_times <= tick)]
    return float(inside[-1]) if inside.size else tick


def _with_first_decision(series: pd.DataFrame) -> pd.DataFrame:
    """``ts, desired`` where known. An HPA whose first computed status already differs from the
    replicas it counted (it decided before the sampler saw a number, e.g. a status first written
    after the load started) gets that count as a row just before, so its first decision is a
    scale event like the others."""
    desired = series[["ts", "desired"]].dropna()
    if desired.empty:
        return desired
    first = desired.index[0]
    current = series.loc[:first, "current"].dropna()
    if current.empty or float(current.iloc[-1]) == float(desired.loc[first, "desired"]):
        return desired
    earlier = series.loc[:first, "ts"]
    before_ts = float(earlier.iloc[-2]) if len(earlier) > 1 else float(earlier.iloc[-1]) - 1e-3
    before = pd.DataFrame({"ts": [before_ts], "desired": [float(current.iloc[-1])]})
    return pd.concat([before, desired], ignore_index=True)


def _events(
    series: pd.DataFrame,
    steps: list[LoadStep],
    driving: pd.DataFrame,
    ready: pd.DataFrame,
    *,
    scale_times: np.ndarray | None = None,
    reasons: Sequence[tuple[float, int, str]] = (),
) -> tuple[ScaleEvent, ...]:
    desired = _with_first_decision(series)
    values = desired["desired"].to_numpy(float)
    times = desired["ts"].to_numpy(float)
    events: list[ScaleEvent] = []
    answered: set[float] = set()
    known = np.zeros(0) if scale_times is None else scale_times
    for i in np.flatnonzero(np.diff(values) != 0) + 1:
        before, after = int(values[i - 1]), int(values[i])
        ts = _scale_time(float(times[i - 1]), float(times[i]), known)
        step = _preceding_step(steps, ts, rising=after > before)
        first = step is not None and step.start_s not in answered
        if step is not None:
            answered.add(step.start_s)
        metric_rows = driving[driving["ts"] <= ts]
        metric = str(metric_rows["metric"].iloc[-1]) if not metric_rows.empty else None
        # What the controller said drove it beats what the samples suggest: it saw the metrics
        # at its sync, the sampler a tick apart.
        said = [m for when, size, m in reasons if size == after and times[i - 1] < when <= times[i]]
        metric = said[-1] if said else metric
        ready_lag = None
        if step is not None and after > before and not ready.empty:
            reached = ready[(ready["ts"] >= ts) & (ready["ready"] >= after)]
            if not reached.empty:
                ready_lag = float(reached["ts"].iloc[0]) - step.start_s
        events.append(
            ScaleEvent(
                ts,
                before,
                after,
                None if step is None else ts - step.start_s,
                ready_lag,
                step,
                first,
                metric,
            )
        )
    return tuple(events)


def _unanswered(merged: pd.DataFrame) -> Unanswered | None:
    """Longest run of ticks with ratio above tolerance, below max and no rise of replicas."""
    best: Unanswered | None = None
    for metric, rows in merged.groupby("metric", sort=True):
        start = start_replicas = None
        peak = 0.0
        for ts, ratio, util, target, current, top in rows[
            ["ts", "ratio", "utilization", "target", "current", "max"]
        ].itertuples(index=False):
            above = ratio > 1 + TOLERANCE and current < top
            if above and (start is None or current <= start_replicas):
                if start is None:
                    start, start_replicas, peak = ts, current, 0.0
                peak = max(peak, util if math.isfinite(util) else ratio * 100)
                duration = ts - start
                if best is None or duration > best.duration_s:
                    best = Unanswered(
                        str(metric), duration, peak, target, round(float(start_replicas or 0))
                    )
            else:
                start = None
    return best if best is not None and best.duration_s >= NOT_SCALING_S else None


def _wanting_more(
    loaded: pd.DataFrame, ratios: pd.DataFrame, top: float, interval_s: float
) -> np.ndarray:
    """Per loaded tick, whether the HPA wanted more than ``top`` replicas: ScalingLimited says so,
    or a metric's proposal (ceil(current x ratio), outside the tolerance) is above it. Where no
    metric was read, desiredReplicas at max is all there is to go by. A desired count held at max
    by the scale-down stabilization window, with every metric under target, is not wanting more.
    """
    limited = loaded["limited"].to_numpy(bool)
    valid = ratios.dropna(subset=["ratio"])
    if valid.empty:
        return limited | (loaded["desired"].to_numpy(float) >= top)
    by_tick = valid.groupby("ts")["ratio"].max()
    peak = pd.DataFrame({"ts": by_tick.index.to_numpy(float), "ratio": by_tick.to_numpy(float)})
    merged = merge_nearest(loaded[["ts", "current", "desired"]], peak, 2 * interval_s, "backward")
    ratio = merged["ratio"].to_numpy(float)
    current = merged["current"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        proposal = np.ceil(current * ratio)
        by_metric = (ratio > 1 + TOLERANCE) & (proposal > top)
    unknown = np.isnan(ratio) & (merged["desired"].to_numpy(float) >= top)
    wanting: np.ndarray = limited | by_metric | unknown
    return wanting


def _reversals(series: pd.DataFrame) -> int:
    desired = series[["ts", "desired"]].dropna()
    changes = np.diff(desired["desired"].to_numpy(float))
    times = desired["ts"].to_numpy(float)[1:]
    moves = [(t, c > 0) for t, c in zip(times, changes, strict=True) if c != 0]
    return sum(
        1 for (t0, up0), (t1, up1) in pairwise(moves) if up0 != up1 and t1 - t0 < FLAP_WINDOW_S
    )


def _hpa_series(rows: pd.DataFrame) -> pd.DataFrame:
    series = pd.DataFrame(
        {
            "ts": rows["ts"].to_numpy(float),
            "current": rows["current_replicas"].to_numpy(float),
            "desired": rows["desired_replicas"].to_numpy(float),
            "min": rows["min_replicas"].to_numpy(float),
            "max": rows["max_replicas"].to_numpy(float),
            "limited": rows["scaling_limited"].fillna(False).to_numpy(bool),
            "active": rows["scaling_active"].fillna(True).to_numpy(bool),
        }
    )
    # A new HPA's 0 before it has counted any pod is "not computed yet" (runs recorded before
    # the sampler said so leave it in hpa.csv): not a scale event from or to 0.
    not_computed = (series["desired"] == 0) & series["current"].isna()
    series.loc[not_computed, "desired"] = np.nan
    return series


def analyse_hpa(
    data: RunData, rows: pd.DataFrame, window: Window, steps: list[LoadStep], interval_s: float
) -> HpaResult:
    """One HPA's rows of hpa.csv (and its metrics) into an ``HpaResult``."""
    namespace, name = str(rows["namespace"].iloc[0]), str(rows["hpa"].iloc[0])
    target_kind, target_name = str(rows["target_kind"].iloc[-1]), str(rows["target_name"].iloc[-1])
    ready = ready_series(data, namespace, target_name)
    series = _hpa_series(rows)
    if not ready.empty:
        series = merge_nearest(series, ready, 2 * interval_s, direction="backward")
    else:
        series = series.assign(ready=np.nan)
    metrics = data.hpa_metrics[
        (data.hpa_metrics["namespace"] == namespace) & (data.hpa_metrics["hpa"] == name)
    ]
    ratios = metric_ratios(metrics)
    driving = _driving_at(ratios)
    lo, hi = window.loaded
    loaded = series[(series["ts"] >= lo) & (series["ts"] <= hi)]
    if loaded.empty:
        loaded = series
    top = _last(series["max"])
    weights = time_weights(loaded["ts"].to_numpy(float), interval_s)
    at_max = loaded["current"].to_numpy(float) >= top
    wanting = _wanting_more(loaded.sort_values("ts"), ratios, top, interval_s)
    share = float(weights[at_max & wanting].sum() / weights.sum()) if weights.sum() > 0 else 0.0
    all_weights = time_weights(series["ts"].to_numpy(float), interval_s)
    time_at_max = float(all_weights[series["current"].to_numpy(float) >= top].sum())
    loaded_ratios = ratios[(ratios["ts"] >= lo) & (ratios["ts"] <= hi)]
    has_metrics = bool(loaded_ratios["ratio"].notna().any()) and bool(
        loaded["active"].mean() >= 0.5
    )
    merged = merge_nearest(
        loaded_ratios.dropna(subset=["ratio"]), series[["ts", "current", "max"]], 2 * interval_s
    ).dropna(subset=["current"])
    unanswered = _unanswered(merged)
    events = _events(
        series,
        steps,
        driving,
        ready,
        scale_times=controller_scale_times(data, namespace, name, rows),
        reasons=controller_reasons(data, namespace, name),
    )
    reversals = _reversals(loaded)
    if not has_metrics:
        status = "no_metrics"
    elif share >= AT_MAX_SHARE:
        status = "at_max"
    elif reversals >= FLAP_REVERSALS:
        status = "flapping"
    elif unanswered is not None:
        status = "not_scaling"
    else:
        status = "healthy"
    up_metrics = [e.metric for e in events if e.up and e.metric]
    if up_metrics:
        driving_metric: str | None = max(set(up_metrics), key=up_metrics.count)
    elif not loaded_ratios["ratio"].dropna().empty:
        peak_at = int(np.nanargmax(loaded_ratios["ratio"].to_numpy(float)))
        driving_metric = str(loaded_ratios["metric"].iloc[peak_at])
    else:
        driving_metric = None
    before = series[series["ts"] <= lo]["current"].dropna()
    start = float(before.iloc[-1]) if not before.empty else _last(series["current"][:1])
    return HpaResult(
        namespace=namespace,
        name=name,
        target_kind=target_kind,
        target_name=target_name,
        min_replicas=_int(_last(series["min"])),
        max_replicas=_int(top),
        start_replicas=_int(start),
        peak_replicas=_int(float(series["current"].max())),
        final_replicas=_int(_last(series["current"])),
        time_at_max_s=round(time_at_max, 1),
        at_max_wanting_share=share,
        status=status,
        driving_metric=driving_metric,
        peak_utilization={
            str(m): float(v)
            for m, v in loaded_ratios.groupby("metric")["utilization"].max().dropna().items()
        },
        target_utilization={
            str(m): float(v) for m, v in ratios.groupby("metric")["target"].last().dropna().items()
        },
        events=events,
        unanswered=unanswered,
        reversals=reversals,
        has_metrics=has_metrics,
        series=series.drop(columns=["limited", "active"]),
    )


def analyse_hpas(data: RunData, window: Window, steps: list[LoadStep]) -> list[HpaResult]:
    """Every HPA in hpa.csv, in name order."""
    results = []
    for _, rows in data.hpa.groupby(["namespace", "hpa"], sort=True):
        results.append(
            analyse_hpa(data, rows.sort_values("ts"), window, steps, data.sample_interval_s)
        )
    return results
