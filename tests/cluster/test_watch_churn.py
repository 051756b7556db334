"""Nothing missed by the watch-based sampler: churn while the HPA scales, and an API server
restart in the middle.

The sampler (``WatchedState``) ticks every second while the test raises the pods' memory (the
real HPA controller scales 2 -> 6 on metrics-server's readings, a rollout replaces every pod),
deletes a pod (the ReplicaSet reschedules it), OOM-kills one and restarts another (their status
written as the kubelet writes it: restartCount and lastState.terminated), restarts the API server
(every watch cut), then OOM-kills one more. At the end, what the sampler recorded must equal what
a full list and the API's events show: the same pods with the same restart counts and reasons,
every SuccessfulRescale event, every restart and OOM kill noticed.
"""

from __future__ import annotations

import csv
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from analysis.data import schema
from harness.config.values import WatchTarget
from harness.kube.client import KubeClient
from harness.samplers.kube import KubeSampler
from harness.samplers.kube_state import WatchedState
from harness.session.store import RunStore

from ._controlplane import USAGE_MEMORY_ANNOTATION, Cluster
from .targets import web_target

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(420)]


class Ticking:
    """The sampler ticked by the test between its actions (one tick a second)."""

    def __init__(self, kube: KubeClient, store: RunStore, namespace: str) -> None:
        self.store = store
        self.state = WatchedState(kube)
        self.sampler = KubeSampler(
            kube, [WatchTarget("hpa", "web")], namespace, since_s=time.time(), state=self.state
        )
        self.notices: list[str] = []

    def tick(self) -> None:
        result = self.sampler.tick(time.time(), self.store)
        self.notices += result.notices
        self.store.flush()

    def until(self, what: str, check: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            self.tick()
            if check():
                return
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(1.0)


def read(run_dir: Path, table: schema.CsvSchema) -> list[dict[str, str]]:
    with (run_dir / schema.SAMPLES_DIR / table.file_name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def pods_of(kube: KubeClient, namespace: str) -> list[dict[str, Any]]:
    return kube.list_objects("Pod", namespace, "app=web")


def terminate(cluster: Cluster, namespace: str, name: str, reason: str, code: int) -> None:
    """What the kubelet writes when a container ends and is restarted."""
    assert cluster.control_plane is not None
    path = f"/api/v1/namespaces/{namespace}/pods/{name}"
    status, pod = cluster.control_plane.api(path)
    assert status == 200, pod
    container = pod["status"]["containerStatuses"][0]
    container["restartCount"] = int(container.get("restartCount") or 0) + 1
    container["lastState"] = {
        "terminated": {
            "exitCode": code,
            "reason": reason,
            "startedAt": pod["status"].get("startTime"),
            "finishedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    status, answer = cluster.control_plane.api(f"{path}/status", "PUT", pod)
    assert status == 200, answer


def last_rows(run_dir: Path) -> dict[str, tuple[int, str]]:
    rows = read(run_dir, schema.PODS)
    last_ts = max(r["ts"] for r in rows)
    return {
        r["pod"]: (int(r["restarts"]), r["last_termination_reason"])
        for r in rows
        if r["ts"] == last_ts
    }


def listed(kube: KubeClient, namespace: str) -> dict[str, tuple[int, str]]:
    from harness.kube import rows

    out = {}
    for pod in pods_of(kube, namespace):
        row = rows.pod_row(0.0, pod, "web", None)
        out[row["pod"]] = (row["restarts"], row["last_termination_reason"] or "")
    return out


def test_churn_and_an_api_server_restart_lose_nothing(
    cluster: Cluster, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    if not cluster.simulated or cluster.control_plane is None:
        pytest.skip("writes pod status and restarts the API server: the local control plane only")
    for obj in web_target(namespace, 2, max_replicas=6):
        kube.create(obj, namespace)
    store = RunStore.create(tmp_path, name="churn", mode="sample", config={}, sample_interval_s=1)
    run = Ticking(kube, store, namespace)
    try:
        run.until("2 running pods", lambda: len(last_rows(store.directory)) == 2, 120)
        # Memory far above the target: the HPA scales to its max; the rollout replaces pods.
        deployment = kube.get("Deployment", "web", namespace)
        template = deployment["spec"]["template"]["metadata"]
        template["annotations"][USAGE_MEMORY_ANNOTATION] = "300Mi"
        status, answer = cluster.control_plane.api(
            f"/apis/apps/v1/namespaces/{namespace}/deployments/web", "PUT", deployment
        )
        assert status == 200, answer
        run.until("6 replicas", lambda: any("-> 6 replicas" in n for n in run.notices), 180)
        run.until(
            "6 running pods of the new template",
            lambda: (
                len(listed(kube, namespace)) == 6
                and all(p["status"].get("phase") == "Running" for p in pods_of(kube, namespace))
            ),
            120,
        )
        names = sorted(listed(kube, namespace))
        kube.delete_pod(names[0], namespace, 0)  # rescheduled by the ReplicaSet
        terminate(cluster, namespace, names[1], "OOMKilled", 137)
        terminate(cluster, namespace, names[2], "Error", 1)
        run.tick()

        down_s = cluster.control_plane.restart_apiserver()
        terminate(cluster, namespace, names[3], "OOMKilled", 137)  # before the watch is back
        run.until(
            "the sampled pods equal a full list",
            lambda: last_rows(store.directory) == listed(kube, namespace),
            60,
        )
    finally:
        run.sampler.close()
        store.close()

    final = listed(kube, namespace)
    assert names[0] not in final and len(final) == 6
    assert final[names[1]] == (1, "OOMKilled") and final[names[3]] == (1, "OOMKilled")
    assert final[names[2]] == (1, "Error")
    for name in (names[1], names[3]):
        assert any(n.startswith(f"OOM kill: pod {namespace}/{name}") for n in run.notices)
    assert any(n.startswith(f"restart: pod {namespace}/{names[2]}") for n in run.notices)
    # The watches were cut and came back (resumed, or re-listed after a 410).
    pods = next(r for r in run.state.reflectors if r.kind == "Pod")
    assert pods.counters.reconnects >= 1 or pods.counters.gone >= 1
    # The restart shows as a gap of a few ticks, not as rows from a stale state.
    gaps = [m for m in read(store.directory, schema.MARKS) if m["kind"] == "sampler_gap"]
    assert len(gaps) <= down_s + 30
    # Every rescale the API recorded is in events.csv.
    events = {(e["reason"], e["message"]) for e in read(store.directory, schema.EVENTS)}
    rescales = [
        (e["reason"], " ".join(e["message"].split()))
        for e in kube.list_objects("Event", namespace)
        if e.get("reason") == "SuccessfulRescale"
    ]
    assert rescales and set(rescales) <= events
