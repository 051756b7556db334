"""How a run's progress reaches the user: a live panel on a terminal, plain lines otherwise.

The session hands every tick's ``LiveView`` and every event line to a reporter; the library never
prints. On a terminal, ``rich`` redraws one panel (users, RPS, p95, failures, replicas
current/desired/max per HPA with the driving metric, memory % of request and limit per workload,
elapsed/planned) with the events scrolling above it. When output is a file or a CI log, a plain
status line every few seconds and each event on its own line. Nothing unmeasured is printed as
``None``: it is ``-``.
"""

from __future__ import annotations

import sys
import time
from typing import Final, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from harness.session.core import HpaStatus, LiveView, WorkloadStatus

# Without a terminal, one status line this often (events are printed as they come).
PLAIN_EVERY_S: Final = 5.0


def _num(value: float | None, fmt: str = "{:.0f}", unit: str = "") -> str:
    return "-" if value is None else fmt.format(value) + unit


def load_text(view: LiveView) -> str:
    clock = f"[{view.elapsed_s:4.0f}s/{view.planned_s:.0f}s]"
    load = view.load
    if load is None:
        return f"{clock} waiting for Locust"
    workers = "" if load.workers is None else f"  workers {load.workers}"
    return (
        f"{clock} {load.state:<8} users {load.users:>4}  rps {load.rps:7.1f}  "
        f"p95 {_num(load.p95_ms, unit='ms'):>6}  fail {load.fail_ratio:6.2%}{workers}"
    )


def hpa_text(hpa: HpaStatus) -> str:
    replicas = f"{_num(hpa.current)}/{_num(hpa.desired)}/{_num(hpa.max_replicas)}"
    driving = ""
    if hpa.driving_metric:
        driving = (
            f" {hpa.driving_metric} {_num(hpa.utilization_pct, unit='%')}"
            f" of {_num(hpa.target_pct, unit='%')}"
        )
    return f"{hpa.name} {replicas}{driving}"


def workload_text(workload: WorkloadStatus) -> str:
    ready = "" if workload.ready is None else f" ({workload.ready} ready)"
    return (
        f"{workload.name} {workload.pods} pod(s){ready} mem "
        f"{_num(workload.memory_pct_of_request, unit='%')} of request, "
        f"{_num(workload.memory_pct_of_limit, unit='%')} of limit"
    )


def plain_text(view: LiveView) -> str:
    parts = [load_text(view)]
    parts += [hpa_text(h) for h in view.hpas]
    parts += [workload_text(w) for w in view.workloads]
    parts += list(view.notes)
    return "  ".join(parts)


class PlainReporter:
    """Lines only: info to ``out``, status and events to ``err``; status every few seconds."""

    def __init__(self, out: TextIO, err: TextIO | None = None, every_s: float = PLAIN_EVERY_S):
        self.out = out
        self.err = err or sys.stderr
        self.every_s = every_s
        self._last = 0.0

    def info(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, text: str) -> None:
        self.err.write(text + "\n")
        self.err.flush()

    def status(self, view: LiveView) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.err.write(plain_text(view) + "\n")
            self.err.flush()

    def close(self) -> None:
        return None


class LiveReporter:
    """A ``rich`` live panel on the terminal; events print above it and stay."""

    def __init__(self, out: TextIO, err: TextIO | None = None) -> None:
        self.out = out
        self.console = Console(file=err or sys.stderr)
        self.live = Live(console=self.console, auto_refresh=False, transient=True)
        self._started = False

    def info(self, text: str) -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def event(self, text: str) -> None:
        self.console.print(text, markup=False, highlight=False)

    def status(self, view: LiveView) -> None:
        if not self._started:
            self.live.start()
            self._started = True
        self.live.update(panel(view), refresh=True)

    def close(self) -> None:
        if self._started:
            self.live.stop()
            self._started = False


def panel(view: LiveView) -> Table:
    """The live view as a table: the load line, one row per HPA and per workload."""
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_row(load_text(view))
    for hpa in view.hpas:
        table.add_row("hpa " + hpa_text(hpa))
    for workload in view.workloads:
        table.add_row(workload_text(workload))
    for note in view.notes:
        table.add_row(note)
    return table


def reporter_for(out: TextIO, err: TextIO | None = None) -> PlainReporter | LiveReporter:
    """The live panel when stderr is a terminal, plain lines otherwise."""
    err = err or sys.stderr
    return LiveReporter(out, err) if err.isatty() else PlainReporter(out, err)
