"""The "pods" of a local target that ``--chaos`` may hit: the workers of one pre-fork server.

A machine runs processes that have nothing to do with a test, many of them other users' or the
system's, so what a local disruption may signal is decided once, before anything starts, and
pinned: ``find_server`` resolves the one process tree the user named (``pid/N``, or a
``cmd/PATTERN`` that matches exactly one such tree) to its server, and refuses, with what it
would have hit, anything that is not a pre-fork server the user owns: PID 1 (the whole machine),
kubeswarm and the processes that started it, another user's process, a tree whose children run
another program (a shell with ``sleep`` children). Only there does a killed worker come back, as
a pod of a Deployment does.

When a disruption is due, the candidates are the server's direct children that still run the
server's program and belong to the same user, never the server itself, never a pid kubeswarm
protects (Locust's); the server is checked to be the same process (its start time) so a reused
pid is never signalled. SIGTERM is ``pod-delete`` (the worker finishes its requests within the
server's graceful timeout), SIGKILL is ``pod-kill``.

Pods are named as ``harness.samplers.processes`` names them (``<workload>-<pid>``), so the mark's
pods are the rows of ``pods.csv``.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass

import psutil

from harness.actions.pods import Victim
from harness.config.chaos import ChaosSpec
from harness.config.values import WatchTarget
from harness.errors import UsageError

_INIT_PID = 1
_LOAD_GENERATOR_WORD = "locust"


@dataclass(frozen=True)
class PreforkServer:
    """The one process whose workers a local ``--chaos`` hits, as it was when resolved."""

    pid: int
    started_s: float  # its create time: a pid reused by another process is not this server
    exe: str  # the program its workers run too
    uid: int
    name: str  # what the user reads in a message, e.g. ``gunicorn``

    def describe(self) -> str:
        return f"pid {self.pid} ({self.name})"


def _ourselves() -> frozenset[int]:
    me = psutil.Process()
    return frozenset({me.pid, *(p.pid for p in me.parents())})


def _label(process: psutil.Process) -> str:
    try:
        return f"{process.pid} ({process.name()})"
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return str(process.pid)


def _same_program_children(server: psutil.Process, exe: str, uid: int) -> list[psutil.Process]:
    """The server's direct children that run its program as its user: its workers."""
    workers = []
    for child in server.children():
        try:
            if child.exe() == exe and child.uids().real == uid:
                workers.append(child)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return workers


def _refusal(process: psutil.Process, protected: frozenset[int]) -> str | None:
    """Why ``process`` may not be the server of a local disruption, or None when it may."""
    label = _label(process)
    if process.pid == _INIT_PID:
        return f"pid {_INIT_PID} is the machine's init: its children are the whole system"
    if process.pid in _ourselves() or process.pid in protected:
        return f"process {label} is kubeswarm, its Locust or a process that started it"
    try:
        uid, exe = process.uids().real, process.exe()
        command = " ".join(process.cmdline()).lower()
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return f"process {label} exited"
    except psutil.AccessDenied:
        return f"process {label} belongs to another user"
    return _program_refusal(process, label, uid, exe, command)


def _program_refusal(
    process: psutil.Process, label: str, uid: int, exe: str, command: str
) -> str | None:
    if uid != os.getuid():
        return f"process {label} belongs to uid {uid}, kubeswarm runs as uid {os.getuid()}"
    if _LOAD_GENERATOR_WORD in command:
        return f"process {label} is a Locust process"
    if not exe:
        return f"process {label} has no program file (a kernel thread)"
    if not _same_program_children(process, exe, uid):
        others = ", ".join(_label(c) for c in process.children()[:4]) or "none"
        return (
            f"process {label} is not a pre-fork server: none of its children runs its program "
            f"{exe} (children: {others}); --chaos hits only the workers of a server such as "
            "gunicorn, uwsgi or nginx"
        )
    return None


