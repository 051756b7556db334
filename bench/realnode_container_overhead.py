"""What a container costs a load generator: one Locust worker in a pod vs the same on the host.

Starts the real-node tier's single-node cluster (tests/realnode; root, cached build) and deploys
a target that outruns one Locust worker: `bench/fast_server.py` (one asyncio process, the same
small 200 for every request) in the node's python image, behind a ClusterIP Service. Then, in
alternating order round by round, runs the same locustfile (FastHttpUser, no wait) with the
same users against the same ClusterIP through `kubeswarm run` twice:

- pod: the master and one worker pod with one Locust process (`--worker-cpu 1`: requests and
  limits of one CPU, kubeswarm's default for one process);
- host: `kubeswarm run --local` with one worker process, on the host, reaching the ClusterIP
  through kube-proxy's rules as the pod does.

Requests/s is counted from Locust's own `stats_history.csv` over the steady part of each run
(all users running, the first seconds skipped). The ratio pod / host is taken per pair; the
median over pairs is the container overhead figure (goal >= 0.9). Each line also prints the
worker's CPU (Locust's own reading, the same in both) and the target's (its pod's cgroup), so
a round where the target, not the worker, was the limit shows as such.

    python -m bench.realnode_container_overhead [--rounds 3] [--seconds 30] [--users 40]

Everything targets addresses inside the node's own network namespaces and stops by itself.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.realnode._node import LOCUST_IMAGE, PYTHON_IMAGE, RealNode, build
from tests.realnode._workloads import (
    deploy,
    deployment_available,
    finish,
    get,
    kubeswarm_command,
    read_samples,
    run_dir,
    start_run,
    wait_for,
)

HERE = Path(__file__).resolve().parent
NAMESPACE = "bench-container-overhead"
TARGET = "bench-target"
SKIP_S = 5.0  # after all users run: connections opened, first scheduling settled
LOCUSTFILE = """\
from locust import FastHttpUser, constant, task


class Flat(FastHttpUser):
    wait_time = constant(0)

    @task
    def index(self) -> None:
        self.client.get("/")
