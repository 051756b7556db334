"""What every ``--chaos`` target offers: its pods now, a way to hit one, and which to choose."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from harness.config.chaos import ChaosPick, ChaosSpec


@dataclass(frozen=True)
class Victim:
    """A pod that could be hit: its name as ``pods.csv`` records it, when it started, readiness."""

    name: str
    started_s: float | None
    ready: bool
    handle: object = field(default=None, compare=False)  # what the source needs to hit it


class PodSource(Protocol):
    """The pods of one target, and the one way of hitting them."""

    @property
    def target(self) -> str: ...  # as the user reads it, e.g. ``shop/deployment/web``

    @property
    def namespace(self) -> str: ...  # under which samples/*.csv record the workload

    @property
    def workload(self) -> str: ...

    def pods(self) -> tuple[list[Victim], str]:
        """The pods now, and when there are none, why (for the skipped mark)."""
        ...

    def hit(self, victim: Victim, spec: ChaosSpec) -> bool:
        """Deletes or kills one pod; False when it was already gone."""
        ...


def choose(
    candidates: Sequence[Victim], count: int, pick: ChaosPick, rng: random.Random
) -> list[Victim]:
    """Up to ``count`` pods: ready ones only when any is ready (hitting a pod that serves no
    traffic disrupts nothing), the oldest first or at random."""
    ready = [v for v in candidates if v.ready]
    pool = ready or list(candidates)
    if pick == "random":
        return rng.sample(pool, min(count, len(pool)))
    # Unknown start times sort last: a pod whose age is unknown is not known to be the oldest.
    by_age = sorted(pool, key=lambda v: (v.started_s is None, v.started_s or 0.0, v.name))
    return by_age[:count]
