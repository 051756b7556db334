"""How fresh each series was, and the Locust master's memory on long runs: summary.json, the page
and report.md, from synthetic run directories whose ages and growth are known by construction."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analysis.report import write_report
from tests.fixtures.synthetic import MI, write_run

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


def _pods(ticks: int, interval_s: float, resolution_s: float, lag_s: float) -> list[dict[str, Any]]:
    """Two pods sampled every ``interval_s``; the metrics API measures them every
    ``resolution_s``, ``lag_s`` before the scrape the tick can first see."""
    rows = []
    for i in range(ticks):
        ts = T0 + i * interval_s
        usage_ts = ((ts - lag_s - T0) // resolution_s) * resolution_s + T0
        for pod in ("web-a", "web-b"):
            rows.append(
                {
                    "ts": ts,
                    "namespace": "app",
                    "pod": pod,
                    "workload": "web",
                    "phase": "Running",
                    "ready": True,
                    "restarts": 0,
                    "cpu_m": 100.0,
                    "memory_bytes": 100 * MI,
                    "usage_ts": usage_ts if usage_ts > T0 else None,
                }
            )
    return rows


def _locust(ticks: int, interval_s: float) -> list[dict[str, Any]]:
    return [
        {"ts": T0 + i * interval_s, "state": "running", "user_count": 10, "rps": 20.0}
        for i in range(ticks)
    ]


def test_pod_usage_age_and_resolution_are_reported(tmp_path: Path) -> None:
    run_dir = write_run(
        tmp_path / "fresh",
        {"sample_interval_s": 2.0},
        {"pods": _pods(120, 2.0, 15.0, 1.0), "locust": _locust(120, 2.0)},
    )
    summary = write_report(run_dir)
    by_series = {s["series"]: s for s in summary["sampling"]}
    assert set(by_series) == {"locust", "pod_usage"}
    pods = by_series["pod_usage"]
    assert pods["resolution_s"] == 15.0
    # a usage measured at k*15 s is seen 1 s later by the earliest tick, and 15 s later by
    # the last even-second tick before the next one (measured at (k+1)*15 s, visible at +1 s)
    assert pods["max_age_s"] == pytest.approx(15.0)
    assert 6.0 <= pods["median_age_s"] <= 10.0
    assert pods["sentence"] == (
        "pod CPU/memory: measured every 15 s by the metrics API, at most 15 s old when sampled "
        "(median 8.0 s)"
    )
    assert by_series["locust"]["median_gap_s"] == 2.0
    page = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    markdown = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert "measured every 15 s by the metrics API, at most 15 s old" in page
    assert "measured every 15 s by the metrics API, at most 15 s old" in markdown
    assert "over its last 10 s" in markdown


def test_usage_without_its_time_says_so(tmp_path: Path) -> None:
    rows = [{**r, "usage_ts": None} for r in _pods(10, 1.0, 15.0, 0.0)]
    run_dir = write_run(tmp_path / "local", {"mode": "local"}, {"pods": rows})
    (pods,) = [s for s in write_report(run_dir)["sampling"] if s["series"] == "pod_usage"]
    assert pods["max_age_s"] is None
    assert "time of each measurement was not recorded" in pods["sentence"]


def _master(minutes: float, start_mib: float, mib_per_h: float) -> list[dict[str, Any]]:
    return [
        {"ts": T0 + s, "cpu_pct": 5.0, "memory_bytes": (start_mib + mib_per_h * s / 3600) * MI}
        for s in range(0, int(minutes * 60) + 1, 10)
    ]


def test_master_memory_is_shown_with_its_slope_on_a_long_run(tmp_path: Path) -> None:
    run_dir = write_run(
        tmp_path / "long",
        {"mode": "local"},
        {"master": _master(30, 80.0, 6.0), "locust": _locust(10, 180.0)},
    )
    summary = write_report(run_dir)
    master = summary["master_memory"]
    assert master["shown"] is True
    assert master["source"] == "master.csv"
    assert master["slope_mib_per_h"] == pytest.approx(6.0, abs=0.01)
    assert master["growth_bytes"] == pytest.approx(3 * MI)
    sentence = "Locust master memory: 80 → 83 MiB over 30 min (peak 83 MiB, +6.0 MiB/h)"
    assert master["sentence"] == sentence
    assert sentence in (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert sentence in (run_dir / "report" / "report.html").read_text(encoding="utf-8")


def test_master_memory_of_a_short_run_stays_off_the_page(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "short", {"mode": "local"}, {"master": _master(2, 80.0, 6.0)})
    summary = write_report(run_dir)
    assert summary["master_memory"]["shown"] is False
    assert "Locust master memory" not in (run_dir / "report" / "report.md").read_text("utf-8")


def test_master_pod_memory_from_pods_csv(tmp_path: Path) -> None:
    rows = [
        {
            "ts": T0 + s,
            "namespace": "load",
            "pod": "ks-run-master-x",
            "workload": "ks-run-master",
            "phase": "Running",
            "ready": True,
            "memory_bytes": (100 + s / 60) * MI,
        }
        for s in range(0, 1201, 60)
    ]
    summary = write_report(write_run(tmp_path / "cluster", {}, {"pods": rows}))
    master = summary["master_memory"]
    assert master["source"] == "pods.csv"
    assert master["slope_mib_per_h"] == pytest.approx(60.0, abs=0.01)


def test_a_run_without_the_master_has_none(tmp_path: Path) -> None:
    summary = write_report(write_run(tmp_path / "none", {}, {"locust": _locust(5, 1.0)}))
    assert summary["master_memory"] is None
