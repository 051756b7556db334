"""The Kubernetes sampler against the fake API server: rows written, calls per tick constant."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.data import schema
from harness.config.values import WatchTarget
from harness.errors import UsageError
from harness.kube.client import KubeClient
from harness.samplers.kube import KubeSampler
from harness.session.store import RunStore

from ._fake_apiserver import FakeApiServer, Scripted, client_of, running

pytestmark = pytest.mark.unit

NS = "team"
START = 1_700_000_000.0
CORE = f"/api/v1/namespaces/{NS}"


def seed(fake: FakeApiServer, pods: int, restarts: int = 0, reason: str | None = None) -> None:
    fake.objects[f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"].clear()
    fake.add(
        f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers",
        {
            "metadata": {"name": "web", "namespace": NS},
            "spec": {
                "scaleTargetRef": {"kind": "Deployment", "name": "web"},
                "maxReplicas": 8,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "memory",
                            "target": {"type": "Utilization", "averageUtilization": 80},
                        },
                    }
                ],
            },
            "status": {
                "currentReplicas": pods,
                "desiredReplicas": pods,
                "currentMetrics": [
                    {
                        "type": "Resource",
                        "resource": {"name": "memory", "current": {"averageUtilization": 60}},
                    }
                ],
            },
        },
    )
    fake.add(
        f"/apis/apps/v1/namespaces/{NS}/deployments",
        {
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": pods, "selector": {"matchLabels": {"app": "web"}}},
            "status": {"readyReplicas": pods, "availableReplicas": pods},
        },
    )
    for index in range(pods):
        last = {"terminated": {"reason": reason, "exitCode": 137}} if reason else {}
        fake.add(
            f"{CORE}/pods",
            {
                "metadata": {"name": f"web-{index}", "namespace": NS, "labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "resources": {
                                "requests": {"memory": "100Mi"},
                                "limits": {"memory": "200Mi"},
                            },
                        }
                    ]
                },
                "status": {
                    "phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}],
                    "containerStatuses": [
                        {"name": "app", "restartCount": restarts, "lastState": last}
                    ],
                },
            },
        )
        fake.add(
            f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods",
            {
                "metadata": {"name": f"web-{index}", "namespace": NS, "labels": {"app": "web"}},
                "containers": [{"name": "app", "usage": {"cpu": "5m", "memory": "60Mi"}}],
            },
        )
    fake.add(
        f"{CORE}/pods",
        {  # not the workload's: must not be recorded
            "metadata": {"name": "other", "namespace": NS, "labels": {"app": "db"}},
            "spec": {"containers": [{}]},
            "status": {"phase": "Running"},
        },
    )


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with running(FakeApiServer()) as server:
        yield server


@pytest.fixture
def kube(fake: FakeApiServer, tmp_path: Path) -> Iterator[KubeClient]:
    with client_of(fake, tmp_path / "kc", NS) as client:
        yield client


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RunStore]:
    run = RunStore.create(
        tmp_path, name="t", mode="sample", config={}, sample_interval_s=1.0, now_s=START
    )
    try:
        yield run
    finally:
        run.close()


def read(store: RunStore, table: schema.CsvSchema) -> list[dict[str, str]]:
    store.flush()
    with (store.directory / schema.SAMPLES_DIR / table.file_name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def event(name: str, kind: str, reason: str, when: str, uid: str) -> dict[str, Any]:
    return {
        "metadata": {"name": uid, "uid": uid, "namespace": NS, "resourceVersion": "1"},
        "involvedObject": {"kind": kind, "name": name},
        "reason": reason,
        "type": "Normal",
        "message": f"{reason} happened",
        "lastTimestamp": when,
    }


def test_one_tick_writes_every_table(
    fake: FakeApiServer, kube: KubeClient, store: RunStore
) -> None:
    seed(fake, pods=3)
    fake.add(
        f"{CORE}/events",
        event("web", "HorizontalPodAutoscaler", "SuccessfulRescale", "2030-01-01T00:00:00Z", "e1"),
    )
    fake.add(
        f"{CORE}/events",
        event("web", "HorizontalPodAutoscaler", "Old", "2001-01-01T00:00:00Z", "e0"),
    )  # before the run
    fake.add(f"{CORE}/events", event("db-0", "Pod", "Killing", "2030-01-01T00:00:00Z", "e2"))
    sampler = KubeSampler(kube, [WatchTarget("hpa", "web")], NS, since_s=START)
    result = sampler.tick(START + 1, store)
    assert result.pods == 3
    assert "web 3/3/8" in result.status and "mem 60%req" in result.status
    (hpa,) = read(store, schema.HPA)
    assert (hpa["hpa"], hpa["target_name"], hpa["current_replicas"]) == ("web", "web", "3")
    (metric,) = read(store, schema.HPA_METRICS)
    assert (metric["metric"], metric["current_utilization"]) == ("memory", "60")
    (workload,) = read(store, schema.WORKLOADS)
    assert (workload["kind"], workload["ready_replicas"]) == ("Deployment", "3")
    pods = read(store, schema.PODS)
    assert sorted(p["pod"] for p in pods) == ["web-0", "web-1", "web-2"]
    assert pods[0]["memory_bytes"] == str(60 * 2**20)
    assert pods[0]["memory_limit_bytes"] == str(200 * 2**20)
    assert [e["reason"] for e in read(store, schema.EVENTS)] == ["SuccessfulRescale"]
    sampler.tick(START + 2, store)
    assert len(read(store, schema.EVENTS)) == 1  # not recorded twice


def test_calls_per_tick_do_not_grow_with_pods(
    fake: FakeApiServer, kube: KubeClient, store: RunStore
) -> None:
    calls = []
    for pods in (5, 50):
        fake.objects.clear()
        seed(fake, pods=pods)
        sampler = KubeSampler(kube, [WatchTarget("hpa", "web")], NS, since_s=START)
        before = kube.calls
        sampler.tick(START, store)
        calls.append(kube.calls - before)
    assert calls[0] == calls[1] == 5  # HPAs, Deployments, pods, PodMetrics, events


def test_scale_events_and_oom_kills_are_announced(
    fake: FakeApiServer, kube: KubeClient, store: RunStore
) -> None:
    seed(fake, pods=2)
    sampler = KubeSampler(kube, [WatchTarget("hpa", "web")], NS, since_s=START)
    assert sampler.tick(START, store).notices == []
    fake.objects.clear()
    seed(fake, pods=4, restarts=1, reason="OOMKilled")
    notices = sampler.tick(START + 1, store).notices
    assert any(n.startswith("scale: hpa team/web 2 -> 4 replicas; memory 60%/80%") for n in notices)
    assert any(n.startswith("OOM kill: pod team/web-0 (limit 200Mi)") for n in notices)


def test_the_live_view_names_the_driving_metric_as_its_reading_changes(
    fake: FakeApiServer, kube: KubeClient, store: RunStore
) -> None:
    seed(fake, pods=2)
    sampler = KubeSampler(kube, [WatchTarget("hpa", "web")], NS, since_s=START)
    seen = []
    for offset, utilization in ((0, 60), (2, 60), (4, 95), (6, 60)):
        collection = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
        hpa = fake.objects[collection]["web"]
        hpa["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"] = (
            utilization
        )
        fake.add(collection, hpa)
        (status,) = sampler.tick(START + offset, store).hpas
        seen.append((status.driving_metric, status.utilization_pct, status.target_pct))
    below, above = ("memory", 60.0, 80.0), ("memory", 95.0, 80.0)
    assert seen == [below, below, above, below]


def test_no_metrics_api_degrades_to_replicas(
    fake: FakeApiServer, kube: KubeClient, store: RunStore
) -> None:
    seed(fake, pods=2)
    path = f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods"
    fake.script(path, Scripted(404, {"message": "the server could not find the resource"}))
    sampler = KubeSampler(kube, [WatchTarget("deployment", "web")], NS, since_s=START)
    sampler.tick(START, store)
    sampler.tick(START + 1, store)
    pods = read(store, schema.PODS)
    # the second tick's pods are unchanged: pods.csv keeps the first snapshot only
    assert len(pods) == 2 and all(p["memory_bytes"] == "" for p in pods)
    assert len(fake.seen("GET", path)) == 1  # asked once, then not again


def test_unchanged_pods_are_written_again_only_at_the_heartbeat(
    fake: FakeApiServer, kube: KubeClient, store: RunStore
) -> None:
    seed(fake, pods=2)
    sampler = KubeSampler(kube, [WatchTarget("deployment", "web")], NS, since_s=START)
    for offset in (0, 2, 4, schema.PODS_HEARTBEAT_S - 1, schema.PODS_HEARTBEAT_S + 1):
        sampler.tick(START + offset, store)
    ticks = sorted({float(p["ts"]) for p in read(store, schema.PODS)})
    assert ticks == [START, START + schema.PODS_HEARTBEAT_S + 1]


def test_api_trouble_is_a_gap_not_a_crash(
    fake: FakeApiServer, kube: KubeClient, store: RunStore
) -> None:
    seed(fake, pods=1)
    path = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
    fake.script(path, *[Scripted(500, {"message": "etcd timeout"})] * 2)
    result = KubeSampler(kube, [WatchTarget("hpa", "web")], NS, since_s=START).tick(START, store)
    assert "etcd timeout" in result.notices[0]
    (mark,) = read(store, schema.MARKS)
    assert mark["kind"] == "sampler_gap"


def test_local_targets_are_refused(kube: KubeClient) -> None:
    with pytest.raises(UsageError, match="local targets"):
        KubeSampler(kube, [WatchTarget("pid", "1")], NS, since_s=START)


def test_sample_only_records_for_the_duration_and_reports(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    import io

    from harness.cli.reporter import PlainReporter
    from harness.modes import launch
    from harness.modes.sample import SampleConfig, SampleMode

    fake.add("/api/v1/namespaces", {"metadata": {"name": NS}})
    seed(fake, pods=2)
    out = io.StringIO()
    config = SampleConfig(
        watch=(WatchTarget("hpa", "web"),),
        duration_s=0.3,
        interval_s=0.1,
        out_dir=tmp_path / "runs",
        name="solo",
        namespace=NS,
    )
    result = launch(SampleMode(kube=kube), config, PlainReporter(out, io.StringIO()))
    assert result.status == "completed"
    assert f"run directory: {result.run_dir}" in out.getvalue()
    with (result.run_dir / "samples" / "hpa.csv").open(encoding="utf-8") as f:
        assert len(list(csv.DictReader(f))) >= 3
    assert (result.run_dir / "report" / "summary.json").is_file()
