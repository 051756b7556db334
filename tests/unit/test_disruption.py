"""Measuring a disruption from literal rows: recovery, error burst, percentiles, findings, SLOs."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest

from analysis.data import schema
from analysis.data.chaosmark import ChaosMark, parse_chaos_detail
from analysis.data.load import empty_table
from analysis.judge.disruption import Disruption, disruption_values, measure
from analysis.judge.disruption_findings import disruption_findings
from analysis.judge.slo import AtLeast, evaluate, parse_slos

pytestmark = pytest.mark.unit

T0 = 1_000.0  # the kill
HISTORY_COLUMNS = schema.LOCUST_STATS_HISTORY_COLUMNS


def table(spec: schema.CsvSchema, rows: list[dict[str, Any]]) -> pd.DataFrame:
    empty = empty_table(spec)
    if not rows:
        return empty
    frame = pd.DataFrame([{name: row.get(name) for name in spec.names} for row in rows])
    return frame.astype({c: empty[c].dtype for c in spec.names if empty[c].dtype != object})


def mark(
    pods: tuple[str, ...] = ("web-a",),
    *,
    grace: int | None = 0,
    skipped: str | None = None,
    ready_before: int | None = None,
) -> pd.DataFrame:
    detail = ChaosMark(
        "pod-kill" if grace == 0 else "pod-delete",
        "shop/deployment/web",
        "shop",
        "web",
        pods,
        ready_before,
        grace,
        skipped,
    ).detail()
    return table(schema.MARKS, [{"ts": T0, "kind": "chaos", "detail": detail}])


def pods(ticks: dict[float, list[tuple[str, bool]]]) -> pd.DataFrame:
    return table(
        schema.PODS,
        [
            {"ts": ts, "namespace": "shop", "pod": name, "workload": "web", "ready": ready}
            for ts, listed in ticks.items()
            for name, ready in listed
        ],
    )


def history(rows: list[tuple[float, float, float, float, float]]) -> pd.DataFrame:
    """(ts, total requests, total failures, p95, p99) per second, Aggregated."""
    records = []
    for ts, total, failed, p95, p99 in rows:
        record: dict[str, Any] = dict.fromkeys(HISTORY_COLUMNS, float("nan"))
        record |= {"Timestamp": ts, "Type": "", "Name": "Aggregated"}
        record |= {"Total Request Count": total, "Total Failure Count": failed}
        record |= {"95%": p95, "99%": p99}
        records.append(record)
    return pd.DataFrame(records, columns=list(HISTORY_COLUMNS))


def steady_history(failures_after: float = 0.0, p95_after: float = 50.0) -> pd.DataFrame:
    """10 req/s from T0-20 to T0+30; failures and p95 change for the 10 s after the kill."""
    rows = []
    failed = 0.0
    for i in range(-20, 31):
        ts = T0 + i
        if 0 < i <= 10:
            failed += failures_after / 10
        p95 = p95_after if 0 < i <= 10 else 50.0
        rows.append((ts, 10.0 * (i + 20), failed, p95, p95 * 2))
    return history(rows)


def run(
    marks: pd.DataFrame,
    pod_rows: pd.DataFrame,
    hist: pd.DataFrame | None = None,
    workloads: pd.DataFrame | None = None,
    hpa: pd.DataFrame | None = None,
) -> Disruption:
    (d,) = measure(
        marks,
        pods=pod_rows,
        workloads=workloads if workloads is not None else empty_table(schema.WORKLOADS),
        hpa=hpa if hpa is not None else empty_table(schema.HPA),
        history=hist if hist is not None else steady_history(),
        locust=empty_table(schema.LOCUST),
        end_s=T0 + 30,
        load_start_s=T0 - 20,
        interval_s=2.0,
    )
    return d


TWO_READY = [("web-a", True), ("web-b", True)]
REPLACED = [("web-b", True), ("web-c", True)]


def test_a_pod_ready_since_the_last_sample_counts_as_before_the_kill() -> None:
    # The HPA's third pod became ready between the last sample and the kill; the action saw
    # three ready pods. Counting from the older sample (two) would call the loss recovered
    # at once, since the two others are still there.
    rows = pods(
        {
            T0 - 2: [("web-a", True), ("web-b", True), ("web-c", False)],
            T0: [("web-a", True), ("web-b", True), ("web-c", True)],
            T0 + 2: [("web-b", True), ("web-c", True), ("web-d", False)],
            T0 + 4: [("web-b", True), ("web-c", True), ("web-d", True)],
        }
    )
    d = run(mark(ready_before=3), rows)
    assert d.ready_before == 3
    assert d.recovery_s == 4.0 and d.recovered_to == "replicas_before"
    # A mark without its own count (an older run): the last sample before the kill.
    assert run(mark(), rows).ready_before == 2


def test_recovery_counts_until_a_replacement_is_ready_without_the_pod_hit() -> None:
    d = run(
        mark(),
        pods(
            {
                T0 - 2: TWO_READY,
                T0: [("web-a", True), ("web-b", True)],  # the deleted pod still listed as ready
                T0 + 2: [("web-b", True), ("web-c", False)],
                T0 + 6: [("web-b", True), ("web-c", True)],
            }
        ),
    )
    assert d.ready_before == 2
    assert d.recovered is True and d.recovery_s == 6.0 and d.recovered_to == "replicas_before"
    assert d.readiness_source == "samples/pods.csv"
    assert (d.replacement_seen_s, d.replacement_ready_s) == (2.0, 6.0)
    assert d.window_s == 10.0  # at least MIN_WINDOW_S


def test_error_burst_and_percentiles_during_against_before() -> None:
    d = run(mark(), pods({T0 - 2: TWO_READY, T0 + 2: REPLACED}), steady_history(20.0, 400.0))
    assert d.during.requests == 100.0 and d.during.failures == pytest.approx(20.0)
    assert d.during.error_rate == pytest.approx(0.2)
    assert d.before.error_rate == 0.0
    assert (d.before.p95_ms, d.during.p95_ms) == (50.0, 400.0)
    assert (d.before.p99_ms, d.during.p99_ms) == (100.0, 800.0)
    codes = {f.code: f for f in disruption_findings([d], T0 - 20)}
    assert codes["disruption_errors"].severity == "info"  # a kill, not a graceful delete
    assert "disruption_latency_spike" in codes
    assert "50 ms to 400 ms" in codes["disruption_latency_spike"].message


def test_errors_during_a_graceful_delete_are_a_problem() -> None:
    d = run(mark(grace=None), pods({T0 - 2: TWO_READY, T0 + 2: REPLACED}), steady_history(20.0))
    (finding,) = [f for f in disruption_findings([d], None) if f.code == "disruption_errors"]
    assert finding.severity == "high" and "preStop" in finding.change
    assert finding.subject == "shop/web"


def test_never_recovered_fails_recovery_slo() -> None:
    d = run(
        mark(),
        pods({T0 - 2: TWO_READY, T0 + 2: [("web-b", True)], T0 + 28: [("web-b", True)]}),
    )
    assert d.recovered is False and d.recovery_s is None
    assert d.window_s == 30.0  # measured until the load ended
    assert "disruption_not_recovered" in {f.code for f in disruption_findings([d], None)}
    values = disruption_values([d], d.ts + d.window_s)
    # not recovered by the end: at least the 30 s that were left, which fails any upper bound
    assert values["recovery_s"] == AtLeast(30.0) and values["disruptions_recovered"] == 0.0
    (slo,) = evaluate(parse_slos(["recovery_s<60"]), values)
    assert (slo.passed, slo.observed, slo.at_least) == (False, 30.0, True)


def test_single_replica_taken_is_high() -> None:
    d = run(
        mark(),
        pods({T0 - 2: [("web-a", True)], T0 + 2: [("web-c", False)], T0 + 4: [("web-c", True)]}),
    )
    assert d.took_all_ready and d.recovery_s == 4.0
    (finding,) = [
        f for f in disruption_findings([d], None) if f.code == "disruption_single_replica"
    ]
    assert finding.severity == "high" and "minReplicas" in finding.change


def test_recovery_to_what_the_hpa_desires_when_it_wants_fewer() -> None:
    hpa = table(
        schema.HPA,
        [
            {
                "ts": T0 - 2,
                "namespace": "shop",
                "hpa": "web",
                "target_name": "web",
                "current_replicas": 3,
                "desired_replicas": 3,
            },
            {
                "ts": T0 + 2,
                "namespace": "shop",
                "hpa": "web",
                "target_name": "web",
                "current_replicas": 3,
                "desired_replicas": 2,
            },
        ],
    )
    three = [*TWO_READY, ("web-x", True)]
    d = run(mark(), pods({T0 - 2: three, T0 + 4: [*TWO_READY[1:], ("web-x", True)]}), hpa=hpa)
    assert d.recovered_to == "hpa_desired" and d.recovery_s == 4.0
    assert d.hpa is not None and d.hpa.desired_changed and not d.hpa.scaled_up


def test_workloads_csv_recovery_starts_from_the_dip() -> None:
    rows = [(T0 - 2, 2), (T0 + 2, 2), (T0 + 4, 1), (T0 + 12, 2)]  # the loss shows one tick late
    workloads = table(
        schema.WORKLOADS,
        [{"ts": ts, "namespace": "shop", "name": "web", "ready_replicas": r} for ts, r in rows],
    )
    d = run(mark(), empty_table(schema.PODS), workloads=workloads)
    assert d.readiness_source == "samples/workloads.csv"
    assert d.recovery_s == 12.0


def test_skipped_disruption_is_not_measured_and_fails_its_gates() -> None:
    d = run(mark((), skipped="no running pods of shop/deployment/web"), empty_table(schema.PODS))
    assert d.skipped and d.recovered is None
    assert [f.code for f in disruption_findings([d], None)] == ["disruption_skipped"]
    assert set(disruption_values([d], d.ts + 30).values()) == {None}


def test_counts_fall_back_to_the_samplers_locust_rows() -> None:
    locust = table(
        schema.LOCUST,
        [{"ts": T0 + i, "rps": 10.0, "fail_per_s": 1.0, "p95_ms": 80.0} for i in range(0, 14, 2)],
    )
    (d,) = measure(
        mark(),
        pods=pods({T0 - 2: TWO_READY, T0 + 2: REPLACED}),
        workloads=empty_table(schema.WORKLOADS),
        hpa=empty_table(schema.HPA),
        history=history([]),
        locust=locust,
        end_s=T0 + 30,
    )
    assert d.load_source == "samples/locust.csv"
    assert d.during.requests == pytest.approx(100.0) and d.during.error_rate == pytest.approx(0.1)
    assert d.during.p95_ms == 80.0 and d.during.p99_ms is None


def test_mark_detail_round_trips() -> None:
    original = ChaosMark(
        "pod-delete", "local/pid/7", "local", "demo-target", ("demo-target-9",), 2, None
    )
    assert parse_chaos_detail(original.detail()) == original
    skipped = ChaosMark("pod-kill", "t", "ns", "w", (), 0, 0, "no  pods\nat all")
    assert parse_chaos_detail(skipped.detail()) == ChaosMark(
        "pod-kill", "t", "ns", "w", (), 0, 0, "no pods at all"
    )
    assert parse_chaos_detail("40 users") is None
