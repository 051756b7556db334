"""Rows of samples/*.csv from API objects written as the API server returns them."""

from __future__ import annotations

from typing import Any

import pytest

from analysis.data import schema
from harness.kube import rows

pytestmark = pytest.mark.unit

TS = 1_700_000_000.0

HPA: dict[str, Any] = {
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
        "maxReplicas": 10,
        "metrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": 70},
                },
            },
            {
                "type": "Resource",
                "resource": {
                    "name": "memory",
                    "target": {"type": "AverageValue", "averageValue": "512Mi"},
                },
            },
        ],
    },
    "status": {
        "currentReplicas": 3,
        "desiredReplicas": 5,
        "currentMetrics": [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "current": {"averageUtilization": 91, "averageValue": "182m"},
                },
            },
            {
                "type": "Resource",
                "resource": {"name": "memory", "current": {"averageValue": "52428800500m"}},
            },
        ],
        "conditions": [
            {"type": "AbleToScale", "status": "True", "reason": "SucceededRescale"},
            {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
            {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange"},
        ],
    },
}


def test_hpa_row_with_conditions_and_default_min() -> None:
    row = rows.hpa_row(TS, HPA)
    assert set(row) == set(schema.HPA.names)
    assert row == {
        "ts": TS,
        "namespace": "shop",
        "hpa": "web",
        "target_kind": "Deployment",
        "target_name": "web",
        "min_replicas": 1,
        "max_replicas": 10,
        "current_replicas": 3,
        "desired_replicas": 5,
        "able_to_scale": True,
        "scaling_active": True,
        "scaling_limited": False,
        "last_scale_ts": None,  # this HPA never scaled
        "owner_kind": None,
        "owner_name": None,
        "behavior": None,
    }


def test_hpa_without_status_yet_leaves_cells_empty() -> None:
    row = rows.hpa_row(
        TS,
        {"metadata": {"name": "x", "namespace": "n"}, "spec": {"minReplicas": 2, "maxReplicas": 4}},
    )
    assert row["current_replicas"] is None and row["able_to_scale"] is None
    assert row["min_replicas"] == 2


def test_hpa_metrics_in_millicores_and_bytes() -> None:
    cpu, memory = rows.hpa_metric_rows(TS, HPA)
    assert set(cpu) == set(schema.HPA_METRICS.names)
    assert cpu["metric"] == "cpu"
    assert (cpu["current_utilization"], cpu["target_utilization"]) == (91.0, 70.0)
    assert cpu["current_value"] == pytest.approx(182.0)
    assert cpu["target_value"] is None
    assert memory["metric"] == "memory"
    assert memory["current_utilization"] is None
    assert memory["current_value"] == pytest.approx(52428800.5)
    assert memory["target_value"] == 512 * 2**20


def test_a_metric_without_a_reading_yet() -> None:
    hpa = {**HPA, "status": {"currentReplicas": 1}}
    assert [r["current_value"] for r in rows.hpa_metric_rows(TS, hpa)] == [None, None]


POD: dict[str, Any] = {
    "metadata": {"name": "web-7d9-abc", "namespace": "shop"},
    "spec": {
        "containers": [
            {
                "name": "app",
                "resources": {
                    "requests": {"cpu": "250m", "memory": "256Mi"},
                    "limits": {"memory": "512Mi"},
                },
            },
            {"name": "sidecar", "resources": {"requests": {"cpu": "50m"}}},
        ]
    },
    "status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [
            {
                "name": "app",
                "restartCount": 2,
                "state": {"running": {}},
                "lastState": {
                    "terminated": {
                        "reason": "OOMKilled",
                        "exitCode": 137,
                        "finishedAt": "2024-05-01T12:00:05Z",
                    }
                },
            },
            {
                "name": "sidecar",
                "restartCount": 1,
                "lastState": {
                    "terminated": {
                        "reason": "Error",
                        "exitCode": 1,
                        "finishedAt": "2024-05-01T11:00:00Z",
                    }
                },
            },
        ],
    },
}
POD_METRICS = {
    "metadata": {"name": "web-7d9-abc"},
    "containers": [
        {"name": "app", "usage": {"cpu": "120500000n", "memory": "300Mi"}},
        {"name": "sidecar", "usage": {"cpu": "2m", "memory": "10Mi"}},
    ],
}


