"""The local sampler: processes of a target recorded as the "pods" of a workload.

A ``pid/N`` target whose process has children is a pre-fork server (gunicorn, uwsgi, nginx): each
child is a pod and the parent is not, because the children do the work, as pods behind a Service
do. A process without children is itself the one pod. A ``cmd/PATTERN`` target is every process
whose command line contains PATTERN (matched to observe, never to signal), but for a matching
parent of matching children, whose children are the pods as above. Memory is RSS, the
closest local stand-in for a container's working set; CPU is millicores over the last tick.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

import psutil

from analysis.data import schema
from harness.config.values import WatchTarget
from harness.errors import UsageError
from harness.session.store import RunStore


@dataclass(frozen=True)
class PodResources:
    """Requests and limits to record with each pod (what a Pod spec would have said)."""

    cpu_request_m: float | None = None
    cpu_limit_m: float | None = None
    memory_request_bytes: float | None = None
    memory_limit_bytes: float | None = None


@dataclass(frozen=True)
class ProcessPod:
    """One process seen in one tick."""

    name: str
    pid: int
    cpu_m: float | None
    memory_bytes: float
    # Process creation time (epoch s): a process serves as soon as it runs, so it is both the
    # pod's start and its readiness transition, which the HPA model's CPU rules read.
    started_s: float | None = None


@dataclass
class ProcessSampler:
    """Samples one local target per tick; keeps the previous CPU times to turn them into a rate."""

    target: WatchTarget
    resources: PodResources = PodResources()
    namespace: str = "local"
    workload_name: str | None = None  # default: the target's command pattern or pid-N
    _last_cpu: dict[int, tuple[float, float]] = field(default_factory=dict)

    @property
    def workload(self) -> str:
        if self.workload_name:
            return self.workload_name
        return self.target.name if self.target.kind == "cmd" else f"pid-{self.target.name}"

    def processes(self) -> list[psutil.Process]:
        if self.target.kind == "pid":
            try:
                root = psutil.Process(int(self.target.name))
                children = root.children()
            except psutil.NoSuchProcess:
                return []
            return children or [root]
        if self.target.kind == "cmd":
            return self._matching_leaves()
        raise UsageError(f"{self.target} is a cluster target; local runs watch pid/ or cmd/")

    def _matching_leaves(self) -> list[psutil.Process]:
        """Processes whose command line contains the pattern, except kubeswarm and the commands
        that started it (their command lines name the pattern) and a matching parent of matching
        children (the master of a pre-fork server: its workers are the pods, as with ``pid/``)."""
        ourselves = {os.getpid(), *(p.pid for p in psutil.Process().parents())}
        matches = [
            p
            for p in psutil.process_iter(["cmdline", "ppid"])
            if self.target.name in " ".join(p.info["cmdline"] or ()) and p.pid not in ourselves
        ]
        parents = {p.info["ppid"] for p in matches}
        return [p for p in matches if p.pid not in parents]

    def sample(self, now: float) -> list[ProcessPod]:
        pods: list[ProcessPod] = []
        seen: dict[int, tuple[float, float]] = {}
        for process in self.processes():
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    rss = float(process.memory_info().rss)
                    created = process.create_time()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            busy = times.user + times.system
            seen[process.pid] = (now, busy)
            pods.append(
                ProcessPod(
                    f"{self.workload}-{process.pid}",
                    process.pid,
                    self._cpu_m(process.pid, now, busy),
                    rss,
                    created,
                )
            )
        self._last_cpu = seen
        return pods

    def _cpu_m(self, pid: int, now: float, busy: float) -> float | None:
        previous = self._last_cpu.get(pid)
        if previous is None or now <= previous[0]:
            return None
        return max(0.0, (busy - previous[1]) / (now - previous[0]) * 1000.0)

    def rows(self, now: float, pods: list[ProcessPod]) -> list[Mapping[str, object]]:
        return [
            {
                "ts": now,
                "namespace": self.namespace,
                "pod": pod.name,
                "workload": self.workload,
                "phase": "Running",
                "ready": True,
                "restarts": 0,
                "last_termination_reason": None,
                "cpu_m": pod.cpu_m,
                "memory_bytes": pod.memory_bytes,
                "cpu_request_m": self.resources.cpu_request_m,
                "cpu_limit_m": self.resources.cpu_limit_m,
                "memory_request_bytes": self.resources.memory_request_bytes,
                "memory_limit_bytes": self.resources.memory_limit_bytes,
                "start_ts": pod.started_s,
                "ready_since_ts": pod.started_s,
                "deleting": False,
            }
            for pod in pods
        ]

    def tick(self, now: float, store: RunStore) -> list[ProcessPod]:
        pods = self.sample(now)
        store.append(schema.PODS, self.rows(now, pods))
        return pods
