"""From a run directory to every result the report shows: one pure function, ``analyse``.

Verdict: ``fail`` if any SLO failed; ``warn`` if any finding is high severity (the run shows a
problem that will hurt in production, such as an HPA pinned at max or an OOM kill); else ``pass``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from analysis.data.load import RunData, load_run
from analysis.data.timeline import (
    LoadStep,
    Window,
    find_window,
    load_series,
    load_steps,
    mark_steps,
)
from analysis.judge.adequacy import (
    Adequacy,
    LoadSummary,
    judge_adequacy,
    locust_total_rps,
    summarize_load,
)
from analysis.judge.completeness import (
    is_incomplete,
    run_status_finding,
    unsampled_hpa_findings,
)
from analysis.judge.disruption import Disruption, disruption_values, measure
from analysis.judge.disruption_findings import disruption_findings
from analysis.judge.evidence import (
    hpa_evidence,
    reaction_time_s,
    run_too_short,
    started_scaled_up,
    unpushed_note,
)
from analysis.judge.findings import (
    Finding,
    load_findings,
    ordered,
    problem_findings,
    slo_findings,
)
from analysis.judge.freshness import SeriesFreshness, sampling_freshness
from analysis.judge.loadgen import exception_count, is_load_generator, loadgen_findings
from analysis.judge.master_memory import MasterMemory, master_memory
from analysis.judge.metric_terms import MetricReading, metric_readings, owner_of
from analysis.judge.model_check import ModelCheck, check_model, model_check_findings
from analysis.judge.readiness import scale_up_not_ready
from analysis.judge.resources import WorkloadResult, analyse_workloads
from analysis.judge.scaling import HpaResult, analyse_hpas
from analysis.judge.sizing import CapacityResult, analyse_capacity
from analysis.judge.slo import AtLeast, Observed, SloResult, evaluate, longest, parse_slos
from analysis.judge.target_findings import hpa_findings, workload_findings
from analysis.judge.whatif import (
    WhatIfResult,
    find_hpa,
    parse_whatif,
    recorded_behavior,
    recorded_sync_period_s,
    run_whatifs,
)


@dataclass(frozen=True)
class Analysis:
    data: RunData
    load: pd.DataFrame  # see timeline.LOAD_COLUMNS
    window: Window
    steps: tuple[LoadStep, ...]
    load_summary: LoadSummary
    hpas: tuple[HpaResult, ...]
    workloads: tuple[WorkloadResult, ...]
    adequacy: Adequacy
    whatifs: tuple[WhatIfResult, ...]
    slos: tuple[SloResult, ...]
    findings: tuple[Finding, ...]  # ordered by severity
    verdict: str
    disruptions: tuple[Disruption, ...] = ()  # --chaos, in time order
    capacity: CapacityResult | None = None
    # per HPA, in the order of ``hpas``: the model's check against the controller, each metric
    # in its own terms, and its owner (``ScaledObject/name``, "KEDA")
    model_checks: tuple[ModelCheck, ...] = ()
    metrics: tuple[tuple[MetricReading, ...], ...] = ()
    owners: tuple[tuple[str | None, str | None], ...] = ()
    # how fresh each sampled series was, and the Locust master's memory over the run
    sampling: tuple[SeriesFreshness, ...] = ()
    master_memory: MasterMemory | None = None


def _max(values: Sequence[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return max(known) if known else None


def observed_values(
    load: LoadSummary,
    hpas: Sequence[HpaResult],
    workloads: Sequence[WorkloadResult],
    pods_sampled: bool,
    end_s: float,
) -> dict[str, Observed]:
    """Every name an ``--slo`` can use (``judge.slo.METRICS``) with its value in this run;
    ``end_s``: the end of the analysed window, which cuts off a lag still running then."""
    first_ups = [e for h in hpas for e in h.events if e.up and e.first_after_step]
    # Every scale-up after a load step counts: one whose pods were never ready by the end was
    # at least the time that was left (censored), and no faster scale-up may stand in for it.
    ready_lags: list[float | AtLeast | None] = [
        e.ready_lag_s if e.ready_lag_s is not None else AtLeast(max(0.0, end_s - e.step.start_s))
        for h in hpas
        for e in h.events
        if e.up and e.step is not None
    ]
    return {
        "p50_ms": load.p50_ms,
        "p95_ms": load.p95_ms,
        "p99_ms": load.p99_ms,
        "error_rate": load.error_rate,
        "peak_rps": load.peak_rps,
        "total_requests": load.total_requests,
        "peak_users": load.peak_users,
        "scale_up_lag_s": _max([e.lag_s for e in first_ups]),
        "ready_lag_s": longest(ready_lags),
        "max_memory_pct_of_limit": _max([w.peak_memory_pct_of_limit for w in workloads]),
        "max_memory_pct_of_request": _max([w.peak_memory_pct_of_request for w in workloads]),
        "oom_kills": float(sum(w.oom_kills for w in workloads)) if pods_sampled else None,
        "restarts": float(sum(w.restarts for w in workloads)) if pods_sampled else None,
        "time_at_max_s": _max([h.time_at_max_s for h in hpas]),
        "peak_replicas": _max(
            [float(h.peak_replicas) for h in hpas if h.peak_replicas is not None]
        ),
    }


def verdict_of(slos: Sequence[SloResult], findings: Sequence[Finding]) -> str:
    """``fail`` if an SLO failed; ``incomplete`` if the run did not finish or a watched HPA was
    never sampled (it cannot pass); ``warn`` on a high finding; else ``pass``."""
    if any(not s.passed for s in slos):
        return "fail"
    if is_incomplete(findings):
        return "incomplete"
    if any(f.severity == "high" for f in findings):
        return "warn"
    return "pass"


def _memory_targets(hpas: Sequence[HpaResult]) -> dict[tuple[str, str], float]:
    return {
        (h.namespace, h.target_name): h.target_utilization["memory"]
        for h in hpas
        if "memory" in h.target_utilization
    }


def analyse(
    run_dir: Path,
    slos: Sequence[str] = (),
    whatifs: Sequence[str] = (),
    target_rps: float | None = None,
) -> Analysis:
    """Loads and judges a run directory. ValueError (one line) for a malformed --slo/--whatif,
    a --whatif naming an HPA the run did not record, or --target-rps on a run without Locust
    data."""
    parsed_slos = parse_slos(slos)
    parsed_whatifs = [parse_whatif(text) for text in whatifs]
    data = load_run(run_dir)
    load = load_series(data)
    window = find_window(data, load)
    steps = load_steps(load) or mark_steps(data.marks)
    hpas = analyse_hpas(data, window, steps)
    for whatif in parsed_whatifs:
        find_hpa(whatif.hpa, hpas)
    sampled = analyse_workloads(data, load, window, _memory_targets(hpas))
    # The run's own Locust pods (cluster runs record them) are judged as the load generator,
    # never as the target: not in the workloads, the memory SLOs or the target's findings.
    workloads = [w for w in sampled if not is_load_generator(w.name)]
    load_summary = summarize_load(data, load, window, data.sample_interval_s)
    by_workload = {(w.namespace, w.name): w for w in workloads}
    evidence = [hpa_evidence(h, by_workload) for h in hpas]
    too_short = run_too_short(
        window, hpas, reaction_time_s(data.meta, data.mode, data.sample_interval_s)
    )
    adequacy = judge_adequacy(
        load,
        load_summary,
        hpas,
        window,
        data.sample_interval_s,
        scaling_note=None if too_short is not None else unpushed_note(evidence),
        locust_rps=locust_total_rps(data.stats),
        exceptions=exception_count(data),
        hpa_states=tuple(e.state() for e in evidence),
    )
    whatif_results = run_whatifs(
        parsed_whatifs,
        hpas,
        workloads,
        data.pods,
        recorded_behavior(data.meta),
        sync_period_s=recorded_sync_period_s(data.meta),
        hpa_metrics=data.hpa_metrics,
    )
    model_checks = tuple(_model_check(data, h) for h in hpas)
    disruptions = _disruptions(data, window)
    slo_results = evaluate(
        parsed_slos,
        {
            **observed_values(
                load_summary, hpas, workloads, bool(data.pods["ts"].size), window.end_s
            ),
            **disruption_values(disruptions, window.loaded[1]),
        },
    )
    found: list[Finding] = [*problem_findings(data, window), *run_status_finding(data)]
    found.extend(unsampled_hpa_findings(data))
    found.extend(loadgen_findings(data, load, load_summary, window, sampled))
    if too_short is not None:
        found.append(too_short)
    for hpa in hpas:
        found.extend(hpa_findings(hpa, load_summary))
        found.extend(scale_up_not_ready(data, hpa, window.end_s))
        scaled_up = started_scaled_up(hpa, data.hpa_metrics, window)
        if scaled_up is not None:
            found.append(scaled_up)
    for check in model_checks:
        found.extend(model_check_findings(check))
    for workload in workloads:
        found.extend(workload_findings(workload))
    found.extend(load_findings(load_summary, adequacy))
    found.extend(disruption_findings(disruptions, window.load_start_s))
    found.extend(slo_findings(slo_results))
    in_order = ordered(found)
    capacity = analyse_capacity(
        data,
        load,
        window,
        hpas,
        slos=parsed_slos,
        target_rps=target_rps,
        behavior=recorded_behavior(data.meta),
        sync_period_s=recorded_sync_period_s(data.meta),
    )
    return Analysis(
        data,
        load,
        window,
        tuple(steps),
        load_summary,
        tuple(hpas),
        tuple(workloads),
        adequacy,
        tuple(whatif_results),
        tuple(slo_results),
        tuple(in_order),
        verdict_of(slo_results, in_order),
        tuple(disruptions),
        capacity,
        model_checks,
        tuple(tuple(metric_readings(data, h)) for h in hpas),
        tuple(owner_of(data, h) for h in hpas),
        sampling_freshness(data),
        master_memory(data),
    )


def _model_check(data: RunData, hpa: HpaResult) -> ModelCheck:
    sync_s = recorded_sync_period_s(data.meta)
    # the demo's autoscaler measures usage over its own sync period, metrics-server over 15 s
    window_s = sync_s if data.mode == "demo" else 15.0
    return check_model(
        data,
        hpa,
        sync_period_s=sync_s,
        behavior=recorded_behavior(data.meta),
        metric_window_s=window_s,
        syncs_at_samples=data.mode == "demo",
    )


def _disruptions(data: RunData, window: Window) -> list[Disruption]:
    return measure(
        data.marks,
        pods=data.pods,
        workloads=data.workloads,
        hpa=data.hpa,
        history=data.stats_history,
        locust=data.locust,
        end_s=window.loaded[1],
        load_start_s=window.load_start_s,
        interval_s=data.sample_interval_s,
    )
