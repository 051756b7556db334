"""What the real-node tests deploy and how they drive and read kubeswarm, as a user would.

The example target is the shipped `k8s-jobs/example-target/` (the files its kustomization
lists), with the image replaced by the locally built one, as a kustomize `images:` override
would do; kubeswarm itself runs as a separate process (`kubeswarm run ...`), never imported.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

from ._node import LOCUST_IMAGE, PYTHON_IMAGE, RealNode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_TARGET = ROOT / "k8s-jobs" / "example-target"
LOCUSTFILES = ROOT / "locustfiles"
RUN_LABEL = "kubeswarm.io/run"


def kubeswarm_command() -> list[str]:
    """The installed console script next to this interpreter, else `python -m harness`."""
    script = Path(sys.executable).parent / "kubeswarm"
    return [str(script)] if script.exists() else [sys.executable, "-m", "harness"]


#: The shipped example target's Service, as the load pods reach it in the test's namespace.
EXAMPLE_HOST = "http://example-web:8080"


def example_target(
    *,
    memory_request: str | None = None,
    memory_limit: str | None = None,
    cpu_request: str | None = None,
    replicas: int | None = None,
    hpa: bool = True,
) -> list[dict[str, Any]]:
    """The shipped example target's objects, with the local image and optional overrides."""
    kustomization = yaml.safe_load((EXAMPLE_TARGET / "kustomization.yaml").read_text())
    objects = []
    for name in kustomization["resources"]:
        objects += [d for d in yaml.safe_load_all((EXAMPLE_TARGET / name).read_text()) if d]
    for obj in objects:
        if obj["kind"] != "Deployment":
            continue
        if replicas is not None:
            obj["spec"]["replicas"] = replicas
        pod = obj["spec"]["template"]["spec"]
        # The server is PID 1 and installs no SIGTERM handler: the kernel ignores SIGTERM for
        # a namespace's init, so without this every deletion waits the default 30 s.
        pod["terminationGracePeriodSeconds"] = 1
        container = pod["containers"][0]
        container["image"] = PYTHON_IMAGE
        container["imagePullPolicy"] = "Never"
        resources = container["resources"]
        if memory_request:
            resources["requests"]["memory"] = memory_request
        if memory_limit:
            resources["limits"]["memory"] = memory_limit
        if cpu_request:
            resources["requests"]["cpu"] = cpu_request
    if not hpa:
        objects = [o for o in objects if o["kind"] != "HorizontalPodAutoscaler"]
    return objects


_COLLECTIONS = {
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "Service": "/api/v1/namespaces/{ns}/services",
    "Deployment": "/apis/apps/v1/namespaces/{ns}/deployments",
    "HorizontalPodAutoscaler": "/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers",
    "Pod": "/api/v1/namespaces/{ns}/pods",
    "NetworkPolicy": "/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies",
}


def deploy(node: RealNode, namespace: str, objects: Sequence[dict[str, Any]]) -> None:
    for obj in objects:
        status, body = node.api(_COLLECTIONS[obj["kind"]].format(ns=namespace), "POST", obj)
        assert status == 201, f"creating {obj['kind']} failed: HTTP {status}: {body}"


def create_namespace(node: RealNode, name: str) -> None:
    """A namespace that takes pods: created (or there already) with its default ServiceAccount,
    without which pods are refused."""
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    status, resp = node.api("/api/v1/namespaces", "POST", body)
    assert status in (201, 409), f"creating namespace {name}: HTTP {status}: {resp}"
    wait_for(
        f"the default ServiceAccount of {name}",
        lambda: node.api(f"/api/v1/namespaces/{name}/serviceaccounts/default")[0] == 200,
        60,
        0.2,
    )


