"""The "pods" of a local target that ``--chaos`` may hit: the workers of a pre-fork server.

Only a process whose parent keeps a fixed number of workers (gunicorn, uwsgi, nginx) is ever
signalled, because only there does a killed worker come back, as a pod of a Deployment does: for
``pid/N`` the children of N, for ``cmd/PATTERN`` the matching processes whose parent matches too.
Never the master itself, a process without such a parent, kubeswarm or its parents, nor Locust
(by the pids the backend protects and by name). SIGTERM is ``pod-delete`` (the worker finishes
its requests within the server's graceful timeout), SIGKILL is ``pod-kill``.

Pods are named as ``harness.samplers.processes`` names them (``<workload>-<pid>``), so the mark's
pods are the rows of ``pods.csv``.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field

import psutil

from harness.actions.pods import Victim
from harness.config.chaos import ChaosSpec
from harness.config.values import WatchTarget

_LOAD_GENERATOR_WORD = "locust"


@dataclass
class ProcessPods:
    """Worker processes of one local target, found afresh each time they are asked for."""

    watch: WatchTarget
    protected: frozenset[int] = frozenset()
    workload_name: str | None = None
    namespace: str = "local"
    _ourselves: frozenset[int] = field(init=False)

    def __post_init__(self) -> None:
        me = psutil.Process()
        self._ourselves = frozenset({me.pid, *(p.pid for p in me.parents())})

    @property
    def target(self) -> str:
        return f"{self.namespace}/{self.watch.kind}/{self.watch.name}"

    @property
    def workload(self) -> str:
        # The process sampler's default names, so pods.csv and the mark agree.
        if self.workload_name:
            return self.workload_name
        return self.watch.name if self.watch.kind == "cmd" else f"pid-{self.watch.name}"

    def pods(self) -> tuple[list[Victim], str]:
        workers = self._workers()
        if not workers:
            return (
                [],
                f"no worker process of {self.target} (only workers of a pre-fork server are hit)",
            )
        victims = []
        for process in workers:
            try:
                started, status = process.create_time(), process.status()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            victims.append(
                Victim(
                    f"{self.workload}-{process.pid}",
                    started,
                    status != psutil.STATUS_ZOMBIE,  # a live process is a ready pod
                    process,
                )
            )
        return victims, "" if victims else f"the workers of {self.target} exited"

    def hit(self, victim: Victim, spec: ChaosSpec) -> bool:
        process = victim.handle
        if not isinstance(process, psutil.Process):
            return False
        signum = signal.SIGKILL if spec.action == "pod-kill" else signal.SIGTERM
        try:
            # psutil checks the pid still names the process listed (not a reused pid).
            process.send_signal(signum)
        except psutil.NoSuchProcess:
            return False
        return True

    def _workers(self) -> list[psutil.Process]:
        if self.watch.kind == "pid":
            try:
                children = psutil.Process(int(self.watch.name)).children()
            except psutil.NoSuchProcess:
                return []
            return [c for c in children if self._may_hit(c)]
        if self.watch.kind == "cmd":
            matches = {
                p.pid: p for p in psutil.process_iter(["cmdline", "ppid"]) if self._matches(p)
            }
            return [p for p in matches.values() if p.info["ppid"] in matches and self._may_hit(p)]
        return []

    def _matches(self, process: psutil.Process) -> bool:
        return self.watch.name in " ".join(process.info["cmdline"] or ())

    def _may_hit(self, process: psutil.Process) -> bool:
        if process.pid in self._ourselves or process.pid in self.protected:
            return False
        try:
            command = " ".join(process.cmdline()).lower()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False
        return _LOAD_GENERATOR_WORD not in command and process.pid != os.getpid()