"""


def target_objects() -> list[dict[str, Any]]:
    """bench/fast_server.py in the python image, one replica, and its ClusterIP Service."""
    labels = {"app": TARGET}
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": TARGET},
            "data": {"fast_server.py": (HERE / "fast_server.py").read_text()},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": TARGET},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "terminationGracePeriodSeconds": 1,
                        "containers": [
                            {
                                "name": "server",
                                "image": PYTHON_IMAGE,
                                "imagePullPolicy": "Never",
                                # The pod's own address: it is reached through its Service.
                                "command": ["python3", "/app/fast_server.py", "8080", "0.0.0.0"],  # noqa: S104
                                # No CPU limit: the target may use whatever the worker leaves.
                                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
                                "volumeMounts": [{"name": "app", "mountPath": "/app"}],
                                "readinessProbe": {
                                    "tcpSocket": {"port": 8080},
                                    "periodSeconds": 1,
                                },
                            }
                        ],
                        "volumes": [{"name": "app", "configMap": {"name": TARGET}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": TARGET},
            "spec": {"selector": labels, "ports": [{"port": 80, "targetPort": 8080}]},
        },
    ]


def _cpu_seconds(cgroup: Path) -> float:
    return int((cgroup / "cpuacct.usage").read_text()) / 1e9


def target_cgroup(node: RealNode) -> Path:
    """The cpuacct cgroup of the target's pod (cgroup v1, as the node runs)."""
    pods = get(node, f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector=app={TARGET}")["items"]
    uid = pods[0]["metadata"]["uid"]
    for root in (Path("/sys/fs/cgroup/cpuacct"), Path("/sys/fs/cgroup/cpu,cpuacct")):
        found = [p for p in root.glob("kubepods/**/pod*") if p.name in (f"pod{uid}", uid)]
        if found:
            return found[0]
    raise RuntimeError(f"no cpuacct cgroup for the target pod {uid}")


@dataclass(frozen=True)
class Round:
    where: str
    rps: float
    failures: int
    worker_cpu_pct: float
    target_cpu_pct: float


def steady_rate(history: Path, users: int) -> tuple[float, int, float, float]:
    """Requests/s over the steady window; its failures; the window's start and end (epoch)."""
    with history.open(encoding="utf-8", newline="") as f:
        rows = [
            r
            for r in csv.DictReader(f)
            if r["Name"] == "Aggregated" and int(r["User Count"] or 0) >= users
        ]
    if len(rows) < 2:
        raise RuntimeError(f"{history}: fewer than two rows with {users} users running")
    first_ts = float(rows[0]["Timestamp"])
    steady = [r for r in rows if float(r["Timestamp"]) >= first_ts + SKIP_S]
    start, end = steady[0], steady[-1]
    seconds = float(end["Timestamp"]) - float(start["Timestamp"])
    if seconds <= 0:
        raise RuntimeError(f"{history}: the steady window is empty")
    requests = int(end["Total Request Count"]) - int(start["Total Request Count"])
    failures = int(end["Total Failure Count"]) - int(start["Total Failure Count"])
    return requests / seconds, failures, float(start["Timestamp"]), float(end["Timestamp"])


def one_round(node: RealNode, where: str, host: str, args: argparse.Namespace, work: Path) -> Round:
    out = work / where / "runs"
    locustfile = work / "locustfile.py"
    common = ["-f", str(locustfile), "-H", host, "--out", str(out)]
    common += ["-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s"]
    common += ["--workers", "1", "--processes", "1"]
    if where == "pod":
        argv = [
            *kubeswarm_command(),
            "run",
            "--kubeconfig",
            str(node.kubeconfig),
            "-n",
            NAMESPACE,
            "--image",
            LOCUST_IMAGE,
            "--master-cpu",
            "200m",
            "--master-memory",
            "256Mi",
            "--worker-cpu",
            "1",
            "--worker-memory",
            "512Mi",
            *common,
        ]
    else:
        argv = [*kubeswarm_command(), "run", "--local", *common]
    cgroup = target_cgroup(node)
    usage: list[tuple[float, float]] = []
    log = work / f"{where}.log"
    proc = start_run(argv, log)
    while proc.poll() is None:
        usage.append((time.time(), _cpu_seconds(cgroup)))
        time.sleep(1.0)
    if finish(proc, log, 120) != 0:
        raise RuntimeError(f"kubeswarm run ({where}) failed:\n{log.read_text()[-3000:]}")
    run = run_dir(out)
    rps, failures, t0, t1 = steady_rate(run / "locust" / "stats_history.csv", args.users)
    inside = [u for u in usage if t0 <= u[0] <= t1]
    target_pct = (
        100 * (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])
        if len(inside) >= 2
        else float("nan")
    )
    worker_cpu = [
        float(r["cpu_pct"])
        for r in read_samples(run, "workers.csv")
        if r["cpu_pct"] and t0 <= float(r["ts"]) <= t1
    ]
    worker_pct = statistics.median(worker_cpu) if worker_cpu else float("nan")
    return Round(where, rps, failures, worker_pct, target_pct)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--seconds", type=int, default=30, help="load per run (default 30)")
    parser.add_argument("--users", type=int, default=40, help="users per run (default 40)")
    args = parser.parse_args(argv)

    node = RealNode(build(lambda line: None), progress=lambda line: None)
    node.start()
    try:
        node.api("/api/v1/namespaces", "POST", {"metadata": {"name": NAMESPACE}})
        wait_for(
            "default ServiceAccount",
            lambda: node.api(f"/api/v1/namespaces/{NAMESPACE}/serviceaccounts/default")[0] == 200,
            60,
            0.2,
        )
        deploy(node, NAMESPACE, target_objects())
        wait_for(TARGET, deployment_available(node, NAMESPACE, TARGET), 120)
        service = get(node, f"/api/v1/namespaces/{NAMESPACE}/services/{TARGET}")
        host = f"http://{service['spec']['clusterIP']}:80"
        print(
            f"target {host} (bench/fast_server.py in a pod); {args.users} users, "
            f"{args.seconds} s per run, {args.rounds} pairs",
            flush=True,
        )
        ratios = []
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "locustfile.py").write_text(LOCUSTFILE)
            for i in range(args.rounds):
                order = ("pod", "host") if i % 2 == 0 else ("host", "pod")
                done = {w: one_round(node, w, host, args, work / str(i)) for w in order}
                for r in (done["pod"], done["host"]):
                    print(
                        f"  pair {i + 1} {r.where:4s}: {r.rps:7.0f} req/s, "
                        f"{r.failures} failures, worker CPU {r.worker_cpu_pct:3.0f} %, "
                        f"target CPU {r.target_cpu_pct:3.0f} %",
                        flush=True,
                    )
                ratios.append(done["pod"].rps / done["host"].rps)
                print(f"  pair {i + 1} pod / host: {ratios[-1]:.3f}", flush=True)
        print(
            f"container overhead ratio (pod / host req/s), median of {len(ratios)} pairs: "
            f"{statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f})"
        )
        print(f"measured {dt.datetime.now(dt.UTC):%Y-%m-%d}", file=sys.stderr)
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
