"""The report page says what ran and labels its numbers in words: the run's settings, the Load
table without raw field names, and no "p95 against replicas" from too few points."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.report import write_report
from tests.fixtures import scenarios as sc

pytestmark = pytest.mark.unit


def test_the_page_has_the_runs_settings_and_labelled_load(tmp_path: Path) -> None:
    run_dir = sc.pinned_by_memory(tmp_path / "run")
    meta = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    meta["config"] = {
        "load": {
            "locustfile": "/src/shop.py",
            "host": "http://web.shop:8080",
            "users": 50,
            "spawn_rate": 5.0,
            "run_time_s": 600.0,
            "workers": 4,
        },
        "image": "registry.example/locust:2.47",
        "env": {"names": ["API_TOKEN"]},
    }
    meta["watch"] = ["shop/hpa/web"]
    (run_dir / "run.json").write_text(json.dumps(meta), encoding="utf-8")
    summary = write_report(run_dir, slos=["p95_ms<100"])
    assert summary["settings"]["host"] == "http://web.shop:8080"
    assert summary["settings"]["watch"] == ["shop/hpa/web"]
    page = (run_dir / "report" / "report.html").read_text(encoding="utf-8")
    for label, shown in [
        ("locustfile", "/src/shop.py"),
        ("host (-H)", "http://web.shop:8080"),
        ("users (-u)", "50"),
        ("spawn rate (-r, users/s)", "5.0"),
        ("run time (s)", "600.0"),
        ("workers", "4"),
        ("image", "registry.example/locust:2.47"),
        ("watched", "shop/hpa/web"),
        ("SLOs", "p95_ms&lt;100"),
    ]:
        assert f"<td>{label}</td><td>{shown}</td>" in page, label
    for raw in ("peak_rps", "rps_per_user", "total_requests"):
        assert f"<td>{raw}</td>" not in page
    assert "<td>peak requests/s</td>" in page and "<td>requests/s per user</td>" in page


def test_p95_against_replicas_needs_two_replica_counts_held_long_enough(tmp_path: Path) -> None:
    n = 30
    # 2 replicas for 20 ticks, 3 for only 3 ticks, 4 for 7: the 3 is too short to compare
    replicas = [2] * 20 + [3] * 3 + [4] * 7
    samples = {
        "locust": sc.locust([50] * n),
        "hpa": sc.hpa("api", replicas, high=10),
        "workloads": sc.workloads("api", replicas),
        "pods": sc.pods("api", replicas, lambda t, p: (100.0, 50.0)),
    }
    summary = write_report(sc.build(tmp_path / "run", n, samples))
    (hpa,) = summary["hpas"]
    assert sorted(hpa["p95_ms_by_replicas"]) == ["2", "4"]
    assert hpa["ticks_by_replicas"]["2"] >= 5 and hpa["ticks_by_replicas"]["4"] >= 5
    page = (tmp_path / "run" / "report" / "report.html").read_text(encoding="utf-8")
    assert "<h3>p95 by ready replicas</h3>" in page
    short = write_report(
        sc.build(
            tmp_path / "short",
            n,
            {
                **samples,
                "hpa": sc.hpa("api", [2] * 27 + [3] * 3, high=10),
                "workloads": sc.workloads("api", [2] * 27 + [3] * 3),
            },
        )
    )
    assert list(short["hpas"][0]["p95_ms_by_replicas"]) == ["2"]
    short_page = (tmp_path / "short" / "report" / "report.html").read_text(encoding="utf-8")
    assert "<h3>p95 by ready replicas</h3>" not in short_page
