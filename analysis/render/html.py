"""``report/report.html`` and ``compare.html``: self-contained pages (charts embedded as base64
PNG, no scripts) rendered from the Jinja2 templates in ``templates/``.

Autoescaping is always on: pod names, finding messages and SLO expressions come from user input
and cluster objects. The layout lives in the templates; this module only prepares values and the
formatting filters the templates use, so the page can change without touching the analysis.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2

from analysis.data.units import format_bytes
from analysis.render.capacity_text import capacity_lines, reported, unsearched_text
from analysis.render.charts import CHART_DPI, CSS_DPI
from analysis.render.hpa_text import detail_lines

TEMPLATES = Path(__file__).parent / "templates"
# The order of the charts on the report page; the timeline is not in it: it leads the page.
_SECTION_CHARTS = ("replicas", "memory", "latency", "whatif")


@dataclass(frozen=True)
class Chart:
    """A chart ready for a page: a data URI, or the reason it could not be drawn."""

    name: str
    uri: str | None
    width_px: int | None  # CSS pixels: the PNG is drawn at CHART_DPI, shown at CSS_DPI
    error: str | None


def value(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:,.1f}" if abs(v) < 1e6 else f"{v:,.0f}"
    return str(v)


def as_bytes(v: Any) -> str:
    return "n/a" if v is None else format_bytes(float(v))


def pct(v: Any) -> str:
    return "n/a" if v is None else f"{float(v):.0f}%"


def at(ts: float, start: float | None) -> str:
    """``+42 s (12:00:42 UTC)``: offset from the run's start, then the wall clock."""
    clock = datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S UTC")
    return clock if start is None else f"+{ts - start:.0f} s ({clock})"


def _unit(metric: str) -> str:
    """The unit a measure's name carries: ``p95_ms``, ``p95_ms_during``, ``recovery_s``."""
    words = metric.split("_")
    if "ms" in words:
        return " ms"
    return " s" if words[-1] == "s" else ""


def measure(value: float | None, metric: str) -> str:
    """A measure's value for people, in the unit its name carries."""
    if value is None:
        return "n/a"
    if metric == "error_rate":
        return f"{100 * value:.2f}%"
    if metric.endswith("_bytes"):
        return format_bytes(value)
    if metric.endswith("_pct_of_request") or metric.endswith("_pct_of_limit"):
        return f"{value:.0f}%"
    unit = _unit(metric)
    return f"{value:,.1f}{unit}" if value != round(value) else f"{value:,.0f}{unit}"


def measure_change(before: float, after: float, metric: str) -> str:
    """How a measure changed, in its own unit: ``+34 s``, ``-83Mi``, ``-65 pt`` of request."""
    diff = after - before
    sign = "+" if diff >= 0 else "-"
    if metric == "error_rate":
        return f"{100 * diff:+.2f} pt"
    if metric.endswith("_pct_of_request") or metric.endswith("_pct_of_limit"):
        return f"{diff:+.0f} pt"
    if metric.endswith("_bytes"):
        return sign + format_bytes(abs(diff))
    return sign + measure(abs(diff), metric)


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a misspelt field fails loudly in the tests
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(v=value, bytes=as_bytes, pct=pct, at=at, measure=measure)
    return env


_ENV = _environment()


def embed(name: str, path: Path | None, error: str | None = None) -> Chart:
    if error is not None or path is None:
        return Chart(name, None, None, error or "not drawn")
    data = path.read_bytes()
    # PNG's IHDR chunk holds the width in bytes 16-19, big-endian.
    width = int.from_bytes(data[16:20], "big") * CSS_DPI // CHART_DPI
    uri = "data:image/png;base64," + base64.b64encode(data).decode("ascii")
    return Chart(name, uri, width, None)


def _charts(charts: Mapping[str, Path], errors: Mapping[str, str]) -> dict[str, Chart]:
    names = [*charts, *[n for n in errors if n not in charts]]
    return {n: embed(n, charts.get(n), errors.get(n)) for n in names}


