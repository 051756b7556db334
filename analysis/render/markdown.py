"""``report/report.md``: the verdict in a few lines of Markdown, for a pull-request comment or
``$GITHUB_STEP_SUMMARY``. The HTML page has the detail; this has what a reviewer reads first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from analysis.render.capacity_text import capacity_lines
from analysis.render.disruption_text import disruption_lines
from analysis.render.hpa_text import detail_lines

_MAX_FINDINGS = 8


def _cell(text: Any) -> str:
    """One table cell: a pipe or a line break from a message would break the table."""
    return str(text).replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _code(text: Any) -> str:
    return "`" + _cell(text).replace("`", "'") + "`"


def _num(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{float(value):,.{digits}f}{unit}"


def _observed(value: Any) -> str:
    if value is None:
        return "not measured"
    return f"{float(value):.4g}"


def _load_line(load: Mapping[str, Any]) -> str:
    rate = load.get("error_rate")
    errors = "n/a" if rate is None else f"{100 * float(rate):.2f}%"
    return (
        f"**Load:** peak {_num(load.get('peak_users'))} users, "
        f"{_num(load.get('peak_rps'), 1)} req/s, {_num(load.get('total_requests'))} requests, "
        f"{errors} errors, p50/p95/p99 {_num(load.get('p50_ms'))}/{_num(load.get('p95_ms'))}/"
        f"{_num(load.get('p99_ms'))} ms"
    )


def _hpa_line(h: Mapping[str, Any]) -> str:
    lags = [e["lag_s"] for e in h["scale_events"] if e.get("lag_s") is not None]
    lag = f", first scale-up {_num(lags[0])} s after its load step" if lags else ""
    return (
        f"- {_code(h['namespace'] + '/' + h['name'])}: {_num(h['start_replicas'])} → "
        f"{_num(h['peak_replicas'])} → {_num(h['final_replicas'])} replicas "
        f"(min {_num(h['min_replicas'])}, max {_num(h['max_replicas'])}), "
        f"**{h['status']}**, driven by {h['driving_metric'] or 'n/a'}, "
        f"{_num(h['time_at_max_s'])} s at max{lag}"
    )


def render_markdown(summary: Mapping[str, Any]) -> str:
    """Verdict, load, SLO table, findings (high and medium first), one line per HPA and, when the
    run was compared with a baseline, its regressions."""
    verdict = str(summary["verdict"]).upper()
    lines = [
        f"### kubeswarm: {verdict}",
        "",
        f"Run {_code(summary['run_id'])} ({summary.get('mode', 'unknown')}). "
        + _load_line(summary["load"]),
        "",
    ]
    if summary["slos"]:
        lines += ["| SLO | observed | result |", "|---|---:|---|"]
        for s in summary["slos"]:
            result = "passed" if s["passed"] else "**FAILED**"
            bound = "≥ " if s.get("at_least") else ""  # a lag cut off by the run's end
            lines.append(f"| {_code(s['expr'])} | {bound}{_observed(s['observed'])} | {result} |")
    else:
        lines.append("No SLO was given (`--slo`).")
    lines.append("")
    comparison = summary.get("comparison")
    if comparison:
        regressions = comparison.get("regressions", [])
        base = _code(comparison["baseline"]["run_id"])
        if regressions:
            lines.append(f"**{len(regressions)} regression(s) against baseline {base}:**")
            lines += [f"- {_cell(r['subject'])}: {_cell(r['message'])}" for r in regressions]
        else:
            lines.append(f"No regression beyond tolerance against baseline {base}.")
        lines.append("")
    findings = summary["findings"]
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("high", "medium", "info")}
    lines.append("**Findings:** " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    shown = [f for f in findings if f["severity"] != "info"][:_MAX_FINDINGS]
    for f in shown:
        lines.append(
            f"- **{f['severity']}** {_code(f['code'])} {_cell(f['subject'])}: "
            f"{_cell(f.get('seen') or f['message'])}"
        )
    if summary["hpas"]:
        lines += ["", "**Autoscaling:**"]
        for h in summary["hpas"]:
            lines.append(_hpa_line(h))
            lines += [f"  - {_cell(line)}" for line in detail_lines(h)]
    disruptions = disruption_lines(summary)
    if disruptions:
        lines += ["", "**Disruptions:**"]
        lines += [f"- {_cell(line)}" for line in disruptions]
    capacity = capacity_lines(summary.get("capacity"))
    if capacity:
        lines += ["", "**Capacity:**"]
        lines += [f"- {_cell(line.strip())}" for line in capacity]
    return "\n".join([*lines, *_sampling_lines(summary)]) + "\n"


def _sampling_lines(summary: Mapping[str, Any]) -> list[str]:
    """The master's memory on a long run, and how fresh each series was."""
    lines: list[str] = []
    master = summary.get("master_memory")
    if master and master.get("shown"):
        lines += ["", f"{_cell(master['sentence'])}."]
    sampling = summary.get("sampling") or []
    if sampling:
        lines += ["", "**Sampling:** " + "; ".join(_cell(x["sentence"]) for x in sampling) + "."]
    return lines
