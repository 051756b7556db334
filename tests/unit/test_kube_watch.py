"""List+watch against the fake API server over real HTTP: what is kept equals what the server
has, through bookmarks, 410 Gone, cut connections; the watched sampler writes the same rows as
the listed one with a number of calls per tick that does not grow with the pods."""

from __future__ import annotations

import csv
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.config.values import WatchTarget
from harness.kube.client import KubeClient
from harness.kube.watch import DICT_CODEC, POD_CODEC, Pod, Reflector
from harness.samplers.kube import KubeSampler
from harness.samplers.kube_state import ListedState, MetricsPoller, WatchedState
from harness.session.store import RunStore

from ._fake_apiserver import FakeApiServer, client_of, running

pytestmark = pytest.mark.unit

NS = "team"
PODS = f"/api/v1/namespaces/{NS}/pods"
EVENTS = f"/api/v1/namespaces/{NS}/events"
METRICS = f"/apis/metrics.k8s.io/v1beta1/namespaces/{NS}/pods"
START = 1_700_000_000.0


def pod(name: str, restarts: int = 0, reason: str | None = None) -> dict[str, Any]:
    last = {"terminated": {"reason": reason, "finishedAt": "2023-11-14T22:13:00Z"}}
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"app": "web"},
            "creationTimestamp": "2023-11-14T22:00:00Z",
            "managedFields": [{"manager": "kube-controller-manager", "fieldsV1": {"f:x": {}}}],
        },
        "spec": {
            "containers": [
                {
                    "name": "app",
                    "image": "web:1",
                    "resources": {"requests": {"memory": "100Mi", "cpu": "100m"}},
                }
            ]
        },
        "status": {
            "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "app", "restartCount": restarts, "lastState": last if reason else {}}
            ],
        },
    }


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with running(FakeApiServer()) as server:
        yield server


@pytest.fixture
def kube(fake: FakeApiServer, tmp_path: Path) -> Iterator[KubeClient]:
    with client_of(fake, tmp_path / "kubeconfig", NS) as client:
        yield client


