"""What must hold before a run creates anything, so a bad input leaves no half-created objects.

In order: the API server answers; the namespaces exist; every verb the run will use is allowed
(one SelfSubjectAccessReview each, every missing one listed in a single message); the watched
HPAs and workloads exist; the metrics API is served (else a warning: replicas only). The
locustfile compiling is checked when the configuration is built, and the files fitting in a
ConfigMap when the manifests are (``harness.kube.manifests.run_objects``), both before this.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from harness.config.values import WatchTarget
from harness.errors import ClusterError, NotFound, PermissionDenied, UsageError
from harness.kube import rows
from harness.kube.api import WORKLOAD_KINDS, resolve_targets
from harness.kube.client import KubeClient


@dataclass(frozen=True)
class Access:
    """One verb on one resource that kubeswarm uses."""

    verb: str
    resource: str
    group: str = ""
    subresource: str = ""

    def __str__(self) -> str:
        name = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{self.verb} {name}/{self.subresource}".rstrip("/")


# In the namespace of the run: its objects, why its pods fail, Locust's web API through the proxy.
RUN_ACCESS: Final = (
    *(Access(verb, "jobs", "batch") for verb in ("create", "get", "list", "delete")),
    *(Access(verb, "configmaps") for verb in ("create", "list", "delete")),
    *(Access(verb, "services") for verb in ("create", "list", "delete")),
    Access("list", "pods"),
    Access("list", "events"),
    Access("get", "services", subresource="proxy"),
    Access("create", "services", subresource="proxy"),
)
# In each watched namespace: what the sampler lists every tick.
WATCH_ACCESS: Final = (
    Access("list", "horizontalpodautoscalers", "autoscaling"),
    Access("list", "deployments", "apps"),
    Access("list", "statefulsets", "apps"),
    Access("list", "pods"),
    Access("list", "pods", "metrics.k8s.io"),
    Access("list", "events"),
)
# In the namespace of the disrupted workload, only with --chaos (k8s-jobs/rbac-chaos.yaml).
CHAOS_ACCESS: Final = (Access("delete", "pods"),)


@dataclass
class PreflightReport:
    server_version: str
    metrics_available: bool
    warnings: list[str] = field(default_factory=list)


def missing_access(kube: KubeClient, needs: Iterable[tuple[str, Access]]) -> list[str]:
    """``namespace: verb resource`` for every need the current user lacks."""
    missing = []
    for namespace, access in dict.fromkeys(needs):
        if not kube.can_i(
            access.verb, access.resource, namespace, access.group, access.subresource
        ):
            missing.append(f"{access} in namespace {namespace}")
    return missing


def check_namespaces(kube: KubeClient, namespaces: Iterable[str]) -> None:
    for namespace in sorted(set(namespaces)):
        try:
            kube.get("Namespace", namespace)
        except PermissionDenied:
            continue  # a Role cannot grant it; a missing namespace shows as 404 on first use
        except NotFound as e:
            raise UsageError(
                f"namespace {namespace} does not exist (kubectl create namespace "
                f"{namespace}, or pass -n)"
            ) from e


def check_targets(kube: KubeClient, targets: Sequence[WatchTarget]) -> None:
    """Every watched HPA, Deployment and StatefulSet exists (one list per kind and namespace)."""
    kinds = {"hpa": "HorizontalPodAutoscaler", **WORKLOAD_KINDS}
    for namespace in sorted({str(t.namespace) for t in targets}):
        for kind_key, kind in kinds.items():
            wanted = [t.name for t in targets if t.namespace == namespace and t.kind == kind_key]
            if not wanted:
                continue
            names = {rows.dig(o, "metadata", "name") for o in kube.list_objects(kind, namespace)}
            unknown = [name for name in wanted if name not in names]
            if unknown:
                there = ", ".join(sorted(str(n) for n in names)) or "none"
                raise UsageError(
                    f"--watch: {kind_key}/{', '.join(unknown)} not found in "
                    f"namespace {namespace} ({kind_key} there: {there})"
                )


def preflight(
    kube: KubeClient,
    namespace: str,
    targets: Sequence[WatchTarget],
    creates: bool = True,
    chaos_namespaces: Sequence[str] = (),
) -> PreflightReport:
    """Checks everything above; raises ``UsageError`` (bad input, exit 2) or ``ClusterError``.
    ``chaos_namespaces``: where ``--chaos`` deletes pods (``delete pods`` is checked there)."""
    try:
        version = kube.server_version()
    except ClusterError as e:
        raise ClusterError(
            f"cannot reach the API server {kube.connection.host} (context "
            f"{kube.connection.context or 'in-cluster'}): {e}"
        ) from e
    resolved = resolve_targets(targets, namespace)
    watched = sorted({str(t.namespace) for t in resolved})
    check_namespaces(kube, [namespace, *watched] if creates else watched)
    needs = [(namespace, a) for a in RUN_ACCESS] if creates else []
    needs += [(ns, a) for ns in watched for a in WATCH_ACCESS]
    needs += [(ns, a) for ns in chaos_namespaces for a in CHAOS_ACCESS]
    missing = missing_access(kube, needs)
    if missing:
        chaos = " --chaos" if chaos_namespaces else ""
        raise UsageError(
            f"missing permission(s): {'; '.join(missing)}. Apply kubeswarm's Role "
            f"(kubeswarm render --rbac{chaos} -n {namespace} | kubectl apply -f -) or ask a "
            "cluster admin"
        )
    check_targets(kube, resolved)
    report = PreflightReport(version, kube.metrics_api_available())
    if not report.metrics_available:
        report.warnings.append(
            "warning: the metrics API (metrics.k8s.io) is not served: recording replicas only, "
            "no pod CPU/memory (install metrics-server to get them)"
        )
    return report
