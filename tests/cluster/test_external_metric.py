"""Issue 19: the real HPA controller scales a Deployment on an External metric, and kubeswarm
records it.

A metrics adapter built from sigs.k8s.io/custom-metrics-apiserver (controlplane/adapter) serves
external.metrics.k8s.io through the API server's aggregation layer, as KEDA or prometheus-adapter
would. The test plays the queue: it writes `queue_depth{queue=orders}` into the adapter while a
cluster run (`run_cluster`, a scripted Locust master as in test_kube_run.py; everything
Kubernetes real) samples the HPA. kube-controller-manager's HPA controller reads the metric
through the API server and scales the Deployment (kwok pods) from 1 to 4 replicas (340 against
an average value of 100 per pod) and back to 2 (150).

The run is done once per module (`external_run`); each test asserts on its run directory.
"""

from __future__ import annotations

import csv
import json
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from analysis.data import schema
from harness.config.values import WatchTarget
from harness.kube.client import KubeClient, connect
from tests.controlplane.metrics_adapter import MetricsAdapter

from ._controlplane import Cluster
from .test_controlplane import dig, plain, wait_for, web_deployment
from .test_kube_run import TimedLocust, make_config, run_with

pytestmark = pytest.mark.cluster

NAME = "worker"
METRIC = "queue_depth"
QUEUE = {"queue": "orders"}
TARGET_PER_POD = 100
#: (queue depth the test writes, replicas the HPA must reach): ceil(depth / 100 per pod).
BASELINE = ("50", 1)
PHASES = (("340", 4), ("150", 2))
MIN_REPLICAS, MAX_REPLICAS = 1, 6
#: The scripted master runs this long: enough for both phases (each takes one or two 5 s syncs).
RUN_S = 70.0
HPA_SYNC_S = 5.0  # kube-controller-manager's --horizontal-pod-autoscaler-sync-period here


def external_hpa(name: str) -> dict[str, Any]:
    """An HPA on an External metric with an AverageValue target, as KEDA creates for a queue;
    scale-down without a stabilization window, to keep the test short."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": MIN_REPLICAS,
            "maxReplicas": MAX_REPLICAS,
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": {"name": METRIC, "selector": {"matchLabels": QUEUE}},
                        "target": {"type": "AverageValue", "averageValue": str(TARGET_PER_POD)},
                    },
                }
            ],
            "behavior": {
                "scaleDown": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                }
            },
        },
    }


@dataclass
class ExternalRun:
    """What the module's run left for the assertions."""

    run_dir: Path
    namespace: str
    #: (time the test wrote the value, value, replicas the Deployment then reached, when).
    writes: list[tuple[float, str, int, float]] = field(default_factory=list)

    def samples(self, table: schema.CsvSchema) -> list[dict[str, str]]:
        with (self.run_dir / schema.SAMPLES_DIR / table.file_name).open(encoding="utf-8") as f:
            return sorted(csv.DictReader(f), key=lambda r: float(r["ts"]))

    def summary(self) -> dict[str, Any]:
        path = self.run_dir / schema.REPORT_DIR / "summary.json"
        loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return loaded


@pytest.fixture(scope="module")
def external_run(
    cluster: Cluster,
    api_client: client.ApiClient,
    metrics_adapter: MetricsAdapter,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ExternalRun]:
    core = client.CoreV1Api(api_client)
    namespace = f"kubeswarm-test-external-{int(time.time())}"
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace)))
    wait_for(
        "the namespace's default ServiceAccount",
        lambda: bool(
            core.list_namespaced_service_account(
                namespace, field_selector="metadata.name=default"
            ).items
        ),
        60,
        0.2,
    )
    kube = connect(cluster.kubeconfig, namespace=namespace, environ={})
    try:
        yield _run(api_client, kube, metrics_adapter, namespace, tmp_path_factory.mktemp("ext"))
    finally:
        kube.close()
        core.delete_namespace(namespace, propagation_policy="Background")


def _run(
    api_client: client.ApiClient,
    kube: KubeClient,
    adapter: MetricsAdapter,
    namespace: str,
    tmp_path: Path,
) -> ExternalRun:
    apps = client.AppsV1Api(api_client)
    autoscaling = client.AutoscalingV2Api(api_client)
    apps.create_namespaced_deployment(namespace, web_deployment(NAME, replicas=MIN_REPLICAS))
    adapter.set_external(namespace, METRIC, BASELINE[0], QUEUE)
    kube.create(external_hpa(NAME), namespace)

    def replicas() -> int:
        dep = plain(apps.read_namespaced_deployment(NAME, namespace))
        ready: int = dig(dep, "status", "readyReplicas") or 0
        return ready if dep["spec"]["replicas"] == ready else -1

    def reads_the_metric() -> bool:
        hpa = plain(autoscaling.read_namespaced_horizontal_pod_autoscaler(NAME, namespace))
        metrics = dig(hpa, "status", "currentMetrics") or []
        return any(m.get("type") == "External" for m in metrics) and replicas() == BASELINE[1]

    wait_for("the HPA to read the External metric through the adapter", reads_the_metric, 60, 1)

    result = ExternalRun(run_dir=tmp_path, namespace=namespace)
    failure: list[BaseException] = []

    def play_the_queue() -> None:
        try:
            time.sleep(5)  # a baseline in the samples
            for value, want in PHASES:
                written = time.time()
                adapter.set_external(namespace, METRIC, value, QUEUE)
                wait_for(
                    f"{want} ready replicas on {METRIC}={value}",
                    lambda want=want: replicas() == want,  # type: ignore[misc]
                    45,
                    0.5,
                )
                result.writes.append((written, value, want, time.time()))
                time.sleep(5)
        except BaseException as err:  # reported in the test's thread
            failure.append(err)

    player = threading.Thread(target=play_the_queue, name="queue-player", daemon=True)
    config = make_config(
        tmp_path,
        namespace,
        run_time_s=RUN_S,
        watch=(WatchTarget("hpa", NAME),),
        hpa_sync_period_s=HPA_SYNC_S,
    )

    def start_playing() -> None:
        player.start()

    run = run_with(config, kube, TimedLocust(workers=2, run_s=RUN_S, on_running=start_playing))
    player.join(timeout=120)
    if failure:
        raise AssertionError(f"the queue player failed: {failure[0]}") from failure[0]
    assert run.status == "completed", run
    result.run_dir = run.run_dir
    return result