def eventually(check: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not reached in time"
        time.sleep(0.02)


def pod_reflector(kube: KubeClient) -> Reflector[Pod, Pod]:
    reflector = Reflector(
        kube, "Pod", NS, POD_CODEC, lambda p: p, "app=web", backoff_base_s=0.05, backoff_max_s=0.2
    )
    reflector.start()
    reflector.wait_synced(10)
    return reflector


def kept(reflector: Reflector[Pod, Pod]) -> dict[str, int]:
    return {
        p.metadata.name: sum(s.restartCount for s in p.status.containerStatuses)
        for p in reflector.items()
    }


def test_the_watch_follows_adds_changes_and_deletes(fake: FakeApiServer, kube: KubeClient) -> None:
    fake.add(PODS, pod("web-0"))
    reflector = pod_reflector(kube)
    try:
        assert kept(reflector) == {"web-0": 0}
        fake.add(PODS, pod("web-1"))
        fake.add(PODS, pod("web-0", restarts=1, reason="OOMKilled"))
        fake.remove(PODS, "web-1")
        fake.add(PODS, pod("web-2"))
        eventually(lambda: kept(reflector) == {"web-0": 1, "web-2": 0})
        oom = next(p for p in reflector.items() if p.metadata.name == "web-0")
        reason = oom.status.containerStatuses[0].lastState.terminated
        assert reason is not None and reason.reason == "OOMKilled"
        assert reflector.counters.lists == 1
    finally:
        reflector.stop()


def test_a_cut_watch_resumes_from_its_version_without_a_relist(
    fake: FakeApiServer, kube: KubeClient
) -> None:
    fake.add(PODS, pod("web-0"))
    reflector = pod_reflector(kube)
    try:
        eventually(lambda: reflector.counters.watches >= 1)
        fake.drop_watches()
        fake.add(PODS, pod("web-0", restarts=3, reason="Error"))  # while cut
        eventually(lambda: kept(reflector) == {"web-0": 3})
        assert reflector.counters.reconnects >= 1
        assert reflector.counters.lists == 1  # resumed, not re-listed
        watches = [r for r in fake.seen("GET", PODS) if r.query.get("watch")]
        assert all(r.query["allowWatchBookmarks"] == ["true"] for r in watches)
    finally:
        reflector.stop()


def test_410_gone_is_answered_with_a_relist_that_loses_nothing(
    fake: FakeApiServer, kube: KubeClient
) -> None:
    fake.add(PODS, pod("web-0"))
    fake.add(PODS, pod("web-1"))
    reflector = pod_reflector(kube)
    try:
        reflector.drain_changed()
        eventually(lambda: reflector.counters.watches >= 1)
        fake.compact()
        fake.drop_watches()
        fake.remove(PODS, "web-1")
        fake.add(PODS, pod("web-0", restarts=1, reason="OOMKilled"))
        fake.compact()  # the version the watch resumes from is gone
        eventually(lambda: kept(reflector) == {"web-0": 1})
        assert reflector.counters.gone >= 1 and reflector.counters.lists >= 2
        assert [p.metadata.name for p in reflector.drain_changed()] == ["web-0"]
    finally:
        reflector.stop()


def test_bookmarks_move_the_version_a_reconnect_starts_from(
    fake: FakeApiServer, kube: KubeClient
) -> None:
    fake.add(PODS, pod("web-0"))
    reflector = pod_reflector(kube)
    try:
        for index in range(3):  # changes elsewhere move the server's version on
            fake.add(EVENTS, {"metadata": {"name": f"e{index}", "namespace": NS}})
        version = fake.version
        eventually(lambda: reflector.counters.events >= 1)  # a bookmark came
        fake.drop_watches()
        eventually(
            lambda: any(
                r.query.get("resourceVersion") == [str(version)]
                for r in fake.seen("GET", PODS)
                if r.query.get("watch")
            )
        )
    finally:
        reflector.stop()


def test_a_refused_list_is_an_error_on_the_first_tick_not_a_dead_thread(
    fake: FakeApiServer, kube: KubeClient
) -> None:
    fake.denied.add("list pods")
    fake.objects.pop(PODS, None)
    from harness.errors import ClusterError
    from tests.unit._fake_apiserver import Scripted

    fake.script(PODS, Scripted(403, {"kind": "Status", "message": 'cannot list "pods"'}))
    reflector = Reflector(kube, "Pod", NS, DICT_CODEC, lambda p: p)
    reflector.start()
    with pytest.raises(ClusterError, match="may not list pods"):
        reflector.wait_synced(10)
    reflector.stop()


def seed_target(fake: FakeApiServer, pods: int) -> None:
    fake.add(
        f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers",
        {
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}, "maxReplicas": 9},
            "status": {"currentReplicas": pods, "desiredReplicas": pods},
        },
    )
    fake.add(
        f"/apis/apps/v1/namespaces/{NS}/deployments",
        {
            "metadata": {"name": "web", "namespace": NS},
            "spec": {"replicas": pods, "selector": {"matchLabels": {"app": "web"}}},
        },
    )
    for index in range(pods):
        fake.add(PODS, pod(f"web-{index}"))
        fake.add(METRICS, metrics(f"web-{index}", "2023-11-14T22:14:00Z", "50Mi"))


def metrics(name: str, when: str, memory: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": NS, "labels": {"app": "web"}},
        "timestamp": when,
        "window": "15s",
        "containers": [{"name": "app", "usage": {"cpu": "20m", "memory": memory}}],
    }


