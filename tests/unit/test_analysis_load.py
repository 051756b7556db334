"""Loading run directories: Locust's real CSVs without loss, and every way a file can be broken."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.data import schema
from analysis.data.load import load_run
from analysis.data.timeline import find_window, load_series, load_steps
from analysis.report import write_report
from tests.fixtures import scenarios as sc

pytestmark = pytest.mark.unit


def _real_locust_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    (run_dir / "locust").mkdir(parents=True)
    for path in sc.LOCUST_2_47.glob("*.csv"):
        (run_dir / "locust" / path.name).write_bytes(path.read_bytes())
    (run_dir / "run.json").write_text(json.dumps({"id": "real", "mode": "local"}))
    return run_dir


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_real_locust_stats_history_loads_without_loss(tmp_path: Path) -> None:
    run_dir = _real_locust_run(tmp_path)
    data = load_run(run_dir)
    raw = _rows(run_dir / "locust" / "stats_history.csv")
    history = data.stats_history
    assert len(history) == len(raw)
    assert list(history.columns) == list(schema.LOCUST_STATS_HISTORY_COLUMNS)
    assert list(history["Name"]) == [r["Name"] for r in raw]
    assert list(history["Total Request Count"]) == [float(r["Total Request Count"]) for r in raw]
    # Locust writes N/A before the first response; it loads as NaN, every number else as itself
    for column in ("50%", "95%", "99%", "100%"):
        expected = [None if r[column] == "N/A" else float(r[column]) for r in raw]
        loaded = [None if pd.isna(v) else float(v) for v in history[column]]
        assert loaded == expected
    assert raw[0]["95%"] == "N/A"
    assert not [p for p in data.problems if p.file.startswith("locust/")]


def test_real_locust_totals_reach_the_summary(tmp_path: Path) -> None:
    run_dir = _real_locust_run(tmp_path)
    aggregated = next(
        r for r in _rows(run_dir / "locust" / "stats.csv") if r["Name"] == "Aggregated"
    )
    history = [
        r for r in _rows(run_dir / "locust" / "stats_history.csv") if r["Name"] == "Aggregated"
    ]
    load = write_report(run_dir)["load"]
    assert load["total_requests"] == float(aggregated["Request Count"])
    assert load["error_rate"] == pytest.approx(
        float(aggregated["Failure Count"]) / float(aggregated["Request Count"]), abs=1e-6
    )
    assert load["p95_ms"] == float(aggregated["95%"])
    assert load["p99_ms"] == float(aggregated["99%"])
    assert load["peak_users"] == max(float(r["User Count"]) for r in history)
    assert load["peak_rps"] == round(max(float(r["Requests/s"]) for r in history), 2)


def test_series_and_window_from_locust_history_alone(tmp_path: Path) -> None:
    data = load_run(_real_locust_run(tmp_path))
    load = load_series(data)
    assert len(load) == int((data.stats_history["Name"] == "Aggregated").sum())
    window = find_window(data, load)
    assert window.load_start_s == float(load[load["users"] > 0]["ts"].min())
    steps = load_steps(load)
    assert steps[0].users_from == 0.0
    assert steps[-1].users_to == 6.0  # 2 users/s up to 6: one merged ramp
    assert len([s for s in steps if s.rising]) == 1


def test_missing_files_give_empty_typed_tables(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    data = load_run(run_dir)
    assert data.pods.empty and list(data.pods.columns) == list(schema.PODS.names)
    assert data.pods["memory_bytes"].dtype == "float64"
    kinds = {(p.file, p.kind) for p in data.problems}
    assert ("run.json", "missing") in kinds
    assert ("samples/pods.csv", "missing") in kinds
    assert ("locust/failures.csv", "missing") not in kinds  # optional: absent when nothing failed


def test_cut_line_missing_columns_and_garbage_cells(tmp_path: Path) -> None:
    samples = tmp_path / "run" / "samples"
    samples.mkdir(parents=True)
    (samples / "hpa.csv").write_text(
        "ts,namespace,hpa,current_replicas,scaling_limited\n"
        "1.0,shop,web,2,true\n"
        "2.0,shop,web,lots,False\n"
        "oops,shop,web,3,\n"
        "4.0,shop,we"
    )
    (samples / "pods.csv").write_text("")
    data = load_run(tmp_path / "run")
    hpa = data.hpa
    assert list(hpa["ts"]) == [1.0, 2.0]
    assert list(hpa["current_replicas"].fillna(-1)) == [2.0, -1.0]  # unparsable: not measured
    assert list(hpa["scaling_limited"]) == [True, False]
    assert hpa["max_replicas"].isna().all()
    kinds = {(p.file, p.kind) for p in data.problems}
    assert {
        ("samples/hpa.csv", "truncated"),
        ("samples/hpa.csv", "columns"),
        ("samples/hpa.csv", "unparsable"),
        ("samples/pods.csv", "empty"),
    } <= kinds


def test_unreadable_run_json_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "run.json").write_text("{not json")
    data = load_run(run_dir)
    assert data.meta == {}
    assert data.sample_interval_s == 2.0
    assert any(p.file == "run.json" and p.kind == "unparsable" for p in data.problems)
