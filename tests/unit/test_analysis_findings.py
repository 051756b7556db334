"""Each finding code from a run directory built of literal rows, checked in the
summary.json that ``write_report`` writes: code, severity, subject and the numbers."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from analysis.report import write_report
from tests.fixtures import scenarios as sc

pytestmark = pytest.mark.unit

MI = sc.MI


def report(run_dir: Path, slos: Sequence[str] = (), whatifs: Sequence[str] = ()) -> dict[str, Any]:
    returned = write_report(run_dir, slos, whatifs)
    on_disk: dict[str, Any] = json.loads((run_dir / "report" / "summary.json").read_text())
    assert on_disk == returned
    return on_disk


def finding(summary: dict[str, Any], code: str, subject: str | None = None) -> dict[str, Any]:
    matches = [
        f
        for f in summary["findings"]
        if f["code"] == code and (subject is None or f["subject"] == subject)
    ]
    assert len(matches) == 1, [(f["code"], f["subject"]) for f in summary["findings"]]
    found: dict[str, Any] = matches[0]
    return found


def codes(summary: dict[str, Any]) -> set[str]:
    return {f["code"] for f in summary["findings"]}


def steady(
    name: str,
    n: int,
    replicas: int,
    *,
    cpu_util: float = 55.0,
    users: float = 50,
    memory_mi: float = 100.0,
) -> dict[str, list[sc.Row]]:
    """A healthy loaded HPA at a constant replica count: the base most scenarios change."""
    return {
        "locust": sc.locust([users] * n),
        "hpa": sc.hpa(name, [replicas] * n, high=10),
        "hpa_metrics": sc.metrics(name, "cpu", [cpu_util] * n, 60.0),
        "workloads": sc.workloads(name, [replicas] * n),
        "pods": sc.pods(name, [replicas] * n, lambda t, p: (memory_mi, cpu_util * 2)),
        "marks": sc.marks(0, n - 1),
    }


def test_hpa_pinned_at_max_by_a_flat_memory_baseline(tmp_path: Path) -> None:
    summary = report(sc.pinned_by_memory(tmp_path / "run"))
    at_max = finding(summary, "hpa_at_max", "shop/web")
    assert at_max["severity"] == "high"
    assert at_max["data"]["max_replicas"] == 4
    assert at_max["data"]["wanted_replicas"] == 5  # ceil(4 x 94 / 80)
    assert at_max["data"]["share_of_loaded_time"] > 0.9
    hpa = summary["hpas"][0]
    assert (hpa["status"], hpa["driving_metric"]) == ("at_max", "memory")
    assert hpa["time_at_max_s"] == 37 * sc.STEP  # ticks 3..39 at 4 replicas
    assert hpa["peak_utilization"] == {"cpu": 50.0, "memory": 94.0}
    pinned = finding(summary, "memory_not_load_proportional", "shop/web")
    assert pinned["severity"] == "high"
    assert pinned["data"]["baseline_pct_of_request"] == 93.8  # 240Mi of 256Mi
    assert pinned["data"]["memory_target_pct"] == 80.0
    # the 95th percentile of the loaded per-pod working set over the target: 240Mi / 0.80
    assert pinned["data"]["recommended_memory_request_bytes"] == 300 * MI
    assert "300Mi" in pinned["change"]
    assert summary["workloads"][0]["memory_follows_load"] is False
    assert summary["verdict"] == "warn"


def test_flat_memory_under_the_target_is_medium_and_without_memory_hpa_info(tmp_path: Path) -> None:
    n = 30
    users = [0] * 5 + [60] * 20 + [0] * 5
    replicas = [2] * 5 + [4] * 20 + [2] * 5
    samples = steady("api", n, 2)
    samples.update(
        {
            "locust": sc.locust(users),
            "hpa": sc.hpa("api", replicas, high=6),
            "workloads": sc.workloads("api", replicas),
            "pods": sc.pods("api", replicas, lambda t, p: (150.0, 100.0)),
            "hpa_metrics": sc.metrics("api", "cpu", [55.0] * n, 60.0)
            + sc.metrics("api", "memory", [58.6] * n, 80.0),
        }
    )
    summary = report(sc.build(tmp_path / "with-memory", n, samples))
    flat = finding(summary, "memory_not_load_proportional", "shop/api")
    assert flat["severity"] == "medium"
    assert flat["data"]["memory_swing"] == 0.0
    assert flat["data"]["load_swing"] == 1.0
    samples["hpa_metrics"] = sc.metrics("api", "cpu", [55.0] * n, 60.0)
    summary = report(sc.build(tmp_path / "cpu-only", n, samples))
    assert finding(summary, "memory_not_load_proportional", "shop/api")["severity"] == "info"


def test_memory_that_follows_load_is_not_a_finding(tmp_path: Path) -> None:
    n = 30
    users = [0] * 5 + [60] * 20 + [0] * 5
    samples = steady("api", n, 2)
    samples["locust"] = sc.locust(users)
    samples["pods"] = sc.pods("api", [2] * n, lambda t, p: (100.0 + users[t] * 2, 100.0))
    summary = report(sc.build(tmp_path / "run", n, samples))
    assert "memory_not_load_proportional" not in codes(summary)
    assert summary["workloads"][0]["memory_follows_load"] is True


def test_hpa_not_scaling_while_cpu_stays_above_target(tmp_path: Path) -> None:
    n = 31
    samples = steady("api", n, 2, cpu_util=90.0)
    samples["hpa"] = sc.hpa("api", [2] * n, low=2, high=10, able=False)
    samples["marks"] = sc.marks(2, 30)
    summary = report(sc.build(tmp_path / "run", n, samples))
    found = finding(summary, "hpa_not_scaling", "shop/api")
    assert found["severity"] == "high"
    assert found["data"]["metric"] == "cpu"
    assert found["data"]["duration_s"] == 28 * sc.STEP  # the whole loaded window
    assert found["data"]["peak_utilization"] == 90.0
    assert found["data"]["replicas"] == 2
    assert summary["hpas"][0]["status"] == "not_scaling"


def test_hpa_flapping(tmp_path: Path) -> None:
    n = 24
    replicas = ([2] * 4 + [4] * 4) * 3
    samples = steady("api", n, 2)
    samples["hpa"] = sc.hpa("api", replicas, high=10)
    samples["workloads"] = sc.workloads("api", replicas)
    summary = report(sc.build(tmp_path / "run", n, samples))
    found = finding(summary, "hpa_flapping", "shop/api")
    assert found["severity"] == "medium"
    assert found["data"]["reversals"] == 4  # up, down, up, down, up: every change reverses
    assert summary["hpas"][0]["status"] == "flapping"
    assert len(summary["hpas"][0]["scale_events"]) == 5


def test_hpa_without_metrics_and_missing_pod_samples(tmp_path: Path) -> None:
    n = 10
    samples = steady("api", n, 2)
    del samples["hpa_metrics"], samples["pods"]
    summary = report(sc.build(tmp_path / "run", n, samples, omit=("pods",)))
    hpa = finding(summary, "metrics_missing", "shop/api")
    assert hpa["severity"] == "high"
    assert summary["hpas"][0]["status"] == "no_metrics"
    missing = [
        f
        for f in summary["findings"]
        if f["code"] == "metrics_missing" and f["data"].get("file") == "samples/pods.csv"
    ]
    assert [f["severity"] for f in missing] == ["medium"]
    assert summary["workloads"] == []


def test_memory_never_measured(tmp_path: Path) -> None:
    n = 10
    samples = steady("api", n, 2)
    samples["pods"] = sc.pods("api", [2] * n, lambda t, p: (None, 100.0))
    summary = report(sc.build(tmp_path / "run", n, samples))
    found = [f for f in summary["findings"] if f["data"].get("column") == "memory_bytes"]
    assert [(f["code"], f["severity"]) for f in found] == [("metrics_missing", "medium")]
    assert summary["workloads"][0]["peak_memory_bytes"] is None


def test_oom_kill_counts_and_limit_recommendation(tmp_path: Path) -> None:
    n = 20

    def restarts(tick: int, pod: int) -> tuple[int, str]:
        return (1, "OOMKilled") if pod == 0 and tick >= 10 else (0, "")

    samples = steady("api", n, 2)
    samples["pods"] = sc.pods(
        "api", [2] * n, lambda t, p: (500.0 if p == 0 else 300.0, 100.0), restarts=restarts
    )
    summary = report(sc.build(tmp_path / "run", n, samples), slos=["oom_kills==0"])
    found = finding(summary, "oom_killed", "shop/api")
    assert found["severity"] == "high"
    assert found["data"]["oom_kills"] == 1
    # after an OOM kill: max(peak 500Mi, limit 512Mi) x 1.25 = 640Mi
    assert found["data"]["recommended_memory_limit_bytes"] == 640 * MI
    workload = summary["workloads"][0]
    assert (workload["oom_kills"], workload["restarts"]) == (1, 1)
    assert workload["recommended_memory_limit_bytes"] == 640 * MI
    assert "near_memory_limit" not in codes(summary)  # the OOM kill says it already
    assert summary["slos"] == [
        {"expr": "oom_kills==0", "observed": 1.0, "passed": False, "at_least": False}
    ]
    assert summary["verdict"] == "fail"


def test_oom_kills_with_memory_never_measured_give_no_limit_of_zero(tmp_path: Path) -> None:
    """Pods killed before metrics-server could read them (seen on a real node with a 48Mi
    limit): the advice may not size the limit from a peak nobody measured."""
    n = 10

    def restarts(tick: int, pod: int) -> tuple[int, str]:
        return (tick // 3, "OOMKilled") if tick >= 3 else (0, "")

    samples = steady("api", n, 1)
    samples["pods"] = sc.pods("api", [1] * n, lambda t, p: (None, None), restarts=restarts)
    found = finding(report(sc.build(tmp_path / "run", n, samples)), "oom_killed", "shop/api")
    assert "never measured" in found["message"]
    assert "at least 0" not in found["message"]
    assert "512Mi" in found["message"]


@pytest.mark.parametrize(
    ("peak_mi", "severity", "pct"), [(470.0, "high", 91.8), (420.0, "medium", 82.0)]
)
def test_near_memory_limit(tmp_path: Path, peak_mi: float, severity: str, pct: float) -> None:
    n = 10
    samples = steady("api", n, 2)
    samples["pods"] = sc.pods("api", [2] * n, lambda t, p: (peak_mi if t == 5 else 200.0, 100.0))
    summary = report(sc.build(tmp_path / "run", n, samples))
    found = finding(summary, "near_memory_limit", "shop/api")
    assert found["severity"] == severity
    assert found["data"]["peak_memory_pct_of_limit"] == pct
    # krr: peak x 1.15, rounded up to whole Mi
    expected = -(-peak_mi * 1.15 // 1) * MI
    assert summary["workloads"][0]["recommended_memory_limit_bytes"] == expected


def test_restarts_that_are_not_oom_kills_and_old_restarts_ignored(tmp_path: Path) -> None:
    n = 10

    def restarts(tick: int, pod: int) -> tuple[int, str]:
        if pod == 1:
            return 3, "Error"  # restarted before the run: not counted
        return (1, "Error") if tick >= 4 else (0, "")

    samples = steady("api", n, 2)
    samples["pods"] = sc.pods("api", [2] * n, lambda t, p: (100.0, 100.0), restarts=restarts)
    summary = report(sc.build(tmp_path / "run", n, samples))
    found = finding(summary, "pod_restarts", "shop/api")
    assert (found["severity"], found["data"]["restarts"]) == ("medium", 1)
    assert summary["workloads"][0]["oom_kills"] == 0


def test_load_too_low(tmp_path: Path) -> None:
    n = 20
    samples = steady("api", n, 2, cpu_util=10.0)
    samples["locust"] = sc.locust([50] * n, rps_per_user=0.02)
    summary = report(sc.build(tmp_path / "run", n, samples))
    found = finding(summary, "load_too_low", "run")
    assert found["severity"] == "medium"
    assert found["data"]["rps_per_user"] == 0.02
    assert "CPU peaked at 10% of request against a 60% target" in found["seen"]
    assert summary["hpas"][0]["status"] == "healthy"


def test_no_request_at_all_is_high(tmp_path: Path) -> None:
    n = 10
    samples = steady("api", n, 2)
    samples["locust"] = sc.locust([10] * n, rps_per_user=0.0)
    summary = report(sc.build(tmp_path / "run", n, samples))
    found = finding(summary, "load_too_low", "run")
    assert (found["severity"], found["data"]["total_requests"]) == ("high", 0)


def test_scale_up_slow(tmp_path: Path) -> None:
    n = 30
    users = [0] * 4 + [100] * 26
    replicas = [2] * 18 + [4] * 12
    ready = [2] * 19 + [4] * 11
    samples = steady("api", n, 2)
    samples.update(
        {
            "locust": sc.locust(users),
            "hpa": sc.hpa("api", replicas, high=10),
            "workloads": sc.workloads("api", ready),
            "hpa_metrics": sc.metrics("api", "cpu", [20.0] * 4 + [90.0] * 14 + [55.0] * 12, 60.0),
            "marks": sc.marks(4, 29),
        }
    )
    summary = report(
        sc.build(tmp_path / "run", n, samples), slos=["scale_up_lag_s<90", "ready_lag_s<300"]
    )
    found = finding(summary, "scale_up_slow", "shop/api")
    assert found["severity"] == "medium"
    assert found["data"] == {"lag_s": 210.0, "ready_lag_s": 225.0, "ramp_s": 0.0}
    event = summary["hpas"][0]["scale_events"][0]
    assert (event["from"], event["to"], event["lag_s"], event["metric"]) == (2, 4, 210.0, "cpu")
    assert event["step_users"] == [0.0, 100.0]
    assert [s["passed"] for s in summary["slos"]] == [False, True]
    assert [s["observed"] for s in summary["slos"]] == [210.0, 225.0]


def test_sampler_gaps_and_a_line_cut_by_a_kill(tmp_path: Path) -> None:
    n = 30
    samples = steady("api", n, 2)
    for name in ("hpa", "pods", "locust", "workloads", "hpa_metrics"):
        samples[name] = [r for r in samples[name] if not sc.ts(10) < r["ts"] < sc.ts(20)]
    samples["marks"] = [
        *sc.marks(0, 29),
        {"ts": sc.ts(15), "kind": "sampler_gap", "detail": "9 tick(s) missed"},
    ]
    run_dir = sc.build(tmp_path / "run", n, samples)
    hpa_csv = run_dir / "samples" / "hpa.csv"
    hpa_csv.write_bytes(hpa_csv.read_bytes() + b"1800000450.0,shop,api,Deploy")
    summary = report(run_dir)
    found = finding(summary, "sampler_gaps", "run")
    assert found["severity"] == "medium"
    assert found["data"]["longest_gap_s"] == 10 * sc.STEP
    assert found["data"]["marks"] == 1
    assert found["data"]["truncated_files"] == 1
    assert summary["hpas"][0]["final_replicas"] == 2


def test_slo_failed_and_unmeasured_gates_fail(tmp_path: Path) -> None:
    n = 10
    summary = report(
        sc.build(tmp_path / "run", n, steady("api", n, 2)),
        slos=["p95_ms<100", "error_rate<1%", "scale_up_lag_s<90"],
    )
    assert summary["slos"] == [
        {"expr": "p95_ms<100", "observed": 120.0, "passed": False, "at_least": False},
        {"expr": "error_rate<1%", "observed": 0.0, "passed": True, "at_least": False},
        {"expr": "scale_up_lag_s<90", "observed": None, "passed": False, "at_least": False},
    ]
    failed = [f for f in summary["findings"] if f["code"] == "slo_failed"]
    assert [(f["severity"], f["data"]["expr"]) for f in failed] == [
        ("high", "p95_ms<100"),
        ("high", "scale_up_lag_s<90"),
    ]
    assert summary["verdict"] == "fail"


@pytest.mark.parametrize(("ratio", "severity"), [(0.02, "medium"), (0.1, "high")])
def test_errors_under_load(tmp_path: Path, ratio: float, severity: str) -> None:
    n = 10
    samples = steady("api", n, 2)
    samples["locust"] = sc.locust([50] * n, fail_ratio=ratio)
    summary = report(sc.build(tmp_path / "run", n, samples))
    found = finding(summary, "errors_under_load", "run")
    assert (found["severity"], found["data"]["error_rate"]) == (severity, ratio)


def test_interrupted_run(tmp_path: Path) -> None:
    n = 10
    summary = report(
        sc.build(tmp_path / "run", n, steady("api", n, 2), meta={"status": "interrupted"})
    )
    assert finding(summary, "run_incomplete", "run")["severity"] == "medium"


def test_healthy_scale_up_passes(tmp_path: Path) -> None:
    n = 30
    users = [0] * 4 + [100] * 22 + [0] * 4
    replicas = [2] * 6 + [4] * 24
    samples = steady("api", n, 2)
    samples.update(
        {
            "locust": sc.locust(users),
            "hpa": sc.hpa("api", replicas, high=10),
            "workloads": sc.workloads("api", replicas),
            "hpa_metrics": sc.metrics("api", "cpu", [30.0] * 4 + [80.0] * 2 + [55.0] * 24, 60.0),
            "marks": sc.marks(4, 25),
        }
    )
    summary = report(
        sc.build(tmp_path / "run", n, samples), slos=["scale_up_lag_s<90", "p95_ms<500"]
    )
    hpa = summary["hpas"][0]
    assert (hpa["status"], hpa["start_replicas"], hpa["peak_replicas"], hpa["final_replicas"]) == (
        "healthy",
        2,
        4,
        4,
    )
    assert hpa["scale_events"][0]["lag_s"] == 2 * sc.STEP
    assert not [f for f in summary["findings"] if f["severity"] != "info"]
    assert summary["verdict"] == "pass"


def test_sample_run_without_locust_times_lags_from_marks(tmp_path: Path) -> None:
    # `kubeswarm sample`: no Locust, load driven from elsewhere; the marks say when it started.
    n = 12
    samples = steady("api", n, 2)
    del samples["locust"]
    samples.update(
        {
            "workloads": sc.workloads("api", [2] * 5 + [4] * 7),
            "hpa": sc.hpa("api", [2] * 5 + [4] * 7, high=10),
            "hpa_metrics": sc.metrics("api", "cpu", [20.0] * 3 + [90.0] * 4 + [55.0] * 5, 60.0),
            "marks": [
                {"ts": sc.ts(3), "kind": "test_start", "detail": "load from elsewhere"},
                {"ts": sc.ts(8), "kind": "stage", "detail": "usage lowered"},
                {"ts": sc.ts(11), "kind": "test_stop", "detail": ""},
            ],
        }
    )
    summary = report(sc.build(tmp_path / "run", n, samples, meta={"mode": "sample"}))
    (event,) = summary["hpas"][0]["scale_events"]
    assert (event["from"], event["to"], event["lag_s"]) == (2, 4, 2 * sc.STEP)
    missing = [f for f in summary["findings"] if f["code"] == "metrics_missing"]
    assert all(f["severity"] == "info" for f in missing), missing
    assert summary["verdict"] == "pass"


def test_an_hpas_first_decision_recorded_as_its_first_status_is_still_a_scale_event(
    tmp_path: Path,
) -> None:
    """On a real node the HPA's first status came after the load started: desired empty, then
    desired 2 while it still counted 1 replica. That first decision is the 1 -> 2 scale-up."""
    n = 12
    samples = steady("web", n, 1)
    rows = sc.hpa("web", [1] * 6 + [2] * 6, desired=[2] * n, low=1, high=5)
    for row in rows[:3]:
        row["current_replicas"] = None
        row["desired_replicas"] = None
    for row in rows[3:6]:
        row["current_replicas"] = 1
    samples["hpa"] = rows
    samples["workloads"] = sc.workloads("web", [1] * 6 + [2] * 6)
    hpa = report(sc.build(tmp_path / "run", n, samples))["hpas"][0]
    assert [(e["from"], e["to"]) for e in hpa["scale_events"]] == [(1, 2)]
    assert hpa["scale_events"][0]["ts"] <= sc.ts(3)
