"""The process sampler as the session ticks it: local targets' processes as pods."""

from __future__ import annotations

from analysis.data import schema
from harness.samplers.processes import ProcessPod, ProcessSampler
from harness.session.core import Observation, TickContext, WorkloadStatus


def memory_pcts(
    sampler: ProcessSampler, pods: list[ProcessPod]
) -> tuple[float | None, float | None]:
    """The highest memory % of request and of limit among ``pods`` (None: no request/limit)."""
    resources = sampler.resources
    peak = max((p.memory_bytes for p in pods), default=None)

    def pct(of: float | None) -> float | None:
        return None if peak is None or not of else peak * 100.0 / of

    return pct(resources.memory_request_bytes), pct(resources.memory_limit_bytes)


class ProcessSource:
    """One local target (``pid/N`` or ``cmd/PATTERN``): its processes into ``pods.csv``."""

    def __init__(self, sampler: ProcessSampler) -> None:
        self.sampler = sampler
        self.pods: list[ProcessPod] = []

    def tick(self, ctx: TickContext) -> Observation:
        observation = Observation()
        self.pods = self.sampler.sample(ctx.now)
        observation.append(schema.PODS, self.sampler.rows(ctx.now, self.pods))
        of_request, of_limit = memory_pcts(self.sampler, self.pods)
        observation.workloads.append(
            WorkloadStatus(
                name=self.sampler.workload,
                pods=len(self.pods),
                ready=len(self.pods),
                memory_pct_of_request=of_request,
                memory_pct_of_limit=of_limit,
            )
        )
        return observation
