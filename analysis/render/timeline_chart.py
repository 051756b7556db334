"""The report's lead figure: one timeline of the whole run, three panels sharing the time axis.

Load (users, requests/s, p95) on top, replicas per HPA in the middle, memory and CPU as a percentage
of request against the HPA's targets at the bottom; load steps (``stage`` marks) and disruptions
(``chaos`` marks, ``summary["disruptions"]``) are shaded across all three, so a reader sees cause
and effect line up without reading a table first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from analysis.data.timeline import Window
from analysis.judge.scaling import HpaResult
from analysis.pipeline import Analysis

# Without a recorded recovery time a disruption is shaded over this many sample ticks: wide
# enough to see at any run length, short enough not to suggest a recovery time.
_CHAOS_TICKS_WITHOUT_RECOVERY = 2.0


@dataclass(frozen=True)
class Band:
    """A shaded span of the timeline, epoch seconds."""

    start_s: float
    end_s: float
    label: str


def x_of(ts: Any, window: Window) -> np.ndarray:
    """Seconds since the test started (the live view's clock; see ``Window.origin_s``), or
    minutes for runs longer than a quarter of an hour."""
    seconds = np.asarray(ts, dtype=float) - window.origin_s
    return seconds / 60.0 if window.duration_s > 900 else seconds


def x_label(window: Window) -> str:
    since = "the test started" if window.load_start_s is not None else "the run started"
    return f"{'minutes' if window.duration_s > 900 else 'seconds'} since {since}"


def legend_outside(ax: Axes, *more: Axes) -> None:
    """Legend to the right of the plot so it never hides a line; ``more`` twin axes join it."""
    lines, labels = ax.get_legend_handles_labels()
    for other in more:
        extra_lines, extra_labels = other.get_legend_handles_labels()
        lines, labels = lines + extra_lines, labels + extra_labels
    if lines:
        ax.legend(
            lines,
            labels,
            loc="upper left",
            bbox_to_anchor=(1.01 + 0.06 * bool(more), 1.0),
            fontsize="small",
            frameon=False,
        )


def stage_bands(marks: pd.DataFrame, end_s: float) -> list[Band]:
    """Each ``stage`` mark starts a band that lasts until the next stage or ``test_stop``."""
    stages = marks[marks["kind"] == "stage"].dropna(subset=["ts"]).sort_values("ts")
    stops = marks[marks["kind"] == "test_stop"]["ts"].dropna()
    stop = float(stops.max()) if not stops.empty else end_s
    starts = stages["ts"].to_numpy(float)
    bands = []
    for i, (start, detail) in enumerate(zip(starts, stages["detail"], strict=True)):
        end = float(starts[i + 1]) if i + 1 < len(starts) else max(stop, float(start))
        bands.append(Band(float(start), end, "" if pd.isna(detail) else str(detail)))
    return bands


def chaos_bands(
    marks: pd.DataFrame, disruptions: Sequence[Mapping[str, Any]], interval_s: float
) -> list[Band]:
    """Disruption windows: from ``summary["disruptions"]`` (with their recovery time), plus any
    ``chaos`` mark no disruption entry accounts for."""
    bands: list[Band] = []
    for d in disruptions:
        ts = d.get("ts")
        if not isinstance(ts, int | float):
            continue
        recovery = d.get("recovery_s")
        width = (
            float(recovery)
            if isinstance(recovery, int | float) and recovery > 0
            else _CHAOS_TICKS_WITHOUT_RECOVERY * interval_s
        )
        bands.append(Band(float(ts), float(ts) + width, str(d.get("action") or "disruption")))
    chaos = marks[marks["kind"] == "chaos"].dropna(subset=["ts"])
    for ts, detail in zip(chaos["ts"].to_numpy(float), chaos["detail"], strict=True):
        if any(abs(b.start_s - ts) <= interval_s for b in bands):
            continue
        width = _CHAOS_TICKS_WITHOUT_RECOVERY * interval_s
        bands.append(Band(float(ts), float(ts) + width, "" if pd.isna(detail) else str(detail)))
    return bands


def _shade(axes: Sequence[Axes], stages: list[Band], chaos: list[Band], window: Window) -> None:
    for i, band in enumerate(stages):
        lo, hi = x_of([band.start_s, band.end_s], window)
        for ax in axes:
            if i % 2 == 0:
                ax.axvspan(lo, hi, color="0.93", zorder=0, linewidth=0)
            ax.axvline(lo, color="0.6", linewidth=0.6, linestyle=":", zorder=0)
        if band.label:
            axes[0].annotate(
                band.label,
                (lo, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -2),
                textcoords="offset points",
                fontsize="x-small",
                color="0.35",
                va="top",
            )
    for i, band in enumerate(chaos):
        lo, hi = x_of([band.start_s, band.end_s], window)
        for j, ax in enumerate(axes):
            ax.axvspan(
                lo,
                hi,
                color="tab:red",
                alpha=0.15,
                zorder=0,
                linewidth=0,
                label="disruption" if i == 0 and j == 0 else None,
            )


def _load_panel(ax: Axes, load: pd.DataFrame, window: Window) -> Axes | None:
    if load.empty:
        ax.text(0.5, 0.5, "no load recorded", ha="center", va="center", transform=ax.transAxes)
        return None
    x = x_of(load["ts"], window)
    ax.plot(x, load["users"], color="tab:blue", label="users")
    ax.plot(x, load["rps"], color="tab:green", label="requests/s")
    if load["fail_per_s"].fillna(0).gt(0).any():
        ax.plot(x, load["fail_per_s"], color="tab:red", label="failures/s")
    ax.set_ylabel("users, requests/s")
    top = float(np.nanmax(load[["users", "rps"]].to_numpy(float), initial=0.0))
    ax.set_ylim(0, top * 1.1 or 1.0)
    if not load["p95_ms"].notna().any():
        return None
    twin = ax.twinx()
    twin.plot(
        x,
        load["p95_ms"],
        color="tab:purple",
        linestyle="--",
        linewidth=1.4,
        label="p95 (ms, right)",
    )
    twin.set_ylabel("p95 (ms)")
    # Different headroom on the two axes keeps a flat p95 from hiding under a flat RPS line.
    twin.set_ylim(0, float(load["p95_ms"].max()) * 1.35 or 1.0)
    return twin


def _replica_panel(ax: Axes, hpas: Sequence[HpaResult], window: Window) -> None:
    if not hpas:
        ax.text(0.5, 0.5, "no HPA recorded", ha="center", va="center", transform=ax.transAxes)
    top = 1.0
    for i, hpa in enumerate(hpas):
        color = f"C{i % 10}"
        s = hpa.series
        x = x_of(s["ts"], window)
        ax.step(x, s["current"], where="post", color=color, label=f"{hpa.name} current")
        ax.step(
            x, s["desired"], where="post", color=color, linestyle=":", label=f"{hpa.name} desired"
        )
        ax.plot(x, s["max"], color=color, linestyle="--", linewidth=0.8, label=f"{hpa.name} max")
        for event in hpa.events:
            ax.plot(
                x_of([event.ts], window),
                [event.to_replicas],
                marker="^" if event.up else "v",
                color=color,
                linestyle="none",
                clip_on=False,
            )
        top = max(top, float(np.nanmax(s[["current", "desired", "max"]].to_numpy(float))))
    ax.set_ylim(0, top + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylabel("replicas")


def _utilization_panel(ax: Axes, analysis: Analysis, window: Window) -> None:
    """What the HPA divides by its target: ``hpa_metrics.csv``; without an HPA, the pods' own
    usage over their request (highest pod per tick), so local runs still show memory and CPU."""
    metrics = analysis.data.hpa_metrics.dropna(subset=["current_utilization"])
    drawn = 0
    for (namespace, hpa, metric), rows in metrics.groupby(["namespace", "hpa", "metric"]):
        color = "tab:orange" if metric == "memory" else "tab:cyan"
        color = color if drawn < 2 else f"C{drawn % 10}"
        name = f"{metric} % of request ({hpa})"
        ax.plot(x_of(rows["ts"], window), rows["current_utilization"], color=color, label=name)
        target = rows["target_utilization"].dropna()
        if not target.empty:
            ax.axhline(
                float(target.iloc[-1]),
                color=color,
                linestyle="--",
                linewidth=0.9,
                label=f"{metric} target ({namespace}/{hpa})",
            )
        drawn += 1
    if not drawn:
        pods = analysis.data.pods
        for column, request, color in (
            ("memory_bytes", "memory_request_bytes", "tab:orange"),
            ("cpu_m", "cpu_request_m", "tab:cyan"),
        ):
            pct = (100 * pods[column] / pods[request]).replace([np.inf, -np.inf], np.nan)
            per_tick = pd.DataFrame({"ts": pods["ts"], "pct": pct}).dropna().groupby("ts")["pct"]
            if per_tick.ngroups:
                peak = per_tick.max()
                what = column.split("_")[0]
                label = f"{what} % of request (highest pod)"
                ax.plot(x_of(peak.index, window), peak.to_numpy(), color=color, label=label)
                drawn += 1
    if not drawn:
        ax.text(
            0.5, 0.5, "no utilization recorded", ha="center", va="center", transform=ax.transAxes
        )
    ax.set_ylim(bottom=0)
    ax.margins(y=0.1)
    ax.set_ylabel("% of request")


def timeline_panels(analysis: Analysis) -> int:
    """Three panels, or two for a run with no HPA: an empty replicas panel says nothing."""
    return 3 if analysis.hpas else 2


def plot_timeline(
    axes: Sequence[Axes], analysis: Analysis, disruptions: Sequence[Mapping[str, Any]] = ()
) -> None:
    """Draws the panels on ``axes`` (top to bottom; they should share the x axis): load,
    replicas (only when an HPA was recorded: ``timeline_panels``), utilization."""
    window = analysis.window
    twin = _load_panel(axes[0], analysis.load, window)
    if analysis.hpas:
        _replica_panel(axes[1], analysis.hpas, window)
    _utilization_panel(axes[-1], analysis, window)
    marks = analysis.data.marks
    _shade(
        axes,
        stage_bands(marks, window.end_s),
        chaos_bands(marks, disruptions, analysis.data.sample_interval_s),
        window,
    )
    what = "Load, replicas and utilization" if analysis.hpas else "Load and utilization"
    axes[0].set_title(f"{what} over the run")
    for ax in axes:
        ax.margins(x=0.01)
        ax.grid(axis="y", color="0.9", linewidth=0.6)
    legend_outside(axes[0], *([twin] if twin is not None else []))
    for ax in axes[1:]:
        legend_outside(ax)
    axes[-1].set_xlabel(x_label(window))
