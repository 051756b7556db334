"""The Kubernetes sampler's cost per pod and tick at 1,000 and 5,000 pods: listed vs watched.

Starts the cluster tier's local control plane (kwok fake pods with simulated usage, real
metrics-server), or uses ``KUBESWARM_TEST_KUBECONFIG``; creates a Deployment of N pods behind an
HPA per size and waits until PodMetrics report them. Then, on the same pods, side by side:

- the list-based sampler (``ListedState``: every pod and PodMetrics listed and decoded each tick),
  ticked back to back;
- the watch-based sampler (``WatchedState``), ticked every ``--interval`` seconds of real time, so
  that the PodMetrics are listed at the pace a run lists them. Its CPU is all the process's CPU
  from its first to its last measured tick (the watch threads' decoding included).

It also decodes the pods' list body, as fetched, with json, orjson and msgspec (the fields a row
needs), the measurement behind harness/kube/watch.py's choice. The last line is the watch-based
sampler at the largest size ("sampler: N pods: X us CPU per pod per tick, Y API calls per tick,
harness RSS +Z MiB over T ticks").

    python -m bench.sampler_scale [--sizes 1000,5000] [--ticks 30] [--list-ticks 5] [--interval 2]
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import psutil

from harness.config.values import WatchTarget
from harness.kube.api import RESOURCES, Operation
from harness.kube.client import KubeClient, connect
from harness.kube.watch import POD_CODEC
from harness.samplers.kube import KubeSampler
from harness.samplers.kube_state import ClusterState, ListedState, WatchedState
from harness.session.store import RunStore
from tests.cluster.targets import web_target


@dataclass(frozen=True)
class Measurement:
    sampler: str
    pods: int
    ticks: int
    calls_per_tick: float
    cpu_us_per_pod_tick: float
    rows_per_tick: float
    rss_growth_mib: float
    watch_events: int


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


def wait_ready(kube: KubeClient, namespace: str, pods: int, timeout_s: float) -> int:
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
        print(f"  {len(running)}/{pods} running, {reporting} with PodMetrics", file=sys.stderr)
        if len(running) >= pods and reporting >= 0.9 * pods:
            return reporting
        time.sleep(10)
    return reporting


def rss_mib() -> float:
    return psutil.Process().memory_info().rss / 2**20


def watch_events(state: ClusterState) -> int:
    """Events the watches received so far (0 for the listed state)."""
    if not isinstance(state, WatchedState):
        return 0
    return sum(r.counters.events for r in state.reflectors)


def measure(
    kube: KubeClient,
    *,
    namespace: str,
    pods: int,
    name: str,
    state: ClusterState,
    ticks: int,
    interval_s: float,
) -> Measurement:
    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore.create(
            Path(tmp), name="bench", mode="sample", config={}, sample_interval_s=interval_s
        )
        target = [WatchTarget("hpa", "web", namespace)]
        with KubeSampler(kube, target, namespace, since_s=time.time(), state=state) as sampler:
            for _ in range(3):  # warm up: connections, first lists, the metrics' resolution
                sampler.tick(time.time(), store)
                store.flush()
                time.sleep(interval_s)
            rss = rss_mib()
            events = watch_events(state)
            calls, cpu, rows = kube.calls, time.process_time(), 0
            next_tick = time.monotonic()
            for _ in range(ticks):
                if interval_s:
                    time.sleep(max(0.0, next_tick - time.monotonic()))
                    next_tick += interval_s
                rows += sampler.tick(time.time(), store).pods
                store.flush()
            cpu_s = time.process_time() - cpu
            result = Measurement(
                sampler=name,
                pods=pods,
                ticks=ticks,
                calls_per_tick=(kube.calls - calls) / ticks,
                cpu_us_per_pod_tick=cpu_s * 1e6 / ticks / max(1, rows / ticks),
                rows_per_tick=rows / ticks,
                rss_growth_mib=rss_mib() - rss,
                watch_events=watch_events(state) - events,
            )
        store.close()
    return result


def decode_costs(kube: KubeClient, namespace: str) -> dict[str, float]:
    """µs per pod to decode the pods' list body with each decoder, the GC on as in a run."""
    path = RESOURCES["Pod"].path(namespace)
    op = Operation("list", "pods", namespace)
    data = kube.request("GET", path, op, query=[("labelSelector", "app=web")]).data
    count = len(json.loads(data)["items"])
    decoders: dict[str, Callable[[bytes], object]] = {
        "json (whole objects)": json.loads,
        "orjson (whole objects)": orjson.loads,
        "msgspec (row fields only)": POD_CODEC.list_decoder.decode,
    }
    costs = {}
    for label, decode in decoders.items():
        gc.collect()
        best = float("inf")
        for _ in range(3):
            start = time.process_time()
            decode(data)
            best = min(best, time.process_time() - start)
        costs[label] = best * 1e6 / count
    costs["bytes per pod"] = len(data) / count
    return costs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,5000")
    parser.add_argument("--ticks", type=int, default=30, help="watch-based sampler ticks")
    parser.add_argument("--list-ticks", type=int, default=5, help="list-based sampler ticks")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between ticks")
    parser.add_argument("--ready-timeout", type=float, default=900.0)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    results: list[Measurement] = []
    decoding: dict[str, float] = {}
    with cluster_kubeconfig(max(sizes)) as kubeconfig:
        kube = connect(kubeconfig, environ={})
        for pods in sizes:
            namespace = f"bench-{pods}-{uuid.uuid4().hex[:6]}"
            create_target(kube, namespace, pods)
            reporting = wait_ready(kube, namespace, pods, args.ready_timeout)
            print(f"{pods} pods ({reporting} with PodMetrics)", file=sys.stderr)
            results.append(
                measure(
                    kube,
                    namespace=namespace,
                    pods=pods,
                    name="listed",
                    state=ListedState(kube),
                    ticks=args.list_ticks,
                    interval_s=0.0,
                )
            )
            results.append(
                measure(
                    kube,
                    namespace=namespace,
                    pods=pods,
                    name="watched",
                    state=WatchedState(kube),
                    ticks=args.ticks,
                    interval_s=args.interval,
                )
            )
            decoding = decode_costs(kube, namespace)
            kube.delete("Namespace", namespace)
        kube.close()
    print(
        f"{'sampler':>8} {'pods':>5} {'ticks':>5} {'calls/tick':>10} {'CPU us/pod/tick':>16} "
        f"{'pod rows/tick':>14} {'RSS growth MiB':>15} {'watch events':>13}"
    )
    for r in results:
        print(
            f"{r.sampler:>8} {r.pods:>5} {r.ticks:>5} {r.calls_per_tick:>10.2f} "
            f"{r.cpu_us_per_pod_tick:>16.1f} {r.rows_per_tick:>14.0f} {r.rss_growth_mib:>+15.1f} "
            f"{r.watch_events:>13}"
        )
    print(f"decoding the pod list ({decoding.pop('bytes per pod'):.0f} bytes per pod):")
    for label, us in decoding.items():
        print(f"  {label}: {us:.1f} us per pod")
    watched = [r for r in results if r.sampler == "watched"]
    last = watched[-1]
    ok = (
        all(r.cpu_us_per_pod_tick <= 10.0 for r in watched)
        and len({round(r.calls_per_tick, 1) for r in watched}) == 1
    )
    print(
        f"sampler: {last.pods} pods: {last.cpu_us_per_pod_tick:.1f} us CPU per pod per tick, "
        f"{last.calls_per_tick:.2f} API calls per tick, harness RSS "
        f"{last.rss_growth_mib:+.1f} MiB over {last.ticks} ticks"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
