"""A run whose pods.csv holds snapshots (written on change, at the metrics resolution) is judged
as the same run written every tick: same workloads, replicas, findings and capacity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analysis.report import write_report
from tests.fixtures.synthetic import scale_run

pytestmark = pytest.mark.unit


def _report(run_dir: Path, resolution_s: float | None) -> dict[str, Any]:
    scale_run(
        run_dir,
        duration_s=900.0,
        interval_s=2.0,
        pods=20,
        hpas=2,
        usage_resolution_s=resolution_s,
    )
    return write_report(run_dir, slos=["p95_ms<500"])


def test_snapshots_report_what_every_tick_reports(tmp_path: Path) -> None:
    every_tick = _report(tmp_path / "dense", None)
    snapshots = _report(tmp_path / "snapshots", 15.0)
    dense_rows = (tmp_path / "dense/samples/pods.csv").read_text().count("\n")
    snapshot_rows = (tmp_path / "snapshots/samples/pods.csv").read_text().count("\n")
    assert snapshot_rows < dense_rows / 5
    assert [f["code"] for f in snapshots["findings"]] == [f["code"] for f in every_tick["findings"]]
    assert "sampler_gaps" not in [f["code"] for f in snapshots["findings"]]
    for dense, sparse in zip(every_tick["workloads"], snapshots["workloads"], strict=True):
        for key in ("pods_seen", "peak_memory_bytes", "peak_memory_pct_of_request", "restarts"):
            assert sparse[key] == dense[key], key
    for dense_hpa, sparse_hpa in zip(every_tick["hpas"], snapshots["hpas"], strict=True):
        assert sparse_hpa["peak_replicas"] == dense_hpa["peak_replicas"]
        assert sparse_hpa["time_at_max_s"] == dense_hpa["time_at_max_s"]
    dense_knees = [h["knee"] for h in every_tick["capacity"]["hpas"]]
    sparse_knees = [h["knee"] for h in snapshots["capacity"]["hpas"]]
    assert [k is None for k in sparse_knees] == [k is None for k in dense_knees]
    for dense_knee, sparse_knee in zip(dense_knees, sparse_knees, strict=True):
        if dense_knee is not None:
            assert sparse_knee["cpu_pct_of_request"] == pytest.approx(
                dense_knee["cpu_pct_of_request"], abs=1.0
            )
    # every loaded 10 s bin has the CPU of the snapshot before it, as every tick's rows give
    points = [
        [h["linearity"]["points"] for h in s["capacity"]["hpas"]] for s in (every_tick, snapshots)
    ]
    assert points[0] == points[1]
    pod_usage = [s for s in snapshots["sampling"] if s["series"] == "pod_usage"]
    assert pod_usage[0]["resolution_s"] == 15.0
