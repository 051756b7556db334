"""``report/report.html``: one self-contained page (charts embedded as base64 PNG, no scripts).

Every value from the run goes through ``html.escape``: pod names, messages and SLO expressions come
from user input and cluster objects.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from analysis.data.units import format_bytes

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1200px;color:#1d232a;padding:0 16px}
h1{font-size:1.5em;margin-bottom:4px}h2{margin-top:32px;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:8px 0 16px;font-size:.9em}
th,td{border:1px solid #d6d9dc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6}.verdict{display:inline-block;padding:4px 12px;border-radius:4px;
color:#fff;font-weight:bold}.pass{background:#1a7f37}.warn{background:#bf8700}
.fail{background:#cf222e}.finding{border-left:6px solid #999;padding:6px 12px;margin:10px 0;
background:#fafafa}.finding.high{border-color:#cf222e}.finding.medium{border-color:#bf8700}
.finding.info{border-color:#0969da}.sev{font-weight:bold;text-transform:uppercase}
.muted{color:#57606a}img.chart{max-width:100%;border:1px solid #eee;margin:8px 0}
.render-error{color:#cf222e;font-weight:bold}
"""


def _v(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:,.1f}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


def _bytes(value: Any) -> str:
    return "n/a" if value is None else format_bytes(float(value))


