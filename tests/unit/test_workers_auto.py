"""``--workers auto`` decisions from literal workers.csv rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.actions.workers import (
    AutoWorkersPolicy,
    WorkerAutoscaler,
    check_local_auto_workers,
)
from harness.config.options import OPTIONS, merge_sources
from harness.config.run import build_run_config
from harness.errors import UsageError

pytestmark = pytest.mark.unit


def rows(ts: float, *cpus: float | None, state: str = "running") -> list[dict[str, Any]]:
    return [
        {
            "ts": ts,
            "worker": f"w{i}",
            "state": state,
            "user_count": 10,
            "cpu_pct": cpu,
            "memory_bytes": 1e8,
        }
        for i, cpu in enumerate(cpus)
    ]


def test_adds_a_worker_after_sustained_high_cpu() -> None:
    scaler = WorkerAutoscaler(AutoWorkersPolicy(max_workers=4), workers=1)
    assert scaler.observe(0, rows(0, 95)) is None
    assert scaler.observe(1, rows(1, 96)) is None
    decision = scaler.observe(2, rows(2, 97))
    assert decision is not None
    # mean 97 % aimed at 0.8 x 85 % = 68 %: ceil(97 / 68) = 2 workers
    assert (decision.add, decision.workers_after, decision.busiest_worker) == (1, 2, "w0")
    assert "above 85% for 3 samples" in decision.reason
    assert scaler.workers == 2


def test_one_busy_sample_is_not_enough() -> None:
    scaler = WorkerAutoscaler(AutoWorkersPolicy(max_workers=4), workers=1)
    for t, cpu in enumerate([95, 96, 40, 95, 96, 50]):
        assert scaler.observe(t, rows(t, cpu)) is None


def test_cooldown_then_a_second_addition_sized_to_the_load() -> None:
    policy = AutoWorkersPolicy(max_workers=8, cooldown_s=30)
    scaler = WorkerAutoscaler(policy, workers=1)
    decisions = [scaler.observe(t, rows(t, *([99] * scaler.workers))) for t in range(0, 40)]
    made = [d for d in decisions if d is not None]
    assert [d.ts for d in made] == [2, 32]  # the second waits out the 30 s cooldown
    assert made[1].workers_after == 3  # 2 workers at 99 % aimed at 68 %: ceil(2 * 99 / 68)


def test_a_large_overload_adds_several_workers_at_once() -> None:
    scaler = WorkerAutoscaler(AutoWorkersPolicy(max_workers=5, sustained_samples=1), workers=2)
    decision = scaler.observe(0, rows(0, 100, 100))  # 2 x 100 % / 68 % -> 3 workers...
    assert decision is not None and decision.workers_after == 3
    scaler = WorkerAutoscaler(AutoWorkersPolicy(max_workers=5, sustained_samples=1), workers=4)
    decision = scaler.observe(0, rows(0, 100, 100, 100, 100))  # ...4 x 100 / 68 -> 6, capped
    assert decision is not None and (decision.add, decision.workers_after) == (1, 5)


def test_capped_at_max_workers_is_said_once() -> None:
    scaler = WorkerAutoscaler(AutoWorkersPolicy(max_workers=2, cooldown_s=0), workers=2)
    decisions = [scaler.observe(t, rows(t, 99, 99)) for t in range(10)]
    made = [d for d in decisions if d is not None]
    assert len(made) == 1 and made[0].capped and made[0].workers_after == 2
    assert "--max-workers 2 is reached" in made[0].reason


def test_missing_workers_and_unmeasured_cpu_are_ignored() -> None:
    scaler = WorkerAutoscaler(AutoWorkersPolicy(max_workers=4, sustained_samples=1), workers=2)
    assert scaler.observe(0, rows(0, 99, state="missing")) is None
    assert scaler.observe(1, rows(1, None, None)) is None
    assert scaler.observe(2, []) is None


def test_policy_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="--max-workers"):
        AutoWorkersPolicy(max_workers=0)
    with pytest.raises(ValueError, match="percentage"):
        AutoWorkersPolicy(max_workers=2, cpu_threshold_pct=150)


def test_local_auto_workers_beyond_the_cores_are_refused() -> None:
    assert check_local_auto_workers(2, 1, cores=2) is None
    error = check_local_auto_workers(4, 1, cores=2)
    assert error is not None and "this machine has 2 core(s)" in error
    assert "--max-workers 2" in error
    assert check_local_auto_workers(2, 2, cores=2) is not None


def config_values(tmp_path: Path, **flags: Any) -> dict[str, Any]:
    locustfile = tmp_path / "shop.py"
    locustfile.write_text(
        "from locust import HttpUser, task\n\n\nclass Shop(HttpUser):\n"
        "    @task\n    def home(self):\n        self.client.get('/')\n",
        encoding="utf-8",
    )
    base = {"locustfile": str(locustfile), "host": "http://web:8080"}
    return merge_sources(base | flags, {}, None, tuple(OPTIONS))


def test_workers_auto_starts_with_one_and_keeps_the_bound(tmp_path: Path) -> None:
    config = build_run_config(config_values(tmp_path, workers="auto", max_workers="4"))
    assert config.auto_workers and config.max_workers == 4 and config.load.workers == 1
    fixed = build_run_config(config_values(tmp_path, workers="3", target_rps="250"))
    assert not fixed.auto_workers and fixed.load.workers == 3 and fixed.target_rps == 250


def test_workers_auto_needs_max_workers(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--workers auto needs --max-workers"):
        build_run_config(config_values(tmp_path, workers="auto"))
    with pytest.raises(UsageError, match="--workers"):
        config_values(tmp_path, workers="many")
