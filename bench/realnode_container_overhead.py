"""What a container costs a load generator: one Locust worker in a pod vs the same on the host.

Starts the real-node tier's single-node cluster (tests/realnode; root, cached build) and deploys
a target that outruns one Locust worker: `bench/fast_server.py` (one asyncio process, the same
small 200 for every request) in the node's python image, behind a ClusterIP Service. Then, in
alternating order round by round, runs the same locustfile (FastHttpUser, no wait) with the
same users against the same ClusterIP twice:

- pod: `kubeswarm run` with the master and one worker pod of one Locust process (`--worker-cpu
  1`: requests and limits of one CPU, kubeswarm's default for one process);
- host: the same image's Locust (its own Python build and venv, unpacked from the image tar and
  entered with chroot, so the interpreter is not what differs) as a master and one worker
  process on the host: no network namespace, no cgroup limit, no veth; the ClusterIP is
  reached through kube-proxy's rules as from the pod.

Requests/s is counted from Locust's own `stats_history.csv` over the steady part of each run
(all users running, the first seconds skipped). The ratio pod / host is taken per pair; the
median over pairs is the container overhead figure (goal >= 0.9). Each line also prints the
worker's CPU (its pod's cgroup, or its process) and the target's (its pod's cgroup), so a
round where the target, not the worker, was the limit shows as such.

    python -m bench.realnode_container_overhead [--rounds 3] [--seconds 30] [--users 40]

Everything targets addresses inside the node's own network namespaces and stops by itself;
the bind mounts the host side needs (/proc, /dev) are undone at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import functools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.processes import free_port
from tests.realnode._node import LOCUST_IMAGE, PYTHON_IMAGE, RealNode, build
from tests.realnode._workloads import (
    create_namespace,
    deploy_and_wait,
    finish,
    get,
    kubeswarm_command,
    run_dir,
    start_run,
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
    """The cpuacct cgroup of the target's pod."""
    return _cgroup_of_pod(node, f"app={TARGET}")


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


def _cgroup_of_pod(node: RealNode, selector: str) -> Path:
    """The cpuacct cgroup of the one pod matching `selector` (cgroup v1, as the node runs)."""
    pods = get(node, f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector={selector}")["items"]
    running = [p for p in pods if p["status"].get("phase") == "Running"]
    uid = running[0]["metadata"]["uid"]
    for root in (Path("/sys/fs/cgroup/cpuacct"), Path("/sys/fs/cgroup/cpu,cpuacct")):
        found = [p for p in root.glob("kubepods/**/pod*") if p.name in (f"pod{uid}", uid)]
        if found:
            return found[0]
    raise RuntimeError(f"no cpuacct cgroup for pod {uid}")


def _process_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class CpuLog:
    """(time, cumulative CPU seconds) of a few sources, read once a second."""

    def __init__(self) -> None:
        self.readings: dict[str, list[tuple[float, float]]] = {}

    def read(self, name: str, read: Callable[[], float]) -> None:
        # Not there yet (a pod starting) or gone already: no reading.
        with contextlib.suppress(OSError, IndexError, RuntimeError, AssertionError):
            self.readings.setdefault(name, []).append((time.time(), read()))

    def percent(self, name: str, t0: float, t1: float) -> float:
        inside = [r for r in self.readings.get(name, []) if t0 <= r[0] <= t1]
        if len(inside) < 2:
            return float("nan")
        return 100 * (inside[-1][1] - inside[0][1]) / (inside[-1][0] - inside[0][0])


def pod_round(
    node: RealNode, target: Path, host: str, args: argparse.Namespace, work: Path
) -> Round:
    """`kubeswarm run` with one worker pod of 1 CPU, in `work` (WORK/PAIR/pod; the locustfile
    is WORK/locustfile.py)."""
    out = work / "runs"
    out.mkdir(parents=True)
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
        *("-f", str(work.parents[1] / "locustfile.py"), "-H", host, "--out", str(out)),
        *("-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s"),
        *("--workers", "1", "--processes", "1"),
    ]
    cpu = CpuLog()
    log = work / "kubeswarm.log"
    proc = start_run(argv, log)
    worker: Path | None = None
    while proc.poll() is None:
        cpu.read("target", lambda: _cpu_seconds(target))
        if worker is None:
            with contextlib.suppress(AssertionError, IndexError, RuntimeError):
                worker = _cgroup_of_pod(node, "app.kubernetes.io/component=worker")
        if worker is not None:
            cpu.read("worker", functools.partial(_cpu_seconds, worker))
        time.sleep(1.0)
    if finish(proc, log, 120) != 0:
        raise RuntimeError(f"kubeswarm run failed:\n{log.read_text()[-3000:]}")
    history = run_dir(out) / "locust" / "stats_history.csv"
    rps, failures, t0, t1 = steady_rate(history, args.users)
    return Round("pod", rps, failures, cpu.percent("worker", t0, t1), cpu.percent("target", t0, t1))


def unpack_locust_image(node: RealNode, into: Path) -> Path:
    """The Locust image's root filesystem (one layer, docker-archive), with /proc and /dev
    bound in for Locust's CPU readings; `release_rootfs` undoes the mounts."""
    image = node.artifacts.images / "locust.tar"
    rootfs = into / "rootfs"
    rootfs.mkdir()
    with tarfile.open(image) as archive:
        manifest = json.loads(archive.extractfile("manifest.json").read())  # type: ignore[union-attr]
        (layer,) = manifest[0]["Layers"]
        with tarfile.open(fileobj=archive.extractfile(layer)) as fs:
            fs.extractall(rootfs, filter="tar")
    try:
        for mount in ("proc", "dev"):
            subprocess.run(["mount", "--bind", f"/{mount}", str(rootfs / mount)], check=True)
    except BaseException:
        release_rootfs(rootfs)
        raise
    return rootfs


