"""Charts of a run. Each ``plot_*`` draws on an Axes it is given; ``render_charts`` lays them out
in figures and writes PNGs. Figures are built without pyplot (no global state, Agg canvas).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.data.timeline import Window, bin_index
from analysis.judge.adequacy import MIN_TICKS_PER_REPLICA_COUNT
from analysis.judge.resources import WorkloadResult
from analysis.judge.scaling import HpaResult
from analysis.judge.whatif import WhatIfResult
from analysis.pipeline import Analysis
from analysis.render.timeline_chart import (
    legend_outside,
    plot_timeline,
    timeline_panels,
    x_label,
    x_of,
)

MI = 2**20
# Above this many pods one line per pod is unreadable: draw min, median and max instead.
MAX_POD_LINES = 20
_WIDTH_IN = 11.0
# Pages show charts at 96 CSS pixels per inch; twice that keeps lines and text sharp on HiDPI
# screens and when zoomed to 200 %.
CSS_DPI = 96
CHART_DPI = 2 * CSS_DPI


def _x(ts: pd.Series[float] | np.ndarray, window: Window) -> np.ndarray:
    return x_of(ts, window)


def _xlabel(ax: Axes, window: Window) -> None:
    ax.set_xlabel(x_label(window))


def _nothing(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color="grey")
    ax.set_xticks([])
    ax.set_yticks([])


def plot_replicas(ax: Axes, hpa: HpaResult, window: Window) -> None:
    """One HPA: current, desired and ready replicas between min and max, scale events marked."""
    s = hpa.series
    x = _x(s["ts"], window)
    ax.step(x, s["current"], where="post", label="current")
    ax.step(x, s["desired"], where="post", linestyle=":", label="desired")
    if s["ready"].notna().any():
        ax.step(x, s["ready"], where="post", alpha=0.7, label="ready")
    ax.plot(x, s["max"], color="black", linestyle="--", linewidth=0.8, label="min / max")
    ax.plot(x, s["min"], color="black", linestyle="--", linewidth=0.8)
    for event in hpa.events:
        ax.axvline(_x(np.array([event.ts]), window)[0], color="grey", linewidth=0.6, alpha=0.6)
    ax.set_ylabel("replicas")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.margins(y=0.12)
    _xlabel(ax, window)
    ax.set_title(f"{hpa.key}: {hpa.status}, driven by {hpa.driving_metric or 'n/a'}")
    legend_outside(ax)


def plot_memory(ax: Axes, workload: WorkloadResult, window: Window, interval_s: float) -> None:
    """Working set per pod against request, limit and the HPA's memory target; OOM kills marked."""
    memory = workload.memory.dropna(subset=["memory_bytes"])
    if memory.empty:
        _nothing(ax, f"{workload.key}: memory not measured")
        return
    if memory["pod"].nunique() <= MAX_POD_LINES:
        for i, (_, rows) in enumerate(memory.groupby("pod", sort=True)):
            ax.plot(
                _x(rows["ts"], window),
                rows["memory_bytes"] / MI,
                linewidth=0.9,
                color="tab:green",
                alpha=0.7,
                label="pods (one line each)" if i == 0 else None,
            )
    else:
        bins = memory.groupby(bin_index(memory["ts"], window.start_s, interval_s))["memory_bytes"]
        stats = bins.agg(["min", "median", "max"])
        x = _x(stats.index.to_numpy(float) + window.start_s, window)
        ax.fill_between(
            x,
            stats["min"] / MI,
            stats["max"] / MI,
            alpha=0.3,
            color="tab:green",
            label="min-max of pods",
        )
        ax.plot(x, stats["median"] / MI, color="tab:green", label="median pod")
    if workload.memory_request_bytes:
        ax.axhline(
            workload.memory_request_bytes / MI, color="tab:blue", linestyle="--", label="request"
        )
        if workload.hpa_memory_target:
            ax.axhline(
                workload.memory_request_bytes * workload.hpa_memory_target / 100 / MI,
                color="tab:orange",
                linestyle=":",
                label=f"HPA target ({workload.hpa_memory_target:.0f}% of request)",
            )
    if workload.memory_limit_bytes:
        ax.axhline(workload.memory_limit_bytes / MI, color="tab:red", linestyle="--", label="limit")
    if workload.oom_times:
        top = workload.memory_limit_bytes or float(memory["memory_bytes"].max())
        ax.plot(
            _x(np.array(workload.oom_times), window),
            [top / MI] * len(workload.oom_times),
            marker="x",
            color="red",
            markersize=10,
            linestyle="none",
            clip_on=False,
            label="OOM kill",
        )
    ax.set_ylabel("working set per pod (MiB)")
    _xlabel(ax, window)
    ax.set_title(f"Memory of {workload.key} ({workload.pods_seen} pods)")
    legend_outside(ax)


def plot_latency_time(ax: Axes, load: pd.DataFrame, window: Window) -> None:
    if load.empty or not load[["p50_ms", "p95_ms", "p99_ms"]].notna().any().any():
        _nothing(ax, "no latency recorded")
        return
    x = _x(load["ts"], window)
    for column, label in (("p50_ms", "p50"), ("p95_ms", "p95"), ("p99_ms", "p99")):
        if load[column].notna().any():
            ax.plot(x, load[column], label=label)
    ax.set_ylabel("response time (ms)")
    _xlabel(ax, window)
    ax.set_title("Latency percentiles over time")
    legend_outside(ax)


