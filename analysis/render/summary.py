"""``report/summary.json``: the machine-readable verdict, the fields docs/run-directory.md lists.

Additions (fields may be added, never removed): ``kubeswarm_version`` (of the
analysis that wrote it), ``mode``, ``status``, ``window``
(epoch s: start, end, load_start, load_end); ``load.rps_per_user`` and ``load.source`` (which file
the totals came from); per HPA ``target``, ``rps_per_ready_replica`` {mean, peak} and
``p95_ms_by_replicas``; per scale event ``ready_lag_s``, ``metric`` and ``step_users``; per
workload ``pods_seen``, ``baseline_memory_bytes``, ``memory_follows_load``, ``peak_cpu_m``,
``p95_cpu_m``, ``cpu_request_m``, ``recommended_cpu_request_m`` and the ``formulas`` of the
recommendations; per what-if ``unchanged_peak_replicas``, ``changes_decisions`` and ``notes``; per
finding ``seen``, ``why``, ``change`` (``message`` is the three joined) and ``data`` (its numbers).
"""

from __future__ import annotations

import math
from importlib.metadata import PackageNotFoundError, version
from typing import Any, cast

from analysis.data import summary_model as model
from analysis.judge.disruption import Disruption
from analysis.judge.freshness import SeriesFreshness
from analysis.judge.master_memory import MasterMemory
from analysis.judge.metric_terms import MetricReading
from analysis.judge.model_check import ModelCheck
from analysis.judge.resources import WorkloadResult
from analysis.judge.scaling import HpaResult
from analysis.judge.sizing import capacity_summary
from analysis.pipeline import Analysis


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null, numbers are rounded for people to read."""
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return round(value, 6)
    return str(value)


def kubeswarm_version() -> str:
    """The installed kubeswarm's version: a summary written by another version is rebuilt before
    two runs are compared, so both are judged by the same rules."""
    try:
        return version("kubeswarm")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0.0.0+source"


def _count(value: float | None) -> int | None:
    """Users and requests are counts: 16, not 16.0."""
    return None if value is None else round(value)


def _round(value: float | None, digits: int = 1) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def model_check_summary(check: ModelCheck) -> model.ModelCheck:
    share = check.exact_share
    return {
        "decisions": check.decisions,
        "exact": check.exact,
        "within_one": check.within_one,
        "exact_pct": None if share is None else round(100 * share, 1),
        "mismatches": [
            {"ts": m.ts, "model": m.model, "controller": m.controller, "why": m.why}
            for m in check.mismatches
        ],
        "sync_period_s": check.sync_period_s,
        "not_checked": check.not_checked,
        "sentence": check.sentence(),
    }


def _metric(m: MetricReading) -> model.HpaMetric:
    return {
        "metric": m.metric,
        "type": m.source,
        "target_type": m.target_type,
        "peak": _round(m.peak, 3),
        "target": m.target,
        "selector": m.selector,
        "container": m.container,
        "described_object": m.described_object,
        "sentence": m.sentence,
    }


def _hpa(h: HpaResult, analysis: Analysis) -> model.Hpa:
    out = _hpa_core(h, analysis)
    index = analysis.hpas.index(h)
    if index < len(analysis.owners):
        out["owner"], out["managed_by"] = analysis.owners[index]
    if index < len(analysis.metrics):
        out["metrics"] = [_metric(m) for m in analysis.metrics[index]]
    if index < len(analysis.model_checks):
        out["model_check"] = model_check_summary(analysis.model_checks[index])
    return out


def _hpa_core(h: HpaResult, analysis: Analysis) -> model.Hpa:
    per_replica = analysis.adequacy.per_hpa.get(h.key)
    return {
        "namespace": h.namespace,
        "name": h.name,
        "target": f"{h.target_kind}/{h.target_name}",
        "min_replicas": h.min_replicas,
        "max_replicas": h.max_replicas,
        "start_replicas": h.start_replicas,
        "peak_replicas": h.peak_replicas,
        "final_replicas": h.final_replicas,
        "time_at_max_s": h.time_at_max_s,
        "status": h.status,
        "driving_metric": h.driving_metric,
        "peak_utilization": {k: _round(v) for k, v in h.peak_utilization.items()},
        "target_utilization": {k: _round(v) for k, v in h.target_utilization.items()},
        "scale_events": [
            {
                "ts": e.ts,
                "from": e.from_replicas,
                "to": e.to_replicas,
                "lag_s": _round(e.lag_s),
                "ready_lag_s": _round(e.ready_lag_s),
                "metric": e.metric,
                "step_users": None if e.step is None else [e.step.users_from, e.step.users_to],
            }
            for e in h.events
        ],
        "rps_per_ready_replica": None
        if per_replica is None
        else {
            "mean": _round(per_replica.rps_per_ready_replica_mean, 2),
            "peak": _round(per_replica.rps_per_ready_replica_peak, 2),
        },
        "p95_ms_by_replicas": {}
        if per_replica is None
        else {str(k): round(v, 1) for k, v in sorted(per_replica.p95_ms_by_replicas.items())},
        # how many ticks each replica count was held (at least 5 to be listed at all)
        "ticks_by_replicas": {}
        if per_replica is None
        else {str(k): n for k, n in sorted(per_replica.ticks_by_replicas.items())},
    }


def _checked(name: str, analysis: Analysis) -> str:
    """How far the model the what-if replays was checked against this HPA on this run."""
    for hpa, check in zip(analysis.hpas, analysis.model_checks, strict=False):
        if name in (hpa.key, hpa.name):
            return check.sentence()
    return "the model was not checked on this run"


def _workload(w: WorkloadResult) -> model.Workload:
    rec = w.recommendation
    return {
        "namespace": w.namespace,
        "name": w.name,
        "pods_seen": w.pods_seen,
        "peak_memory_bytes": w.peak_memory_bytes,
        "baseline_memory_bytes": w.baseline_memory_bytes,
        "memory_request_bytes": w.memory_request_bytes,
        "memory_limit_bytes": w.memory_limit_bytes,
        "peak_memory_pct_of_request": _round(w.peak_memory_pct_of_request),
        "peak_memory_pct_of_limit": _round(w.peak_memory_pct_of_limit),
        "oom_kills": w.oom_kills,
        "restarts": w.restarts,
        "memory_follows_load": w.memory_follows_load,
        "peak_cpu_m": _round(w.peak_cpu_m),
        "p95_cpu_m": _round(w.p95_cpu_m),
        "cpu_request_m": w.cpu_request_m,
        "recommended_memory_request_bytes": rec.memory_request_bytes,
        "recommended_memory_limit_bytes": rec.memory_limit_bytes,
        "recommended_cpu_request_m": rec.cpu_request_m,
        "formulas": {
            "memory_request": rec.memory_request_formula,
            "memory_limit": rec.memory_limit_formula,
            "cpu_request": rec.cpu_request_formula,
        },
    }


def _sampling(f: SeriesFreshness) -> model.SeriesSampling:
    return {
        "series": f.series,
        "interval_s": f.interval_s,
        "samples": f.samples,
        "median_gap_s": _round(f.median_gap_s, 2),
        "resolution_s": _round(f.resolution_s, 2),
        "median_age_s": _round(f.median_age_s, 2),
        "max_age_s": _round(f.max_age_s, 2),
        "sentence": f.sentence,
    }


def _master_memory(m: MasterMemory | None) -> model.MasterMemory | None:
    if m is None:
        return None
    return {
        "source": m.source,
        "samples": m.samples,
        "duration_s": _round(m.duration_s) or 0.0,
        "first_bytes": m.first_bytes,
        "last_bytes": m.last_bytes,
        "peak_bytes": m.peak_bytes,
        "growth_bytes": m.growth_bytes,
        "slope_mib_per_h": _round(m.slope_mib_per_h, 2),
        "shown": m.shown,
        "sentence": m.sentence(),
    }


def _disruption(d: Disruption) -> model.Disruption:
    hpa = d.hpa
    return {
        "ts": d.ts,
        "action": d.mark.action,
        "target": d.mark.target,
        "pods": list(d.mark.pods),
        "skipped": d.mark.skipped,
        "recovery_s": _round(d.recovery_s),
        "recovered": d.recovered,
        "recovered_to": d.recovered_to,
        "readiness_source": d.readiness_source,
        "ready_before": d.ready_before,
        "window_s": _round(d.window_s),
        "requests": _count(d.during.requests),
        "failures": _count(d.during.failures),
        "error_rate": _round(d.during.error_rate, 6),
        "error_rate_before": _round(d.before.error_rate, 6),
        "p95_ms_before": d.before.p95_ms,
        "p95_ms_during": d.during.p95_ms,
        "p99_ms_before": d.before.p99_ms,
        "p99_ms_during": d.during.p99_ms,
        "load_source": d.load_source,
        "replacement_seen_s": _round(d.replacement_seen_s),
        "replacement_ready_s": _round(d.replacement_ready_s),
        "hpa": None
        if hpa is None
        else {
            "name": hpa.hpa,
            "desired_before": hpa.desired_before,
            "desired_peak": hpa.desired_peak,
            "desired_changed": hpa.desired_changed,
            "scaled_up": hpa.scaled_up,
        },
    }


# What the run was asked to do, as the page's "Run" table shows it: (summary key, where it is in
# run.json's config, then where the demo's config keeps it). Values only, never --env values
# (run.json holds their names alone).
_SETTINGS: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("locustfile", ("load", "locustfile"), ("locustfile",)),
    ("host", ("load", "host"), ()),
    ("users", ("load", "users"), ("users",)),
    ("spawn_rate", ("load", "spawn_rate"), ()),
    ("run_time_s", ("load", "run_time_s"), ("duration_s",)),
    ("workers", ("load", "workers"), ("workers",)),
    ("max_workers", ("max_workers",), ()),
    ("image", ("image",), ()),
    ("namespace", ("namespace",), ()),
    ("chaos", ("chaos",), ("chaos",)),
    ("target_rps", ("target_rps",), ()),
)


def _dig(config: Any, path: tuple[str, ...]) -> Any:
    if not path:
        return None
    for key in path:
        if not isinstance(config, dict):
            return None
        config = config.get(key)
    return config


def _settings(analysis: Analysis) -> dict[str, Any]:
    """The run's settings from run.json, for people: what ran, against what, how hard."""
    meta = analysis.data.meta
    config = meta.get("config")
    if not isinstance(config, dict):
        config = {}
    out: dict[str, Any] = {"mode": analysis.data.mode}
    for key, path, demo_path in _SETTINGS:
        value = _dig(config, path) if analysis.data.mode != "demo" else _dig(config, demo_path)
        if value not in (None, [], ""):
            out[key] = value
    if analysis.data.mode != "demo" and config.get("local"):
        out.pop("image", None)  # the pods' image: a local run starts no pod
    watch = meta.get("watch") or config.get("watch") or []
    out["watch"] = [str(w) for w in watch] if isinstance(watch, list | tuple) else [str(watch)]
    out["slos"] = [s.expr for s in analysis.slos]
    return out


