"""``--workers auto``: when to add a Locust worker, decided from the workers' own CPU.

A Locust process above ~90 % CPU measures its own queueing, not the target's latency, so a test
that grows its load must grow its load generator too. This module only decides; the session
applies a decision (local: start another worker process; cluster: raise the worker Job's
parallelism to ``workers_after``), and ``--enable-rebalancing`` makes the master spread the
running users onto the new workers.

The decision reads rows of ``samples/workers.csv`` (``WORKER_COLUMNS``): the busiest running
worker must stay above the threshold for ``sustained_samples`` consecutive samples, so one busy
second (a spawn burst, a GC pause) does not add a worker; after adding, nothing more is added
for ``cooldown_s``, the time a new worker takes to connect and receive its share of users.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

# The columns read here, as the worker sampler writes them (``samples/workers.csv``).
WORKER_COLUMNS: Final = ("ts", "worker", "state", "user_count", "cpu_pct", "memory_bytes")
# Locust's own warning fires at 90 % CPU; adding at 85 % leaves a new worker time to join first.
DEFAULT_CPU_THRESHOLD_PCT: Final = 85.0
DEFAULT_SUSTAINED_SAMPLES: Final = 3
# Starting a process or pod, connecting to the master and a rebalance: about half a minute in a
# cluster with the image present; a local process needs a few seconds.
DEFAULT_COOLDOWN_S: Final = 30.0
# After adding, aim the workers' mean CPU at this share of the threshold, so one addition is
# usually enough for a step of load.
AIM_SHARE_OF_THRESHOLD: Final = 0.8
_IDLE_STATES: Final = frozenset({"missing", "stopped", ""})


@dataclass(frozen=True)
class AutoWorkersPolicy:
    """How ``--workers auto`` behaves; ``max_workers`` is ``--max-workers``."""

    max_workers: int
    cpu_threshold_pct: float = DEFAULT_CPU_THRESHOLD_PCT
    sustained_samples: int = DEFAULT_SUSTAINED_SAMPLES
    cooldown_s: float = DEFAULT_COOLDOWN_S

    def __post_init__(self) -> None:
        if self.max_workers < 1:
            raise ValueError("--max-workers must be 1 or more")
        if not 0 < self.cpu_threshold_pct <= 100:
            raise ValueError("the worker CPU threshold must be a percentage in (0, 100]")
        if self.sustained_samples < 1:
            raise ValueError("sustained_samples must be 1 or more")


@dataclass(frozen=True)
class WorkerDecision:
    """Add ``add`` workers now (0: more were wanted but ``--max-workers`` is reached)."""

    ts: float
    add: int
    workers_after: int
    busiest_worker: str
    busiest_cpu_pct: float
    reason: str

    @property
    def capped(self) -> bool:
        return self.add == 0


@dataclass
class WorkerAutoscaler:
    """Fed each tick's new ``workers.csv`` rows; returns a decision when one is due."""

    policy: AutoWorkersPolicy
    workers: int  # workers running now (local processes or the Job's parallelism)
    decisions: list[WorkerDecision] = field(default_factory=list)
    _hot_streak: int = 0
    _cooldown_until: float = -math.inf
    _capped_said: bool = False

    def observe(self, now: float, rows: Sequence[Mapping[str, Any]]) -> WorkerDecision | None:
        """One sample of every worker (rows of one tick); None when nothing is to be done."""
        running = [
            r for r in rows if _cpu(r) is not None and str(r.get("state")) not in _IDLE_STATES
        ]
        if not running:
            return None
        busiest = max(running, key=lambda r: _cpu(r) or 0.0)
        busiest_cpu = _cpu(busiest) or 0.0
        hot = busiest_cpu > self.policy.cpu_threshold_pct
        self._hot_streak = self._hot_streak + 1 if hot else 0
        if self._hot_streak < self.policy.sustained_samples or now < self._cooldown_until:
            return None
        mean_cpu = sum(_cpu(r) or 0.0 for r in running) / len(running)
        decision = self._decide(now, str(busiest.get("worker")), busiest_cpu, mean_cpu)
        if decision is not None:
            self.decisions.append(decision)
        return decision

    def _decide(
        self, now: float, busiest: str, busiest_cpu: float, mean_cpu: float
    ) -> WorkerDecision | None:
        policy = self.policy
        streak = f"above {policy.cpu_threshold_pct:g}% for {self._hot_streak} samples"
        if self.workers >= policy.max_workers:
            if self._capped_said:
                return None
            self._capped_said = True
            return WorkerDecision(
                now,
                0,
                self.workers,
                busiest,
                busiest_cpu,
                f"worker {busiest} CPU {busiest_cpu:.0f}% {streak}, but --max-workers "
                f"{policy.max_workers} is reached: latencies measured from now on include the "
                "load generator's own queueing; raise --max-workers or lower the load",
            )
        aim = AIM_SHARE_OF_THRESHOLD * policy.cpu_threshold_pct
        wanted = max(self.workers + 1, math.ceil(self.workers * mean_cpu / aim))
        after = min(wanted, policy.max_workers)
        add = after - self.workers
        self.workers = after
        self._hot_streak = 0
        self._cooldown_until = now + policy.cooldown_s
        return WorkerDecision(
            now,
            add,
            after,
            busiest,
            busiest_cpu,
            f"worker {busiest} CPU {busiest_cpu:.0f}% {streak} (mean {mean_cpu:.0f}%): "
            f"adding {add} worker(s), {after} in all",
        )


def _cpu(row: Mapping[str, Any]) -> float | None:
    try:
        value = float(row.get("cpu_pct"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def check_local_auto_workers(max_workers: int, processes: int, cores: int) -> str | None:
    """The error text when local ``--workers auto`` could outgrow this machine, else None.

    Locust runs one process per core; more processes than cores share them, and a worker short
    of CPU is exactly what adding workers is meant to avoid."""
    wanted = max_workers * processes
    if wanted <= cores:
        return None
    return (
        f"--workers auto with --max-workers {max_workers} x --processes {processes} = {wanted} "
        f"Locust processes, but this machine has {cores} core(s): locally each worker needs a "
        f"core of its own; use --max-workers {max(1, cores // max(1, processes))} or run in the "
        "cluster"
    )


def starting_workers(max_workers: int) -> int:
    """``--workers auto`` starts with one worker: the load decides how many more it needs."""
    return min(1, max_workers)