def _pct(value: Any) -> str:
    return "n/a" if value is None else f"{float(value):.0f}%"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], css: str = "") -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(_v(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f'<table class="{escape(css)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _findings(findings: Sequence[Mapping[str, Any]]) -> str:
    if not findings:
        return '<p class="muted">No findings.</p>'
    parts = []
    for f in findings:
        sev = str(f["severity"])
        parts.append(
            f'<div class="finding {escape(sev)}"><span class="sev">{escape(sev)}</span> '
            f"<code>{escape(str(f['code']))}</code> &middot; {escape(str(f['subject']))}"
            f"<p><b>Seen:</b> {escape(str(f['seen']))}</p>"
            f"<p><b>Why it matters:</b> {escape(str(f['why']))}</p>"
            f"<p><b>What to change:</b> {escape(str(f['change']))}</p></div>"
        )
    return "".join(parts)


def _at(ts: float, start: float | None) -> str:
    clock = datetime.fromtimestamp(ts, tz=UTC).strftime("%H:%M:%S UTC")
    return clock if start is None else f"+{ts - start:.0f} s ({clock})"


def _hpas(hpas: Sequence[Mapping[str, Any]], start: float | None) -> str:
    if not hpas:
        return '<p class="muted">No HPA was recorded (samples/hpa.csv).</p>'
    rows = [
        [
            h["namespace"] + "/" + h["name"],
            h["target"],
            h["min_replicas"],
            h["max_replicas"],
            h["start_replicas"],
            h["peak_replicas"],
            h["final_replicas"],
            h["time_at_max_s"],
            h["status"],
            h["driving_metric"],
            ", ".join(f"{k} {_pct(v)}" for k, v in h["peak_utilization"].items()) or "n/a",
            ", ".join(f"{k} {_pct(v)}" for k, v in h["target_utilization"].items()) or "n/a",
            None if not h["rps_per_ready_replica"] else h["rps_per_ready_replica"]["mean"],
        ]
        for h in hpas
    ]
    out = table(
        [
            "HPA",
            "target",
            "min",
            "max",
            "start",
            "peak",
            "final",
            "time at max (s)",
            "status",
            "driving metric",
            "peak utilization",
            "target",
            "RPS per ready replica (mean)",
        ],
        rows,
        "hpas",
    )
    events = [
        [
            h["namespace"] + "/" + h["name"],
            _at(e["ts"], start),
            f"{e['from']} -> {e['to']}",
            e["lag_s"],
            e["ready_lag_s"],
            e["metric"],
            None
            if e["step_users"] is None
            else f"{e['step_users'][0]:.0f} -> {e['step_users'][1]:.0f} users",
        ]
        for h in hpas
        for e in h["scale_events"]
    ]
    if events:
        out += "<h3>Scale events</h3>" + table(
            [
                "HPA",
                "at (since start)",
                "desired",
                "lag from load step (s)",
                "until ready (s)",
                "driving metric",
                "load step",
            ],
            events,
            "events",
        )
    by_replicas = [
        [h["namespace"] + "/" + h["name"], k, v]
        for h in hpas
        for k, v in h["p95_ms_by_replicas"].items()
    ]
    if by_replicas:
        out += "<h3>p95 by ready replicas</h3>" + table(
            ["HPA", "ready replicas", "p95 ms (median over ticks)"], by_replicas, "latency"
        )
    return out


def _workloads(workloads: Sequence[Mapping[str, Any]]) -> str:
    if not workloads:
        return '<p class="muted">No pod was recorded (samples/pods.csv).</p>'
    rows = [
        [
            w["namespace"] + "/" + w["name"],
            w["pods_seen"],
            _bytes(w["peak_memory_bytes"]),
            _bytes(w["baseline_memory_bytes"]),
            _bytes(w["memory_request_bytes"]),
            _bytes(w["memory_limit_bytes"]),
            _pct(w["peak_memory_pct_of_request"]),
            _pct(w["peak_memory_pct_of_limit"]),
            w["memory_follows_load"],
            w["oom_kills"],
            w["restarts"],
            w["p95_cpu_m"],
            w["cpu_request_m"],
        ]
        for w in workloads
    ]
    out = table(
        [
            "workload",
            "pods",
            "peak memory",
            "baseline memory",
            "request",
            "limit",
            "peak % of request",
            "peak % of limit",
            "memory follows load",
            "OOM kills",
            "restarts",
            "CPU p95 (m)",
            "CPU request (m)",
        ],
        rows,
        "workloads",
    )
    recs = [
        [
            w["namespace"] + "/" + w["name"],
            _bytes(w["recommended_memory_request_bytes"]),
            _bytes(w["recommended_memory_limit_bytes"]),
            None
            if w["recommended_cpu_request_m"] is None
            else f"{w['recommended_cpu_request_m']:.0f}m",
        ]
        for w in workloads
    ]
    out += "<h3>Recommendations</h3>" + table(
        ["workload", "memory request", "memory limit", "CPU request"], recs, "recommendations"
    )
    formulas = {(k, str(v)) for w in workloads for k, v in w["formulas"].items()}
    out += table(["setting", "formula"], sorted(formulas), "formulas")
    return out


def _whatifs(whatifs: Sequence[Mapping[str, Any]]) -> str:
    if not whatifs:
        return (
            '<p class="muted">No what-if asked; try <code>kubeswarm report RUN '
            "--whatif HPA:memory_request=768Mi,max=10</code>.</p>"
        )
    rows = [
        [
            w["hpa"],
            ", ".join(f"{k}={v}" for k, v in w["changes"].items()),
            w["recorded_peak_replicas"],
            w["unchanged_peak_replicas"],
            w["predicted_peak_replicas"],
            w["predicted_final_replicas"],
            w["changes_decisions"],
            " ".join(w["notes"]),
        ]
        for w in whatifs
    ]
    return (
        table(
            [
                "HPA",
                "changes",
                "recorded peak",
                "model peak, unchanged",
                "model peak, with change",
                "model final",
                "changes decisions",
                "notes",
            ],
            rows,
            "whatif",
        )
        + f'<p class="muted">Assumption: {escape(whatifs[0]["assumption"])}</p>'
    )


def _chart(name: str, path: Path | None, error: str | None) -> str:
    if error is not None or path is None:
        reason = escape(error or "")
        return f'<p class="render-error">Chart {escape(name)} could not be drawn: {reason}</p>'
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img class="chart" alt="{escape(name)} chart" src="data:image/png;base64,{data}">'


def render_page(
    summary: Mapping[str, Any],
    charts: Mapping[str, Path],
    chart_errors: Mapping[str, str],
    problems: Sequence[tuple[str, str, str]],
    locust_report: bool,
) -> str:
    """The whole page as a string."""
    load = summary["load"]
    verdict = str(summary["verdict"])
    load_rows = [
        [k, load[k]]
        for k in (
            "peak_users",
            "peak_rps",
            "total_requests",
            "error_rate",
            "p50_ms",
            "p95_ms",
            "p99_ms",
            "rps_per_user",
            "source",
        )
    ]
    slo_rows = [
        [s["expr"], s["observed"], "passed" if s["passed"] else "FAILED"] for s in summary["slos"]
    ]
    chart_html = "".join(
        _chart(name, charts.get(name), chart_errors.get(name))
        for name in [*charts, *[n for n in chart_errors if n not in charts]]
    )
    link = (
        '<p><a href="../locust/report.html">Locust\'s own report</a></p>' if locust_report else ""
    )
    problem_html = (
        table(["file", "problem", "detail"], problems, "problems")
        if problems
        else ('<p class="muted">Every file was read completely.</p>')
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>kubeswarm report {escape(str(summary['run_id']))}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<h1>kubeswarm report: {escape(str(summary['run_id']))}</h1>"
        f'<p><span class="verdict {escape(verdict)}">{escape(verdict.upper())}</span> '
        f'<span class="muted">mode {escape(str(summary.get("mode")))}, status '
        f"{escape(str(summary.get('status')))}</span></p>{link}"
        '<p class="muted">Verdict: fail if an SLO failed; warn if a finding is high severity; '
        "else pass.</p>"
        f"<h2>Findings</h2>{_findings(summary['findings'])}"
        "<h2>SLOs</h2>"
        + (
            table(["SLO", "observed", "result"], slo_rows, "slos")
            if slo_rows
            else '<p class="muted">No SLO given (--slo).</p>'
        )
        + "<h2>Load</h2>"
        + table(["measure", "value"], load_rows, "load")
        + f"<h2>Autoscaling</h2>{_hpas(summary['hpas'], summary['window']['start'])}"
        + f"<h2>Memory and CPU</h2>{_workloads(summary['workloads'])}"
        + f"<h2>What-if</h2>{_whatifs(summary['whatif'])}"
        + f"<h2>Charts</h2>{chart_html}"
        + f"<h2>Data quality</h2>{problem_html}</body></html>\n"
    )
