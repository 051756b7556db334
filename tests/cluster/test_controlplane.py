"""The cluster tier's own checks: the controllers kubeswarm relies on behave as in a real cluster.

Jobs, garbage collection, TTL after finished, Pod Security admission and the HPA controller acting
on metrics.k8s.io. They run against the local control plane (kwok nodes) or, with
`KUBESWARM_TEST_KUBECONFIG`, against a real cluster (where the tests that need simulated usage
are skipped).

Objects are written as plain manifests (`from_dict`) and read back as plain dicts (`to_dict`),
so the checks read like the YAML they are about.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from analysis.data.units import parse_quantity

from ._controlplane import (
    COMPLETE_DELAY_ANNOTATION,
    USAGE_CPU_ANNOTATION,
    USAGE_MEMORY_ANNOTATION,
    Cluster,
)

pytestmark = pytest.mark.cluster

T = TypeVar("T")
M = TypeVar("M")

# A small public image; on the local control plane nothing is pulled or run.
IMAGE = "busybox:1.36"
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
POLL_S = 0.5


class _Model(Protocol):
    def to_dict(self, serialize: bool = False) -> dict[str, Any]: ...


def plain(model: _Model) -> dict[str, Any]:
    """An API object as the API server writes it (camelCase keys; absent fields are None)."""
    return model.to_dict(serialize=True)


def build(from_dict: Callable[[dict[str, Any]], M | None], manifest: dict[str, Any]) -> M:
    """A client model from a manifest, e.g. `build(client.V1Job.from_dict, {...})`."""
    model = from_dict(manifest)
    assert model is not None
    return model


def dig(obj: dict[str, Any] | None, *path: str) -> Any:
    """obj[path[0]][path[1]]..., or None where a level is missing or None."""
    cur: Any = obj
    for key in path:
        if not isinstance(cur, dict):
            return None
        cur = cur.get(key)
    return cur


def wait_for(
    what: str, probe: Callable[[], T | None], timeout_s: float, poll_s: float = POLL_S
) -> T:
    """Call `probe` until it returns something other than None/False; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        got = probe()
        if got is not None and got is not False:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(poll_s)


RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "runAsNonRoot": True,
    "runAsUser": 65534,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def job_manifest(
    name: str,
    *,
    run_s: int,
    parallelism: int = 1,
    completions: int = 1,
    ttl_after_finished_s: int | None = None,
) -> client.V1Job:
    """A Job whose pods run `run_s` seconds and succeed (a sleep on real nodes; kwok's delay)."""
    spec: dict[str, Any] = {
        "parallelism": parallelism,
        "completions": completions,
        "backoffLimit": 0,
        "template": {
            "metadata": {
                "labels": {"app": name},
                "annotations": {COMPLETE_DELAY_ANNOTATION: f"{run_s}s"},
            },
            "spec": {
                "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 1,
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "main",
                        "image": IMAGE,
                        "command": ["sh", "-c", f"sleep {run_s}"],
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "16Mi"},
                            "limits": {"memory": "32Mi"},
                        },
                        "securityContext": RESTRICTED_CONTAINER_SECURITY,
                    }
                ],
            },
        },
    }
    if ttl_after_finished_s is not None:
        spec["ttlSecondsAfterFinished"] = ttl_after_finished_s
    return build(
        client.V1Job.from_dict,
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": name, "labels": {"app": name}},
            "spec": spec,
        },
    )


def has_condition(obj: dict[str, Any], kind: str) -> bool:
    return any(
        c.get("type") == kind and c.get("status") == "True"
        for c in dig(obj, "status", "conditions") or []
    )