def test_pod_row_sums_containers_and_names_the_oom_kill() -> None:
    row = rows.pod_row(TS, POD, "web", POD_METRICS)
    assert set(row) == set(schema.PODS.names)
    assert row["workload"] == "web" and row["phase"] == "Running" and row["ready"] is True
    assert row["restarts"] == 3
    assert row["last_termination_reason"] == "OOMKilled"  # the newer of the two
    assert row["cpu_m"] == pytest.approx(122.5)
    assert row["memory_bytes"] == 310 * 2**20
    assert row["cpu_request_m"] == pytest.approx(300.0)
    assert row["cpu_limit_m"] is None  # no container sets it: not measured, not zero
    assert row["memory_request_bytes"] == 256 * 2**20
    assert row["memory_limit_bytes"] == 512 * 2**20


def test_pod_without_metrics_has_empty_usage() -> None:
    row = rows.pod_row(TS, POD, "web", None)
    assert row["cpu_m"] is None and row["memory_bytes"] is None


def test_pending_pod() -> None:
    pod = {
        "metadata": {"name": "p", "namespace": "n"},
        "spec": {"containers": [{}]},
        "status": {"phase": "Pending"},
    }
    row = rows.pod_row(TS, pod, "w", None)
    assert (row["phase"], row["ready"], row["restarts"], row["last_termination_reason"]) == (
        "Pending",
        False,
        0,
        None,
    )


def test_event_row_takes_the_newest_time_and_flattens_the_message() -> None:
    event = {
        "metadata": {"namespace": "shop", "creationTimestamp": "2024-05-01T12:00:00Z"},
        "involvedObject": {"kind": "HorizontalPodAutoscaler", "name": "web"},
        "reason": "SuccessfulRescale",
        "type": "Normal",
        "message": "New size: 4; reason: cpu resource utilization\n(percentage of request) above "
        "target",
        "firstTimestamp": "2024-05-01T12:00:00Z",
        "lastTimestamp": "2024-05-01T12:00:30Z",
    }
    row = rows.event_row(event)
    assert set(row) == set(schema.EVENTS.names)
    assert row["ts"] == rows.timestamp("2024-05-01T12:00:30Z")
    assert "\n" not in row["message"]
    micro = {"eventTime": "2024-05-01T12:01:00.123456Z"}
    whole = rows.timestamp("2024-05-01T12:01:00Z")
    assert whole is not None
    assert rows.event_time(micro) == pytest.approx(whole + 0.123456)


def test_selector_query() -> None:
    selector = {
        "matchLabels": {"app": "web", "tier": "fe"},
        "matchExpressions": [
            {"key": "track", "operator": "In", "values": ["a", "b"]},
            {"key": "canary", "operator": "DoesNotExist"},
        ],
    }
    assert rows.selector_query(selector) == "app=web,tier=fe,track in (a,b),!canary"
    assert rows.selector_query({}) is None


def test_a_new_hpa_reporting_zero_desired_is_not_a_decision() -> None:
    # Before its first successful computation an HPA's status says desiredReplicas: 0 while the
    # Deployment runs its pods; recorded as 0 it would read as a scale event 0 -> 2.
    row = rows.hpa_row(
        TS,
        {
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"minReplicas": 2, "maxReplicas": 6},
            "status": {"currentReplicas": 2, "desiredReplicas": 0},
        },
    )
    assert row["current_replicas"] == 2
    assert row["desired_replicas"] is None
    # Seconds after creation the status may not even count the pods yet (seen on a real node):
    # still not a decision, so no scale event "from 0".
    fresh = rows.hpa_row(
        TS,
        {
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"minReplicas": 1, "maxReplicas": 6},
            "status": {"desiredReplicas": 0},
        },
    )
    assert fresh["current_replicas"] is None and fresh["desired_replicas"] is None


def test_hpa_row_records_the_controllers_own_scale_time() -> None:
    hpa = {**HPA, "status": {**HPA["status"], "lastScaleTime": "2024-05-01T12:00:07Z"}}
    row = rows.hpa_row(TS, hpa)
    assert row["last_scale_ts"] == rows.timestamp("2024-05-01T12:00:07Z")


