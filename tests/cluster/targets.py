"""A target to sample on the cluster tier: Deployment ``web`` of kwok pods and HPA ``web``.

kwok reports each pod's usage from the annotations set here (see README.md in this directory), so
the pods "use" ``usage_memory`` of their ``memory_request`` whatever runs in them (nothing does).
"""

from __future__ import annotations

from typing import Any

from ._controlplane import USAGE_CPU_ANNOTATION, USAGE_MEMORY_ANNOTATION


def web_target(
    namespace: str,
    replicas: int,
    *,
    max_replicas: int = 6,
    cpu_request: str = "100m",
    memory_request: str = "128Mi",
    memory_limit: str = "256Mi",
    usage_cpu: str = "20m",
    usage_memory: str = "60Mi",
) -> list[dict[str, Any]]:
    """The Deployment and its HPA (on memory, 80 % of request), in creation order."""
    labels = {"app": "web"}
    pod_spec = {
        "containers": [
            {
                "name": "app",
                "image": "registry.k8s.io/pause:3.10",
                "resources": {
                    "requests": {"cpu": cpu_request, "memory": memory_request},
                    "limits": {"memory": memory_limit},
                },
            }
        ]
    }
    annotations = {USAGE_CPU_ANNOTATION: usage_cpu, USAGE_MEMORY_ANNOTATION: usage_memory}
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": pod_spec,
            },
        },
    }
    memory_metric = {
        "type": "Resource",
        "resource": {
            "name": "memory",
            "target": {"type": "Utilization", "averageUtilization": 80},
        },
    }
    hpa = {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": replicas,
            "maxReplicas": max_replicas,
            "metrics": [memory_metric],
        },
    }
    return [deployment, hpa]
