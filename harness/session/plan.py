"""The load plan: a run's load and time budget, computed once, and Locust's flags per role.

Every duration is rounded up to whole seconds here and nowhere else, so the Jobs' deadline, the
master's ``--expect-workers-max-wait``, the local startup wait and the session's own deadline
cannot disagree. The budget of a run is

    startup (pods scheduled, images present, workers connected)
    + run time (``-t``; with a ``LoadTestShape`` the shape decides, bounded by ``-t``)
    + a grace period to stop (``STOP_GRACE_S``: a shape still running at ``-t`` is stopped)
    + autoquit (the window in which Locust's results are fetched)

and the Jobs' ``activeDeadlineSeconds`` is that sum (or ``--deadline``). The same flags reach the
local processes (as a command line) and the Jobs (patched into the shipped YAML's args).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from harness.config.options import MIN_STARTUP_S, STARTUP_MARGIN_S, STOP_GRACE_S
from harness.config.run import LoadConfig, RunConfig
from harness.errors import UsageError

Role = Literal["master", "worker"]


def whole_seconds(value: float) -> int:
    """The one rounding rule of a run's budget: up, to at least one second."""
    return max(1, math.ceil(value - 1e-9))


@dataclass(frozen=True)
class LoadPlan:
    """What Locust runs and for how long; frozen before anything starts."""

    locustfile: Path
    host: str
    users: int
    spawn_rate: float
    run_time_s: int  # -t, rounded up; with a shape, the bound on the shape's duration
    autoquit_s: int
    workers: int  # worker processes (local) or worker pods (cluster)
    processes: int  # Locust processes per worker
    startup_s: int  # how long pods may take to start and workers to connect
    deadline_s: int  # the whole budget; the cluster Jobs' activeDeadlineSeconds
    shape: str | None = None  # the locustfile's LoadTestShape class, if it has one
    rebalance: bool = False  # ``--enable-rebalancing``: users spread to workers added later

    @property
    def expected_workers(self) -> int:
        return self.workers * self.processes

    @property
    def stop_by_s(self) -> int:
        """Seconds after the test starts by which it must have stopped (then ``/stop``)."""
        return self.run_time_s + STOP_GRACE_S


def plan_load(
    load: LoadConfig,
    *,
    startup_s: float,
    deadline_s: float | None = None,
    shape: str | None = None,
    rebalance: bool = False,
) -> LoadPlan:
    """The plan for ``load``; ``deadline_s`` (``--deadline``) must leave time to start."""
    run_time_s = whole_seconds(load.run_time_s)
    autoquit_s = whole_seconds(load.autoquit_s)
    busy_s = run_time_s + STOP_GRACE_S + autoquit_s
    if deadline_s is None:
        deadline = whole_seconds(startup_s) + busy_s
    else:
        deadline = whole_seconds(deadline_s)
        if deadline < busy_s + MIN_STARTUP_S:
            raise UsageError(
                f"--deadline {deadline_s:g}s would stop the test before it ends: it must be "
                f"at least --run-time + {STOP_GRACE_S}s + --autoquit ({busy_s}s) plus "
                f"{MIN_STARTUP_S}s for the pods to start"
            )
    return LoadPlan(
        locustfile=load.locustfile,
        host=load.host,
        users=load.users,
        spawn_rate=load.spawn_rate,
        run_time_s=run_time_s,
        autoquit_s=autoquit_s,
        workers=load.workers,
        processes=load.processes,
        startup_s=deadline - busy_s,
        deadline_s=deadline,
        shape=shape,
        rebalance=rebalance,
    )


def locust_flags(plan: LoadPlan, role: Role, *, master_host: str) -> dict[str, str | None]:
    """Locust's flags for ``role`` (flag -> value; None for a switch), without ``-f`` and the
    addresses a backend binds: the local processes and the Jobs get exactly these."""
    if role == "worker":
        return {
            "--worker": None,
            "--master-host": master_host,
            "--processes": str(plan.processes),
        }
    flags: dict[str, str | None] = {
        "--master": None,
        "--autostart": None,
        "--autoquit": str(plan.autoquit_s),
        "--expect-workers": str(plan.expected_workers),
        # 0 would mean "wait forever" to Locust: the startup budget is always at least 1 s.
        "--expect-workers-max-wait": str(plan.startup_s),
        "-H": plan.host,
        "-u": str(plan.users),
        "-r": f"{plan.spawn_rate:g}",
        "-t": f"{plan.run_time_s}s",
        "--csv-full-history": None,
    }
    if plan.rebalance:
        flags["--enable-rebalancing"] = None
    return flags


def as_argv(flags: dict[str, str | None]) -> list[str]:
    """Flags as a command line: ``--flag value`` or a bare ``--switch``."""
    argv: list[str] = []
    for flag, value in flags.items():
        argv.append(flag)
        if value is not None:
            argv.append(value)
    return argv


def plan_for(config: RunConfig, *, startup_s: float = STARTUP_MARGIN_S) -> LoadPlan:
    """The plan of a run configured by ``config`` (its ``--deadline``, shape and worker mode)."""
    return plan_load(
        config.load,
        startup_s=startup_s,
        deadline_s=config.deadline_s,
        shape=config.shape,
        rebalance=config.auto_workers,
    )
