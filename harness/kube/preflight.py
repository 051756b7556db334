"""What must hold before a run creates anything, so a bad input leaves no half-created objects.

In order: the API server answers; the namespaces exist; every verb the run will use is allowed
(one SelfSubjectAccessReview each, every missing one listed in a single message); the watched
HPAs and workloads exist; the metrics API is served (else a warning: replicas only); the load
pods fit in what the nodes can still schedule (refused naming the numbers if they do not). The
locustfile loading is checked when the configuration is built, and the files fitting in a
ConfigMap when the manifests are (``harness.kube.manifests.run_objects``), both before this.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from analysis.data.units import format_bytes, parse_quantity
from harness.config.env import EnvRef
from harness.config.values import WatchTarget
from harness.errors import ClusterError, NotFound, PermissionDenied, UsageError
from harness.kube import rows
from harness.kube.api import WORKLOAD_KINDS, Body, Operation, resolve_targets
from harness.kube.client import KubeClient
from harness.kube.envsource import check_env_refs


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
# In each watched namespace: what the sampler lists once and then watches, and the PodMetrics it
# lists at the metrics API's resolution. A Role without `watch` would let the first list through
# and refuse every tick after it.
WATCH_ACCESS: Final = (
    *(
        Access(verb, resource, group)
        for resource, group in (
            ("horizontalpodautoscalers", "autoscaling"),
            ("deployments", "apps"),
            ("statefulsets", "apps"),
            ("pods", ""),
            ("events", ""),
        )
        for verb in ("list", "watch")
    ),
    Access("list", "pods", "metrics.k8s.io"),
)
# In the namespace of the disrupted workload, only with --chaos (k8s-jobs/rbac-chaos.yaml).
CHAOS_ACCESS: Final = (Access("delete", "pods"),)
# In the namespace of the run, only when the run needs them.
# --workers auto: raise the worker Job's parallelism.
AUTO_WORKERS_ACCESS: Final = (Access("patch", "jobs", "batch"),)
# The master's NetworkPolicy (k8s-jobs/networkpolicy.yaml).
NETWORK_POLICY_ACCESS: Final = tuple(
    Access(verb, "networkpolicies", "networking.k8s.io") for verb in ("create", "list", "delete")
)
# The ramp (locustfiles/ramp.py): its lines in the master pod's log.
RAMP_ACCESS: Final = (Access("get", "pods", subresource="log"),)
# --env, --env-file: the run's own Secret of their values, created and deleted with the run.
# (--env-from: each referenced object is read once instead, which is the check of `get`.)
ENV_SECRET_ACCESS: Final = tuple(Access(verb, "secrets") for verb in ("create", "delete"))


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
    *,
    creates: bool = True,
    load_objects: Sequence[Body] = (),
    chaos_namespaces: Sequence[str] = (),
    scales_workers: bool = False,
    network_policy: bool = False,
    reads_master_log: bool = False,
    env_secret: bool = False,
    env_refs: Sequence[EnvRef] = (),
) -> PreflightReport:
    """Checks everything above; raises ``UsageError`` (bad input, exit 2) or ``ClusterError``.
    ``load_objects`` are the run's manifests (``run_objects``): their Jobs' pods must fit.
    ``chaos_namespaces``: where ``--chaos`` deletes pods (``delete pods`` is checked there).
    ``reads_master_log``: the ramp's lines are read from the master pod's log (``get pods/log``).
    ``env_secret``: the run creates a Secret of ``--env`` values; ``env_refs``: ``--env-from``
    objects, each of which must exist and be readable in ``namespace``."""
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
    for wanted, accesses in (
        (scales_workers, AUTO_WORKERS_ACCESS),
        (network_policy, NETWORK_POLICY_ACCESS),
        (reads_master_log, RAMP_ACCESS),
        (env_secret, ENV_SECRET_ACCESS),
    ):
        if wanted and creates:
            needs += [(namespace, a) for a in accesses]
    missing = missing_access(kube, needs)
    if missing:
        chaos = " --chaos" if chaos_namespaces else ""
        raise UsageError(
            f"missing permission(s): {'; '.join(missing)}. Apply kubeswarm's Role "
            f"(kubeswarm render --rbac{chaos} -n {namespace} | kubectl apply -f -) or ask a "
            "cluster admin"
        )
    check_targets(kube, resolved)
    check_env_refs(kube, namespace, env_refs)
    report = PreflightReport(version, kube.metrics_api_available())
    if not report.metrics_available:
        report.warnings.append(
            "warning: the metrics API (metrics.k8s.io) is not served: recording replicas only, "
            "no pod CPU/memory (install metrics-server to get them)"
        )
    if load_objects:
        report.warnings.extend(check_capacity(kube, load_objects))
    return report


@dataclass
class NodeRoom:
    """What one schedulable node can still take: allocatable minus the requests of the pods
    bound to it that have not terminated. CPU in cores, memory in bytes."""

    name: str
    labels: Mapping[str, str]
    taints: tuple[Mapping[str, Any], ...]
    cpu: float
    memory: float


@dataclass(frozen=True)
class LoadPods:
    """One Job's pods as the scheduler sees them: how many, what each requests, where allowed."""

    role: str  # master or worker, in the user's words
    count: int
    cpu: float
    memory: float
    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, Any], ...]


