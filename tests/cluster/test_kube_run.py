"""Issue 4's cluster-tier acceptance: in-cluster runs against a real API server.

On the local control plane (kwok) pods never run containers, so the Locust master cannot answer:
the tests that need Locust's answers put a scripted master behind the lifecycle's ``transport``
seam and let everything Kubernetes be real (preflight, RBAC, creation order, ownerReferences,
the sampler against real HPAs, pods and PodMetrics, cleanup). The tests that interrupt a real
``kubeswarm run`` process use the real service proxy, which answers 503 (no endpoints) here.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from analysis.data import schema
from harness.backends.cluster import ServiceProxyTransport
from harness.cli.reporter import PlainReporter
from harness.config.options import OPTIONS, merge_sources
from harness.config.run import RunConfig, build_run_config
from harness.config.values import WatchTarget
from harness.errors import LoadGeneratorError, UsageError
from harness.kube.client import KubeClient, connect
from harness.kube.manifests import RUN_LABEL, rbac_objects, run_objects
from harness.kube.runs import delete_run
from harness.locust_api import Transport
from harness.modes import launch
from harness.modes.cluster import ClusterMode
from tests.fixtures.contract import assert_valid_run_directory

from ._controlplane import Cluster
from .targets import web_target

pytestmark = pytest.mark.cluster

RUN_KINDS = ("Job", "Service", "ConfigMap", "NetworkPolicy")
STATS_HISTORY = ",".join(schema.LOCUST_STATS_HISTORY_COLUMNS) + "\n"


# ---------------------------------------------------------------------------- helpers


def make_config(
    tmp_path: Path, namespace: str, run_time_s: float = 20.0, **overrides: Any
) -> RunConfig:
    locustfile = tmp_path / "smoke.py"
    locustfile.write_text(
        "from locust import HttpUser, task\n\n\n"
        "class Smoke(HttpUser):\n"
        "    @task\n"
        "    def index(self) -> None:\n"
        '        self.client.get("/")\n',
        encoding="utf-8",
    )
    values = merge_sources({}, {}, None, tuple(OPTIONS))
    values.update(
        locustfile=locustfile,
        host="http://web:8080",
        out_dir=tmp_path / "runs",
        namespace=namespace,
        run_time_s=run_time_s,
        workers=2,
        autoquit_s=10.0,
    )
    return dataclasses.replace(build_run_config(values), sample_interval_s=1.0, **overrides)


class TimedLocust:
    """A Locust master on a clock: ``ready`` with all workers, ``running`` for ``run_s``, then
    ``stopped``; calls ``on_running`` once while running (to look at the cluster mid-run)."""

    def __init__(self, workers: int, run_s: float, on_running: Any = None) -> None:
        self.workers, self.run_s, self.on_running = workers, run_s, on_running
        self.start: float | None = None
        self.posts: list[str] = []

    def get(self, path: str, timeout_s: float) -> bytes:
        if path != "/stats/requests":
            return STATS_HISTORY.encode() if "history" in path else b"Type,Name\n"
        now = time.monotonic()
        self.start = self.start or now
        elapsed = now - self.start
        state = "ready" if elapsed < 1 else "running" if elapsed < 1 + self.run_s else "stopped"
        if state == "running" and self.on_running is not None:
            self.on_running()
            self.on_running = None
        return json.dumps(
            {
                "state": state,
                "user_count": 10 if state == "running" else 0,
                "worker_count": self.workers,
                "current_rps": 20.0,
                "current_fail_per_sec": 0.0,
                "fail_ratio": 0.0,
                "current_response_time_percentiles": {
                    "response_time_percentile_0.5": 4,
                    "response_time_percentile_0.95": 8,
                },
            }
        ).encode()

    def post(self, path: str, form: Mapping[str, str], timeout_s: float) -> bytes:
        self.posts.append(path)
        return b"{}"


def run_with(
    config: RunConfig, kube: KubeClient, locust: Transport, timeout_s: float = 60.0
) -> Any:
    def transport(_kube: KubeClient, _namespace: str, _service: str) -> Transport:
        return locust

    return launch(
        ClusterMode(kube=kube, transport=transport, startup_timeout=timeout_s),
        config,
        PlainReporter(io.StringIO(), io.StringIO()),
    )


def run_objects_left(kube: KubeClient, namespace: str) -> dict[str, list[dict[str, Any]]]:
    return {
        kind: kube.list_objects(kind, namespace, label_selector=RUN_LABEL) for kind in RUN_KINDS
    }


def create_target(kube: KubeClient, namespace: str, replicas: int = 2) -> None:
    """Deployment ``web`` (kwok pods using 60Mi of 128Mi requested) and HPA ``web`` on memory."""
    for obj in web_target(namespace, replicas):
        kube.create(obj, namespace)


def read_csv(run_dir: Path, table: schema.CsvSchema) -> list[dict[str, str]]:
    import csv

    with (run_dir / schema.SAMPLES_DIR / table.file_name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------- a whole run


def test_a_run_is_created_owned_sampled_and_deleted(
    cluster: Cluster, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    if not cluster.simulated:
        pytest.skip("needs simulated pod usage (the local kwok control plane)")
    create_target(kube, namespace)
    mid_run: dict[str, list[dict[str, Any]]] = {}
    locust = TimedLocust(
        workers=2, run_s=30.0, on_running=lambda: mid_run.update(run_objects_left(kube, namespace))
    )
    config = make_config(tmp_path, namespace, watch=(WatchTarget("hpa", "web"),))
    result = run_with(config, kube, locust)

    # Created: the master Job owns everything else; both Jobs have a deadline and a TTL.
    jobs = {j["metadata"]["name"]: j for j in mid_run["Job"]}
    assert len(jobs) == 2 and len(mid_run["Service"]) == 1 and len(mid_run["ConfigMap"]) == 1
    # The master's NetworkPolicy: zmq from the workers, the web port from the nodes' addresses.
    (policy,) = mid_run["NetworkPolicy"]
    zmq, web = policy["spec"]["ingress"]
    assert (zmq["ports"][0]["port"], web["ports"][0]["port"]) == (5557, 8089)
    node_ips = {
        a["address"] for n in kube.list_objects("Node") for a in n["status"].get("addresses", [])
    }
    assert {b["ipBlock"]["cidr"].split("/")[0] for b in web.get("from", [])} <= node_ips
    master = next(j for n, j in jobs.items() if n.endswith("-master"))
    for job in jobs.values():
        assert job["spec"]["activeDeadlineSeconds"] > 0
        assert job["spec"]["ttlSecondsAfterFinished"] >= 0
    for obj in [
        *mid_run["Service"],
        *mid_run["ConfigMap"],
        *mid_run["NetworkPolicy"],
        *(j for j in jobs.values() if j is not master),
    ]:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert owner["uid"] == master["metadata"]["uid"]

    # Sampled: the HPA and the target's pods with usage from metrics.k8s.io.
    hpa = read_csv(result.run_dir, schema.HPA)
    assert hpa and {r["hpa"] for r in hpa} == {"web"} and hpa[-1]["max_replicas"] == "6"
    all_pods = read_csv(result.run_dir, schema.PODS)
    # The run's own pods are recorded as the workloads of its Jobs (the load generator's health).
    load_workloads = {r["workload"] for r in all_pods if r["workload"] != "web"}
    assert load_workloads == {jobs_name for jobs_name in jobs}
    pods = [r for r in all_pods if r["workload"] == "web"]
    with_usage = [r for r in pods if r["memory_bytes"]]
    assert with_usage, "no pod row carries PodMetrics usage"
    assert float(with_usage[-1]["memory_bytes"]) == pytest.approx(60 * 2**20, rel=0.05)
    assert with_usage[-1]["memory_request_bytes"] == str(128 * 2**20)
    assert read_csv(result.run_dir, schema.WORKLOADS)

    # Results fetched, everything deleted afterwards.
    assert (result.run_dir / "locust" / "stats_history.csv").read_text() == STATS_HISTORY
    assert result.status == "completed"
    assert run_objects_left(kube, namespace) == {kind: [] for kind in RUN_KINDS}
    assert_valid_run_directory(result.run_dir)  # the shipped JSON Schemas hold in a cluster


# ---------------------------------------------------------------------------- interruptions


def kubeswarm_run(cluster: Cluster, namespace: str, tmp_path: Path) -> subprocess.Popen[bytes]:
    tmp_path.mkdir(parents=True, exist_ok=True)
    locustfile = tmp_path / "smoke.py"
    locustfile.write_text(
        "from locust import HttpUser, task\n\n\n"
        "class Smoke(HttpUser):\n"
        "    @task\n"
        "    def index(self) -> None:\n"
        '        self.client.get("/")\n',
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBESWARM_")}
    env["HOME"] = str(tmp_path)
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "-f",
            str(locustfile),
            "-H",
            "http://web:8080",
            "-t",
            "30s",
            "--workers",
            "1",
            "--kubeconfig",
            str(cluster.kubeconfig),
            "-n",
            namespace,
            "--out",
            str(tmp_path / "runs"),
            "--name",
            "sig",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
    )


def wait_for_objects(attempt_dir: Path, timeout_s: float = 90.0) -> None:
    """Until the run in ``attempt_dir`` has recorded the objects it created."""
    deadline = time.monotonic() + timeout_s
    while not any(
        json.loads(meta.read_text() or "{}").get("objects")
        for meta in attempt_dir.glob("runs/*/run.json")
    ):
        assert time.monotonic() < deadline, f"the run created no objects within {timeout_s:g}s"
        time.sleep(0.2)


def test_sigint_at_random_points_leaves_nothing_after_cleanup(
    cluster: Cluster, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    rng = random.Random(4)
    for attempt in range(4):
        process = kubeswarm_run(cluster, namespace, tmp_path / str(attempt))
        if attempt < 3:
            time.sleep(rng.uniform(0.5, 5.0))
        else:  # at least once after the objects exist, however slow the machine is
            wait_for_objects(tmp_path / str(attempt))
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
        left = run_objects_left(kube, namespace)
        assert left == {kind: [] for kind in RUN_KINDS}, (attempt, stderr.decode()[-2000:])
    created = [
        json.loads(meta.read_text()).get("objects") for meta in tmp_path.glob("*/runs/*/run.json")
    ]
    assert any(created), "no interrupt came after the objects were created: move the delays"


def test_sigkill_at_random_points_leaves_nothing_without_a_deadline(
    cluster: Cluster, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    rng = random.Random(9)
    seen_objects = 0
    for attempt in range(4):
        process = kubeswarm_run(cluster, namespace, tmp_path / str(attempt))
        if attempt < 3:
            time.sleep(rng.uniform(0.5, 4.0))
        else:  # at least once after the objects exist, however slow the machine is
            wait_for_objects(tmp_path / str(attempt))
        process.kill()
        process.communicate(timeout=30)
        left = run_objects_left(kube, namespace)
        jobs = {j["metadata"]["uid"]: j for j in left["Job"]}
        for job in left["Job"]:
            assert job["spec"]["activeDeadlineSeconds"] > 0
            assert job["spec"]["ttlSecondsAfterFinished"] >= 0
        for obj in [*left["Service"], *left["ConfigMap"]]:
            owners = [o["uid"] for o in obj["metadata"].get("ownerReferences") or []]
            assert any(uid in jobs for uid in owners), obj["metadata"]
        seen_objects += sum(len(objs) for objs in left.values())
    assert seen_objects, "no kill came after the objects were created: move the delays"
    delete_run(kube, namespace, None)  # `kubeswarm clean --all`
    assert run_objects_left(kube, namespace) == {kind: [] for kind in RUN_KINDS}


# ---------------------------------------------------------------------------- RBAC


def service_account_kubeconfig(
    kube: KubeClient, cluster: Cluster, namespace: str, name: str, path: Path
) -> Path:
    """A kubeconfig that authenticates as ServiceAccount ``name`` (TokenRequest API)."""
    request = {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "spec": {"expirationSeconds": 600},
    }
    from harness.kube.api import Operation

    token = kube.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
        Operation("create", "serviceaccounts/token", namespace, name),
        body=request,
    ).json()["status"]["token"]
    admin = yaml.safe_load(cluster.kubeconfig.read_text(encoding="utf-8"))
    current = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster_entry = next(c for c in admin["clusters"] if c["name"] == current["context"]["cluster"])
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "sa",
                "clusters": [cluster_entry],
                "users": [{"name": "sa", "user": {"token": token}}],
                "contexts": [
                    {
                        "name": "sa",
                        "context": {
                            "cluster": cluster_entry["name"],
                            "user": "sa",
                            "namespace": namespace,
                        },
                    }
                ],
            }
        ),
        encoding="utf-8",
    )
    return path


def apply_rbac(
    kube: KubeClient, namespace: str, drop: tuple[str, str] | None = None, name: str = "kubeswarm"
) -> None:
    for obj in rbac_objects(namespace):
        obj["metadata"]["name"] = name
        if obj["kind"] == "Role" and drop:
            for rule in obj["rules"]:
                if drop[0] in rule["resources"]:
                    rule["verbs"] = [v for v in rule["verbs"] if v != drop[1]]
        if obj["kind"] == "RoleBinding":
            obj["roleRef"]["name"] = name
            obj["subjects"][0]["name"] = name
        kube.create(obj, namespace)


def _proxy_error_once_service_is_seen(kube: KubeClient, namespace: str, service: str) -> str:
    """The service proxy's error for a Service with no endpoints. A Service created a moment ago
    may still be unknown to the proxy (404) while the API server's cache catches up: wait that out.
    """
    deadline = time.monotonic() + 15.0
    while True:
        with pytest.raises(LoadGeneratorError) as caught:
            ServiceProxyTransport(kube, namespace, service).get("/stats/requests", 5.0)
        message = str(caught.value)
        if "answered 404" not in message or time.monotonic() > deadline:
            assert "no endpoints available" in message, message
            return message
        time.sleep(0.5)


def test_the_shipped_role_is_sufficient_and_a_missing_verb_is_named(
    cluster: Cluster, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    create_target(kube, namespace)
    apply_rbac(kube, namespace)
    kubeconfig = service_account_kubeconfig(
        kube, cluster, namespace, "kubeswarm", tmp_path / "sa-kubeconfig"
    )
    as_sa = connect(kubeconfig, environ={})
    try:
        config = make_config(
            tmp_path, namespace, watch=(WatchTarget("hpa", "web"),), run_time_s=5.0
        )
        result = run_with(config, as_sa, TimedLocust(workers=2, run_s=3.0))
        assert result.status == "completed"
        # Sampled on every tick, not only the first: the Role lets the sampler watch what it
        # listed (a Role with list but no watch gave one row, then a gap each tick).
        marks = read_csv(result.run_dir, schema.MARKS)
        assert [m for m in marks if m["kind"] == "sampler_gap"] == [], marks
        ticks = {r["ts"] for r in read_csv(result.run_dir, schema.HPA)}
        assert len(ticks) >= 3, f"the HPA was sampled on every tick of the 5 s run: {ticks}"
        assert run_objects_left(kube, namespace) == {kind: [] for kind in RUN_KINDS}
        # The real service proxy, as the ServiceAccount: allowed, and it reaches the API server
        # (which has no endpoint to send it to on this control plane).
        kube.create(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": "nobody"},
                "spec": {"ports": [{"port": 8089}], "selector": {"app": "nobody"}},
            },
            namespace,
        )
        assert "answered 503" in _proxy_error_once_service_is_seen(as_sa, namespace, "nobody")
    finally:
        as_sa.close()

    apply_rbac(kube, namespace, drop=("services/proxy", "create"), name="lacking")
    lacking = connect(
        service_account_kubeconfig(kube, cluster, namespace, "lacking", tmp_path / "lacking"),
        environ={},
    )
    try:
        with pytest.raises(
            UsageError,
            match=r"missing permission\(s\): create services/proxy "
            rf"in namespace {namespace}",
        ):
            run_with(make_config(tmp_path, namespace), lacking, TimedLocust(2, 1.0))
        assert run_objects_left(kube, namespace) == {kind: [] for kind in RUN_KINDS}
    finally:
        lacking.close()


# ---------------------------------------------------------------------------- Pod Security


def test_a_namespace_enforcing_restricted_admits_the_pods(
    api_client: client.ApiClient, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    client.CoreV1Api(api_client).patch_namespace(
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
    config = make_config(tmp_path, namespace, requirements=("requests==2.32.3",))
    objects = run_objects(config, "20250101-000000-psa", namespace)
    master = kube.create(objects[0], namespace)
    from harness.kube.manifests import with_owner

    for obj in objects[1:]:
        kube.create(with_owner(obj, master), namespace)
    selector = f"{RUN_LABEL}=20250101-000000-psa"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pods = kube.list_objects("Pod", namespace, label_selector=selector)
        components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
        if {"master", "worker"} <= components:
            break
        time.sleep(0.5)
    else:
        events = [
            e["message"]
            for e in kube.list_objects("Event", namespace)
            if e.get("reason") == "FailedCreate"
        ]
        pytest.fail(f"pods not admitted: {events}")
    refused = [
        e
        for e in kube.list_objects("Event", namespace)
        if e.get("reason") == "FailedCreate" and "PodSecurity" in str(e.get("message"))
    ]
    assert refused == []
    delete_run(kube, namespace, "20250101-000000-psa")


# ---------------------------------------------------------------------------- list / clean CLI


def test_list_and_clean_through_the_cli(
    cluster: Cluster, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    from harness.cli import main

    config = make_config(tmp_path, namespace, keep=True, run_time_s=3.0)
    result = run_with(config, kube, TimedLocust(workers=2, run_s=2.0))
    flags = ["--kubeconfig", str(cluster.kubeconfig), "-n", namespace]
    out = io.StringIO()
    assert main(["list", *flags], environ={}, out=out) == 0
    assert result.run_dir.name in out.getvalue()
    out = io.StringIO()
    assert main(["clean", result.run_dir.name, *flags], environ={}, out=out) == 0
    # The master Job goes first; the garbage collector may take its dependents before clean
    # lists them, so not every object is necessarily deleted by clean itself.
    assert "deleted Job/" in out.getvalue()
    assert run_objects_left(kube, namespace) == {kind: [] for kind in RUN_KINDS}
    assert main(["list", *flags], environ={}, out=io.StringIO()) == 0


def test_kubectl_swarm_works_as_a_kubectl_plugin(
    cluster: Cluster, namespace: str, tmp_path: Path
) -> None:
    import shutil

    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed")
    bin_dir = Path(sys.executable).parent
    if not (bin_dir / "kubectl-swarm").is_file():
        pytest.skip("kubeswarm is not installed in this environment (no kubectl-swarm)")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        [kubectl, "swarm", "list", "--kubeconfig", str(cluster.kubeconfig), "-n", namespace],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "no kubeswarm runs in this namespace" in done.stdout
