"""What kubeswarm knows of the Kubernetes API, without the client: resources and their paths,
the retry policy, and how an error answer becomes the project's exception with a useful message.

Kept apart from ``harness.kube.client`` (the only module that imports ``kubernetes``) so that all
of it is plain, testable data and functions.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from harness.config.values import WatchTarget
from harness.errors import ClusterError, NotFound, PermissionDenied, UsageError

Body = dict[str, Any]
RETRYABLE_STATUS: Final = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Resource:
    """Where a kind lives in the API, and how a user names it (``jobs.batch``)."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def described(self) -> str:
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            prefix += f"/namespaces/{namespace}"
        path = f"{prefix}/{self.plural}"
        return f"{path}/{name}" if name else path


RESOURCES: Final[dict[str, Resource]] = {
    r.kind: r
    for r in (
        Resource("Namespace", "", "v1", "namespaces", namespaced=False),
        Resource("ConfigMap", "", "v1", "configmaps"),
        Resource("Secret", "", "v1", "secrets"),
        Resource("Service", "", "v1", "services"),
        Resource("Pod", "", "v1", "pods"),
        Resource("Event", "", "v1", "events"),
        Resource("ServiceAccount", "", "v1", "serviceaccounts"),
        Resource("Job", "batch", "v1", "jobs"),
        Resource("NetworkPolicy", "networking.k8s.io", "v1", "networkpolicies"),
        Resource("Node", "", "v1", "nodes", namespaced=False),
        Resource("Deployment", "apps", "v1", "deployments"),
        Resource("StatefulSet", "apps", "v1", "statefulsets"),
        Resource("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers"),
        Resource("Role", "rbac.authorization.k8s.io", "v1", "roles"),
        Resource("RoleBinding", "rbac.authorization.k8s.io", "v1", "rolebindings"),
        Resource("PodMetrics", "metrics.k8s.io", "v1beta1", "pods"),
    )
}


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a failed request is repeated.

    Five attempts with delays drawn from [0, 0.5 s * 2**n] capped at 8 s ride out an API server
    restart or a burst of 429s (about 15 s in the worst case) without hiding a cluster that is down.
    Full jitter keeps many clients from retrying in step.
    """

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 8.0
    # A read that takes longer than this is treated as failed and retried (seconds).
    timeout_s: float = 30.0

    def delay_s(self, attempt: int, rng: random.Random, retry_after_s: float | None) -> float:
        ceiling = min(self.max_delay_s, self.base_delay_s * 2**attempt)
        delay = rng.uniform(0.0, ceiling)
        if retry_after_s is not None:
            delay = max(delay, min(retry_after_s, self.max_delay_s))
        return delay


# The service proxy is polled in a loop by its callers: one quick retry, then let them decide.
DEFAULT_RETRY: Final = RetryPolicy()
PROXY_RETRY: Final = RetryPolicy(attempts=2, base_delay_s=0.2, max_delay_s=1.0, timeout_s=15.0)


@dataclass(frozen=True)
class Operation:
    """What a request does, in the user's words, for error messages."""

    verb: str
    resource: str
    namespace: str | None = None
    name: str | None = None

    def subject(self) -> str:
        where = f" in namespace {self.namespace}" if self.namespace else ""
        named = f" {self.name}" if self.name else ""
        return f"{self.resource}{named}{where}"


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    data: bytes

    def json(self) -> Body:
        loaded = json.loads(self.data) if self.data else {}
        return loaded if isinstance(loaded, dict) else {"items": loaded}


@dataclass(frozen=True)
class Connection:
    """Where the client talks to, as the user configured it."""

    host: str
    context: str | None
    namespace: str
    user: str | None
    in_cluster: bool = False
    insecure: bool = False


def status_message(data: bytes) -> str:
    try:
        body = json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace").strip()[:300]
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return data.decode("utf-8", "replace").strip()[:300]


def error_for(status: int, data: bytes, op: Operation, conn: Connection) -> ClusterError:
    """The project's exception for an API error answer, with a message a user can act on."""
    message = status_message(data)
    if status == 403:
        who = f"user {conn.user}" if conn.user else "the current user"
        if "cannot" in message or not message:  # RBAC, as opposed to admission, said no
            return PermissionDenied(
                f"{who} may not {op.verb} {op.subject()} (403 Forbidden); grant it with the Role "
                "in kubeswarm's k8s-jobs/ (kubectl apply -k k8s-jobs/) or ask a cluster admin"
            )
        return PermissionDenied(f"{op.verb} {op.subject()} was refused: {message}")
    if status == 404:
        if op.name is None and op.verb == "list":
            return NotFound(f"the API for {op.resource} is not served by {conn.host} ({message})")
        return NotFound(f"{op.subject()} does not exist ({message})")
    texts = {
        401: f"the API server {conn.host} rejected the credentials of context "
        f"{conn.context or '(in-cluster)'} (401 Unauthorized): log in again or refresh the "
        "kubeconfig",
        409: f"{op.subject()} already exists: {message}; remove leftovers with "
        "`kubeswarm clean --all`",
        400: f"the API server refused to {op.verb} {op.subject()}: {message}",
        422: f"the API server refused to {op.verb} {op.subject()}: {message}",
    }
    default = f"{op.verb} {op.subject()} failed on {conn.host} ({status}): {message}"
    return ClusterError(texts.get(status, default))


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After") or headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def split_query(text: str) -> list[tuple[str, str]]:
    from urllib.parse import parse_qsl

    return parse_qsl(text, keep_blank_values=True) if text else []


_PROXY_NAME: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def proxy_path(namespace: str, service: str, port: int | str, path: str = "/") -> str:
    """``/api/v1/namespaces/NS/services/NAME:PORT/proxy/PATH``, ``:`` and ``/`` left as they are."""
    if not _PROXY_NAME.match(namespace) or not _PROXY_NAME.match(service):
        raise UsageError(f"not a valid namespace/service: {namespace}/{service}")
    tail = path if path.startswith("/") else f"/{path}"
    return f"/api/v1/namespaces/{namespace}/services/{service}:{port}/proxy{tail}"


WORKLOAD_KINDS = {"deployment": "Deployment", "statefulset": "StatefulSet"}


@dataclass(frozen=True)
class WorkloadRef:
    namespace: str
    kind: str  # Deployment or StatefulSet
    name: str


def resolve_targets(targets: Sequence[WatchTarget], default_namespace: str) -> list[WatchTarget]:
    """Cluster targets with their namespace filled in; local-only kinds are refused."""
    resolved = []
    for target in targets:
        if target.kind not in ("hpa", *WORKLOAD_KINDS):
            raise UsageError(
                f"--watch {target}: pid/ and cmd/ are local targets; in a cluster "
                "watch hpa/NAME, deployment/NAME or statefulset/NAME"
            )
        resolved.append(
            WatchTarget(target.kind, target.name, target.namespace or default_namespace)
        )
    return resolved
