"""Child processes that kubeswarm starts, and the guarantee that it stops every one of them.

Each child gets a session (and so a process group) of its own: the terminal's Ctrl-C reaches only
kubeswarm, which then stops the test in order, and a child that forks (``locust --processes``,
gunicorn workers) is stopped with its whole group. Children are only ever signalled by the process
group id kubeswarm got when it started them, never looked up by name. Should kubeswarm itself be
killed outright, the kernel sends each direct child SIGTERM (``PR_SET_PDEATHSIG`` on Linux), and
the children stop their own forks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO, Final

from harness.errors import Terminated

_PR_SET_PDEATHSIG: Final = 1  # <linux/prctl.h>


# Loaded here, in the parent: between fork and exec only the prctl call itself may run.
_LIBC: Final = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def _die_with_parent() -> None:
    """Runs in the child before exec: if kubeswarm is SIGKILLed, the kernel sends SIGTERM."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def exited(self) -> bool:
        return self.process.poll() is not None

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class ProcessGroup:
    """Starts children with logs in ``log_dir`` and stops them all, however the run ends."""

    log_dir: Path
    children: list[Child] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def start(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        log = log_path.open("ab")
        self._logs.append(log)
        process = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent,  # noqa: PLW1509 - only async-signal-safe work inside
        )
        child = Child(name, process, log_path)
        self.children.append(child)
        return child

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children]

    def stop_all(self, grace_s: float = 5.0) -> None:
        """SIGTERM every group, wait up to ``grace_s``, then SIGKILL what is left; never raises.

        Ctrl-C is ignored meanwhile so that an impatient second Ctrl-C cannot leave orphans.
        """
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for child in self.children:
                _signal_group(child, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            for child in self.children:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            for child in self.children:
                _signal_group(child, signal.SIGKILL)
                child.process.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
            for log in self._logs:
                log.close()


def run_to_end(
    argv: Sequence[str],
    *,
    timeout_s: float,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """A short child run to its end with its output captured, started the way every child is
    (its own session, stopped with kubeswarm); past ``timeout_s`` its whole group is killed and
    ``subprocess.TimeoutExpired`` raised."""
    process = subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        env=dict(env) if env is not None else None,
        cwd=cwd,
        start_new_session=True,
        preexec_fn=_die_with_parent,  # noqa: PLW1509 - only async-signal-safe work inside
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise
    return subprocess.CompletedProcess(list(argv), process.returncode, stdout, stderr)


def _signal_group(child: Child, signum: int) -> None:
    # The group id is the child's pid (start_new_session); the group outlives a leader that exited
    # while its forks still run, so signal it even then.
    try:
        os.killpg(child.pid, signum)
    except ProcessLookupError:
        pass
    except PermissionError:
        pass


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (a CI job cancelled) takes the Ctrl-C path: stop, fetch, clean up, report."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