def sampled(store_dir: Path) -> list[dict[str, str]]:
    with (store_dir / "samples" / "pods.csv").open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_watched_and_listed_samplers_write_the_same_pod_rows(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    seed_target(fake, 4)
    target = [WatchTarget("hpa", "web")]
    written = {}
    for name, state in (("listed", ListedState(kube)), ("watched", WatchedState(kube))):
        store = RunStore.create(
            tmp_path / name, name=name, mode="sample", config={}, sample_interval_s=2
        )
        with KubeSampler(kube, target, NS, since_s=START, state=state) as sampler:
            sampler.tick(START + 60, store)
        store.close()
        written[name] = sampled(store.directory)
    assert len(written["listed"]) == 4
    assert written["watched"] == written["listed"]
    assert {r["usage_ts"] for r in written["watched"]} == {str(int(START + 40))}


def test_watched_calls_per_tick_do_not_grow_with_pods(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    calls = []
    for pods in (2, 40):
        fake.objects.clear()
        seed_target(fake, pods)
        store = RunStore.create(
            tmp_path / str(pods), name="w", mode="sample", config={}, sample_interval_s=2
        )
        state = WatchedState(kube)
        with KubeSampler(kube, [WatchTarget("hpa", "web")], NS, START, state) as sampler:
            sampler.tick(START, store)
            before = kube.calls
            for tick in range(1, 6):
                assert sampler.tick(START + tick, store).pods == pods
            calls.append(kube.calls - before)
        store.close()
    assert calls[0] == calls[1]


def test_pod_metrics_are_listed_at_their_resolution_and_parsed_once_per_timestamp(
    fake: FakeApiServer, kube: KubeClient
) -> None:
    t0 = START
    fake.add(METRICS, metrics("web-0", "2023-11-14T22:13:20Z", "50Mi"))  # = START
    poller = MetricsPoller(kube, NS, "app=web")
    first = poller.usage(t0 + 1)
    assert first is not None and first["web-0"].memory_bytes == 50 * 2**20
    # Same measurement again: listed each tick until the resolution shows, not parsed again.
    again = poller.usage(t0 + 3)
    assert again is not None and again["web-0"] is first["web-0"]
    fake.add(METRICS, metrics("web-0", "2023-11-14T22:13:35Z", "60Mi"))  # 15 s later
    newer = poller.usage(t0 + 16)
    assert newer is not None and newer["web-0"].memory_bytes == 60 * 2**20
    assert poller.resolution_s == 15.0
    lists = poller.lists
    for tick in range(18, 31, 2):  # before the next measurement is due: no list
        poller.usage(t0 + tick)
    assert poller.lists == lists
    poller.usage(t0 + 32)  # 15 s + 1 s after the last measurement
    assert poller.lists == lists + 1


def test_ticks_with_nothing_new_are_skipped_yet_every_change_shows_at_once(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    seed_target(fake, 2)
    store = RunStore.create(tmp_path, name="w", mode="sample", config={}, sample_interval_s=2)
    state = WatchedState(kube)
    with KubeSampler(kube, [WatchTarget("hpa", "web")], NS, START, state) as sampler:
        first = sampler.tick(START, store)
        assert [(w.pods, w.memory_pct_of_request) for w in first.workloads] == [(2, 50.0)]
        for tick in (2, 4):  # nothing new: the rows are not written again
            assert sampler.tick(START + tick, store).workloads == first.workloads
        store.flush()
        assert {r["ts"] for r in sampled(store.directory)} == {str(int(START))}

        fake.add(PODS, pod("web-1", restarts=1, reason="OOMKilled"))
        (pods,) = [r for r in state.reflectors if r.kind == "Pod"]
        eventually(lambda: any(row["restarts"] == 1 for row in pods.items()))
        oom = sampler.tick(START + 6, store)
        assert any(n.startswith("OOM kill: pod team/web-1") for n in oom.notices)
        fake.add(METRICS, metrics("web-0", "2023-11-14T22:14:30Z", "80Mi"))
        newer = sampler.tick(START + 8, store)
        assert [w.memory_pct_of_request for w in newer.workloads] == [80.0]
        assert "mem 80%req" in newer.status
        assert sampler.tick(START + 10, store).notices == []  # the kill is told once
    store.close()
    rows = sampled(store.directory)
    assert sorted({r["ts"] for r in rows}) == [str(int(START + t)) for t in (0, 6, 8)]
    at_6 = {r["pod"]: r for r in rows if r["ts"] == str(int(START + 6))}
    assert at_6["web-1"]["restarts"] == "1" and at_6["web-1"]["last_termination_reason"] == (
        "OOMKilled"
    )
