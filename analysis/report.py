"""``kubeswarm report``: analyse a run directory and write ``report/`` (summary.json, report.html,
report.md, charts; with a baseline also compare.json and compare.html), plus the short terminal
summary the CLI prints.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from analysis.data import schema
from analysis.data.units import format_bytes
from analysis.pipeline import analyse
from analysis.render.capacity_text import capacity_lines, rounded
from analysis.render.charts import render_charts
from analysis.render.disruption_text import disruption_lines
from analysis.render.html import render_page
from analysis.render.markdown import render_markdown
from analysis.render.summary import build_summary

if TYPE_CHECKING:
    from analysis.compare import Comparison

_TOP_FINDINGS = 3


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_report(
    run_dir: Path,
    slos: Sequence[str] = (),
    whatifs: Sequence[str] = (),
    *,
    baseline: Path | None = None,
    tolerances: Mapping[str, float] | None = None,
    target_rps: float | None = None,
) -> dict[str, Any]:
    """Loads the run directory, computes everything, writes report/summary.json, report.html,
    report.md and report/*.png, returns the summary dict (summary.json, docs/run-directory.md).

    With ``baseline`` (another run directory) the run is compared with it at the end
    (``analysis.compare``, ``tolerances`` overriding the defaults): the summary gains
    ``comparison`` (compare.json's dict) and ``regressions``, any regression makes the verdict
    ``fail``, and report/compare.json and compare.html are written too.

    Raises ValueError with a one-line user-facing message for a malformed --slo or --whatif
    expression, a baseline that is not a run directory, or an unknown tolerance."""
    analysis = analyse(run_dir, slos, whatifs, target_rps=target_rps)
    out_dir = run_dir / schema.REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = build_summary(analysis)
    comparison = None if baseline is None else _against(baseline, run_dir, summary, tolerances)
    charts, chart_errors = render_charts(analysis, out_dir, summary.get("disruptions") or ())
    problems = [(p.file, p.kind, p.detail) for p in analysis.data.problems]
    page = render_page(
        summary,
        charts,
        chart_errors,
        problems,
        (run_dir / schema.LOCUST_DIR / "report.html").is_file(),
    )
    if comparison is not None:
        from analysis.compare import write_comparison

        write_comparison(comparison, out_dir)
    _write_atomic(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    _write_atomic(out_dir / "report.html", page)
    _write_atomic(out_dir / "report.md", render_markdown(summary))
    return summary


def _against(
    baseline: Path,
    run_dir: Path,
    summary: dict[str, Any],
    tolerances: Mapping[str, float] | None,
) -> Comparison:
    """Compares ``summary`` with the baseline run's and folds the result into it (in place)."""
    from analysis.compare import compare_summaries, load_summary
    from analysis.compare.diff import run_info

    base, rebuilt = load_summary(baseline)
    comparison = compare_summaries(
        base, summary, tolerances, run_info(base, baseline, rebuilt), run_info(summary, run_dir)
    )
    if comparison.regressions:
        summary["verdict"] = "fail"
        candidate = dataclasses.replace(comparison.candidate, verdict="fail")
        comparison = dataclasses.replace(comparison, candidate=candidate)
    data = comparison.to_dict()
    summary["comparison"] = data
    summary["regressions"] = data["regressions"]
    return comparison


def _num(value: Any, digits: int = 0, unit: str = "") -> str:
    if value is None:
        return "n/a"
    return f"{float(value):,.{digits}f}{unit}"


def _whatif_line(w: Mapping[str, Any]) -> str:
    changes = ", ".join(f"{k}={v}" for k, v in w["changes"].items())
    decisions = "" if w.get("changes_decisions", True) else "; the change alters no decision"
    return (
        f"whatif {w['hpa']} with {changes}: peak {_num(w['predicted_peak_replicas'])} replicas "
        f"(replay unchanged {_num(w.get('unchanged_peak_replicas'))}, recorded "
        f"{_num(w['recorded_peak_replicas'])}), final {_num(w['predicted_final_replicas'])}"
        f"{decisions}"
    )


def _shorten(text: str, width: int = 140) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _top(lines: list[str]) -> list[str]:
    """The first few of a list the line above counted; the rest said to be in the report."""
    shown = [_shorten(line) for line in lines[:_TOP_FINDINGS]]
    if len(lines) > _TOP_FINDINGS:
        shown.append(f"  ... and {len(lines) - _TOP_FINDINGS} more in the report")
    return shown


def format_summary(summary: Mapping[str, Any], run_dir: Path) -> str:
    """A short terminal summary (a dozen lines): verdict, load, per HPA start->peak->final replicas
    and status, memory per workload, top findings, SLO results, where report.html is."""
    load = summary["load"]
    error_rate = load.get("error_rate")
    lines = [
        f"verdict: {str(summary['verdict']).upper()}  (run {summary['run_id']}, "
        f"{summary.get('mode', 'unknown')})",
        f"load: peak {_num(load.get('peak_users'))} users, {_num(load.get('peak_rps'), 1)} req/s, "
        f"{_num(load.get('total_requests'))} requests, "
        f"{'n/a' if error_rate is None else f'{100 * error_rate:.2f}%'} errors, "
        f"p50/p95/p99 {_num(load.get('p50_ms'))}/{_num(load.get('p95_ms'))}/"
        f"{_num(load.get('p99_ms'))} ms",
    ]
    for h in summary["hpas"]:
        lines.append(
            f"hpa {h['namespace']}/{h['name']}: {_num(h['start_replicas'])} -> "
            f"{_num(h['peak_replicas'])} -> {_num(h['final_replicas'])} replicas "
            f"(min {_num(h['min_replicas'])}, max {_num(h['max_replicas'])}), {h['status']}, "
            f"driven by {h['driving_metric'] or 'n/a'}"
        )
    for w in summary["workloads"]:
        peak = w["peak_memory_bytes"]
        lines.append(
            f"memory {w['namespace']}/{w['name']}: peak {format_bytes(peak) if peak else 'n/a'} "
            f"= {_num(w['peak_memory_pct_of_request'], 0, '%')} of request, "
            f"{_num(w['peak_memory_pct_of_limit'], 0, '%')} of limit; "
            f"{w['oom_kills']} OOM kills, {w['restarts']} restarts"
        )
    findings = summary["findings"]
    counts = {s: sum(1 for f in findings if f["severity"] == s) for s in ("high", "medium", "info")}
    lines.append("findings: " + ", ".join(f"{n} {s}" for s, n in counts.items()))
    lines += _top(
        [f"  [{f['severity']}] {f['code']} {f['subject']}: {f['seen']}" for f in findings]
    )
    for s in summary["slos"]:
        bound = "at least " if s.get("at_least") else ""  # a lag cut off by the run's end
        lines.append(
            f"slo {s['expr']}: {'passed' if s['passed'] else 'FAILED'} "
            f"({bound}{rounded(s['observed'])})"
        )
    lines.extend(_whatif_line(w) for w in summary["whatif"])
    lines += _top(disruption_lines(summary))
    lines.extend(_shorten(line) for line in capacity_lines(summary.get("capacity")))
    regressions = summary.get("regressions")
    if regressions is not None:
        base = summary["comparison"]["baseline"]["run_id"]
        lines.append(f"baseline {base}: {len(regressions)} regression(s) beyond tolerance")
        lines += _top([f"  {r['subject']}: {r['message']}" for r in regressions])
    lines.append(f"report: {run_dir / schema.REPORT_DIR / 'report.html'}")
    return "\n".join(lines) + "\n"
