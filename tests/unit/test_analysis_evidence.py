"""Runs whose evidence is misleading, each built from literal rows: the verdict must stay right.

One scenario per way a run can fool a judge: replicas raised by a memory baseline rather than
load, a run too short for the HPA to react, a scale-up whose pods never became Ready, a memory
baseline measured only under load, an HPA left scaled up by the previous run, scale events timed
by the controller rather than the sample tick.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures import scenarios as sc
from tests.unit.test_analysis_findings import codes, finding, report, steady

pytestmark = pytest.mark.unit

MI = sc.MI


def _memory_pinned(run_dir: Path, cpu_util: float) -> Path:
    """``web`` min 2 max 4: memory at 110% of an 80% target in every sample, before the load
    too, so the HPA goes 2 -> 4 on memory; CPU at ``cpu_util`` of a 70% target."""
    n = 30
    users = [0] * 3 + [50] * 25 + [0] * 2
    current = [2] * 4 + [4] * 26
    return sc.build(
        run_dir,
        n,
        {
            "locust": sc.locust(users),
            "hpa": sc.hpa("web", current, limited=[c >= 4 for c in current]),
            "hpa_metrics": sc.metrics("web", "memory", [110.0] * n, 80.0)
            + sc.metrics("web", "cpu", [cpu_util if u else 0.5 for u in users], 70.0),
            "workloads": sc.workloads("web", current),
            # 281.6Mi = 110% of the 256Mi request, whatever the load
            "pods": sc.pods("web", current, lambda t, p: (281.6, 2.0)),
            "marks": sc.marks(3, 28),
        },
    )


def test_scale_up_on_a_memory_baseline_is_not_load(tmp_path: Path) -> None:
    summary = report(_memory_pinned(tmp_path / "run", cpu_util=1.0))
    low = finding(summary, "load_too_low", "run")
    # the only load-following metric, CPU, peaked at 1% against 70%: under half of it
    assert "shop/web CPU peaked at 1% of request against a 70% target" in low["seen"]
    assert "no HPA scaled up on load" in low["seen"]
    # the why names what the HPA did, not "healthy at min"
    assert "went 2->4 replicas on memory" in low["why"]
    assert "at min" not in low["why"]
    assert finding(summary, "memory_not_load_proportional", "shop/web")["severity"] == "high"
    # memory asked for ceil(4 x 110 / 80) = 6 > max 4: the at-max finding is right as well
    assert finding(summary, "hpa_at_max", "shop/web")["data"]["wanted_replicas"] == 6


def test_cpu_that_follows_load_near_target_is_not_too_low(tmp_path: Path) -> None:
    summary = report(_memory_pinned(tmp_path / "run", cpu_util=60.0))
    assert "load_too_low" not in codes(summary)  # 60% of a 70% target is not under half
    assert "memory_not_load_proportional" in codes(summary)


def _five_seconds(users: float) -> dict[str, list[sc.Row]]:
    """Three samples 2 s apart over a 5 s load: Locust's 10 s RPS window still reads 0."""
    samples = steady("api", 3, 2)
    samples["locust"] = [{**row, "rps": 0.0} for row in sc.locust([users] * 3)]
    for name in ("locust", "hpa", "hpa_metrics", "workloads", "pods"):
        samples[name] = [
            {**r, "ts": sc.T0 + (r["ts"] - sc.T0) / sc.STEP * 2} for r in samples[name]
        ]
    samples["marks"] = [
        {"ts": sc.T0, "kind": "test_start", "detail": f"{users} users"},
        {"ts": sc.T0 + 5, "kind": "test_stop", "detail": "stopped"},
    ]
    return samples


SHORT = {"end": sc.T0 + 6, "sample_interval_s": 2.0}


def test_five_second_run_uses_locusts_totals_and_says_it_is_too_short(tmp_path: Path) -> None:
    run = sc.build(tmp_path / "run", 3, _five_seconds(6), meta=SHORT, real_locust=True)
    summary = report(run)
    # stats.csv: 24.49 req/s over the run for 6 users = 4.08 per user: plenty
    assert "load_too_low" not in codes(summary)
    short = finding(summary, "run_too_short", "run")
    assert short["data"] == {"loaded_s": 5.0, "reaction_s": 30.0}  # sync 15 s + metrics 15 s
    assert short["severity"] == "medium"


