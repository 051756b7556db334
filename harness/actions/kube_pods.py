"""The pods of a Deployment or StatefulSet that ``--chaos`` may delete, through the API server.

The workload's own label selector finds its pods (as the sampler does), so the names in the
``chaos`` mark are those of ``pods.csv``; only pods the workload itself owns (its ReplicaSets'
or the StatefulSet's) are candidates, in the workload's namespace, however wide the selector.
Pods already terminating are not candidates (deleting them again disrupts nothing), nor are
kubeswarm's own pods (those labelled with a run), so the load generator is never disrupted even
by a selector that would match it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.actions.pods import Victim
from harness.config.chaos import ChaosSpec
from harness.config.values import WatchTarget
from harness.errors import UsageError
from harness.kube import rows
from harness.kube.api import WORKLOAD_KINDS, Body, WorkloadRef
from harness.kube.client import KubeClient
from harness.kube.manifests import RUN_LABEL


def chaos_namespace(
    target: WatchTarget | None, watch: Sequence[WatchTarget], namespace: str
) -> str:
    """Where ``--chaos`` deletes pods, known without asking the API server: the namespace of
    the workload ``resolve_workload`` picks (``delete pods`` is checked there, not in ``-n``'s)."""
    if target is not None:
        return target.namespace or namespace
    for watched in watch:
        if watched.kind == "hpa" or watched.kind in WORKLOAD_KINDS:
            return watched.namespace or namespace
    return namespace


def resolve_workload(
    kube: KubeClient, target: WatchTarget | None, watch: Sequence[WatchTarget], namespace: str
) -> WorkloadRef:
    """The workload ``--chaos`` disrupts: ``--chaos-target``, else the workload the first watched
    HPA scales, else the first watched workload (``UsageError`` when there is none)."""
    if target is not None and target.kind in WORKLOAD_KINDS:
        return WorkloadRef(target.namespace or namespace, WORKLOAD_KINDS[target.kind], target.name)
    if target is not None:
        raise UsageError(f"--chaos-target {target}: a cluster run disrupts deployment/NAME")
    for watched in watch:
        ns = watched.namespace or namespace
        if watched.kind == "hpa":
            hpa = kube.get("HorizontalPodAutoscaler", watched.name, ns)
            ref = rows.dig(hpa, "spec", "scaleTargetRef") or {}
            if ref.get("kind") not in WORKLOAD_KINDS.values():
                raise UsageError(
                    f"--chaos: hpa {ns}/{watched.name} scales a {ref.get('kind')}; pass "
                    "--chaos-target deployment/NAME"
                )
            return WorkloadRef(ns, str(ref["kind"]), str(ref.get("name")))
        if watched.kind in WORKLOAD_KINDS:
            return WorkloadRef(ns, WORKLOAD_KINDS[watched.kind], watched.name)
    raise UsageError(
        "--chaos needs a target: pass --chaos-target deployment/NAME or --watch hpa/NAME"
    )


def _owned_by(pod: Body, workload: Body, ref: WorkloadRef) -> bool:
    """True when ``pod`` belongs to the workload itself, not merely matches its selector: a
    StatefulSet owns its pods; a Deployment owns the ReplicaSets ``<name>-<pod-template-hash>``
    that own its pods. A selector shared with another workload must not widen the blast radius."""
    owners = [o for o in rows.dig(pod, "metadata", "ownerReferences") or [] if o.get("controller")]
    if len(owners) != 1:
        return False
    (owner,) = owners
    if ref.kind == "StatefulSet":
        uid = rows.dig(workload, "metadata", "uid")
        return (
            owner.get("kind") == "StatefulSet"
            and owner.get("name") == ref.name
            and (uid is None or owner.get("uid") == uid)
        )
    template_hash = (rows.dig(pod, "metadata", "labels") or {}).get("pod-template-hash")
    return (
        owner.get("kind") == "ReplicaSet"
        and template_hash is not None
        and owner.get("name") == f"{ref.name}-{template_hash}"
    )


def _ready(pod: Body) -> bool:
    return any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in rows.dig(pod, "status", "conditions") or []
    )


@dataclass
class KubePods:
    """The pods of one workload, listed by its selector when the disruption is due."""

    kube: KubeClient
    ref: WorkloadRef

    @property
    def target(self) -> str:
        return f"{self.ref.namespace}/{self.ref.kind.lower()}/{self.ref.name}"

    @property
    def namespace(self) -> str:
        return self.ref.namespace

    @property
    def workload(self) -> str:
        return self.ref.name

    def pods(self) -> tuple[list[Victim], str]:
        workload = self.kube.get(self.ref.kind, self.ref.name, self.ref.namespace)
        template_labels = rows.dig(workload, "spec", "template", "metadata", "labels") or {}
        if RUN_LABEL in template_labels:
            return [], f"{self.target} is kubeswarm's own load generator"
        selector = rows.selector_query(rows.dig(workload, "spec", "selector"))
        if selector is None:
            return [], f"{self.target} has no label selector"
        listed = self.kube.list_objects("Pod", self.ref.namespace, label_selector=selector)
        victims = [
            Victim(
                str(rows.dig(pod, "metadata", "name")),
                rows.timestamp(rows.dig(pod, "metadata", "creationTimestamp")),
                _ready(pod),
                pod,
            )
            for pod in listed
            if not rows.dig(pod, "metadata", "deletionTimestamp")
            and RUN_LABEL not in (rows.dig(pod, "metadata", "labels") or {})
            and _owned_by(pod, workload, self.ref)
        ]
        return victims, "" if victims else f"no running pods of {self.target}"

    def hit(self, victim: Victim, spec: ChaosSpec) -> bool:
        return self.kube.delete_pod(victim.name, self.ref.namespace, spec.grace_period_s)
