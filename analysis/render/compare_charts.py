"""Two runs' timelines overlaid: users, requests/s, p95 and replicas per HPA, each run's time
counted from its own test start so the same load step lines up in both."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from analysis.render.charts import CHART_DPI
from analysis.render.timeline_chart import legend_outside

# (colour, line style, width, z-order): the candidate is a wide pale line, the baseline a thin
# dashed one drawn over it, so both stay visible where the runs agree.
_STYLES = {"baseline": ("0.2", "--", 1.1, 3), "candidate": ("tab:blue", "-", 2.6, 2)}


@dataclass(frozen=True)
class AlignedRun:
    """One run's series against ``t`` = seconds since its test start."""

    label: str  # "baseline" or "candidate"
    run_id: str
    load: pd.DataFrame  # t, users, rps, p95_ms
    replicas: Mapping[str, pd.DataFrame] = field(default_factory=dict)  # HPA name -> t, current


def _panel(ax: Axes, runs: Sequence[AlignedRun], column: str, ylabel: str) -> None:
    drawn = False
    top = 0.0
    for run in runs:
        frame = run.load.dropna(subset=[column])
        if frame.empty:
            continue
        color, linestyle, width, z = _STYLES[run.label]
        ax.plot(
            frame["t"],
            frame[column],
            color=color,
            linestyle=linestyle,
            linewidth=width,
            zorder=z,
            alpha=0.6 if run.label == "candidate" else 1.0,
            label=f"{run.label} {run.run_id}",
        )
        drawn = True
        top = max(top, float(frame[column].max()))
    if not drawn:
        ax.text(0.5, 0.5, f"no {ylabel} in either run", ha="center", va="center", color="grey")
    ax.set_ylabel(ylabel)
    ax.margins(x=0.01)
    ax.set_ylim(0, top * 1.15 or 1.0)  # headroom: a flat line at the peak stays off the frame
    legend_outside(ax)


def _replicas(ax: Axes, runs: Sequence[AlignedRun]) -> None:
    names = sorted({name for run in runs for name in run.replicas})
    top = 1.0
    for i, name in enumerate(names):
        for run in runs:
            frame = run.replicas.get(name)
            if frame is None or frame.empty:
                continue
            ax.step(
                frame["t"],
                frame["current"],
                where="post",
                color=f"C{i % 10}",
                linestyle=_STYLES[run.label][1],
                linewidth=_STYLES[run.label][2],
                zorder=_STYLES[run.label][3],
                alpha=0.6 if run.label == "candidate" else 1.0,
                label=f"{name} ({run.label})",
            )
            top = max(top, float(frame["current"].max()))
    if not names:
        ax.text(0.5, 0.5, "no HPA in either run", ha="center", va="center", color="grey")
    ax.set_ylabel("replicas")
    ax.margins(x=0.01)
    ax.set_ylim(0, top + 1)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    legend_outside(ax)


def plot_overlay(axes: Sequence[Axes], runs: Sequence[AlignedRun]) -> None:
    """Four panels on ``axes``: users, requests/s, p95, replicas."""
    _panel(axes[0], runs, "users", "users")
    _panel(axes[1], runs, "rps", "requests/s")
    _panel(axes[2], runs, "p95_ms", "p95 (ms)")
    _replicas(axes[3], runs)
    axes[0].set_title("Baseline (dashed) and candidate (wide), aligned on test start")
    axes[-1].set_xlabel("seconds since test start")


def render_overlay(path: Path, runs: Sequence[AlignedRun]) -> Path:
    """Writes the overlay as a PNG at twice the page's resolution."""
    figure = Figure(figsize=(11.0, 8.4), dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(4, 1, sharex=True, squeeze=False)[:, 0]
    plot_overlay(list(axes), runs)
    figure.savefig(path, format="png")
    return path
