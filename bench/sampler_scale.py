"""The Kubernetes sampler's cost per tick for 10, 100 and 500 target pods.

Starts the cluster tier's local control plane (kwok fake pods with simulated usage, real
metrics-server), or uses ``KUBESWARM_TEST_KUBECONFIG``; creates a Deployment of N pods behind an
HPA per size, waits until PodMetrics report them, then times ``KubeSampler.tick``: API calls per
tick must not depend on N, harness CPU per tick may grow at most linearly with N.

    python -m bench.sampler_scale [--ticks 10] [--sizes 10,100,500]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from harness.config.values import WatchTarget
from harness.kube.client import KubeClient, connect
from harness.samplers.kube import KubeSampler
from harness.session.store import RunStore
from tests.cluster.targets import web_target


@dataclass(frozen=True)
class Measurement:
    pods: int
    calls_per_tick: float
    cpu_ms_per_tick: float
    wall_ms_per_tick: float
    rows_per_tick: float


@contextlib.contextmanager
def cluster_kubeconfig(max_pods: int) -> Iterator[Path]:
    given = os.environ.get("KUBESWARM_TEST_KUBECONFIG")
    if given:
        yield Path(given)
        return
    from tests.cluster._controlplane import running_control_plane

    per_node = str(max_pods // 3 + 50)
    with running_control_plane(node_pods=per_node, progress=lambda line: None) as cp:
        yield cp.kubeconfig


def create_target(kube: KubeClient, namespace: str, pods: int) -> None:
    kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    deadline = time.monotonic() + 60
    while not kube.list_objects("ServiceAccount", namespace):
        if time.monotonic() > deadline:
            raise RuntimeError(f"namespace {namespace} has no default ServiceAccount")
        time.sleep(0.2)
    objects = web_target(
        namespace,
        pods,
        max_replicas=pods,
        cpu_request="10m",
        memory_request="64Mi",
        memory_limit="128Mi",
    )
    for obj in objects:
        kube.create(obj, namespace)


def wait_ready(kube: KubeClient, namespace: str, pods: int, timeout_s: float = 240.0) -> int:
    """Until every pod runs and most report PodMetrics; returns how many report metrics."""
    deadline = time.monotonic() + timeout_s
    reporting = 0
    while time.monotonic() < deadline:
        running = [
            p
            for p in kube.list_objects("Pod", namespace, "app=web")
            if (p.get("status") or {}).get("phase") == "Running"
        ]
        reporting = len(kube.list_pod_metrics(namespace, "app=web") or [])
        if len(running) >= pods and reporting >= 0.9 * pods:
            return reporting
        time.sleep(2)
    return reporting


def measure(kube: KubeClient, namespace: str, pods: int, ticks: int) -> Measurement:
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(
            Path(tmp), name="bench", mode="sample", config={}, sample_interval_s=1.0
        )
        sampler = KubeSampler(
            kube, [WatchTarget("hpa", "web", namespace)], namespace, since_s=time.time()
        )
        sampler.tick(time.time(), store)  # warm up: connections, first events
        calls, cpu, wall, rows = kube.calls, time.process_time(), time.perf_counter(), 0
        for _ in range(ticks):
            rows += sampler.tick(time.time(), store).pods
            store.flush()
        result = Measurement(
            pods=pods,
            calls_per_tick=(kube.calls - calls) / ticks,
            cpu_ms_per_tick=(time.process_time() - cpu) * 1000 / ticks,
            wall_ms_per_tick=(time.perf_counter() - wall) * 1000 / ticks,
            rows_per_tick=rows / ticks,
        )
        store.close()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=10)
    parser.add_argument("--sizes", default="10,100,500")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results = []
    with cluster_kubeconfig(max(sizes)) as kubeconfig:
        kube = connect(kubeconfig, environ={})
        for pods in sizes:
            namespace = f"bench-{pods}-{uuid.uuid4().hex[:6]}"
            create_target(kube, namespace, pods)
            reporting = wait_ready(kube, namespace, pods)
            results.append(measure(kube, namespace, pods, args.ticks))
            print(f"measured {pods} pods ({reporting} with PodMetrics)", file=sys.stderr)
            kube.delete("Namespace", namespace)
        kube.close()
    print(
        f"{'pods':>5} {'calls/tick':>10} {'CPU ms/tick':>12} {'CPU us/pod':>11} "
        f"{'wall ms/tick':>13} {'pod rows/tick':>14}"
    )
    for r in results:
        print(
            f"{r.pods:>5} {r.calls_per_tick:>10.1f} {r.cpu_ms_per_tick:>12.1f} "
            f"{r.cpu_ms_per_tick * 1000 / r.pods:>11.0f} {r.wall_ms_per_tick:>13.1f} "
            f"{r.rows_per_tick:>14.0f}"
        )
    first, last = results[0], results[-1]
    constant = len({r.calls_per_tick for r in results}) == 1
    # At most linear: CPU per tick grows no faster than the pod count (with 20% slack).
    linear = last.cpu_ms_per_tick <= first.cpu_ms_per_tick * (last.pods / first.pods) * 1.2
    growth = last.cpu_ms_per_tick / first.cpu_ms_per_tick
    print(
        f"calls per tick constant: {'yes' if constant else 'NO'}; CPU x{growth:.1f} for "
        f"x{last.pods / first.pods:.0f} pods: {'at most linear' if linear else 'SUPERLINEAR'}"
    )
    return 0 if constant and linear else 1


if __name__ == "__main__":
    raise SystemExit(main())
