"""The session's lifecycle on every ending path, with a scripted backend and a scripted clock.

Each test drives ``execute`` as a run would: ticks append rows, the backend is stopped, its results
fetched and it is closed on every path, run.json says how the run ended, the report is written
even when the run failed, and the error that ended it reaches the caller.
"""

from __future__ import annotations

import csv
import errno
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from analysis.data import schema
from harness.config.options import STOP_GRACE_S
from harness.config.run import LoadConfig
from harness.errors import LoadGeneratorError, RunDirectoryError
from harness.session.core import (
    LiveView,
    LoadPoll,
    LoadStatus,
    NoteFn,
    Observation,
    RunMode,
    TickContext,
)
from harness.session.plan import plan_load
from harness.session.run import SessionSpec, execute

pytestmark = pytest.mark.unit


@dataclass
class Clock:
    """Time that moves only when the session sleeps."""

    now: float = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class ScriptedBackend:
    """Running from the first poll; finished after ``finish_after`` polls (None: never)."""

    finish_after: int | None = 3
    fail_on_poll: int | None = None
    fetch_error: OSError | None = None
    mode: RunMode = "local"
    calls: list[str] = field(default_factory=list)
    polls: int = 0

    def start(self, run_dir: Path, note: NoteFn) -> dict[str, Any]:
        self.calls.append("start")
        note("Locust web UI: http://127.0.0.1:1")
        return {"processes": [1, 2]}

    def poll(self, now: float, note: NoteFn) -> LoadPoll:
        self.polls += 1
        if self.polls == self.fail_on_poll:
            raise LoadGeneratorError("the Locust master exited")
        observation = Observation()
        observation.load = LoadStatus("running", 10, 1, 20.0, 0.0, 12.0)
        observation.append(
            schema.LOCUST,
            [{"ts": now, "state": "running", "user_count": 10, "rps": 20.0, "fail_ratio": 0.0}],
        )
        if self.polls == 1:
            observation.mark("test_start", "10 users", now)
        finished = self.finish_after is not None and self.polls >= self.finish_after
        return LoadPoll(observation, True, finished)

    def stop(self, note: NoteFn) -> None:
        self.calls.append("stop")

    def fetch_results(self, locust_dir: Path) -> dict[str, str]:
        self.calls.append("fetch")
        if self.fetch_error is not None:
            raise self.fetch_error
        return {"report.html": "not served"}

    def close(self, note: NoteFn) -> None:
        self.calls.append("close")


@dataclass
class Recorder:
    infos: list[str] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    views: list[LiveView] = field(default_factory=list)
    closed: bool = False

    def info(self, text: str) -> None:
        self.infos.append(text)

    def event(self, text: str) -> None:
        self.events.append(text)

    def status(self, view: LiveView) -> None:
        self.views.append(view)

    def close(self) -> None:
        self.closed = True


@dataclass
class Interrupting:
    """A sampler that records a pod row, and is Ctrl-C'd at its ``at`` th tick."""

    at: int | None = None
    ticks: int = 0

    def tick(self, ctx: TickContext) -> Observation:
        self.ticks += 1
        if self.ticks == self.at:
            raise KeyboardInterrupt
        observation = Observation()
        observation.append(schema.PODS, [{"ts": ctx.now, "pod": "web-1", "workload": "web"}])
        observation.event(f"tick {self.ticks}")
        return observation


def spec(tmp_path: Path, run_time_s: float = 60.0) -> SessionSpec:
    load = LoadConfig(tmp_path / "f.py", "http://127.0.0.1:1", 10, 10.0, run_time_s, 1, 1, 5.0)
    return SessionSpec(
        mode="local",
        name="t",
        out_dir=tmp_path / "runs",
        sample_interval_s=1.0,
        config={"users": 10},
        slos=("p95_ms<100",),
        plan=plan_load(load, startup_s=10.0),
        record={"slos": ["p95_ms<100"]},
    )


def reported(run_dir: Path, slos: Any) -> dict[str, Any]:
    (run_dir / "report" / "summary.json").write_text(json.dumps({"slos": list(slos)}))
    return {"verdict": "pass"}


def rows(run_dir: Path, table: schema.CsvSchema) -> list[dict[str, str]]:
    with (run_dir / "samples" / table.file_name).open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


