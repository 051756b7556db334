"""The load generator's health from literal rows: a locustfile that raises, Locust processes out of
CPU, workers gone missing or restarted; and the rows of samples/workers.csv from Locust's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analysis.data import schema
from harness.errors import LoadGeneratorError
from harness.locust_api import parse_workers
from tests.fixtures import scenarios as sc
from tests.unit.test_analysis_findings import codes, finding, report, steady

pytestmark = pytest.mark.unit

# As Locust 2.x writes it: the traceback is one quoted cell over several lines.
EXCEPTIONS_CSV = (
    "Count,Message,Traceback,Nodes\n"
    "30,ZeroDivisionError('division by zero'),\"Traceback (most recent call last):\n"
    '  File ""locustfile.py"", line 9, in broken\n    1 / 0\n'
    'ZeroDivisionError: division by zero\n",worker-a\n'
    "10,KeyError('token'),\"Traceback (most recent call last):\n"
    "KeyError: 'token'\n\",worker-a\n"
)
NO_REQUESTS_STATS = ",".join(schema.LOCUST_STATS_COLUMNS) + "\n,Aggregated,0,0" + ",0" * 19 + "\n"


def test_locustfile_that_raises_is_high_and_never_asks_for_more_users(tmp_path: Path) -> None:
    n = 10
    samples = steady("api", n, 2)
    samples["locust"] = sc.locust([20] * n, rps_per_user=0.0)
    run = sc.build(
        tmp_path / "run",
        n,
        samples,
    )
    (run / "locust").mkdir()
    (run / "locust" / "exceptions.csv").write_text(EXCEPTIONS_CSV, encoding="utf-8")
    (run / "locust" / "stats.csv").write_text(NO_REQUESTS_STATS, encoding="utf-8")
    summary = report(run)
    raised = finding(summary, "locustfile_exceptions", "run")
    assert raised["severity"] == "high"
    assert raised["data"]["exceptions"] == 40
    assert raised["data"]["kinds"] == 2
    assert raised["data"]["share_of_tasks"] == 1.0  # 40 exceptions, 0 requests
    assert raised["data"]["top_message"] == "ZeroDivisionError('division by zero')"
    assert "30x ZeroDivisionError" in raised["seen"]
    low = finding(summary, "load_too_low", "run")
    assert "raised 40 exception(s)" in low["seen"]
    assert "Raise -u" not in low["change"] and "Fix the locustfile" in low["change"]
    assert summary["verdict"] == "warn"


def _workers(
    cpu: dict[str, list[float]], states: dict[str, list[str]] | None = None
) -> list[sc.Row]:
    return [
        {
            "ts": sc.ts(i),
            "worker": name,
            "state": (states or {}).get(name, ["running"] * len(values))[i],
            "user_count": 25,
            "cpu_pct": value,
            "memory_bytes": 80 * sc.MI,
        }
        for name, values in cpu.items()
        for i, value in enumerate(values)
    ]


def test_saturated_load_generator_warns_and_sizes_the_workers(tmp_path: Path) -> None:
    n = 20
    samples = steady("api", n, 2)  # 50 users x 2 req/s = 100 req/s
    samples["workers"] = _workers({"w1": [95.0] * n, "w2": [50.0] * n})
    summary = report(sc.build(tmp_path / "run", n, samples))
    hot = finding(summary, "load_generator_saturated", "run")
    assert hot["severity"] == "high"
    assert hot["data"]["saturated_workers"] == 1
    assert hot["data"]["worker_processes"] == 2
    # 100 req/s over 145% of a core = 69 req/s per core; 100 / (0.69 x 70%) = 2.03 -> 3
    assert hot["data"]["rps_per_core"] == 69.0
    assert hot["data"]["recommended_processes"] == 3
    assert summary["verdict"] == "warn"
    samples["workers"] = _workers({"w1": [85.0] * n, "w2": [50.0] * n})
    assert "load_generator_saturated" not in codes(report(sc.build(tmp_path / "ok", n, samples)))


def test_worker_gone_missing_and_fewer_than_configured(tmp_path: Path) -> None:
    n = 20
    samples = steady("api", n, 2)
    samples["workers"] = _workers(
        {"w1": [40.0] * n, "w2": [40.0] * n},
        {"w2": ["running"] * 10 + ["missing"] * 10},
    )
    summary = report(sc.build(tmp_path / "run", n, samples))
    gone = finding(summary, "workers_missing", "run")
    assert gone["data"]["expected_workers"] == 2  # the most seen: run.json does not say
    assert gone["data"]["fewest_workers"] == 1
    assert gone["data"]["missing_workers"] == 1
    assert gone["severity"] == "high"
    # run.json asked for 2 workers x 2 processes; the master's worker_count said 3 throughout
    samples["workers"] = []
    samples["locust"] = [{**r, "worker_count": 3} for r in samples["locust"]]
    meta = {"config": {"load": {"workers": 2, "processes": 2}}}
    short = finding(
        report(sc.build(tmp_path / "configured", n, samples, meta=meta)), "workers_missing"
    )
    assert (short["data"]["expected_workers"], short["data"]["fewest_workers"]) == (4, 3)
    assert short["data"]["share_of_loaded_time_short"] == 1.0


def test_restarted_locust_worker_pod_is_its_own_finding(tmp_path: Path) -> None:
    n = 10
    samples = steady("api", n, 2)
    worker = [
        {**row, "workload": "ks-20260101-120000-demo-worker", "pod": "ks-w-0"}
        for row in sc.pods(
            "x",
            [1] * n,
            lambda t, p: (700.0, 900.0),
            restarts=lambda t, p: (1, "OOMKilled") if t >= 5 else (0, ""),
        )
    ]
    samples["pods"] = samples["pods"] + worker
    summary = report(sc.build(tmp_path / "run", n, samples))
    restarted = finding(summary, "load_generator_restarts")
    assert restarted["data"] == {"restarts": 1, "oom_kills": 1}
    assert "oom_killed" not in codes(summary)  # not a finding about the target


def test_parse_workers_reads_locusts_worker_list() -> None:
    body = json.dumps(
        {
            "state": "running",
            "workers": [
                {
                    "id": "pod-a_1f2e",
                    "state": "running",
                    "user_count": 12,
                    "cpu_usage": 93.5,
                    "memory_usage": 81_000_000,
                },
                {"id": "pod-b_9c0d", "state": "missing", "user_count": 0},
            ],
        }
    ).encode()
    rows = parse_workers(body, 5.0)
    assert [set(r) for r in rows] == [set(schema.WORKERS.names)] * 2
    assert rows[0] == {
        "ts": 5.0,
        "worker": "pod-a_1f2e",
        "state": "running",
        "user_count": 12,
        "cpu_pct": 93.5,
        "memory_bytes": 81_000_000.0,
    }
    assert (rows[1]["state"], rows[1]["cpu_pct"], rows[1]["memory_bytes"]) == (
        "missing",
        None,
        None,
    )
    assert parse_workers(b'{"state": "running"}', 5.0) == []  # standalone Locust: no workers
    with pytest.raises(LoadGeneratorError):
        parse_workers(b"<html>", 5.0)