def render_page(
    summary: Mapping[str, Any],
    charts: Mapping[str, Path],
    chart_errors: Mapping[str, str],
    problems: Sequence[tuple[str, str, str]],
    locust_report: bool,
) -> str:
    """The report page: verdict, the timeline, findings, then the tables with their charts."""
    embedded = _charts(charts, chart_errors)
    extra = [c for n, c in embedded.items() if n != "timeline" and n not in _SECTION_CHARTS]
    formulas = sorted({(k, str(v)) for w in summary["workloads"] for k, v in w["formulas"].items()})
    hpas = summary["hpas"]
    window = summary["window"]
    capacity = summary.get("capacity")
    return _ENV.get_template("report.html.j2").render(
        s=summary,
        settings=_settings_rows(summary.get("settings") or {}),
        load_rows=[[label, _load_value(key, summary["load"].get(key))] for key, label in _LOAD],
        origin=window["start"] if window.get("load_start") is None else window["load_start"],
        events=[(h, e) for h in hpas for e in h["scale_events"]],
        by_replicas=[
            [f"{h['namespace']}/{h['name']}", k, p, (h.get("ticks_by_replicas") or {}).get(k)]
            for h in hpas
            if len(h["p95_ms_by_replicas"]) >= 2
            for k, p in h["p95_ms_by_replicas"].items()
        ],
        capacity=capacity,
        capacity_searched=reported(capacity),
        capacity_unsearched=unsearched_text(capacity) if capacity else "",
        capacity_lines=capacity_lines(capacity),
        capacity_rows=_capacity_rows(capacity),
        hpa_details=detail_lines,
        charts=embedded,
        extra_charts=extra,
        problems=problems,
        locust_report=locust_report,
        formulas=formulas,
        comparison=summary.get("comparison"),
        disruptions=summary.get("disruptions") or [],
    )


# The Load table's rows: summary.json's field, and what a person reads.
_LOAD = (
    ("peak_users", "peak users"),
    ("peak_rps", "peak requests/s"),
    ("total_requests", "requests"),
    ("error_rate", "error rate"),
    ("p50_ms", "p50 (ms)"),
    ("p95_ms", "p95 (ms)"),
    ("p99_ms", "p99 (ms)"),
    ("rps_per_user", "requests/s per user"),
    ("source", "measured from"),
)
_SETTING_LABELS = {
    "mode": "mode",
    "locustfile": "locustfile",
    "host": "host (-H)",
    "users": "users (-u)",
    "spawn_rate": "spawn rate (-r, users/s)",
    "run_time_s": "run time (s)",
    "workers": "workers",
    "max_workers": "max workers (--workers auto)",
    "image": "image",
    "namespace": "namespace",
    "chaos": "chaos",
    "target_rps": "target requests/s",
    "watch": "watched",
    "slos": "SLOs",
}


def _load_value(key: str, v: Any) -> str:
    if key == "error_rate" and v is not None:
        return f"{100 * float(v):.2f}%"
    return value(v)


def _settings_rows(settings: Mapping[str, Any]) -> list[list[str]]:
    rows = []
    for key, label in _SETTING_LABELS.items():
        if key not in settings:
            continue
        v = settings[key]
        shown = ", ".join(str(x) for x in v) if isinstance(v, list) else value(v)
        rows.append([label, shown or "none"])
    return rows


def _capacity_rows(capacity: Mapping[str, Any] | None) -> list[list[Any]]:
    rows = []
    for h in (capacity or {}).get("hpas") or []:
        knee = h.get("knee") or {}
        rows.append(
            [
                h["hpa"],
                knee.get("rps_per_replica"),
                knee.get("p95_ms"),
                knee.get("reached"),
                knee.get("replicas"),
                knee.get("cpu_pct_of_request"),
                knee.get("first_broken_rps_per_replica"),
            ]
        )
    return rows


def render_compare_page(
    comparison: Mapping[str, Any], charts: Mapping[str, Path], chart_errors: Mapping[str, str]
) -> str:
    """The compare page from ``compare.json``'s dict and the overlay charts."""
    return _ENV.get_template("compare.html.j2").render(
        c=comparison, charts=_charts(charts, chart_errors)
    )
