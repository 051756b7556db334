"""A comparison for people: a terminal table, ``compare.json`` and the ``compare.html`` page."""

from __future__ import annotations

import json
from pathlib import Path

from analysis.compare.model import Comparison, Delta, SubjectComparison
from analysis.compare.runs import aligned_run
from analysis.render.compare_charts import AlignedRun, render_overlay
from analysis.render.html import measure, measure_change, render_compare_page

_ROW = "  {:<28} {:>12} {:>12} {:>12} {:>10}  {}"


def _change(d: Delta) -> str:
    if d.baseline is None or d.candidate is None:
        return ""
    if d.metric in ("p50_ms", "p95_ms", "p99_ms", "peak_rps") and d.baseline:
        return f"{100 * (d.candidate - d.baseline) / abs(d.baseline):+.1f}%"
    return measure_change(d.baseline, d.candidate, d.metric)


def _tolerance(d: Delta) -> str:
    if d.tolerance is None:
        return ""
    return f"{d.tolerance:g}%" if d.unit == "%" else f"{d.tolerance:g}"


def _section(sc: SubjectComparison) -> list[str]:
    status = ""
    if sc.baseline_status or sc.candidate_status:
        status = f"  [{sc.baseline_status or '-'} -> {sc.candidate_status or '-'}]"
    where = "" if sc.present == "both" else f"  (only in {sc.present})"
    lines = [f"{sc.kind} {sc.subject}{status}{where}"]
    for d in sc.deltas:
        if d.baseline is None and d.candidate is None:
            continue
        lines.append(
            _ROW.format(
                d.metric,
                measure(d.baseline, d.metric),
                measure(d.candidate, d.metric),
                _change(d),
                _tolerance(d),
                "REGRESSION" if d.regression else "",
            ).rstrip()
        )
    return lines


def format_comparison(c: Comparison) -> str:
    """The terminal table: every measure of both runs, its change and tolerance, the findings
    that came and went, notes, and the regressions last (what decides the exit code)."""
    b, k = c.baseline, c.candidate
    lines = [
        f"compare: baseline {b.run_id} ({b.mode}, {b.verdict}) -> candidate {k.run_id} "
        f"({k.mode}, {k.verdict})",
        _ROW.format("measure", "baseline", "candidate", "change", "tolerance", "").rstrip(),
    ]
    for sc in (c.load, *c.hpas, *c.workloads, *c.disruptions):
        lines.extend(_section(sc))
    for s in c.slos:
        lines.append(f"slo {s.expr}: {_passed(s.baseline_passed)} -> {_passed(s.candidate_passed)}")
    for w in c.whatifs:
        changes = ", ".join(f"{key}={value}" for key, value in w.changes.items())
        before = measure(w.baseline_predicted_peak, "replicas")
        after = measure(w.candidate_predicted_peak, "replicas")
        lines.append(f"whatif {w.hpa} {changes}: predicted peak {before} -> {after} replicas")
    lines.append(
        f"findings: {len(c.new_findings)} new, {len(c.resolved_findings)} resolved, "
        f"{len(c.unchanged_findings)} unchanged"
    )
    lines += [f"  new [{f.severity}] {f.code} {f.subject}" for f in c.new_findings]
    lines += [f"  resolved [{f.severity}] {f.code} {f.subject}" for f in c.resolved_findings]
    lines += [f"note: {n}" for n in c.notes]
    if c.regressions:
        lines.append(f"REGRESSION: {len(c.regressions)} measure(s) worse beyond tolerance")
        lines += [f"  {r.subject}: {r.message}" for r in c.regressions]
    else:
        lines.append("no regression beyond tolerance")
    return "\n".join(lines) + "\n"


def _passed(value: bool | None) -> str:
    return "not judged" if value is None else "passed" if value else "FAILED"


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def write_comparison(c: Comparison, out_dir: Path) -> dict[str, Path]:
    """Writes ``compare.json``, ``compare_timeline.png`` (when both run directories are known)
    and ``compare.html`` into ``out_dir``; returns them by kind ("json", "chart", "html")."""
    out_dir.mkdir(parents=True, exist_ok=True)
    data = c.to_dict()
    paths = {"json": out_dir / "compare.json"}
    _write_atomic(paths["json"], json.dumps(data, indent=2, allow_nan=False) + "\n")
    charts: dict[str, Path] = {}
    errors: dict[str, str] = {}
    if c.baseline.directory and c.candidate.directory:
        try:
            runs: list[AlignedRun] = [
                aligned_run(Path(c.baseline.directory), "baseline"),
                aligned_run(Path(c.candidate.directory), "candidate"),
            ]
            charts["timeline"] = render_overlay(out_dir / "compare_timeline.png", runs)
            paths["chart"] = charts["timeline"]
        except Exception as e:  # a chart must never cost the comparison; the page says why
            errors["timeline"] = f"{type(e).__name__}: {e}"
    paths["html"] = out_dir / "compare.html"
    _write_atomic(paths["html"], render_compare_page(data, charts, errors))
    return paths