def build_summary(analysis: Analysis) -> dict[str, Any]:
    """The summary.json dict (docs/run-directory.md)."""
    load = analysis.load_summary
    window = analysis.window
    summary: model.Summary = {
        "schema_version": model.SUMMARY_SCHEMA_VERSION,
        "run_id": analysis.data.run_id,
        "verdict": cast(model.Verdict, analysis.verdict),  # one of Analysis's verdicts
        "kubeswarm_version": kubeswarm_version(),
        "mode": analysis.data.mode,
        "status": analysis.data.meta.get("status"),
        "settings": _settings(analysis),
        "window": {
            "start": window.start_s,
            "end": window.end_s,
            "load_start": window.load_start_s,
            "load_end": window.load_end_s,
        },
        "load": {
            "peak_users": _count(load.peak_users),
            "peak_rps": _round(load.peak_rps, 2),
            "total_requests": _count(load.total_requests),
            "error_rate": _round(load.error_rate, 6),
            "p50_ms": load.p50_ms,
            "p95_ms": load.p95_ms,
            "p99_ms": load.p99_ms,
            "rps_per_user": _round(analysis.adequacy.rps_per_user, 3),
            "source": load.source,
        },
        "slos": [
            {"expr": s.expr, "observed": s.observed, "passed": s.passed, "at_least": s.at_least}
            for s in analysis.slos
        ],
        "hpas": [_hpa(h, analysis) for h in analysis.hpas],
        "workloads": [_workload(w) for w in analysis.workloads],
        "whatif": [
            {
                "hpa": r.hpa,
                "changes": r.changes,
                "recorded_peak_replicas": r.recorded_peak_replicas,
                "predicted_peak_replicas": r.predicted_peak_replicas,
                "predicted_final_replicas": r.predicted_final_replicas,
                "unchanged_peak_replicas": r.unchanged_peak_replicas,
                "changes_decisions": r.changes_decisions,
                "notes": list(r.notes),
                "assumption": r.assumption,
                "model_check": _checked(r.hpa, analysis),
            }
            for r in analysis.whatifs
        ],
        "disruptions": [_disruption(d) for d in analysis.disruptions],
        "capacity": None if analysis.capacity is None else capacity_summary(analysis.capacity),
        "findings": [
            {
                "code": f.code,
                "severity": f.severity,
                "subject": f.subject,
                "message": f.message,
                "seen": f.seen,
                "why": f.why,
                "change": f.change,
                "data": f.data,
            }
            for f in analysis.findings
        ],
        "sampling": [_sampling(f) for f in analysis.sampling],
        "master_memory": _master_memory(analysis.master_memory),
    }
    cleaned: dict[str, Any] = clean(summary)
    return cleaned