def list_pods(core: client.CoreV1Api, namespace: str, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = plain(
        core.list_namespaced_pod(namespace, label_selector=selector)
    )["items"]
    return items


def phase(pod: dict[str, Any]) -> str | None:
    value: str | None = dig(pod, "status", "phase")
    return value


def is_gone(read: Callable[[], object]) -> bool:
    try:
        read()
    except ApiException as err:
        if err.status == 404:
            return True
        raise
    return False


# ------------------------------------------------------------------------------------------------
# Jobs


def test_job_pods_are_scheduled_run_and_succeed(
    api_client: client.ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(api_client)
    core = client.CoreV1Api(api_client)
    batch.create_namespaced_job(
        namespace, job_manifest("work", run_s=6, parallelism=2, completions=2)
    )

    seen_running: set[str] = set()

    def both_running() -> bool:
        for pod in list_pods(core, namespace, "app=work"):
            if phase(pod) == "Running" and dig(pod, "spec", "nodeName"):
                seen_running.add(pod["metadata"]["name"])
        return len(seen_running) >= 2

    wait_for("2 pods of the Job scheduled and Running together", both_running, 120)

    def complete() -> dict[str, Any] | None:
        job = plain(batch.read_namespaced_job("work", namespace))
        return job if has_condition(job, "Complete") else None

    job = wait_for("the Job to complete", complete, 120)
    assert dig(job, "status", "succeeded") == 2
    assert not dig(job, "status", "failed")
    pods = list_pods(core, namespace, "app=work")
    assert {p["metadata"]["name"] for p in pods} == seen_running
    for pod in pods:
        assert phase(pod) == "Succeeded"
        assert dig(pod, "spec", "nodeName"), "pod was never scheduled"
        (status,) = dig(pod, "status", "containerStatuses")
        assert dig(status, "state", "terminated", "exitCode") == 0


def test_deleting_a_job_in_background_collects_its_pods_and_dependents(
    api_client: client.ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(api_client)
    core = client.CoreV1Api(api_client)
    job = plain(
        batch.create_namespaced_job(
            namespace, job_manifest("owner", run_s=3600, parallelism=2, completions=2)
        )
    )
    core.create_namespaced_config_map(
        namespace,
        build(
            client.V1ConfigMap.from_dict,
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {
                    "name": "owned",
                    "ownerReferences": [
                        {
                            "apiVersion": "batch/v1",
                            "kind": "Job",
                            "name": job["metadata"]["name"],
                            "uid": job["metadata"]["uid"],
                            "blockOwnerDeletion": True,
                        }
                    ],
                },
                "data": {"locustfile.py": "# owned by the Job\n"},
            },
        ),
    )
    wait_for(
        "2 Running pods",
        lambda: sum(phase(p) == "Running" for p in list_pods(core, namespace, "app=owner")) == 2,
        120,
    )

    batch.delete_namespaced_job("owner", namespace, propagation_policy="Background")

    wait_for(
        "the Job to be gone",
        lambda: is_gone(lambda: batch.read_namespaced_job("owner", namespace)),
        60,
    )
    wait_for("the Job's pods to be gone", lambda: not list_pods(core, namespace, "app=owner"), 120)
    wait_for(
        "the ConfigMap owned by the Job to be gone",
        lambda: is_gone(lambda: core.read_namespaced_config_map("owned", namespace)),
        120,
    )


def test_deleting_a_job_without_propagation_policy_orphans_its_pods(
    api_client: client.ApiClient, namespace: str
) -> None:
    """Why kubeswarm always deletes Jobs with propagation_policy="Background"."""
    batch = client.BatchV1Api(api_client)
    core = client.CoreV1Api(api_client)
    batch.create_namespaced_job(namespace, job_manifest("orphaner", run_s=3600))
    wait_for(
        "a Running pod",
        lambda: any(phase(p) == "Running" for p in list_pods(core, namespace, "app=orphaner")),
        120,
    )
    batch.delete_namespaced_job("orphaner", namespace)
    wait_for(
        "the Job to be gone",
        lambda: is_gone(lambda: batch.read_namespaced_job("orphaner", namespace)),
        60,
    )

    def orphans() -> list[str] | None:
        pods = list_pods(core, namespace, "app=orphaner")
        names = [p["metadata"]["name"] for p in pods if not dig(p, "metadata", "ownerReferences")]
        return names if names and len(names) == len(pods) else None

    names = wait_for("the pod to lose its owner reference", orphans, 60)
    time.sleep(3)  # the garbage collector has had its chance to (wrongly) delete it
    assert [p["metadata"]["name"] for p in list_pods(core, namespace, "app=orphaner")] == names


def test_ttl_after_finished_removes_the_finished_job(
    api_client: client.ApiClient, namespace: str
) -> None:
    batch = client.BatchV1Api(api_client)
    core = client.CoreV1Api(api_client)
    batch.create_namespaced_job(namespace, job_manifest("short", run_s=2, ttl_after_finished_s=1))
    seen_complete: list[bool] = []

    def gone() -> bool:
        try:
            job = plain(batch.read_namespaced_job("short", namespace))
        except ApiException as err:
            if err.status == 404:
                return True
            raise
        if has_condition(job, "Complete"):
            seen_complete.append(True)
        return False

    wait_for("the finished Job to be deleted by its TTL", gone, 120, poll_s=0.2)
    assert seen_complete, "the Job vanished before it was seen complete"
    wait_for(
        "the Job's pods to be deleted", lambda: not list_pods(core, namespace, "app=short"), 120
    )


# ------------------------------------------------------------------------------------------------
# Pod Security admission


def pod(name: str, security_context: dict[str, Any]) -> client.V1Pod:
    return build(
        client.V1Pod.from_dict,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name},
            "spec": {
                "automountServiceAccountToken": False,
                "containers": [
                    {
                        "name": "main",
                        "image": IMAGE,
                        "command": ["sleep", "3600"],
                        "securityContext": security_context,
                    }
                ],
            },
        },
    )