@contextlib.contextmanager
def fresh_namespace(node: RealNode, prefix: str) -> Iterator[str]:
    """`create_namespace` with a new name PREFIX-xxxxxxxx; deleted on leaving."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    create_namespace(node, name)
    try:
        yield name
    finally:
        node.api(f"/api/v1/namespaces/{name}", "DELETE")


def deploy_and_wait(
    node: RealNode, namespace: str, objects: Sequence[dict[str, Any]], timeout_s: float = 120
) -> None:
    """`deploy`, then wait until each Deployment among the objects has an available replica."""
    deploy(node, namespace, objects)
    for obj in objects:
        if obj["kind"] == "Deployment":
            name = obj["metadata"]["name"]
            wait_for(f"{name} available", deployment_available(node, namespace, name), timeout_s)


def get(node: RealNode, path: str) -> dict[str, Any]:
    status, body = node.api(path)
    assert status == 200, f"GET {path}: HTTP {status}: {body}"
    assert isinstance(body, dict)
    return body


def wait_for(
    what: str, check: Callable[[], bool], timeout_s: float, interval_s: float = 1.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def deployment_available(node: RealNode, namespace: str, name: str) -> Callable[[], bool]:
    def check() -> bool:
        status, body = node.api(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        return status == 200 and bool(body.get("status", {}).get("availableReplicas"))

    return check


def run_args(node: RealNode, namespace: str, out: Path, *extra: str) -> list[str]:
    """`kubeswarm run` against this node, sized for one 2-core machine."""
    return [
        *kubeswarm_command(),
        "run",
        "--kubeconfig",
        str(node.kubeconfig),
        "-n",
        namespace,
        "--image",
        LOCUST_IMAGE,
        "--out",
        str(out),
        # The defaults (1 core per Locust process, 1 core for the master) do not fit next to
        # the target on two cores; a few hundred requests per second need far less.
        "--master-cpu",
        "200m",
        "--master-memory",
        "256Mi",
        "--worker-cpu",
        "250m",
        "--worker-memory",
        "256Mi",
        "--autoquit",
        "10s",
        *extra,
    ]


def start_run(
    args: Sequence[str], log: Path, env_extra: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG",)}
    env["NO_COLOR"] = "1"
    env.update(env_extra or {})
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def finish(proc: subprocess.Popen[bytes], log: Path, timeout_s: float) -> int:
    try:
        return proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(
            f"kubeswarm did not finish in {timeout_s:.0f}s:\n{log.read_text()[-3000:]}"
        ) from None


def run_dir(out: Path) -> Path:
    dirs = [d for d in out.iterdir() if d.is_dir()] if out.exists() else []
    assert len(dirs) == 1, f"expected one run directory in {out}, found {dirs}"
    return dirs[0]


def read_samples(run: Path, name: str) -> list[dict[str, str]]:
    with (run / "samples" / name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def summary(run: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run / "report" / "summary.json").read_text())
    return data


def run_objects(node: RealNode, namespace: str) -> dict[str, list[str]]:
    """Names of the run's Jobs, Services, ConfigMaps and pods in the namespace."""
    paths = {
        "jobs": f"/apis/batch/v1/namespaces/{namespace}/jobs",
        "services": f"/api/v1/namespaces/{namespace}/services",
        "configmaps": f"/api/v1/namespaces/{namespace}/configmaps",
        "pods": f"/api/v1/namespaces/{namespace}/pods",
    }
    return {
        kind: [
            o["metadata"]["name"] for o in get(node, f"{path}?labelSelector={RUN_LABEL}")["items"]
        ]
        for kind, path in paths.items()
    }


#: Container names of kubeswarm's pods (k8s-jobs/master-job.yaml, worker-job.yaml).
KUBESWARM_CONTAINERS = frozenset({"locust", "install-requirements"})


def cri_containers(node: RealNode, namespace: str) -> list[str]:
    """Pods of the namespace with a running kubeswarm container, as containerd sees them."""
    proc = subprocess.run(
        [
            *node.crictl,
            "ps",
            "-o",
            "json",
            "--state",
            "Running",
            "--label",
            f"io.kubernetes.pod.namespace={namespace}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    containers = json.loads(proc.stdout).get("containers") or []
    return sorted(
        c["labels"]["io.kubernetes.pod.name"]
        for c in containers
        if c.get("labels", {}).get("io.kubernetes.container.name") in KUBESWARM_CONTAINERS
    )


def write_wheel(directory: Path, name: str, version: str, module_source: str) -> Path:
    """A minimal pure-Python wheel (PEP 427) holding one module, built without any tool."""
    dist = name.replace("-", "_")
    wheel = directory / f"{dist}-{version}-py3-none-any.whl"
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}.py": module_source,
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: kubeswarm-tests\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n"
        ),
    }
    record = "".join(f"{path},,\n" for path in files) + f"{info}/RECORD,,\n"
    with zipfile.ZipFile(wheel, "w") as zf:
        for path, text in files.items():
            zf.writestr(path, text)
        zf.writestr(f"{info}/RECORD", record)
    return wheel


@contextlib.contextmanager
def kubeswarm_ui(node: RealNode, namespace: str, run_id: str) -> Iterator[str]:
    """`kubeswarm ui RUN` on a free local port: yields the address it printed, stops it after."""
    ui = subprocess.Popen(
        [
            *kubeswarm_command(),
            "ui",
            run_id,
            "--kubeconfig",
            str(node.kubeconfig),
            "-n",
            namespace,
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert ui.stdout is not None
        line = ui.stdout.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/\S*)", line)
        assert match, f"kubeswarm ui printed its address: {line!r}"
        yield match.group(1)
    finally:
        ui.send_signal(signal.SIGINT)  # our own child, by its handle
        try:
            ui.wait(timeout=20)
        except subprocess.TimeoutExpired:
            ui.kill()
            ui.wait()
        if ui.stdout is not None:
            ui.stdout.close()


def ui_stats(node: RealNode, namespace: str, run_id: str) -> dict[str, Any]:
    """Locust's /stats/requests through `kubeswarm ui` (the API server's service proxy), as a
    browser on this machine gets it."""
    with kubeswarm_ui(node, namespace, run_id) as address:
        stats_url = address.rstrip("/") + "/stats/requests"
        with urllib.request.urlopen(stats_url, timeout=30) as response:  # noqa: S310
            stats: dict[str, Any] = json.loads(response.read())
    return stats


def copy_locustfile(name: str, into: Path) -> Path:
    target = into / name
    shutil.copy(LOCUSTFILES / name, target)
    return target