def run_json(run_dir: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    return result


def test_a_completed_run_records_every_tick_and_reports(tmp_path: Path) -> None:
    clock, backend, reporter = Clock(), ScriptedBackend(finish_after=3), Recorder()
    result = execute(
        spec(tmp_path), backend, [Interrupting()], reporter, report=reported,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert result.status == "completed" and result.verdict == "pass"
    assert backend.calls == ["start", "fetch", "close"]
    assert len(rows(result.run_dir, schema.LOCUST)) == 3
    assert len(rows(result.run_dir, schema.PODS)) == 3
    assert [m["kind"] for m in rows(result.run_dir, schema.MARKS)] == ["test_start"]
    meta = run_json(result.run_dir)
    assert meta["status"] == "completed" and meta["processes"] == [1, 2]
    assert meta["slos"] == ["p95_ms<100"]
    assert reporter.infos[0] == f"run directory: {result.run_dir}"
    assert "warning: could not fetch Locust's report.html: not served" in reporter.events
    assert [v.load.users for v in reporter.views if v.load] == [10, 10, 10]
    assert reporter.closed


def test_ctrl_c_stops_the_test_fetches_what_exists_and_still_reports(tmp_path: Path) -> None:
    clock, backend = Clock(), ScriptedBackend(finish_after=None)
    result = execute(
        spec(tmp_path), backend, [Interrupting(at=2)], Recorder(), report=reported,
        clock=clock, sleep=clock.sleep,
    )  # fmt: skip
    assert result.status == "interrupted"
    assert backend.calls == ["start", "stop", "fetch", "close"]
    assert run_json(result.run_dir)["status"] == "interrupted"
    assert (result.run_dir / "report" / "summary.json").is_file()


def test_a_failing_load_generator_is_reported_then_raised(tmp_path: Path) -> None:
    clock, backend = Clock(), ScriptedBackend(finish_after=None, fail_on_poll=2)
    with pytest.raises(LoadGeneratorError, match="master exited"):
        execute(
            spec(tmp_path), backend, [], Recorder(), report=reported,
            clock=clock, sleep=clock.sleep,
        )  # fmt: skip
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert backend.calls == ["start", "stop", "fetch", "close"]
    assert run_json(run_dir)["status"] == "failed"
    assert (run_dir / "report" / "summary.json").is_file()


def test_a_test_past_its_run_time_is_stopped_then_the_budget_ends_it(tmp_path: Path) -> None:
    """A LoadTestShape that never ends: stopped once at -t + grace; if it still does not stop,
    the session gives up at the whole budget, with the report written."""
    clock, backend, reporter = Clock(), ScriptedBackend(finish_after=None), Recorder()
    session = spec(tmp_path, run_time_s=5.0)
    with pytest.raises(LoadGeneratorError, match="did not finish within"):
        execute(session, backend, [], reporter, report=reported, clock=clock, sleep=clock.sleep)
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert backend.calls.count("stop") == 2  # at the run-time bound, then on giving up
    stops = [m for m in rows(run_dir, schema.MARKS) if m["kind"] == "test_stop"]
    assert len(stops) == 1 and "--run-time 5s" in stops[0]["detail"]
    start = float(rows(run_dir, schema.MARKS)[0]["ts"])
    assert 5 + STOP_GRACE_S <= float(stops[0]["ts"]) - start <= 5 + STOP_GRACE_S + 1
    assert any("ran past --run-time 5s" in e for e in reporter.events)


def test_a_full_disk_while_fetching_is_one_error_and_a_failed_run(tmp_path: Path) -> None:
    clock = Clock()
    backend = ScriptedBackend(fetch_error=OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(RunDirectoryError, match="No space left on device"):
        execute(
            spec(tmp_path), backend, [], Recorder(), report=reported,
            clock=clock, sleep=clock.sleep,
        )  # fmt: skip
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert backend.calls[-1] == "close"
    assert run_json(run_dir)["status"] == "failed"


def test_an_unwritable_output_directory_is_refused_before_anything_starts(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    backend = ScriptedBackend()
    session = spec(tmp_path)
    session = SessionSpec(**{**session.__dict__, "out_dir": blocker / "runs"})
    with pytest.raises(RunDirectoryError, match="cannot create"):
        execute(session, backend, [], Recorder(), report=reported)
    assert backend.calls == []
