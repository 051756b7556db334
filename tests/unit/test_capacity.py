"""Capacity: the knee per replica, the break point and its limit, from literal rows."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from analysis.judge.capacity import (
    Thresholds,
    check_ramp,
    find_knee,
    first_sustained_break,
    parse_ramp_line,
    thresholds_from_slos,
)
from analysis.judge.slo import parse_slos
from analysis.pipeline import analyse
from analysis.render.summary import build_summary
from tests.fixtures.synthetic import write_run

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0
STEP_S = 30  # three 10 s bins per step


def curve(points: Sequence[tuple[float, bool]]) -> pd.DataFrame:
    """A capacity curve from (requests/s per replica, met the SLOs) in time order."""
    return pd.DataFrame(
        {
            "ts": [T0 + 10 * i for i in range(len(points))],
            "rps_per_replica": [x for x, _ in points],
            "meets": [ok for _, ok in points],
            "p95_ms": [100.0 if ok else 900.0 for _, ok in points],
            "p99_ms": math.nan,
            "error_rate": 0.0,
            "replicas": 2.0,
            "cpu_pct_of_request": math.nan,
        }
    )


def test_knee_of_a_clean_curve() -> None:
    knee = find_knee(
        curve([(10, True), (20, True), (30, True), (40, True), (50, False), (60, False)])
    )
    assert knee is not None and knee.reached
    assert knee.rps_per_replica == 40 and knee.first_broken_rps_per_replica == 50


def test_knee_ignores_a_lone_slow_bin_below_it_and_a_lucky_one_above_it() -> None:
    points = [
        (10, True),
        (20, False),
        (30, True),
        (40, True),
        (45, True),
        (50, False),
        (55, False),
        (60, True),
        (65, False),
    ]
    knee = find_knee(curve(points))
    assert knee is not None and knee.reached and knee.rps_per_replica == 45


def test_knee_not_reached_is_a_lower_bound() -> None:
    knee = find_knee(curve([(10, True), (20, True), (35, True)]))
    assert knee is not None and not knee.reached and knee.rps_per_replica == 35


def test_broken_from_the_lowest_load_has_no_knee() -> None:
    knee = find_knee(curve([(10, False), (20, False), (30, True)]))
    assert knee is not None and knee.reached and knee.rps_per_replica is None


def test_sustained_break_rule() -> None:
    assert first_sustained_break([True, False, True, True]) is None
    assert first_sustained_break([True, False, True, False]) == 1
    assert first_sustained_break([True, True, False]) == 2  # the last entry: nothing says otherwise
    assert first_sustained_break([]) is None


def test_thresholds_from_slos_or_defaults() -> None:
    assert thresholds_from_slos([]) == Thresholds(500.0, None, 0.01, "default")
    bounded = thresholds_from_slos(
        parse_slos(["p95_ms<300", "p95_ms<=250", "oom_kills==0", "error_rate<2%"])
    )
    assert bounded == Thresholds(250.0, None, 0.02, "--slo")
    assert Thresholds(100, 200, 0.01, "--slo").broken(150, math.nan, 0.0) == ("p95_ms",)


def test_ramp_lines_parse_and_short_steps_warn() -> None:
    line = (
        "12:00:01 WARNING kubeswarm ramp: stop reason=p95_ms step=3 users=30 observed=900 "
        "threshold=200: stopped at 30 users: p95 900 ms above 200 ms"
    )
    event, fields, text = parse_ramp_line(line) or ("", {}, "")
    assert event == "stop" and fields["reason"] == "p95_ms" and fields["users"] == "30"
    assert text.startswith("stopped at 30 users")
    assert parse_ramp_line("Shape test stopping") is None
    assert check_ramp(75, 15) is None
    assert "at least 75s" in (check_ramp(20, 15) or "")


# A whole run: users rise by 10 every 30 s, each sending 5 requests/s; the service's latency
# depends on requests/s per replica, its CPU per pod on the same. Rows every 2 s.


def write_ramp_run(
    run_dir: Path,
    *,
    replicas: Callable[[float], int],
    max_replicas: int,
    p95: Callable[[float], float],
    cpu_m: Callable[[float], float],
    fail_share: Callable[[float], float] = lambda per: 0.0,
    workers_cpu: float | None = None,
    steps: int = 8,
    config: dict[str, Any] | None = None,
) -> Path:
    locust, hpa, pods, workers = [], [], [], []
    for i in range(steps * STEP_S // 2):
        t = T0 + 2 * i
        users = 10 * (1 + i * 2 // STEP_S)
        rps = 5.0 * users
        n = min(replicas(rps), max_replicas)
        per = rps / n
        locust.append(
            {
                "ts": t,
                "state": "running",
                "user_count": users,
                "worker_count": 1,
                "rps": rps,
                "fail_per_s": rps * fail_share(per),
                "fail_ratio": 0.0,
                "p50_ms": p95(per) / 2,
                "p95_ms": p95(per),
            }
        )
        hpa.append(
            {
                "ts": t,
                "namespace": "shop",
                "hpa": "web",
                "target_kind": "Deployment",
                "target_name": "web",
                "min_replicas": 1,
                "max_replicas": max_replicas,
                "current_replicas": n,
                "desired_replicas": n,
                "able_to_scale": True,
                "scaling_active": True,
                "scaling_limited": False,
            }
        )
        for p in range(n):
            pods.append(
                {
                    "ts": t,
                    "namespace": "shop",
                    "pod": f"web-{p}",
                    "workload": "web",
                    "phase": "Running",
                    "ready": True,
                    "restarts": 0,
                    "cpu_m": cpu_m(per),
                    "memory_bytes": 1e8,
                    "cpu_request_m": 250.0,
                    "memory_request_bytes": 2e8,
                }
            )
        if workers_cpu is not None:
            workers.append(
                {
                    "ts": t,
                    "worker": "w0",
                    "state": "running",
                    "user_count": users,
                    "cpu_pct": workers_cpu,
                    "memory_bytes": 1e8,
                }
            )
    run = write_run(
        run_dir,
        {"start": T0, "end": T0 + steps * STEP_S} | ({"config": config} if config else {}),
        {"locust": locust, "hpa": hpa, "pods": pods},
    )
    if workers:
        pd.DataFrame(workers).to_csv(run / "samples" / "workers.csv", index=False)
    return run


def linear_cpu(per: float) -> float:
    return 20.0 + 2.0 * per  # 2 ms of CPU per request over a 20m baseline


def slow_past_80(per: float) -> float:
    return 50.0 if per <= 80 else 50.0 + 20.0 * (per - 80)


def at_max_run(tmp_path: Path, **overrides: Any) -> Path:
    # requests/s per replica by step: 50, 50, 50, 50, 62.5, 75, 87.5, 100 (max 4 replicas)
    settings: dict[str, Any] = {
        "replicas": lambda rps: math.ceil(rps / 60),
        "max_replicas": 4,
        "p95": slow_past_80,
        "cpu_m": linear_cpu,
    }
    return write_ramp_run(tmp_path / "run", **(settings | overrides))


def test_break_at_max_replicas_with_knee_and_sizing(tmp_path: Path) -> None:
    result = analyse(at_max_run(tmp_path), slos=["p95_ms<150"], target_rps=1000).capacity
    assert result is not None and result.refused is None
    bp = result.break_point
    assert bp is not None
    assert (bp.users, bp.rps, bp.replicas) == (70, 350, {"shop/web": 4})
    assert bp.broken == ("p95_ms",) and bp.limit == "replicas_at_max"
    assert bp.elapsed_s == 180  # the seventh step
    (web,) = result.hpas
    assert web.knee is not None and web.knee.reached and web.knee.rps_per_replica == 75
    assert web.linearity is not None and web.linearity.linear
    assert web.linearity.slope_m_per_rps == pytest.approx(2.0)
    sizing = web.sizing
    assert sizing is not None
    assert sizing.replicas_needed == 14 and sizing.fits_max is False  # ceil(1000 / 75)
    # CPU at the knee: 20 + 2 x 75 = 170m of 250m = 68 %; a 61 % target tops out at 67.1 %.
    assert sizing.utilization_at_knee_pct == pytest.approx(68.0)
    assert sizing.recommended_cpu_target_pct == 61
    assert sizing.replay_replicas is not None and sizing.replay_replicas >= 14
    assert sizing.holds_under_knee is True


def test_summary_has_the_capacity_key(tmp_path: Path) -> None:
    summary = build_summary(analyse(at_max_run(tmp_path), slos=["p95_ms<150"], target_rps=1000))
    capacity = summary["capacity"]
    assert capacity["break_point"]["limit"] == "replicas_at_max"
    assert capacity["hpas"][0]["knee"]["rps_per_replica"] == 75
    assert capacity["hpas"][0]["sizing"]["replicas_needed"] == 14
    assert capacity["slo_thresholds"]["source"] == "--slo"


def test_no_break_means_the_knee_is_a_lower_bound(tmp_path: Path) -> None:
    run = at_max_run(tmp_path, p95=lambda per: 40.0)
    result = analyse(run, target_rps=300).capacity
    assert result is not None and result.break_point is None
    knee = result.hpas[0].knee
    assert knee is not None and not knee.reached and knee.rps_per_replica == 100
    sizing = result.hpas[0].sizing
    assert sizing is not None and sizing.knee_is_lower_bound and sizing.replicas_needed == 3
    assert "the SLOs held at every load measured" in sizing.notes[0]
    # No load shape ran: the knee is only the highest load per replica this run reached.
    assert result.searched is False


def test_latency_with_idle_pods_and_headroom_is_a_dependency(tmp_path: Path) -> None:
    run = write_ramp_run(
        tmp_path / "run",
        replicas=lambda rps: 2,
        max_replicas=10,
        p95=lambda per: 5 * per,
        cpu_m=lambda per: 30.0,
    )
    bp = analyse(run).capacity.break_point  # type: ignore[union-attr]
    assert bp is not None and bp.limit == "dependency"
    assert bp.users == 50  # 125 requests/s per replica: p95 625 ms, past the 500 ms default


def test_saturated_pods_below_max_are_pod_saturation(tmp_path: Path) -> None:
    run = write_ramp_run(
        tmp_path / "run",
        replicas=lambda rps: 1,
        max_replicas=5,
        p95=slow_past_80,
        cpu_m=lambda per: min(250.0, 3 * per),
    )
    bp = analyse(run, slos=["p95_ms<150"]).capacity.break_point  # type: ignore[union-attr]
    assert bp is not None and bp.limit == "pod_saturation" and bp.users == 20


def test_errors_with_headroom_are_errors(tmp_path: Path) -> None:
    run = write_ramp_run(
        tmp_path / "run",
        replicas=lambda rps: 2,
        max_replicas=10,
        p95=lambda per: 50.0,
        cpu_m=lambda per: 150.0,
        fail_share=lambda per: 0.05 if per > 120 else 0.0,
    )
    bp = analyse(run).capacity.break_point  # type: ignore[union-attr]
    assert bp is not None and bp.limit == "errors" and bp.broken == ("error_rate",)


def test_a_saturated_load_generator_refuses_the_result(tmp_path: Path) -> None:
    result = analyse(at_max_run(tmp_path, workers_cpu=97.0), target_rps=1000).capacity
    assert result is not None and result.hpas == () and result.break_point is None
    assert result.refused is not None and "worker w0 at 97% CPU" in result.refused
    assert result.refused.endswith("rerun with more workers (--workers, or --workers auto)")
    # a run that had --workers auto is not told to use it
    auto = {"auto_workers": True, "max_workers": 2}  # run.json's config of --workers auto
    result = analyse(at_max_run(tmp_path / "auto", workers_cpu=97.0, config=auto)).capacity
    assert result is not None and result.refused is not None
    assert result.refused.endswith(
        "--workers auto (up to 2) did not keep up: rerun starting with more workers "
        "(--workers N) or with a higher --max-workers"
    ), result.refused


def test_target_rps_without_locust_data_is_an_error(tmp_path: Path) -> None:
    run = write_run(tmp_path / "run", {"start": T0, "end": T0 + 60}, {})
    with pytest.raises(ValueError, match="--target-rps 100: this run has no Locust data"):
        analyse(run, target_rps=100)


def test_the_ramps_own_stop_places_the_break_when_the_bins_never_broke() -> None:
    """The ramp judges its last step over a window finer than the 10 s bins; when it stopped on
    an SLO that no whole bin broke, its verdict still names the break (last bin, its reason)."""
    from analysis.judge.capacity import CURVE_COLUMNS, find_break

    rows = [
        {"ts": 100.0 + 10 * i, "users": 4.0 * (i + 1), "rps": 10.0 * (i + 1), "error_rate": 0.0,
         "p95_ms": 100.0 * (i + 1), "p99_ms": 120.0 * (i + 1), "meets": True, "broken": ""}
        for i in range(4)
    ]  # fmt: skip
    curve = pd.DataFrame([{c: r.get(c) for c in CURVE_COLUMNS} for r in rows])
    stop = "kubeswarm ramp: stop reason=p95_ms step=4 users=16 observed=420: stopped at 16 users"
    found = find_break(curve, [], {}, 100.0, ramp_stop=stop)
    assert found is not None
    assert (found.users, found.broken, found.ramp_stop) == (16.0, ("p95_ms",), stop)
    assert find_break(curve, [], {}, 100.0) is None  # no ramp verdict, no sustained break
    max_users = "kubeswarm ramp: stop reason=max_users step=4 users=16: no break point found"
    assert find_break(curve, [], {}, 100.0, ramp_stop=max_users) is None