def plot_latency_vs_replicas(ax: Axes, by_replicas: dict[str, dict[int, float]]) -> None:
    """Median p95 at each replica count, one line per HPA that held two or more replica counts
    (each at least ``MIN_TICKS_PER_REPLICA_COUNT`` ticks): one point says nothing of a trend."""
    drawn = False
    for name, values in by_replicas.items():
        if len(values) >= 2:
            counts = sorted(values)
            ax.plot(counts, [values[c] for c in counts], marker="o", label=name)
            drawn = True
    if not drawn:
        _nothing(
            ax,
            "p95 against replicas needs two replica counts\n"
            f"each held for {MIN_TICKS_PER_REPLICA_COUNT} ticks or more",
        )
        ax.set_title("p95 against replicas")
        return
    ax.set_xlabel("ready replicas")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.margins(0.08)
    ax.set_ylabel("p95 (ms), median over ticks")
    ax.set_title("p95 against replicas")
    legend_outside(ax)


def plot_whatif(ax: Axes, result: WhatIfResult, window: Window) -> None:
    """Replayed replicas with the change, without it, and the recorded ones."""
    if result.series.empty:
        _nothing(ax, f"{result.hpa}: nothing to replay")
        return
    x = _x(result.series["ts"], window)
    ax.step(x, result.series["recorded"], where="post", label="recorded", color="black")
    ax.step(x, result.series["unchanged"], where="post", linestyle=":", label="model, unchanged")
    ax.step(x, result.series["predicted"], where="post", label="model, with change")
    changes = ", ".join(f"{k}={v}" for k, v in result.changes.items())
    ax.set_title(f"What if {result.hpa}: {changes}")
    ax.set_ylabel("replicas")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_ylim(bottom=0)
    ax.margins(y=0.12)
    _xlabel(ax, window)
    legend_outside(ax)


def _save(
    path: Path,
    rows: int,
    draw: Callable[[list[Axes]], None],
    height_in: float = 3.6,
    columns: int = 1,
    *,
    sharex: bool = False,
) -> Path:
    # Constrained layout makes room for the legends outside the axes; tight_layout would not.
    figure = Figure(
        figsize=(_WIDTH_IN, height_in * max(rows, 1)), dpi=CHART_DPI, layout="constrained"
    )
    FigureCanvasAgg(figure)
    grid = figure.subplots(max(rows, 1), columns, sharex=sharex, squeeze=False)
    draw([ax for row in grid for ax in row])
    figure.savefig(path, format="png")
    return path


def render_charts(
    analysis: Analysis, out_dir: Path, disruptions: Sequence[Mapping[str, Any]] = ()
) -> tuple[dict[str, Path], dict[str, str]]:
    """Writes timeline, replicas, memory, latency (and what-if) PNGs at twice the page's
    resolution; ``disruptions`` (summary.json's) are shaded on the timeline.

    Returns (name -> path, name -> error): a chart that fails to draw on odd data is reported on
    the page instead of costing the user the whole report.
    """
    window, load = analysis.window, analysis.load
    hpas, workloads, whatifs = analysis.hpas, analysis.workloads, analysis.whatifs
    interval = analysis.data.sample_interval_s
    by_replicas = {k: v.p95_ms_by_replicas for k, v in analysis.adequacy.per_hpa.items()}

    def replicas(axes: list[Axes]) -> None:
        for ax, hpa in zip(axes, hpas, strict=False):
            plot_replicas(ax, hpa, window)

    def memory(axes: list[Axes]) -> None:
        if not workloads:
            _nothing(axes[0], "no pod memory recorded")
        for ax, workload in zip(axes, workloads, strict=False):
            plot_memory(ax, workload, window, interval)

    def latency(axes: list[Axes]) -> None:
        plot_latency_time(axes[0], load, window)
        plot_latency_vs_replicas(axes[1], by_replicas)

    def whatif(axes: list[Axes]) -> None:
        for ax, result in zip(axes, whatifs, strict=True):
            plot_whatif(ax, result, window)

    def timeline(axes: list[Axes]) -> None:
        plot_timeline(axes, analysis, disruptions)

    plans: list[tuple[str, int, Callable[[list[Axes]], None], float, int]] = [
        ("timeline", timeline_panels(analysis), timeline, 2.4, 1),
        ("memory", len(workloads), memory, 3.4, 1),
        ("latency", 1, latency, 3.8, 2),
    ]
    if hpas:  # a run without an HPA (local) gets no empty replicas chart
        plans.insert(1, ("replicas", len(hpas), replicas, 3.0, 1))
    if whatifs:
        plans.append(("whatif", len(whatifs), whatif, 3.0, 1))
    charts: dict[str, Path] = {}
    errors: dict[str, str] = {}
    # A chart this run does not draw must not survive from an earlier report of the directory.
    for stale in ("replicas", "whatif"):
        (out_dir / f"{stale}.png").unlink(missing_ok=True)
    for name, rows, draw, height, columns in plans:
        try:
            path = out_dir / f"{name}.png"
            charts[name] = _save(path, rows, draw, height, columns, sharex=name == "timeline")
        except Exception as e:  # drawing must never cost the report; the page shows the error
            errors[name] = f"{type(e).__name__}: {e}"
    return charts, errors
