"""From `kubeswarm run` to the first request on a real node, in parts; and the node's cost.

Starts the real-node tier's single-node cluster (tests/realnode; root, cached build), deploys
the example target, then times one `kubeswarm run` (2 workers, 20 s) by polling the API every
0.2 s: Jobs created, master pod scheduled, its container started, master Ready (Locust's web
port open), and the first request Locust counted (its own stats history). Prints each part,
the node's start time and its memory (RSS of every component and container shim, plus what the
pods' cgroups hold).

    python -m bench.realnode_first_request
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

from tests.realnode._node import RealNode, build
from tests.realnode._workloads import (
    create_namespace,
    deploy_and_wait,
    example_target,
    finish,
    run_args,
    run_dir,
    start_run,
)

POLL_S = 0.2


def _rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def node_memory(node: RealNode) -> dict[str, float]:
    """RSS per component and of all shims (MiB), and the pods' cgroup usage."""
    pids = json.loads((node.dir / "pids.json").read_text())
    memory = {name: _rss_mib(rec["pid"]) for name, rec in pids.items()}
    shims = [
        int(p.name)
        for p in Path("/proc").iterdir()
        if p.name.isdigit()
        and str(node.containerd_socket).encode() in _cmdline(p)
        and b"shim" in _cmdline(p)
    ]
    memory["containerd shims"] = sum(_rss_mib(p) for p in shims)

    usage = Path("/sys/fs/cgroup/memory/kubepods/memory.usage_in_bytes")
    if usage.exists():
        memory["pods (cgroup kubepods)"] = int(usage.read_text()) / 2**20
    return memory


def _cmdline(proc_dir: Path) -> bytes:
    try:
        return (proc_dir / "cmdline").read_bytes()
    except OSError:
        return b""


def _first(node: RealNode, namespace: str) -> dict[str, float]:
    """Wall-clock times (epoch s) at which each milestone was first seen."""
    seen: dict[str, float] = {}
    pods_path = (
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/component=master"
    )
    _, jobs = node.api(f"/apis/batch/v1/namespaces/{namespace}/jobs")
    if jobs.get("items"):
        seen.setdefault("jobs created", time.time())
    _, pods = node.api(pods_path)
    for pod in pods.get("items", []):
        conditions = {c["type"]: c["status"] for c in pod["status"].get("conditions") or []}
        if conditions.get("PodScheduled") == "True":
            seen.setdefault("master pod scheduled", time.time())
        statuses = pod["status"].get("containerStatuses") or []
        if any("running" in (s.get("state") or {}) for s in statuses):
            seen.setdefault("master container started", time.time())
        if conditions.get("Ready") == "True":
            seen.setdefault("master Ready (web port open)", time.time())
    return seen


def main() -> int:
    node = RealNode(build(lambda line: None), progress=lambda line: None)
    t0 = time.monotonic()
    node.start()
    start_s = time.monotonic() - t0
    try:
        ns = "bench-first-request"
        create_namespace(node, ns)
        deploy_and_wait(node, ns, example_target(hpa=False))
        idle = node_memory(node)
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "runs"
            locustfile = Path(tmp) / "lf.py"
            locustfile.write_text(
                "from locust import FastHttpUser, constant_pacing, task\n\n\n"
                "class U(FastHttpUser):\n"
                "    wait_time = constant_pacing(0.5)\n\n"
                "    @task\n"
                "    def index(self) -> None:\n"
                "        self.client.get('/')\n"
            )
            args = run_args(node, ns, out, "-f", str(locustfile), "-H", "http://example-web:8080")
            args += ["-u", "4", "-r", "4", "-t", "20s", "--workers", "2"]
            started = time.time()
            proc = start_run(args, Path(tmp) / "log")
            seen: dict[str, float] = {}
            loaded: dict[str, float] = {}
            polls = 0
            while proc.poll() is None:
                for name, when in _first(node, ns).items():
                    seen.setdefault(name, when)
                polls += 1
                if polls % 10 == 0:  # the busiest moment of the run, by total memory
                    now = node_memory(node)
                    if sum(now.values()) > sum(loaded.values()):
                        loaded = now
                time.sleep(POLL_S)
            finish(proc, Path(tmp) / "log", 60)
            history = run_dir(out) / "locust" / "stats_history.csv"
            with history.open() as f:
                rows = [r for r in csv.DictReader(f) if int(r["Total Request Count"] or 0) > 0]
            if rows:
                seen["first request counted by Locust"] = float(rows[0]["Timestamp"])
        print(f"real node start (network .. node Ready, metrics API): {start_s:.1f} s")
        print("kubeswarm run -> ...")
        for name, when in sorted(seen.items(), key=lambda kv: kv[1]):
            print(f"  {name:38s} +{when - started:5.1f} s")
        print("memory, MiB (idle with the target | peak during a 2-worker run):")
        for name in idle:
            print(f"  {name:28s} {idle[name]:7.0f} | {loaded.get(name, 0.0):7.0f}")
        print(f"  {'total':28s} {sum(idle.values()):7.0f} | {sum(loaded.values()):7.0f}")
        print(f"measured {dt.datetime.now(dt.UTC):%Y-%m-%d}", file=sys.stderr)
    finally:
        node.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