_TERMINATED: Final = ("Succeeded", "Failed")
_HINTS: Final = {
    "master": "--master-cpu/--master-memory",
    "worker": "--worker-cpu/--worker-memory or --processes",
}


def check_capacity(kube: KubeClient, load_objects: Sequence[Body]) -> list[str]:
    """Refuses (``UsageError``) a run whose pods do not all fit in the nodes' free room now;
    returns a warning instead when the nodes cannot be listed (a namespaced Role)."""
    try:
        nodes = _items(kube, "/api/v1/nodes", "nodes")
        pods = _items(kube, "/api/v1/pods", "pods", "status.phase!=Succeeded,status.phase!=Failed")
    except PermissionDenied:
        return [
            "warning: cannot list nodes and pods cluster-wide: not checked that the load pods fit"
        ]
    rooms = node_rooms(nodes, pods)
    if not rooms:
        return ["warning: no schedulable node found: not checked that the load pods fit"]
    place_load_pods(load_pods(load_objects), rooms)
    return []


def _items(kube: KubeClient, path: str, what: str, field_selector: str = "") -> list[Body]:
    query = [("fieldSelector", field_selector)] if field_selector else []
    body = kube.request("GET", path, Operation("list", what), query=query).json()
    return list(body.get("items") or [])


def node_rooms(nodes: Sequence[Body], pods: Sequence[Body]) -> list[NodeRoom]:
    """Free room of each node that takes new pods (not cordoned, Ready)."""
    used: dict[str, list[float]] = {}
    for pod in pods:
        node = rows.dig(pod, "spec", "nodeName")
        if node and rows.dig(pod, "status", "phase") not in _TERMINATED:
            cpu, memory = pod_requests(pod.get("spec") or {})
            total = used.setdefault(str(node), [0.0, 0.0])
            total[0] += cpu
            total[1] += memory
    rooms = []
    for node in nodes:
        name = str(rows.dig(node, "metadata", "name"))
        if rows.dig(node, "spec", "unschedulable") or not _ready(node):
            continue
        allocatable = rows.dig(node, "status", "allocatable") or {}
        cpu_used, memory_used = used.get(name, (0.0, 0.0))
        rooms.append(
            NodeRoom(
                name,
                rows.dig(node, "metadata", "labels") or {},
                tuple(rows.dig(node, "spec", "taints") or ()),
                parse_quantity(allocatable.get("cpu", "0")) - cpu_used,
                parse_quantity(allocatable.get("memory", "0")) - memory_used,
            )
        )
    return rooms