def test_the_hpa_samples_carry_the_replica_changes_the_external_metric_drove(
    external_run: ExternalRun,
) -> None:
    hpa = external_run.samples(schema.HPA)
    assert {r["hpa"] for r in hpa} == {NAME}
    desired = [(float(r["ts"]), int(r["desired_replicas"])) for r in hpa if r["desired_replicas"]]
    # The recorded desired replicas, with repeats collapsed: 1, then 4, then 2.
    steps = [n for n, _ in groupby(n for _, n in desired)]
    assert steps == [BASELINE[1], *(want for _, want in PHASES)], desired
    for written, value, want, reached in external_run.writes:
        first = next(ts for ts, n in desired if n == want and ts >= written)
        assert first <= reached + 2.0, (value, want, first - written)
    current = [int(r["current_replicas"]) for r in hpa if r["current_replicas"]]
    assert max(current) == PHASES[0][1] and current[-1] == PHASES[1][1]


def test_the_external_metric_is_recorded_with_its_target(external_run: ExternalRun) -> None:
    rows = [r for r in external_run.samples(schema.HPA_METRICS) if r["metric"] == METRIC]
    assert rows, "no hpa_metrics.csv row for the External metric"
    assert {float(r["target_value"]) for r in rows} == {TARGET_PER_POD}
    # AverageValue: the controller reports the metric's total over its current replicas; 340
    # at 1 replica (the sync that scaled up) is the highest reading.
    seen = [float(r["current_value"]) for r in rows if r["current_value"]]
    assert max(seen) == pytest.approx(float(PHASES[0][0]))


def test_the_report_counts_the_external_scale_events(external_run: ExternalRun) -> None:
    (entry,) = external_run.summary()["hpas"]
    assert (entry["start_replicas"], entry["peak_replicas"], entry["final_replicas"]) == (
        BASELINE[1],
        PHASES[0][1],
        PHASES[1][1],
    )
    events = [(e["from"], e["to"]) for e in entry["scale_events"]]
    assert events == [(BASELINE[1], PHASES[0][1]), (PHASES[0][1], PHASES[1][1])], events


def test_the_report_explains_the_scaling_in_the_metrics_own_terms(
    external_run: ExternalRun,
) -> None:
    (entry,) = external_run.summary()["hpas"]
    (metric,) = entry["metrics"]
    assert (metric["metric"], metric["type"], metric["target_type"]) == (
        METRIC,
        "External",
        "AverageValue",
    )
    assert metric["selector"] is not None and "queue=orders" in metric["selector"]
    assert metric["target"] == TARGET_PER_POD
    assert metric["peak"] == pytest.approx(float(PHASES[0][0]))
    sentence = metric["sentence"]
    assert f"{METRIC}" in sentence and "340 per pod against a target of 100" in sentence
    report = external_run.run_dir / schema.REPORT_DIR
    assert sentence in (report / "report.md").read_text(encoding="utf-8")
    assert sentence in (report / "report.html").read_text(encoding="utf-8")


def test_the_model_reproduces_the_real_controllers_decisions(external_run: ExternalRun) -> None:
    (entry,) = external_run.summary()["hpas"]
    check = entry["model_check"]
    assert check["not_checked"] is None, check
    assert check["sync_period_s"] == HPA_SYNC_S  # what the run was told (--hpa-sync-period)
    # 1 -> 4 and 4 -> 2 at least, and the syncs that kept the count
    assert check["decisions"] >= 2, check
    assert check["exact"] >= 0.98 * check["decisions"], check
    assert check["within_one"] == check["decisions"], check
    assert check["sentence"] in (external_run.run_dir / schema.REPORT_DIR / "report.md").read_text(
        encoding="utf-8"
    )


def test_a_whatif_on_the_external_target_replays_the_run(
    external_run: ExternalRun, tmp_path: Path
) -> None:
    from analysis.report import write_report

    copy = tmp_path / "run"
    shutil.copytree(external_run.run_dir, copy)
    summary = write_report(copy, whatifs=[f"{NAME}:metric_target=200"])
    (whatif,) = summary["whatif"]
    assert whatif["recorded_peak_replicas"] == PHASES[0][1]
    # 340 in total against 200 per pod: ceil(1.7) = 2 replicas at the peak, not 4
    assert whatif["predicted_peak_replicas"] == 2, whatif
    assert whatif["model_check"] == summary["hpas"][0]["model_check"]["sentence"]
