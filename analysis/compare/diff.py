"""Two summary.json dicts side by side: ``compare_summaries`` is pure (dicts in, Comparison out).

HPAs and workloads are matched by name (namespaces may differ between two environments), or by
``namespace/name`` when a name alone is ambiguous; disruptions by action, target and order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from analysis.compare.model import (
    Comparison,
    Delta,
    FindingRef,
    Presence,
    Regression,
    RunInfo,
    SloComparison,
    SubjectComparison,
    WhatIfComparison,
)
from analysis.compare.tolerances import TOLERANCES, is_regression, resolve, worse_by
from analysis.render.html import measure

Summary = Mapping[str, Any]
Row = Mapping[str, Any]

# (measure, tolerance that judges it or None to only show it)
_LOAD = (
    ("peak_users", None),
    ("total_requests", None),
    ("peak_rps", "peak_rps"),
    ("error_rate", "error_rate"),
    ("p50_ms", "p50_ms"),
    ("p95_ms", "p95_ms"),
    ("p99_ms", "p99_ms"),
)
_HPA = (
    ("start_replicas", None),
    ("peak_replicas", "peak_replicas"),
    ("final_replicas", None),
    ("time_at_max_s", "time_at_max_s"),
    ("scale_up_lag_s", "scale_up_lag_s"),
)
_WORKLOAD = (
    ("peak_memory_bytes", None),
    ("peak_memory_pct_of_request", "memory_pct_of_request"),
    ("peak_memory_pct_of_limit", "memory_pct_of_limit"),
    ("oom_kills", "oom_kills"),
    ("restarts", "restarts"),
)
_DISRUPTION = (
    ("recovery_s", "recovery_s"),
    ("error_rate", "error_rate"),
    ("p95_ms_before", None),
    ("p95_ms_during", None),
)
_UNITS = {"error_rate": "points", "p50_ms": "%", "p95_ms": "%", "p99_ms": "%", "peak_rps": "%"}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _delta(
    metric: str, judged_by: str | None, base: Row, cand: Row, limits: Mapping[str, float]
) -> Delta:
    b, c = _number(base.get(metric)), _number(cand.get(metric))
    if judged_by is None:
        return Delta(metric, b, c, None, None, None, False)
    tolerance = TOLERANCES[judged_by]
    limit = limits[judged_by]
    if b is None or c is None:
        return Delta(metric, b, c, limit, tolerance.unit, None, False)
    worse = worse_by(tolerance, b, c)
    return Delta(metric, b, c, limit, tolerance.unit, worse, is_regression(tolerance, limit, b, c))


def _scale_up_lag(hpa: Row) -> float | None:
    """The slowest scale-up measured from its load step: what a user waits for."""
    lags = [
        _number(e.get("lag_s"))
        for e in hpa.get("scale_events", [])
        if _number(e.get("to")) is not None
        and (_number(e.get("to")) or 0) > (_number(e.get("from")) or 0)
    ]
    known = [lag for lag in lags if lag is not None]
    return max(known) if known else None


def _keyed(
    rows: Sequence[Row], label: Callable[[Row], str], short: Callable[[Row], str]
) -> dict[str, Row]:
    names = [short(r) for r in rows]
    return {(short(r) if names.count(short(r)) == 1 else label(r)): r for r in rows}


def _ns_name(row: Row) -> str:
    return f"{row.get('namespace')}/{row.get('name')}"


def _name(row: Row) -> str:
    return str(row.get("name"))


def _disruption_keys(rows: Sequence[Row]) -> dict[str, Row]:
    seen: dict[str, int] = {}
    out: dict[str, Row] = {}
    for row in sorted(rows, key=lambda r: _number(r.get("ts")) or 0.0):
        base = f"{row.get('action')} {row.get('target')}"
        seen[base] = seen.get(base, 0) + 1
        out[f"{base} #{seen[base]}"] = row
    return out


def _side_by_side(
    kind: Any,
    base: Mapping[str, Row],
    cand: Mapping[str, Row],
    measures: Sequence[tuple[str, str | None]],
    limits: Mapping[str, float],
    *,
    status: Callable[[Row], str | None],
) -> list[SubjectComparison]:
    out = []
    for key in [*base, *[k for k in cand if k not in base]]:
        b, c = base.get(key), cand.get(key)
        present: Presence = (
            "both"
            if b is not None and c is not None
            else ("baseline" if c is None else "candidate")
        )
        deltas = tuple(_delta(m, t, b or {}, c or {}, limits) for m, t in measures)
        out.append(
            SubjectComparison(
                kind,
                key,
                present,
                None if b is None else status(b),
                None if c is None else status(c),
                deltas,
            )
        )
    return out


def _hpa_row(hpa: Row) -> Row:
    return {**hpa, "scale_up_lag_s": _scale_up_lag(hpa)}


def _findings(summary: Summary) -> dict[tuple[str, str], FindingRef]:
    return {
        (str(f["code"]), str(f["subject"])): FindingRef(
            str(f["code"]),
            str(f["severity"]),
            str(f["subject"]),
            str(f.get("seen") or f.get("message") or ""),
        )
        for f in summary.get("findings", [])
    }


def _slos(base: Summary, cand: Summary) -> list[SloComparison]:
    b = {s["expr"]: s for s in base.get("slos", [])}
    c = {s["expr"]: s for s in cand.get("slos", [])}
    out = []
    for expr in [*b, *[e for e in c if e not in b]]:
        bs, cs = b.get(expr, {}), c.get(expr, {})
        out.append(
            SloComparison(
                expr,
                _number(bs.get("observed")),
                bs.get("passed"),
                _number(cs.get("observed")),
                cs.get("passed"),
            )
        )
    return out


def _whatifs(base: Summary, cand: Summary) -> list[WhatIfComparison]:
    def key(w: Row) -> tuple[str, str]:
        return str(w["hpa"]), repr(sorted(w["changes"].items()))

    b = {key(w): w for w in base.get("whatif", [])}
    c = {key(w): w for w in cand.get("whatif", [])}
    out = []
    for k in [*b, *[x for x in c if x not in b]]:
        bw, cw = b.get(k, {}), c.get(k, {})
        changes = (bw or cw)["changes"]
        out.append(
            WhatIfComparison(
                k[0],
                dict(changes),
                _number(bw.get("recorded_peak_replicas")),
                _number(bw.get("predicted_peak_replicas")),
                _number(cw.get("recorded_peak_replicas")),
                _number(cw.get("predicted_peak_replicas")),
            )
        )
    return out


def _regression(subject: str, d: Delta, judged_by: str) -> Regression:
    unit = TOLERANCES[judged_by].unit
    worse = (
        "n/a"
        if d.worse_by is None
        else f"{d.worse_by:+.1f}"
        if d.worse_by != float("inf")
        else "from zero"
    )
    limit = f"{d.tolerance:g}{'%' if unit == '%' else ' ' + unit}"
    message = (
        f"{d.metric} {measure(d.baseline, d.metric)} -> {measure(d.candidate, d.metric)} "
        f"(worse by {worse}{'%' if unit == '%' and worse[0] in '+-' else ''}"
        f"{'' if unit == '%' or worse == 'from zero' else ' ' + unit}; tolerance {limit})"
    )
    return Regression(d.metric, subject, d.baseline, d.candidate, d.tolerance, message)


def _judged_by(measures: Sequence[tuple[str, str | None]], metric: str) -> str:
    return next(t for m, t in measures if m == metric and t is not None)


def _regressions(
    groups: Sequence[tuple[Sequence[SubjectComparison], Sequence[tuple[str, str | None]]]],
    new_findings: Sequence[FindingRef],
    limits: Mapping[str, float],
) -> list[Regression]:
    out = []
    for comparisons, measures in groups:
        for sc in comparisons:
            for d in sc.deltas:
                if d.regression:
                    out.append(_regression(sc.subject, d, _judged_by(measures, d.metric)))
            if (
                sc.kind == "disruption"
                and sc.baseline_status == "recovered"
                and sc.candidate_status == "not recovered"
            ):
                out.append(
                    Regression(
                        "recovered",
                        sc.subject,
                        1.0,
                        0.0,
                        None,
                        "recovered in the baseline, not in the candidate",
                    )
                )
    high = [f for f in new_findings if f.severity == "high"]
    if len(high) > limits["high_findings"]:
        for f in high:
            out.append(
                Regression(
                    "high_findings",
                    f.subject,
                    None,
                    None,
                    limits["high_findings"],
                    f"new high finding {f.code}: {f.seen}",
                )
            )
    return out


def _has_load(summary: Summary) -> bool:
    load = summary.get("load", {})
    return any(_number(load.get(k)) for k in ("peak_rps", "total_requests", "peak_users"))


def _notes(base: Summary, cand: Summary, subjects: Sequence[SubjectComparison]) -> list[str]:
    notes = []
    b_mode, c_mode = base.get("mode", "unknown"), cand.get("mode", "unknown")
    if b_mode != c_mode:
        notes.append(
            f"The runs ran in different modes (baseline {b_mode}, candidate {c_mode}): their "
            "numbers come from different environments; read differences with that in mind."
        )
    for label, summary in (("baseline", base), ("candidate", cand)):
        if not _has_load(summary):
            notes.append(f"The {label} has no Locust data: load and latency are not compared.")
    for s in subjects:
        if s.present != "both" and s.kind != "load":
            notes.append(f"{s.kind} {s.subject} is only in the {s.present}.")
    return notes


def run_info(summary: Summary, directory: Path | None = None, rebuilt: bool = False) -> RunInfo:
    return RunInfo(
        str(summary.get("run_id")),
        str(summary.get("mode", "unknown")),
        None if directory is None else str(directory),
        str(summary.get("verdict")),
        summary.get("kubeswarm_version"),
        rebuilt,
    )


def compare_summaries(
    baseline: Summary,
    candidate: Summary,
    tolerances: Mapping[str, float] | None = None,
    baseline_info: RunInfo | None = None,
    candidate_info: RunInfo | None = None,
) -> Comparison:
    """Baseline and candidate (summary.json dicts) side by side with their regressions;
    ``tolerances`` override ``DEFAULT_TOLERANCES``. ValueError for an unknown tolerance."""
    limits = resolve(tolerances)
    load = _side_by_side(
        "load",
        {"run": baseline.get("load", {})},
        {"run": candidate.get("load", {})},
        _LOAD,
        limits,
        status=lambda _: None,
    )[0]
    hpas = _side_by_side(
        "hpa",
        {k: _hpa_row(v) for k, v in _keyed(baseline.get("hpas", []), _ns_name, _name).items()},
        {k: _hpa_row(v) for k, v in _keyed(candidate.get("hpas", []), _ns_name, _name).items()},
        _HPA,
        limits,
        status=lambda h: str(h.get("status")),
    )
    workloads = _side_by_side(
        "workload",
        _keyed(baseline.get("workloads", []), _ns_name, _name),
        _keyed(candidate.get("workloads", []), _ns_name, _name),
        _WORKLOAD,
        limits,
        status=lambda _: None,
    )
    disruptions = _side_by_side(
        "disruption",
        _disruption_keys(baseline.get("disruptions") or []),
        _disruption_keys(candidate.get("disruptions") or []),
        _DISRUPTION,
        limits,
        status=lambda d: (
            None
            if d.get("recovered") is None
            else "recovered"
            if d.get("recovered")
            else "not recovered"
        ),
    )
    b_found, c_found = _findings(baseline), _findings(candidate)
    new = tuple(f for k, f in c_found.items() if k not in b_found)
    groups = ((load,), _LOAD), (hpas, _HPA), (workloads, _WORKLOAD), (disruptions, _DISRUPTION)
    return Comparison(
        baseline_info or run_info(baseline),
        candidate_info or run_info(candidate),
        limits,
        load,
        tuple(hpas),
        tuple(workloads),
        tuple(disruptions),
        tuple(_slos(baseline, candidate)),
        new,
        tuple(f for k, f in b_found.items() if k not in c_found),
        tuple(f for k, f in c_found.items() if k in b_found),
        tuple(_whatifs(baseline, candidate)),
        tuple(_notes(baseline, candidate, [*hpas, *workloads, *disruptions])),
        tuple(_regressions(groups, new, limits)),
    )
