"""``--chaos``: disrupt the target's pods while the load runs, and record what was hit.

Each ``ChaosSpec`` becomes one ``PodChaos`` action that the session ticks like a sampler. When the
test has run for the spec's WHEN, it lists the target's pods once, picks COUNT of them (the oldest
ready ones, or random ready ones), hits them and returns a ``chaos`` mark naming them plus a line
for the user. A target with nothing to hit at that moment is a skipped disruption, recorded the
same way, never an error: the run goes on and the report says it was skipped.

Where the pods come from is a ``PodSource``: the workload's pods in a cluster
(``harness.actions.kube_pods``), the worker processes of a pre-fork server on this machine
(``harness.actions.process_pods``). ``chaos_actions`` builds the actions for a run.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from analysis.data.chaosmark import ChaosMark
from harness.actions.kube_pods import KubePods, resolve_workload
from harness.actions.pods import PodSource, Victim, choose
from harness.actions.process_pods import ProcessPods, find_server
from harness.config.chaos import ChaosPick, ChaosSpec
from harness.config.values import WatchTarget
from harness.errors import ClusterError, UsageError
from harness.kube.client import KubeClient
from harness.session.core import Action, Observation, TickContext

_VERB = {"pod-kill": "kill", "pod-delete": "delete"}


@dataclass
class PodChaos:
    """One disruption, done once when the test has run for ``spec.at_s`` seconds."""

    spec: ChaosSpec
    source: PodSource
    pick: ChaosPick = "oldest"
    rng: random.Random = field(default_factory=random.Random)
    done: bool = False

    def due(self, ctx: TickContext) -> bool:
        elapsed = ctx.test_elapsed_s
        return not self.done and elapsed is not None and elapsed >= self.spec.at_s

    def tick(self, ctx: TickContext) -> Observation:
        observation = Observation()
        if not self.due(ctx):
            return observation
        self.done = True
        at = f"{ctx.test_elapsed_s or 0.0:.0f}s"
        try:
            mark = self._act()
        except ClusterError as e:
            # A refused or failed request must not end a run that is measuring the target.
            mark = self._mark((), None, f"the API server refused: {e}")
        observation.mark("chaos", mark.detail(), ctx.now)
        if mark.skipped is not None:
            observation.event(f"chaos {self.spec.action} skipped at {at}: {mark.skipped}")
        else:
            observation.event(f"chaos {self.spec.action} {', '.join(mark.pods)} at {at}")
        return observation

    def preview(self) -> str:
        """What this disruption would hit if it were due now; hits nothing (``--chaos-dry-run``)."""
        candidates, why_none = self.source.pods()
        head = f"{self.spec} on {self.source.target}"
        if not candidates:
            return f"{head}: would skip: {why_none or 'no pods'}"
        chosen = choose(candidates, self.spec.count, self.pick, self.rng)
        ready = sum(1 for v in candidates if v.ready)
        names = ", ".join(v.name for v in chosen)
        return (
            f"{head}: would {_VERB[self.spec.action]} {names} "
            f"({self.pick} of {ready} ready of {len(candidates)} pods now)"
        )

    def _act(self) -> ChaosMark:
        candidates, why_none = self.source.pods()
        ready_before = sum(1 for v in candidates if v.ready)
        if not candidates:
            return self._mark((), ready_before, why_none or f"no pods of {self.source.target}")
        hit = [
            v.name for v in choose(candidates, self.spec.count, self.pick, self.rng) if self._hit(v)
        ]
        if not hit:
            return self._mark((), ready_before, "every chosen pod was gone before it was hit")
        return self._mark(tuple(hit), ready_before, None)

    def _hit(self, victim: Victim) -> bool:
        return self.source.hit(victim, self.spec)

    def _mark(
        self, pods: tuple[str, ...], ready_before: int | None, skipped: str | None
    ) -> ChaosMark:
        return ChaosMark(
            action=self.spec.action,
            target=self.source.target,
            namespace=self.source.namespace,
            workload=self.source.workload,
            pods=pods,
            ready_before=ready_before,
            grace_s=self.spec.grace_period_s,
            skipped=skipped,
        )


def chaos_actions(
    specs: Sequence[ChaosSpec],
    target: WatchTarget | None,
    *,
    watch: Sequence[WatchTarget] = (),
    kube: KubeClient | None = None,
    namespace: str | None = None,
    pick: ChaosPick = "oldest",
    rng: random.Random | None = None,
    protected_pids: Iterable[int] = (),
    workload_name: str | None = None,
) -> list[Action]:
    """The actions of ``--chaos`` for one run; an empty list when there are no specs.

    In a cluster (``kube`` given) the target is ``target``, else the workload of the first
    watched HPA, else the first watched Deployment/StatefulSet; ``namespace`` is the run's
    default. On this machine it is ``target``, else the first watched ``pid/``/``cmd/``; give
    ``protected_pids`` (Locust's processes: never signalled) and ``workload_name`` (the name the
    process sampler records the target under, e.g. the demo's ``demo-target``).
    Raises ``UsageError`` when there is no target or it cannot be disrupted.
    """
    if not specs:
        return []
    generator = rng or random.Random()
    source: PodSource
    if kube is not None:
        ref = resolve_workload(kube, target, watch, namespace or kube.namespace)
        source = KubePods(kube, ref)
    else:
        chosen = target or next((t for t in watch if t.kind in ("pid", "cmd")), None)
        if chosen is None:
            raise UsageError(
                "--chaos needs a target: pass --chaos-target pid/PID or cmd/PATTERN "
                "(or --watch one)"
            )
        protected = frozenset(protected_pids)
        server = find_server(chosen, protected)
        source = ProcessPods(chosen, server, protected, workload_name)
    return [PodChaos(spec, source, pick, generator) for spec in specs]
