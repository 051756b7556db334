"""``write_report`` and ``format_summary``: every summary.json field, the page, the
terminal summary, partial run directories, and the exit code the CLI maps the verdict to."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from analysis.report import format_summary, write_report
from harness.cli import main
from tests.fixtures import scenarios as sc

pytestmark = pytest.mark.unit

TOP = {"run_id", "verdict", "load", "slos", "hpas", "workloads", "whatif", "findings"}
LOAD = {"peak_users", "peak_rps", "total_requests", "error_rate", "p50_ms", "p95_ms", "p99_ms"}
HPA = {
    "namespace",
    "name",
    "min_replicas",
    "max_replicas",
    "start_replicas",
    "peak_replicas",
    "final_replicas",
    "time_at_max_s",
    "status",
    "driving_metric",
    "peak_utilization",
    "target_utilization",
    "scale_events",
}
EVENT = {"ts", "from", "to", "lag_s"}
WORKLOAD = {
    "namespace",
    "name",
    "peak_memory_bytes",
    "memory_request_bytes",
    "memory_limit_bytes",
    "peak_memory_pct_of_request",
    "peak_memory_pct_of_limit",
    "oom_kills",
    "restarts",
    "recommended_memory_request_bytes",
    "recommended_memory_limit_bytes",
}
WHATIF = {
    "hpa",
    "changes",
    "recorded_peak_replicas",
    "predicted_peak_replicas",
    "predicted_final_replicas",
    "assumption",
}
FINDING = {"code", "severity", "subject", "message"}


def test_every_design_field_is_there(tmp_path: Path) -> None:
    run_dir = sc.pinned_by_memory(tmp_path / "run")
    summary = write_report(run_dir, slos=["p95_ms<500"], whatifs=["web:max=3"])
    assert summary == json.loads((run_dir / "report" / "summary.json").read_text())
    assert set(summary) >= TOP
    assert summary["verdict"] in ("pass", "warn", "fail", "incomplete")
    assert set(summary["load"]) >= LOAD
    assert set(summary["slos"][0]) == {"expr", "observed", "passed", "at_least"}
    assert set(summary["hpas"][0]) >= HPA
    assert summary["hpas"][0]["status"] in (
        "healthy",
        "at_max",
        "not_scaling",
        "flapping",
        "no_metrics",
    )
    assert set(summary["hpas"][0]["scale_events"][0]) >= EVENT
    assert set(summary["workloads"][0]) >= WORKLOAD
    assert set(summary["whatif"][0]) >= WHATIF
    for found in summary["findings"]:
        assert set(found) >= FINDING
        assert found["severity"] in ("high", "medium", "info")
    severities = [f["severity"] for f in summary["findings"]]
    assert severities == sorted(severities, key=["high", "medium", "info"].index)
    for chart in ("timeline", "replicas", "memory", "latency", "whatif"):
        assert (run_dir / "report" / f"{chart}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_numbers_match_the_samples_of_a_demo_run(tmp_path: Path) -> None:
    """Demo mode: "pods" are gunicorn workers, recorded by the local autoscaler as a cluster."""
    n = 20
    replicas = [1] * 5 + [2] * 5 + [3] * 10
    samples = {
        "locust": sc.locust([0] * 2 + [20] * 16 + [0] * 2),
        "hpa": sc.hpa("demo-target", replicas, low=1, high=6),
        "hpa_metrics": sc.metrics("demo-target", "cpu", [70.0] * 10 + [50.0] * 10, 60.0),
        "workloads": sc.workloads("demo-target", replicas),
        "pods": sc.pods(
            "demo-target",
            replicas,
            lambda t, p: (40.0 + t + p, 30.0 + t),
            request_mi=96.0,
            limit_mi=192.0,
            cpu_request_m=50.0,
        ),
        "marks": sc.marks(2, 17),
    }
    run_dir = sc.build(tmp_path / "run", n, samples, meta={"mode": "demo"})
    summary = write_report(run_dir)
    pods = pd.read_csv(run_dir / "samples" / "pods.csv")
    workload = summary["workloads"][0]
    assert workload["peak_memory_bytes"] == pods["memory_bytes"].max()
    assert workload["peak_memory_pct_of_request"] == round(
        100 * pods["memory_bytes"].max() / (96 * sc.MI), 1
    )
    assert workload["pods_seen"] == pods["pod"].nunique() == 3
    hpa = summary["hpas"][0]
    assert (hpa["min_replicas"], hpa["max_replicas"], hpa["peak_replicas"]) == (1, 6, 3)
    assert [(e["from"], e["to"]) for e in hpa["scale_events"]] == [(1, 2), (2, 3)]
    assert summary["load"]["peak_users"] == 20
    assert summary["mode"] == "demo"


def test_truncated_run_directory_still_yields_a_report(tmp_path: Path) -> None:
    run_dir = sc.pinned_by_memory(tmp_path / "run")
    (run_dir / "run.json").write_text('{"id": "cut", "mode": "cluster", "start": 1800000000')
    for path in (run_dir / "samples").glob("*.csv"):
        data = path.read_bytes()
        path.write_bytes(data[: len(data) * 2 // 3])
    summary = write_report(run_dir)
    assert (run_dir / "report" / "report.html").is_file()
    assert summary["hpas"][0]["name"] == "web"
    gaps = [f for f in summary["findings"] if f["code"] == "sampler_gaps"]
    assert gaps and gaps[0]["data"]["truncated_files"] >= 4


def test_empty_run_directory_still_yields_a_report(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "samples").mkdir(parents=True)
    summary = write_report(run_dir)
    assert summary["run_id"] == "run"
    assert summary["hpas"] == [] and summary["workloads"] == []
    assert {f["code"] for f in summary["findings"]} == {"metrics_missing"}
    page = (run_dir / "report" / "report.html").read_text()
    assert "No HPA was recorded" in page


def test_page_escapes_values_and_states_formulas(tmp_path: Path) -> None:
    n = 10
    name = "<script>alert(1)</script>"
    samples = {
        "locust": sc.locust([5] * n),
        "pods": sc.pods(name, [1] * n, lambda t, p: (100.0, 50.0)),
    }
    run_dir = sc.build(tmp_path / "run", n, samples)
    write_report(run_dir, slos=["p95_ms<1"])
    page = (run_dir / "report" / "report.html").read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "peak working set per pod x 1.15" in page
    assert "95th percentile of per-pod CPU usage" in page
    # timeline, latency, memory; no HPA was recorded so its chart is left out
    assert page.count('src="data:image/png;base64,') == 3
    # ... also when an earlier report of the directory drew one
    (run_dir / "report" / "replicas.png").write_bytes(b"stale")
    write_report(run_dir, slos=["p95_ms<1"])
    assert not (run_dir / "report" / "replicas.png").exists()
    assert 'class="render-error"' not in page


def test_terminal_summary(tmp_path: Path) -> None:
    run_dir = sc.pinned_by_memory(tmp_path / "run")
    summary = write_report(run_dir, slos=["p95_ms<100"], whatifs=["web:max=3"])
    text = format_summary(summary, run_dir)
    lines = text.splitlines()
    assert lines[0].startswith("verdict: FAIL")
    assert "hpa shop/web: 3 -> 4 -> 4 replicas (min 2, max 4), at_max, driven by memory" in text
    assert "memory shop/web: peak 240Mi = 94% of request, 47% of limit" in text
    assert "[high] hpa_at_max shop/web" in text
    assert "slo p95_ms<100: FAILED (120)" in text
    assert lines[-1] == f"report: {run_dir / 'report' / 'report.html'}"
    assert len(lines) <= 15


@pytest.mark.parametrize(("slo", "code"), [("p95_ms<500", 0), ("p95_ms<100", 1)])
def test_cli_exit_code_follows_the_verdict(tmp_path: Path, slo: str, code: int) -> None:
    n = 10
    samples = {
        "locust": sc.locust([50] * n),
        "hpa": sc.hpa("api", [2] * n, high=10),
        "hpa_metrics": sc.metrics("api", "cpu", [55.0] * n, 60.0),
        "pods": sc.pods("api", [2] * n, lambda t, p: (100.0 + 2 * t, 110.0)),
    }
    run_dir = sc.build(tmp_path / "run", n, samples)
    out = io.StringIO()
    assert main(["report", str(run_dir), "--slo", slo], environ={}, out=out) == code
    assert "verdict:" in out.getvalue()


def test_cli_bad_expression_is_usage_error(tmp_path: Path) -> None:
    run_dir = sc.pinned_by_memory(tmp_path / "run")
    assert main(["report", str(run_dir), "--slo", "p95<1"], environ={}, out=io.StringIO()) == 2
    assert (
        main(["report", str(run_dir), "--whatif", "web:colour=blue"], environ={}, out=io.StringIO())
        == 2
    )