def test_pod_security_restricted_rejects_privileged_and_admits_compliant_pods(
    api_client: client.ApiClient, namespace: str
) -> None:
    core = client.CoreV1Api(api_client)
    core.patch_namespace(
        namespace,
        {
            "metadata": {
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/enforce-version": "latest",
                }
            }
        },
    )
    with pytest.raises(ApiException) as excinfo:
        core.create_namespaced_pod(namespace, pod("privileged", {"privileged": True}))
    assert excinfo.value.status == 403
    body = str(excinfo.value.body)
    assert "violates PodSecurity" in body
    assert "privileged" in body

    created = plain(
        core.create_namespaced_pod(namespace, pod("compliant", RESTRICTED_CONTAINER_SECURITY))
    )
    assert created["metadata"]["name"] == "compliant"


# ------------------------------------------------------------------------------------------------
# Simulated usage through metrics.k8s.io, and the HPA acting on it


class SimulatedUsage:
    """Keeps kwok's usage annotations on every pod matching a selector.

    The usage is set on the pods themselves, not on the Deployment's pod template: patching the
    template would roll the Deployment (a new ReplicaSet, new pods), which a change of load does
    not do. Pods created later (by a scale-up) get the current usage at the next `apply()`, which
    callers run on every poll: a new pod shows the default usage (1m CPU, 1Mi) for at most one
    poll interval, well under metrics-server's resolution.
    """

    def __init__(self, core: client.CoreV1Api, namespace: str, selector: str) -> None:
        self.core = core
        self.namespace = namespace
        self.selector = selector
        self.want: dict[str, str] = {}

    def set(self, *, cpu: str, memory: str) -> None:
        self.want = {USAGE_CPU_ANNOTATION: cpu, USAGE_MEMORY_ANNOTATION: memory}
        self.apply()

    def apply(self) -> None:
        for p in list_pods(self.core, self.namespace, self.selector):
            if dig(p, "metadata", "deletionTimestamp") is not None:
                continue
            have = dig(p, "metadata", "annotations") or {}
            if all(have.get(k) == v for k, v in self.want.items()):
                continue
            try:
                self.core.patch_namespaced_pod(
                    p["metadata"]["name"],
                    self.namespace,
                    {"metadata": {"annotations": self.want}},
                )
            except ApiException as err:
                if err.status not in (404, 409):
                    raise


def web_deployment(name: str, replicas: int) -> client.V1Deployment:
    labels = {"app": name}
    return build(
        client.V1Deployment.from_dict,
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "containers": [
                            {
                                "name": "web",
                                "image": PAUSE_IMAGE,
                                "resources": {
                                    "requests": {"cpu": "100m", "memory": "128Mi"},
                                    "limits": {"memory": "512Mi"},
                                },
                                "securityContext": RESTRICTED_CONTAINER_SECURITY,
                            }
                        ],
                    },
                },
            },
        },
    )


def web_hpa(name: str, scale_down_window_s: int) -> client.V2HorizontalPodAutoscaler:
    def utilization(resource: str, pct: int) -> dict[str, Any]:
        return {
            "type": "Resource",
            "resource": {
                "name": resource,
                "target": {"type": "Utilization", "averageUtilization": pct},
            },
        }

    return build(
        client.V2HorizontalPodAutoscaler.from_dict,
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": name},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": 2,
                "maxReplicas": 6,
                "metrics": [utilization("memory", 80), utilization("cpu", 80)],
                "behavior": {
                    "scaleDown": {
                        "stabilizationWindowSeconds": scale_down_window_s,
                        "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                    }
                },
            },
        },
    )