def _ready(node: Body) -> bool:
    conditions = rows.dig(node, "status", "conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_requests(spec: Mapping[str, Any]) -> tuple[float, float]:
    """CPU cores and memory bytes a pod spec requests, as the scheduler counts them: the sum of
    its containers, or its largest init container if that is more."""

    def requests(container: Mapping[str, Any]) -> tuple[float, float]:
        asked = (container.get("resources") or {}).get("requests") or {}
        return parse_quantity(asked.get("cpu", "0")), parse_quantity(asked.get("memory", "0"))

    main = [requests(c) for c in spec.get("containers") or []]
    init = [requests(c) for c in spec.get("initContainers") or []]
    cpu = max([sum(c for c, _ in main), *(c for c, _ in init)])
    memory = max([sum(m for _, m in main), *(m for _, m in init)])
    return cpu, memory


def load_pods(objects: Sequence[Body]) -> list[LoadPods]:
    """The pods the run's Jobs will ask for, master first."""
    found = []
    for job in (o for o in objects if o.get("kind") == "Job"):
        spec = rows.dig(job, "spec", "template", "spec") or {}
        role = (rows.dig(job, "metadata", "labels") or {}).get("app.kubernetes.io/component")
        cpu, memory = pod_requests(spec)
        found.append(
            LoadPods(
                str(role or rows.dig(job, "metadata", "name")),
                int(rows.dig(job, "spec", "parallelism") or 1),
                cpu,
                memory,
                spec.get("nodeSelector") or {},
                tuple(spec.get("tolerations") or ()),
            )
        )
    return sorted(found, key=lambda p: p.role != "master")


def place_load_pods(wanted: Sequence[LoadPods], rooms: Sequence[NodeRoom]) -> None:
    """Places the pods first-fit on the nodes' free room, as the scheduler could; ``UsageError``
    naming the numbers if they do not all fit: a worker left Pending keeps the master waiting
    for it until the startup budget runs out, so the test would fail minutes later."""
    for pods in wanted:
        allowed = [r for r in rooms if _accepts(r, pods)]
        if not allowed:
            raise UsageError(
                f"no schedulable node accepts the {pods.role} pods (node selector "
                f"{dict(pods.node_selector) or 'none'}, taints not tolerated); check "
                "--node-selector and --toleration"
            )
        largest = _largest(allowed)
        placed = 0
        for _ in range(pods.count):
            room = next((r for r in allowed if r.cpu >= pods.cpu and r.memory >= pods.memory), None)
            if room is None:
                break
            room.cpu -= pods.cpu
            room.memory -= pods.memory
            placed += 1
        if placed < pods.count:
            raise UsageError(_refusal(pods, placed, largest))


def _largest(rooms: Sequence[NodeRoom]) -> str:
    most_cpu = max(rooms, key=lambda r: r.cpu)
    most_memory = max(rooms, key=lambda r: r.memory)
    cpu = f"{max(most_cpu.cpu, 0):.2g} CPU"
    memory = f"{format_bytes(max(most_memory.memory, 0))} memory"
    if most_cpu is most_memory:
        return f"the largest free node has {cpu} and {memory} ({most_cpu.name})"
    return f"the most free is {cpu} ({most_cpu.name}) and {memory} ({most_memory.name})"


def _refusal(pods: LoadPods, placed: int, largest: str) -> str:
    plural = "s" if pods.count > 1 else ""
    fits = f"only {placed} fit{'s' if placed == 1 else ''} now" if placed else largest
    extra = f" ({largest})" if placed else ""
    lower = _HINTS.get(pods.role, "the requests") + (" or --workers" if pods.count > 1 else "")
    return (
        f"{pods.role}{plural} need {pods.count} x {pods.cpu:g} CPU and "
        f"{format_bytes(pods.memory)} memory, but {fits}{extra}; lower {lower}, or free room "
        "on the nodes"
    )


def _accepts(room: NodeRoom, pods: LoadPods) -> bool:
    if any(room.labels.get(k) != v for k, v in pods.node_selector.items()):
        return False
    return all(
        _tolerated(taint, pods.tolerations)
        for taint in room.taints
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )


def _tolerated(taint: Mapping[str, Any], tolerations: Sequence[Mapping[str, Any]]) -> bool:
    for toleration in tolerations:
        if toleration.get("effect") not in (None, "", taint.get("effect")):
            continue
        if toleration.get("operator") == "Exists" and toleration.get("key") in (
            None,
            "",
            taint.get("key"),
        ):
            return True
        if toleration.get("key") == taint.get("key") and toleration.get("value", "") == taint.get(
            "value", ""
        ):
            return True
    return False
