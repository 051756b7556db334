"""``--workers auto`` as a session action: the decision of ``harness.actions.workers`` applied.

Each tick the session hands over the workers' rows of ``samples/workers.csv`` read in that tick
(``TickContext.workers``); when the policy says so, ``grow`` adds workers (local: more worker
processes; cluster: a higher parallelism of the worker Job) and the addition becomes a
``workers_added`` mark and a line for the user.
"""

from __future__ import annotations

from collections.abc import Callable

from harness.actions.workers import AutoWorkersPolicy, WorkerAutoscaler
from harness.session.core import Observation, TickContext

Grow = Callable[[int], None]  # the total number of workers wanted from now on


class AutoWorkers:
    """Adds load generator workers while their CPU stays above the policy's threshold."""

    def __init__(self, policy: AutoWorkersPolicy, workers: int, grow: Grow) -> None:
        self.autoscaler = WorkerAutoscaler(policy, workers)
        self.grow = grow

    def tick(self, ctx: TickContext) -> Observation:
        observation = Observation()
        decision = self.autoscaler.observe(ctx.now, ctx.workers)
        if decision is None:
            return observation
        if decision.capped:
            observation.event(f"workers: {decision.reason}")
            return observation
        self.grow(decision.workers_after)
        observation.mark("workers_added", f"{decision.workers_after} workers", ctx.now)
        observation.event(f"workers: {decision.reason}")
        return observation
