"""``execute``: the one lifecycle every run goes through, whatever its mode.

    create the run directory (run.json, empty sample files)
    backend.start                      local processes, cluster Jobs, or nothing (sample)
    every tick, on a fixed schedule:   backend.poll -> samplers -> actions
                                       rows appended and flushed, events and live view reported
                                       past the run-time bound: backend.stop (a shape that runs on)
    on every ending path               (finished, Ctrl-C/SIGTERM, an error, a deadline):
                                       backend.fetch_results, backend.close, run.json closed,
                                       the report written, the verdict returned

A failure while starting or running is re-raised after the report of what exists is written, so
the CLI maps it to its exit code; a run directory that cannot be written is one line, exit 3.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from analysis.data import schema
from harness.errors import KubeswarmError, LoadGeneratorError, RunDirectoryError, Terminated
from harness.processes import sigterm_as_interrupt
from harness.session.core import (
    Action,
    Backend,
    LiveView,
    LoadStatus,
    Observation,
    Reporter,
    RunMode,
    RunResult,
    RunStatus,
    Sampler,
    TickContext,
)
from harness.session.plan import LoadPlan
from harness.session.schedule import Schedule
from harness.session.store import RunStore

# Past the whole budget (startup + run time + autoquit), how long the session still waits for the
# load generator before it gives up on it: slack for slow API calls, never a second budget.
DEADLINE_SLACK_S: Final = 30.0


@dataclass(frozen=True)
class SessionSpec:
    """What the session needs to know about a run besides its parts."""

    mode: RunMode
    name: str
    out_dir: Path
    sample_interval_s: float
    config: Mapping[str, Any]  # the run's configuration as run.json records it
    slos: tuple[str, ...] = ()
    plan: LoadPlan | None = None  # None: no load of kubeswarm's own (``sample``)
    duration_s: float | None = None  # without a plan: how long to sample
    record: Mapping[str, Any] = field(default_factory=dict)  # more fields for run.json
    # The run id, when it was chosen before the run (a detached run's controller); else it is
    # made from the name and the start time.
    run_id: str | None = None

    @property
    def planned_s(self) -> float:
        if self.plan is not None:
            return float(self.plan.run_time_s)
        return float(self.duration_s or 0.0)

    @property
    def budget_s(self) -> float:
        """From the run's start until the session stops waiting for the load generator."""
        if self.plan is not None:
            return self.plan.deadline_s + DEADLINE_SLACK_S
        return self.planned_s + DEADLINE_SLACK_S


Report = Callable[[Path, Sequence[str]], dict[str, Any]]


def default_report(run_dir: Path, slos: Sequence[str]) -> dict[str, Any]:
    from analysis.report import write_report

    return write_report(run_dir, slos=list(slos))


def report_writer(
    *,
    baseline: Path | None = None,
    tolerances: Mapping[str, float] | None = None,
    junit: Path | None = None,
    target_rps: float | None = None,
) -> Report:
    """The report of a run, compared with ``baseline``, sized for ``target_rps`` and written as
    JUnit when asked. A run that ended without Locust data cannot be sized: it is reported
    without the sizing rather than not at all."""

    def write(run_dir: Path, slos: Sequence[str]) -> dict[str, Any]:
        from analysis.render.junit import write_junit
        from analysis.report import write_report

        options: dict[str, Any] = {"baseline": baseline, "tolerances": tolerances}
        try:
            summary = write_report(run_dir, slos=list(slos), target_rps=target_rps, **options)
        except ValueError:
            if target_rps is None:
                raise
            summary = write_report(run_dir, slos=list(slos), **options)
        if junit is not None:
            write_junit(junit, summary)
        return summary

    return write