def test_pod_row_records_what_the_hpa_reads_besides_usage() -> None:
    pod = {
        "metadata": {
            "name": "web-1",
            "namespace": "shop",
            "creationTimestamp": "2024-05-01T12:00:00Z",
            "deletionTimestamp": "2024-05-01T12:05:00Z",
        },
        "spec": {"containers": [{}]},
        "status": {
            "phase": "Running",
            "startTime": "2024-05-01T12:00:02Z",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {
                    "type": "Ready",
                    "status": "True",
                    "lastTransitionTime": "2024-05-01T12:00:40Z",
                },
            ],
        },
    }
    row = rows.pod_row(TS, pod, "web", None)
    assert row["start_ts"] == rows.timestamp("2024-05-01T12:00:02Z")  # startTime, not creation
    assert row["ready_since_ts"] == rows.timestamp("2024-05-01T12:00:40Z")
    assert row["deleting"] is True
    del pod["status"]["startTime"]  # type: ignore[attr-defined]
    del pod["metadata"]["deletionTimestamp"]  # type: ignore[attr-defined]
    row = rows.pod_row(TS, pod, "web", None)
    assert row["start_ts"] == rows.timestamp("2024-05-01T12:00:00Z")  # not yet started: created
    assert row["deleting"] is False


# A KEDA-made HPA as the API returns it: an External AverageValue metric (a queue), an Object
# Value metric (an Ingress's requests per second) and a ContainerResource metric.
KEDA_HPA: dict[str, Any] = {
    "metadata": {
        "name": "keda-hpa-orders",
        "namespace": "shop",
        "ownerReferences": [
            {
                "apiVersion": "keda.sh/v1alpha1",
                "kind": "ScaledObject",
                "name": "orders",
                "controller": True,
                "uid": "u-1",
            }
        ],
    },
    "spec": {
        "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "orders"},
        "minReplicas": 1,
        "maxReplicas": 20,
        "behavior": {"scaleDown": {"stabilizationWindowSeconds": 60}},
        "metrics": [
            {
                "type": "External",
                "external": {
                    "metric": {
                        "name": "s0-queue_depth",
                        "selector": {
                            "matchLabels": {"scaledobject.keda.sh/name": "orders"},
                            "matchExpressions": [
                                {"key": "queue", "operator": "In", "values": ["a", "b"]}
                            ],
                        },
                    },
                    "target": {"type": "AverageValue", "averageValue": "100"},
                },
            },
            {
                "type": "Object",
                "object": {
                    "describedObject": {"kind": "Ingress", "name": "shop", "apiVersion": "v1"},
                    "metric": {"name": "requests_per_second"},
                    "target": {"type": "Value", "value": "2k"},
                },
            },
            {
                "type": "ContainerResource",
                "containerResource": {
                    "name": "cpu",
                    "container": "app",
                    "target": {"type": "Utilization", "averageUtilization": 60},
                },
            },
        ],
    },
    "status": {
        "currentReplicas": 4,
        "desiredReplicas": 14,
        "currentMetrics": [
            {
                "type": "External",
                "external": {
                    "metric": {"name": "s0-queue_depth"},
                    "current": {"averageValue": "340"},
                },
            },
            {
                "type": "Object",
                "object": {
                    "describedObject": {"kind": "Ingress", "name": "shop", "apiVersion": "v1"},
                    "metric": {"name": "requests_per_second"},
                    "current": {"value": "2500m"},
                },
            },
            {
                "type": "ContainerResource",
                "containerResource": {
                    "name": "cpu",
                    "container": "app",
                    "current": {"averageUtilization": 75, "averageValue": "300m"},
                },
            },
        ],
    },
}


def test_hpa_row_names_keda_as_its_owner_and_keeps_its_behavior() -> None:
    row = rows.hpa_row(TS, KEDA_HPA)
    assert (row["owner_kind"], row["owner_name"]) == ("ScaledObject", "orders")
    assert row["behavior"] == '{"scaleDown": {"stabilizationWindowSeconds": 60}}'
    plain = rows.hpa_row(TS, HPA)
    assert (plain["owner_kind"], plain["owner_name"], plain["behavior"]) == (None, None, None)


def test_every_metric_source_is_recorded_in_its_own_terms() -> None:
    external, obj, container = rows.hpa_metric_rows(TS, KEDA_HPA)
    assert set(external) == set(schema.HPA_METRICS.names)
    assert (external["metric"], external["metric_type"], external["target_type"]) == (
        "s0-queue_depth",
        "External",
        "AverageValue",
    )
    assert (external["current_value"], external["target_value"]) == (340.0, 100.0)
    assert external["selector"] == "scaledobject.keda.sh/name=orders,queue in (a,b)"
    assert (obj["metric_type"], obj["target_type"], obj["described_object"]) == (
        "Object",
        "Value",
        "Ingress/shop",
    )
    assert (obj["current_total"], obj["target_total"]) == (2.5, 2000.0)
    assert (container["metric_type"], container["container"]) == ("ContainerResource", "app")
    assert (container["current_utilization"], container["current_value"]) == (75.0, 300.0)