def test_slow_users_on_a_short_run_are_measured_from_locusts_totals(tmp_path: Path) -> None:
    stats = (
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
        "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,"
        "75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
        ",Aggregated,20,0,5,5,1,9,6,0.8,0,5,5,5,5,5,5,5,5,5,5,5\n"
    )
    run = sc.build(tmp_path / "run", 3, _five_seconds(400), meta=SHORT)
    (run / "locust").mkdir()
    (run / "locust" / "stats.csv").write_text(stats, encoding="utf-8")
    low = finding(report(run), "load_too_low", "run")
    assert low["data"]["rps_per_user"] == 0.002  # 0.8 req/s / 400 users
    assert low["data"]["rps_per_user_source"] == "locust/stats.csv"


def test_scale_up_whose_pods_never_became_ready(tmp_path: Path) -> None:
    n = 20
    users = [0] * 2 + [80] * 18
    desired = [2] * 5 + [4] * 15
    samples = steady("api", n, 2, cpu_util=90.0)
    pending = [
        {**row, "pod": f"api-new-{row['pod'][-1]}", "phase": "Pending", "ready": False}
        for row in sc.pods("api", [2] * n, lambda t, p: (None, None))
        if row["ts"] >= sc.ts(5)
    ]
    samples.update(
        {
            "locust": sc.locust(users),
            "hpa": sc.hpa("api", [2] * 5 + [4] * 15, desired=desired, high=10),
            "workloads": sc.workloads("api", [2] * n),  # ready replicas never rise
            "pods": samples["pods"] + pending,
            "events": [
                {
                    "ts": sc.ts(6),
                    "namespace": sc.NS,
                    "kind": "Pod",
                    "name": "api-new-0",
                    "reason": "FailedScheduling",
                    "type": "Warning",
                    "message": "0/3 nodes are available: 3 Insufficient cpu.",
                }
            ],
            "marks": sc.marks(2, 19),
        }
    )
    summary = report(sc.build(tmp_path / "run", n, samples), slos=["ready_lag_s<60"])
    stuck = finding(summary, "scale_up_not_ready", "shop/api")
    assert stuck["severity"] == "high"
    assert stuck["data"]["ready_reached"] == 2
    assert stuck["data"]["waited_s"] == 14 * sc.STEP  # tick 5 to tick 19
    assert stuck["data"]["cause"] == "Pending: unschedulable (FailedScheduling)"
    assert "Insufficient cpu" in stuck["seen"]
    # never measured: at least the time left from the step (tick 2) to the end (tick 19),
    # so the gate fails instead of passing silently
    assert summary["slos"] == [
        {"expr": "ready_lag_s<60", "observed": 17 * sc.STEP, "passed": False, "at_least": True}
    ]


def test_memory_baseline_comes_from_samples_at_rest(tmp_path: Path) -> None:
    # 10.5Mi per pod before the first user, 139Mi under load: memory follows load (on/off).
    n = 30
    users = [0] * 6 + [60] * 20 + [0] * 4
    replicas = [2] * 6 + [4] * 20 + [2] * 4
    samples = steady("api", n, 2)
    samples.update(
        {
            "locust": [r for r in sc.locust(users) if r["user_count"]],  # sampled only loaded
            "hpa": sc.hpa("api", replicas, high=6),
            "workloads": sc.workloads("api", replicas),
            "pods": sc.pods(
                "api", replicas, lambda t, p: (139.0 if users[t] else 10.5, 100.0), request_mi=128
            ),
            "hpa_metrics": sc.metrics("api", "cpu", [55.0] * n, 60.0)
            + sc.metrics("api", "memory", [108.6 if u else 8.2 for u in users], 80.0),
            "marks": sc.marks(6, 25),
        }
    )
    summary = report(sc.build(tmp_path / "run", n, samples))
    assert "memory_not_load_proportional" not in codes(summary)
    workload = summary["workloads"][0]
    assert workload["baseline_memory_bytes"] == 10.5 * MI
    assert workload["memory_follows_load"] is True


def test_flat_memory_without_samples_at_rest_never_claims_any_load(tmp_path: Path) -> None:
    n = 20
    users = [30] * 10 + [60] * 10
    replicas = [2] * 10 + [4] * 10
    samples = steady("api", n, 2)
    samples.update(
        {
            "locust": sc.locust(users),
            "hpa": sc.hpa("api", replicas, high=6),
            "workloads": sc.workloads("api", replicas),
            "pods": sc.pods("api", replicas, lambda t, p: (240.0, 100.0)),
            "hpa_metrics": sc.metrics("api", "memory", [93.8] * n, 80.0),
            "marks": sc.marks(0, 19),
        }
    )
    flat = finding(report(sc.build(tmp_path / "run", n, samples)), "memory_not_load_proportional")
    assert "at every load this run applied" in flat["why"]
    assert "at any load" not in flat["why"]
    assert flat["data"]["baseline_measured"] == "under load"


