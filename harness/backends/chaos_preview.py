"""``run --chaos ... --chaos-dry-run``: what each disruption would hit, hitting nothing.

The target is resolved exactly as the run resolves it, with the same refusals (a local tree that
is not a pre-fork server the user owns, a cluster workload that cannot be found), and the pods are
those a disruption due now would pick. Nothing starts: no Locust, no run directory, no object.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.actions.chaos import PodChaos, chaos_actions
from harness.actions.kube_pods import chaos_namespace
from harness.config.run import RunConfig
from harness.errors import UsageError
from harness.kube.client import connect
from harness.kube.preflight import CHAOS_ACCESS, missing_access
from harness.session.core import Action


def preview_chaos(config: RunConfig) -> list[str]:
    """One line per ``--chaos`` spec: the target, and the pods it would hit if due now."""
    if not config.chaos:
        raise UsageError("--chaos-dry-run shows what --chaos would hit: give --chaos too")
    if config.local:
        return _lines(
            chaos_actions(
                config.chaos, config.chaos_target, watch=config.watch, pick=config.chaos_pick
            )
        )
    kube = connect(config.kubeconfig, config.context, config.namespace)
    try:
        namespace = config.namespace or kube.namespace
        lines = _lines(
            chaos_actions(
                config.chaos,
                config.chaos_target,
                watch=config.watch,
                kube=kube,
                namespace=namespace,
                pick=config.chaos_pick,
            )
        )
        where = chaos_namespace(config.chaos_target, config.watch, namespace)
        for missing in missing_access(kube, [(where, a) for a in CHAOS_ACCESS]):
            lines.append(f"the run would be refused: missing permission {missing}")
        return lines
    finally:
        kube.close()


def _lines(actions: Sequence[Action]) -> list[str]:
    return [a.preview() for a in actions if isinstance(a, PodChaos)]
