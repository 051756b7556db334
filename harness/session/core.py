"""What the session is made of: the backend, samplers and actions it ticks, and what they return.

One run, whatever its mode, is a ``Backend`` (the load generator: local processes, cluster Jobs,
or none for ``sample``) plus ``Sampler`` s (the Kubernetes sampler, the process sampler, the demo
autoscaler's recording) and ``Action`` s (timed things done to the target, such as ``--chaos``),
ticked on one schedule by ``harness.session.run.execute``. Each tick returns an ``Observation``:
rows for the run directory, lines for the user, and what the live view shows. Nothing here
prints or writes files; the session appends the rows and hands the rest to a ``Reporter``.

Adding a sampled source is one module with a ``tick`` and one line where the mode's samplers are
listed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from analysis.data import schema

RunMode = Literal["local", "cluster", "demo", "sample"]
RunStatus = Literal["running", "completed", "interrupted", "failed"]
Row = Mapping[str, Any]
NoteFn = Callable[[str], None]  # a line for the user, through the reporter


@dataclass(frozen=True)
class LoadStatus:
    """The load generator as the live view shows it (Locust's ``/stats/requests``)."""

    state: str
    users: int
    workers: int | None
    rps: float
    fail_ratio: float
    p95_ms: float | None


@dataclass(frozen=True)
class HpaStatus:
    """One HPA as the live view shows it: replicas and the metric driving it (report's rule)."""

    name: str
    current: int | None
    desired: int | None
    max_replicas: int | None
    driving_metric: str | None = None
    utilization_pct: float | None = None  # of the driving metric
    target_pct: float | None = None


@dataclass(frozen=True)
class WorkloadStatus:
    """One watched workload: its pods and their memory against requests and limits."""

    name: str
    pods: int
    ready: int | None = None
    memory_pct_of_request: float | None = None
    memory_pct_of_limit: float | None = None


class RowSink(Protocol):
    """Where a sampler puts rows and marks: an ``Observation`` (or the store itself)."""

    def append(self, table: schema.CsvSchema, rows: Iterable[Row]) -> None: ...

    def mark(self, kind: schema.MarkKind, detail: str = "", ts: float | None = None) -> None: ...


@dataclass
class Observation:
    """What one tick of a sampler, an action or the backend saw.

    ``rows`` go to ``samples/`` (marks included), ``events`` become lines that stay on the
    user's screen, the rest feeds the live view.
    """

    rows: list[tuple[schema.CsvSchema, list[Row]]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    load: LoadStatus | None = None
    hpas: list[HpaStatus] = field(default_factory=list)
    workloads: list[WorkloadStatus] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def append(self, table: schema.CsvSchema, rows: Iterable[Row]) -> None:
        batch = list(rows)
        if batch:
            self.rows.append((table, batch))

    def mark(self, kind: schema.MarkKind, detail: str = "", ts: float | None = None) -> None:
        when = time.time() if ts is None else ts
        self.append(schema.MARKS, [{"ts": when, "kind": kind, "detail": detail}])

    def event(self, text: str) -> None:
        self.events.append(text)

    def merge(self, other: Observation) -> None:
        self.rows += other.rows
        self.events += other.events
        self.load = other.load or self.load
        self.hpas += other.hpas
        self.workloads += other.workloads
        self.notes += other.notes


@dataclass(frozen=True)
class TickContext:
    """When a tick happens, and what the load generator said in it."""

    now: float
    run_start: float
    test_start: float | None  # when Locust first reported users (None: not yet, or no load)
    load: LoadStatus | None = None
    workers: tuple[Row, ...] = ()  # this tick's rows of samples/workers.csv

    @property
    def elapsed_s(self) -> float:
        return self.now - self.run_start

    @property
    def test_elapsed_s(self) -> float | None:
        return None if self.test_start is None else self.now - self.test_start


class Sampler(Protocol):
    """A source sampled every tick (Kubernetes objects, local processes, the demo autoscaler)."""

    def tick(self, ctx: TickContext) -> Observation: ...


class Action(Protocol):
    """Something done to the target while the load runs (``--chaos``): ticked like a sampler,
    it decides itself when it is due (usually from ``ctx.test_elapsed_s``) and acts once."""

    def tick(self, ctx: TickContext) -> Observation: ...


@dataclass(frozen=True)
class LoadPoll:
    """One look at the load generator: its observation and whether the test is over."""

    observation: Observation
    running: bool  # the test has started (users spawning or running)
    finished: bool  # the test is over (stopped, or the master is gone for good)


class Backend(Protocol):
    """The load generator of a run. The session calls ``start`` once, ``poll`` every tick,
    ``stop`` on Ctrl-C or when the run-time bound passes, then always ``fetch_results`` and
    ``close``. ``start`` and ``poll`` raise ``KubeswarmError`` when the load cannot go on."""

    mode: RunMode

    def start(self, run_dir: Path, note: NoteFn) -> dict[str, Any]:
        """Starts the load; returns fields for run.json (processes, objects, UI address)."""
        ...

    def poll(self, now: float, note: NoteFn) -> LoadPoll: ...

    def stop(self, note: NoteFn) -> None: ...

    def fetch_results(self, locust_dir: Path) -> dict[str, str]:
        """Locust's own files into ``locust_dir``; returns the ones missing and why."""
        ...

    def close(self, note: NoteFn) -> None: ...


class Reporter(Protocol):
    """Where the session's progress goes: the CLI gives a live view on a terminal, plain lines
    otherwise; tests give a recorder."""

    def info(self, text: str) -> None:
        """A line said once at the start (run directory, UI address)."""
        ...

    def event(self, text: str) -> None:
        """A line that stays: a scale event, a chaos action, a warning."""
        ...

    def status(self, view: LiveView) -> None:
        """The live view, redrawn each tick."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class LiveView:
    """Everything the live view shows at one tick; times since the run's start."""

    elapsed_s: float
    planned_s: float
    load: LoadStatus | None
    hpas: tuple[HpaStatus, ...]
    workloads: tuple[WorkloadStatus, ...]
    notes: tuple[str, ...]


@dataclass(frozen=True)
class RunResult:
    """What a run left: its directory, how it ended and the report's verdict."""

    run_dir: Path
    status: RunStatus
    verdict: str
    summary: dict[str, Any] = field(default_factory=dict)
    terminated: bool = False  # interrupted by SIGTERM (exit 143), not Ctrl-C (130)