def test_run_that_starts_at_max_from_the_previous_one(tmp_path: Path) -> None:
    # At max 4 from the first tick; desired held at 4 by the scale-down stabilization window
    # while CPU stays at 20% of a 60% target; ScalingLimited false. It never wanted more.
    n = 20
    samples = steady("api", n, 4, cpu_util=20.0)
    samples["hpa"] = sc.hpa("api", [4] * n, low=2, high=4, limited=[False] * n)
    samples["marks"] = sc.marks(1, 19)
    summary = report(sc.build(tmp_path / "run", n, samples))
    started = finding(summary, "started_scaled_up", "shop/api")
    assert started["severity"] == "medium"
    assert started["data"]["cpu_ratio_at_start"] == 0.333  # 20 / 60
    assert "stabilization window" in started["seen"]
    assert "hpa_at_max" not in codes(summary)
    assert summary["hpas"][0]["status"] == "healthy"
    low = finding(summary, "load_too_low", "run")
    assert "started at its max of 4 replicas" in low["why"]
    assert "at min" not in low["why"]


def test_scale_event_timed_by_the_controller_not_the_tick(tmp_path: Path) -> None:
    n = 20
    users = [0] * 4 + [100] * 16
    replicas = [2] * 8 + [4] * 12
    samples = steady("api", n, 2)
    hpa_rows = sc.hpa("api", replicas, high=10)
    for row in hpa_rows[8:]:
        row["last_scale_ts"] = sc.ts(8) - 11.0  # the controller scaled 4 s after tick 7
    samples.update(
        {
            "locust": sc.locust(users),
            "hpa": hpa_rows,
            "workloads": sc.workloads("api", replicas),
            "marks": sc.marks(4, 19),
        }
    )
    summary = report(sc.build(tmp_path / "run", n, samples))
    event = summary["hpas"][0]["scale_events"][0]
    assert event["ts"] == sc.ts(8) - 11.0
    assert event["lag_s"] == 4 * sc.STEP - 11.0  # not 60 s, the tick it was first seen at
    del hpa_rows
    samples["hpa"] = sc.hpa("api", replicas, high=10)
    samples["events"] = [
        {
            "ts": sc.ts(8) - 3.0,
            "namespace": sc.NS,
            "kind": "HorizontalPodAutoscaler",
            "name": "api",
            "reason": "SuccessfulRescale",
            "type": "Normal",
            "message": "New size: 4; reason: cpu resource utilization above target",
        }
    ]
    summary = report(sc.build(tmp_path / "events", n, samples))
    assert summary["hpas"][0]["scale_events"][0]["lag_s"] == 4 * sc.STEP - 3.0


def test_an_hpa_on_memory_alone_does_not_veto_load_too_low(tmp_path: Path) -> None:
    """``web`` scales on CPU, which peaked at 1% of a 70% target; ``cache`` scales only on a
    memory baseline that does not follow load. Neither scaled: ``cache`` says nothing about the
    load either way and must not silence the finding, which gives each HPA's numbers."""
    n = 30
    users = [0] * 3 + [50] * 25 + [0] * 2
    flat = [2] * n
    run_dir = sc.build(
        tmp_path / "run",
        n,
        {
            "locust": sc.locust(users),
            "hpa": sc.hpa("web", flat) + sc.hpa("cache", flat),
            "hpa_metrics": sc.metrics("web", "cpu", [1.0 if u else 0.5 for u in users], 70.0)
            + sc.metrics("cache", "memory", [60.0] * n, 80.0),
            "workloads": sc.workloads("web", flat) + sc.workloads("cache", flat),
            "pods": sc.pods("web", flat, lambda t, p: (100.0, 2.0))
            # 153.6Mi = 60% of the 256Mi request at rest and under load alike
            + sc.pods("cache", flat, lambda t, p: (153.6, 2.0)),
            "marks": sc.marks(3, 28),
        },
    )
    summary = report(run_dir)
    low = finding(summary, "load_too_low", "run")
    assert "shop/web CPU peaked at 1% of request against a 70% target" in low["seen"]
    assert (
        "shop/cache scales only on memory (peaked at 60% of request against its 80% target, "
        "which does not follow load per pod" in low["seen"]
    )
    assert "no HPA scaled up" in low["seen"]