def execute(
    spec: SessionSpec,
    backend: Backend,
    samplers: Sequence[Sampler],
    reporter: Reporter,
    *,
    actions: Sequence[Action] = (),
    report: Report = default_report,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> RunResult:
    """Runs one run end to end; see the module docstring. Raises the ``KubeswarmError`` that
    ended the run, if any, after its report is written."""
    with sigterm_as_interrupt():  # a cancelled CI job takes the Ctrl-C path
        store = _create_store(spec, clock())
        reporter.info(f"run directory: {store.directory}")
        status: RunStatus = "failed"
        failure: KubeswarmError | None = None
        terminated = False
        try:
            try:
                store.update(**spec.record)
                store.update(**backend.start(store.directory, reporter.info))
                ticker = _Ticker(spec, backend, store, reporter, start=clock())
                status = ticker.drive([*samplers, *actions], clock, sleep)
            except KeyboardInterrupt as e:
                status, terminated = "interrupted", isinstance(e, Terminated)
                reporter.event(
                    "interrupted: stopping the test and fetching what exists "
                    "(Ctrl-C again exits at once)"
                )
                backend.stop(reporter.event)
            except KubeswarmError as e:
                failure = e
                backend.stop(reporter.event)
            except OSError as e:
                failure = RunDirectoryError(f"cannot write to {store.directory}: {e.strerror}")
            try:
                _fetch(backend, store, reporter)
            except RunDirectoryError as e:
                status, failure = "failed", e
        finally:
            backend.close(reporter.event)
            with contextlib.suppress(OSError):
                store.finish(status)
            reporter.close()
    try:
        summary = report(store.directory, spec.slos)
    except OSError as e:
        raise RunDirectoryError(
            f"cannot write the report into {store.directory}: {e.strerror}"
        ) from e
    if failure is not None:
        raise failure
    return RunResult(store.directory, status, str(summary["verdict"]), summary, terminated)


def _create_store(spec: SessionSpec, now: float) -> RunStore:
    try:
        return RunStore.create(
            spec.out_dir,
            name=spec.name,
            mode=spec.mode,
            config=spec.config,
            sample_interval_s=spec.sample_interval_s,
            now_s=now,
            run_id=spec.run_id,
        )
    except OSError as e:
        raise RunDirectoryError(f"cannot create a run directory in {spec.out_dir}: {e}") from e


@dataclass
class _Ticker:
    """One run's ticks: what the session has seen so far, and how it records each tick."""

    spec: SessionSpec
    backend: Backend
    store: RunStore
    reporter: Reporter
    start: float
    test_start: float | None = None
    stop_sent: bool = False
    load: LoadStatus | None = None

    def drive(
        self,
        sources: Sequence[Sampler | Action],
        clock: Callable[[], float],
        sleep: Callable[[float], None],
    ) -> RunStatus:
        """Ticks until the backend says the test is over; returns how the run ended."""
        schedule = Schedule(self.spec.sample_interval_s, self.start, clock=clock, sleep=sleep)
        while True:
            now = clock()
            poll = self.backend.poll(now, self.reporter.event)
            observation = poll.observation
            if poll.running and self.test_start is None:
                self.test_start = now
            self.load = observation.load or self.load
            workers = tuple(
                row
                for table, rows in observation.rows
                if table.file_name == schema.WORKERS.file_name
                for row in rows
            )
            ctx = TickContext(now, self.start, self.test_start, self.load, workers)
            for source in sources:
                observation.merge(source.tick(ctx))
            self.record(observation, now)
            if poll.finished:
                break
            self.bound(now)
            _, skipped = schedule.wait()
            if skipped:
                self.store.mark(
                    "sampler_gap", f"{skipped} tick(s) of {self.spec.sample_interval_s:g}s missed"
                )
        if self.spec.plan is None or self.test_start is not None:
            return "completed"
        return "failed"

    def record(self, observation: Observation, now: float) -> None:
        for table, rows in observation.rows:
            self.store.append(table, rows)
        self.store.flush()
        for text in observation.events:
            self.reporter.event(text)
        self.reporter.status(
            LiveView(
                elapsed_s=now - (self.test_start or self.start),
                planned_s=self.spec.planned_s,
                load=self.load,
                hpas=tuple(observation.hpas),
                workloads=tuple(observation.workloads),
                notes=tuple(observation.notes),
            )
        )

    def bound(self, now: float) -> None:
        """The run-time bound (a shape that runs on is stopped) and the session's deadline."""
        plan = self.spec.plan
        if (
            plan is not None
            and self.test_start is not None
            and not self.stop_sent
            and now - self.test_start > plan.stop_by_s
        ):
            self.stop_sent = True
            what = f"the shape {plan.shape}" if plan.shape else "the test"
            self.reporter.event(f"{what} ran past --run-time {plan.run_time_s}s: stopping it")
            self.store.mark(
                "test_stop", f"stopped by kubeswarm at --run-time {plan.run_time_s}s", now
            )
            self.backend.stop(self.reporter.event)
        if now - self.start > self.spec.budget_s:
            raise LoadGeneratorError(
                f"the test did not finish within {self.spec.budget_s:.0f}s (startup, run time "
                "and autoquit); results fetched and the report written from what exists"
            )


def _fetch(backend: Backend, store: RunStore, reporter: Reporter) -> None:
    try:
        missing = backend.fetch_results(store.locust_path(""))
    except OSError as e:
        raise RunDirectoryError(
            f"cannot write Locust's results into {store.directory}: {e.strerror}"
        ) from e
    except KubeswarmError as e:
        reporter.event(f"warning: could not fetch Locust's results: {e}")
        return
    for name, why in missing.items():
        reporter.event(f"warning: could not fetch Locust's {name}: {why}")