def test_hpa_scales_on_simulated_memory_and_respects_scale_down_stabilization(
    cluster: Cluster, api_client: client.ApiClient, namespace: str
) -> None:
    if not cluster.simulated:
        pytest.skip("needs simulated pod usage (the local kwok control plane)")
    apps = client.AppsV1Api(api_client)
    core = client.CoreV1Api(api_client)
    autoscaling = client.AutoscalingV2Api(api_client)
    window_s = 40
    apps.create_namespaced_deployment(namespace, web_deployment("web", replicas=2))
    usage = SimulatedUsage(core, namespace, "app=web")
    usage.set(cpu="10m", memory="25Mi")  # 10% of the CPU request, 20% of the memory request
    autoscaling.create_namespaced_horizontal_pod_autoscaler(namespace, web_hpa("web", window_s))

    def hpa_status() -> dict[str, Any]:
        status: dict[str, Any] = (
            plain(autoscaling.read_namespaced_horizontal_pod_autoscaler("web", namespace))["status"]
            or {}
        )
        return status

    def deployment() -> dict[str, Any]:
        return plain(apps.read_namespaced_deployment("web", namespace))

    def replicas() -> int:
        value: int = deployment()["spec"]["replicas"]
        return value

    def utilization(status: dict[str, Any]) -> dict[str, int]:
        return {
            m["resource"]["name"]: m["resource"]["current"]["averageUtilization"]
            for m in status.get("currentMetrics") or []
            if dig(m, "resource", "current", "averageUtilization") is not None
        }

    def metrics_flowing() -> dict[str, int] | None:
        usage.apply()
        got = utilization(hpa_status())
        return got if set(got) == {"memory", "cpu"} else None

    baseline = wait_for(
        "the HPA to read memory and CPU from metrics.k8s.io", metrics_flowing, 120, 1
    )
    assert baseline["memory"] < 80, baseline
    assert replicas() == 2

    # Load: 400Mi of 128Mi requested = 312% (target 80%): wants 8 pods, capped at 6.
    usage.set(cpu="10m", memory="400Mi")

    def scaled_up() -> bool:
        usage.apply()
        return (hpa_status().get("desiredReplicas") or 0) > 2 and replicas() > 2

    wait_for("the HPA to scale the Deployment up", scaled_up, 120, 1)

    def at_max() -> bool:
        usage.apply()
        dep = deployment()
        return bool(dep["spec"]["replicas"] == 6 and dig(dep, "status", "readyReplicas") == 6)

    wait_for("6 ready replicas (the HPA's max)", at_max, 120, 1)
    status = hpa_status()
    assert utilization(status)["memory"] > 80, status
    limited = [c for c in status.get("conditions") or [] if c["type"] == "ScalingLimited"]
    assert limited, status
    assert limited[0]["status"] == "True"
    assert limited[0]["reason"] == "TooManyReplicas"

    # Load gone (back to 20% of the request). The HPA keeps the highest recommendation of the
    # last `window_s` seconds and recommended 6 until it saw the new usage, so no scale-down
    # can come before about t0 + window_s (allow one HPA sync and some slack: window - 10 s).
    # Without the window it would come within one metric resolution plus one sync (~15 s).
    usage.set(cpu="10m", memory="25Mi")
    t0 = time.monotonic()
    hold_s = window_s - 10
    while time.monotonic() - t0 < hold_s:
        usage.apply()
        assert replicas() == 6, (
            f"scaled down {time.monotonic() - t0:.0f}s after the load went, inside the "
            f"{window_s}s stabilization window"
        )
        time.sleep(1)

    def scaled_down() -> float | None:
        usage.apply()
        return time.monotonic() - t0 if replicas() < 6 else None

    dropped_after = wait_for("the HPA to scale down after the window", scaled_down, 90, 1)
    assert dropped_after >= hold_s
    wait_for("the Deployment back at min replicas (2)", lambda: replicas() == 2, 90, 1)
    events = plain(
        core.list_namespaced_event(
            namespace, field_selector="involvedObject.kind=HorizontalPodAutoscaler"
        )
    )["items"]
    reasons = [e["reason"] for e in events]
    assert "SuccessfulRescale" in reasons, reasons


def test_usage_annotations_reach_the_metrics_api(
    cluster: Cluster, api_client: client.ApiClient, namespace: str
) -> None:
    """Pod-wide and per-container usage annotations show up in metrics.k8s.io as set."""
    if not cluster.simulated:
        pytest.skip("needs simulated pod usage (the local kwok control plane)")
    core = client.CoreV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    name = f"usage-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_pod(
        namespace,
        build(
            client.V1Pod.from_dict,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "annotations": {
                        USAGE_CPU_ANNOTATION: "250m",
                        USAGE_MEMORY_ANNOTATION: "300Mi",
                        f"{USAGE_MEMORY_ANNOTATION}-sidecar": "20Mi",
                    },
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {"name": "app", "image": PAUSE_IMAGE},
                        {"name": "sidecar", "image": PAUSE_IMAGE},
                    ],
                },
            },
        ),
    )

    def usage() -> dict[str, dict[str, str]] | None:
        try:
            found: Any = custom.get_namespaced_custom_object(
                "metrics.k8s.io", "v1beta1", namespace, "pods", name
            )
        except ApiException as err:
            if err.status == 404:
                return None
            raise
        return {c["name"]: c["usage"] for c in found.get("containers", [])} or None

    got = wait_for("the pod's metrics", usage, 90, 1)
    assert parse_quantity(got["app"]["memory"]) == 300 * 2**20
    assert parse_quantity(got["sidecar"]["memory"]) == 20 * 2**20
    # CPU is metrics-server's rate over kwok's cumulative counter: about the 250m set.
    assert 0.2 <= parse_quantity(got["app"]["cpu"]) <= 0.3
    assert 0.2 <= parse_quantity(got["sidecar"]["cpu"]) <= 0.3