def find_server(target: WatchTarget, protected_pids: Iterable[int] = ()) -> PreforkServer:
    """The pre-fork server ``target`` names; ``UsageError`` saying what it would have hit."""
    protected = frozenset(protected_pids)
    if target.kind == "pid":
        try:
            process = psutil.Process(int(target.name))
        except psutil.NoSuchProcess:
            raise UsageError(f"--chaos on {target}: no process {target.name} is running") from None
        why = _refusal(process, protected)
        if why is not None:
            raise UsageError(f"--chaos on {target} refused: {why}")
    elif target.kind == "cmd":
        process = _one_tree(target, protected)
    else:
        raise UsageError(f"--chaos on {target}: a local run disrupts pid/PID or cmd/PATTERN")
    return PreforkServer(
        process.pid, process.create_time(), process.exe(), process.uids().real, process.name()
    )


def _one_tree(target: WatchTarget, protected: frozenset[int]) -> psutil.Process:
    """The root of the one process tree whose command lines match ``cmd/PATTERN`` and that is a
    pre-fork server the user may disrupt."""
    ourselves = _ourselves()
    matches: dict[int, psutil.Process] = {}
    for process in psutil.process_iter(["cmdline", "ppid"]):
        if process.pid in ourselves:  # kubeswarm's own command line names the pattern
            continue
        if target.name in " ".join(process.info["cmdline"] or ()):
            matches[process.pid] = process
    roots = [p for p in matches.values() if p.info["ppid"] not in matches]
    servers: list[psutil.Process] = []
    refused: list[str] = []
    for root in roots:
        why = _refusal(root, protected)
        if why is None:
            servers.append(root)
        else:
            refused.append(why)
    if len(servers) == 1:
        return servers[0]
    if len(servers) > 1:
        listed = ", ".join(_label(p) for p in servers)
        raise UsageError(
            f"--chaos on {target} refused: it matches {len(servers)} process trees ({listed}); "
            "name one with pid/PID"
        )
    if refused:
        raise UsageError(f"--chaos on {target} refused: {refused[0]}")
    raise UsageError(f"--chaos on {target}: no running process has {target.name!r} in its command")


@dataclass
class ProcessPods:
    """The workers of one pinned pre-fork server, found afresh each time they are asked for."""

    watch: WatchTarget
    server: PreforkServer
    protected: frozenset[int] = frozenset()
    workload_name: str | None = None
    namespace: str = "local"

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
        if workers is None:
            return [], f"the server {self.server.describe()} of {self.target} exited"
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
        return victims, "" if victims else f"no worker of {self.server.describe()} is running"

    def hit(self, victim: Victim, spec: ChaosSpec) -> bool:
        process = victim.handle
        if not isinstance(process, psutil.Process) or not self._is_worker(process):
            return False
        signum = signal.SIGKILL if spec.action == "pod-kill" else signal.SIGTERM
        try:
            # psutil checks the pid still names the process listed (not a reused pid).
            process.send_signal(signum)
        except psutil.NoSuchProcess:
            return False
        return True

    def _server(self) -> psutil.Process | None:
        try:
            process = psutil.Process(self.server.pid)
            if process.create_time() != self.server.started_s:
                return None  # the pid now names another process
        except psutil.NoSuchProcess:
            return None
        return process

    def _workers(self) -> list[psutil.Process] | None:
        server = self._server()
        if server is None:
            return None
        try:
            workers = _same_program_children(server, self.server.exe, self.server.uid)
        except psutil.NoSuchProcess:
            return None
        return [w for w in workers if w.pid not in self.protected]

    def _is_worker(self, process: psutil.Process) -> bool:
        """Checked again just before the signal: still a child of the pinned server."""
        try:
            return (
                process.pid not in self.protected
                and process.pid not in (_INIT_PID, self.server.pid)
                and process.ppid() == self.server.pid
                and self._server() is not None
            )
        except psutil.NoSuchProcess:
            return False