def release_rootfs(rootfs: Path) -> None:
    for mount in ("dev", "proc"):
        subprocess.run(["umount", "-l", str(rootfs / mount)], check=False)


def host_round(
    rootfs: Path, target: Path, host: str, args: argparse.Namespace, work: Path
) -> Round:
    """The image's Locust master and one worker as host processes (chroot, host network), in
    `work` (WORK/PAIR/host; the locustfile is WORK/locustfile.py)."""
    inside = Path("/bench-run")
    run = rootfs / inside.relative_to("/")
    shutil.rmtree(run, ignore_errors=True)
    (run / "out").mkdir(parents=True)
    shutil.copy(work.parents[1] / "locustfile.py", run / "locustfile.py")
    port = free_port()
    env = {"PATH": "/opt/venv/bin:/usr/bin:/bin", "HOME": "/home/locust", "LANG": "C.UTF-8"}
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"  # found on this PATH, not the image's
    locust = [chroot, str(rootfs), "/opt/venv/bin/locust", "-f", str(inside / "locustfile.py")]
    master_argv = [
        *locust,
        *("--master", "--headless", "--expect-workers", "1", "-H", host),
        *("-u", str(args.users), "-r", str(args.users), "-t", f"{args.seconds}s"),
        *("--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)),
        *("--csv", str(inside / "out" / "locust"), "--csv-full-history", "--only-summary"),
    ]
    worker_argv = [*locust, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    cpu = CpuLog()
    with (work / "master.log").open("wb") as m_log, (work / "worker.log").open("wb") as w_log:
        master = subprocess.Popen(master_argv, env=env, stdout=m_log, stderr=subprocess.STDOUT)
        worker = subprocess.Popen(worker_argv, env=env, stdout=w_log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + args.seconds + 90
            while master.poll() is None and time.monotonic() < deadline:
                cpu.read("target", lambda: _cpu_seconds(target))
                cpu.read("worker", lambda: _process_cpu_s(worker.pid))
                time.sleep(1.0)
        finally:
            for proc in (master, worker):  # by pid; the worker exits when the master quits
                if proc.poll() is None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(timeout=15)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
    if master.returncode not in (0, 1):  # 1: Locust's exit code when any request failed
        raise RuntimeError(f"host Locust failed:\n{(work / 'master.log').read_text()[-3000:]}")
    history = run / "out" / "locust_stats_history.csv"
    rps, failures, t0, t1 = steady_rate(history, args.users)
    shutil.copy(history, work / "stats_history.csv")
    return Round(
        "host", rps, failures, cpu.percent("worker", t0, t1), cpu.percent("target", t0, t1)
    )


def one_pair(
    i: int,
    *,
    node: RealNode,
    rootfs: Path,
    target: Path,
    host: str,
    args: argparse.Namespace,
    work: Path,
) -> float:
    """Both runs, in an order that alternates pair by pair; prints them; pod / host."""
    done: dict[str, Round] = {}
    for where in ("pod", "host") if i % 2 == 0 else ("host", "pod"):
        (work / where).mkdir(parents=True)
        if where == "pod":
            done[where] = pod_round(node, target, host, args, work / where)
        else:
            done[where] = host_round(rootfs, target, host, args, work / where)
    for r in (done["pod"], done["host"]):
        print(
            f"  pair {i + 1} {r.where:4s}: {r.rps:7.0f} req/s, {r.failures} failures, "
            f"worker CPU {r.worker_cpu_pct:3.0f} %, target CPU {r.target_cpu_pct:3.0f} %",
            flush=True,
        )
    ratio = done["pod"].rps / done["host"].rps
    print(f"  pair {i + 1} pod / host: {ratio:.3f}", flush=True)
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="pairs of runs (default 3)")
    parser.add_argument("--seconds", type=int, default=30, help="load per run (default 30)")
    parser.add_argument("--users", type=int, default=40, help="users per run (default 40)")
    args = parser.parse_args(argv)

    node = RealNode(build(lambda line: None), progress=lambda line: None)
    node.start()
    try:
        create_namespace(node, NAMESPACE)
        deploy_and_wait(node, NAMESPACE, target_objects())
        service = get(node, f"/api/v1/namespaces/{NAMESPACE}/services/{TARGET}")
        host = f"http://{service['spec']['clusterIP']}:80"
        print(
            f"target {host} (bench/fast_server.py in a pod); {args.users} users, "
            f"{args.seconds} s per run, {args.rounds} pairs",
            flush=True,
        )
        target = target_cgroup(node)
        ratios = []
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            (work / "locustfile.py").write_text(LOCUSTFILE)
            rootfs = unpack_locust_image(node, work)
            try:
                for i in range(args.rounds):
                    ratio = one_pair(
                        i,
                        node=node,
                        rootfs=rootfs,
                        target=target,
                        host=host,
                        args=args,
                        work=work / str(i),
                    )
                    ratios.append(ratio)
            finally:
                release_rootfs(rootfs)
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
