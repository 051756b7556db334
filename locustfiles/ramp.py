"""Ramp to the break point: users rise in steps until an SLO stays broken, then the test stops.

Each step adds ``KUBESWARM_RAMP_STEP_USERS`` users and holds them ``KUBESWARM_RAMP_HOLD_S``
seconds. A step is judged only over its last ``KUBESWARM_RAMP_BREAK_S`` seconds: before that the
HPA is still reacting (sync period + metrics delay), and a latency spike it then absorbs is not the
service's limit. When the SLO (p95 above ``KUBESWARM_RAMP_P95_MS`` or error rate above
``KUBESWARM_RAMP_ERROR_RATE``) is broken through most of that judged part, the shape ends the test;
at ``KUBESWARM_RAMP_MAX_USERS`` (default ``-u``) it ends after the last step's hold. Locust
ignores ``-t`` for a shape; kubeswarm still stops the test at ``-t``, so give ``-t`` room for every
step. The shape runs on the master only: the variables need to reach the master alone.

Use it as it is (``-f ramp.py``: one user class sending five requests per second to ``/``), or
import the shape into your own locustfile so Locust finds it there::

    from ramp import RampShape  # noqa: F401  (ship ramp.py next to it: --extra-file in a cluster)

Every step and the stop are logged as one line starting ``kubeswarm ramp:`` with ``key=value``
fields (see ``format_line``), so a run's log says which step broke which SLO and why it stopped;
the shape also keeps them in ``steps`` and ``stop``.

Settings come from the environment rather than custom Locust flags because kubeswarm builds
Locust's command line itself; the same variables reach local processes and the master's pod.
The judging works on deltas of Locust's cumulative totals (``runner.stats.total``), so it needs no
response-time cache and sees on the master what all workers reported.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from locust import FastHttpUser, LoadTestShape, constant_pacing, task

LOG: Final = logging.getLogger("kubeswarm.ramp")
LINE_PREFIX: Final = "kubeswarm ramp:"
# Locust's own percentiles and RPS cover the last 10 s; judging over the same span keeps the
# ramp's numbers comparable with what the report shows.
STATS_WINDOW_S: Final = 10.0
# The HPA's worst-case reaction to a load step beyond its sync period: kubelet stats every 10 s
# plus metrics-server's resolution window (up to 30 s).
METRICS_DELAY_S: Final = 40.0
HPA_SYNC_PERIOD_S: Final = 15.0  # kube-controller-manager's default
DEFAULT_BREAK_S: Final = 20.0  # two Locust windows: one bad window is noise
# Share of the judged ticks that must break the SLO: a tick or two of good numbers in a broken
# step is noise too.
BREAK_SHARE: Final = 0.8
# Fewer completed requests than this in a window give no percentile worth judging.
MIN_REQUESTS: Final = 10


def minimum_hold_s(
    sync_period_s: float = HPA_SYNC_PERIOD_S,
    *,
    metrics_delay_s: float = METRICS_DELAY_S,
    break_s: float = DEFAULT_BREAK_S,
) -> float:
    """The shortest step in which the HPA can react (sync + metrics delay) and the settled part
    can still be judged (``break_s``); kubeswarm's ``analysis.judge.capacity.check_ramp`` warns
    about shorter steps with the same rule (this file runs where kubeswarm is not installed)."""
    return sync_period_s + metrics_delay_s + break_s


@dataclass(frozen=True)
class RampSettings:
    step_users: int
    hold_s: float
    max_users: int
    p95_ms: float
    error_rate: float  # 0..1
    break_s: float
    spawn_rate: float

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str], users: int | None = None, spawn_rate: float | None = None
    ) -> RampSettings:
        """From ``KUBESWARM_RAMP_*``; ``users``/``spawn_rate`` are Locust's ``-u``/``-r``."""

        def number(name: str, default: float) -> float:
            text = environ.get(f"KUBESWARM_RAMP_{name}")
            value = float(text) if text not in (None, "") else default
            if not math.isfinite(value) or value <= 0:
                raise ValueError(f"KUBESWARM_RAMP_{name} must be a number above 0, not {text!r}")
            return value

        max_users = round(number("MAX_USERS", users or 100))
        step = round(number("STEP_USERS", max(1, math.ceil(max_users / 10))))
        break_s = number("BREAK_S", DEFAULT_BREAK_S)
        settings = cls(
            step_users=step,
            hold_s=number("HOLD_S", minimum_hold_s(break_s=break_s)),
            max_users=max(max_users, step),
            p95_ms=number("P95_MS", 500.0),
            error_rate=number("ERROR_RATE", 0.01),
            # Each step's users start within about a second unless -r says otherwise.
            spawn_rate=spawn_rate or float(step),
            break_s=break_s,
        )
        if settings.break_s >= settings.hold_s:
            raise ValueError("KUBESWARM_RAMP_BREAK_S must be shorter than KUBESWARM_RAMP_HOLD_S")
        return settings


@dataclass(frozen=True)
class Totals:
    """Locust's cumulative totals at one moment (``runner.stats.total``)."""

    t: float
    requests: int
    failures: int
    response_times: Mapping[int, int]  # rounded ms -> count, cumulative


@dataclass(frozen=True)
class WindowStats:
    requests: int
    error_rate: float | None
    p95_ms: float | None


def window_stats(old: Totals, new: Totals) -> WindowStats:
    """Requests, error rate and p95 of what completed between two snapshots."""
    requests = new.requests - old.requests
    if requests <= 0:
        return WindowStats(0, None, None)
    counts = sorted(
        (ms, n - old.response_times.get(ms, 0))
        for ms, n in new.response_times.items()
        if n > old.response_times.get(ms, 0)
    )
    total = sum(n for _, n in counts)
    p95 = None
    if total:
        rank, seen = math.ceil(0.95 * total), 0
        for ms, n in counts:
            seen += n
            if seen >= rank:
                p95 = float(ms)
                break
    return WindowStats(requests, (new.failures - old.failures) / requests, p95)


def format_line(event: str, fields: Mapping[str, Any], text: str) -> str:
    """``kubeswarm ramp: <event> k=v ...: <text>``: one line for people and for parsers."""
    pairs = " ".join(
        f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in fields.items()
    )
    return f"{LINE_PREFIX} {event} {pairs}: {text}"


@dataclass(frozen=True)
class RampStop:
    reason: str  # p95_ms, error_rate, no_responses, max_users
    users: int
    step: int
    observed: float | None
    threshold: float | None
    line: str


@dataclass
class RampController:
    """The ramp's decisions, separate from Locust so they can be checked tick by tick."""

    settings: RampSettings
    step: int = 0  # 0 before the first tick, then 1, 2, ...
    step_start: float = 0.0
    stop: RampStop | None = None
    steps: list[str] = field(default_factory=list)
    _history: deque[Totals] = field(default_factory=deque)
    _judged: list[tuple[str | None, float | None]] = field(default_factory=list)

    @property
    def users(self) -> int:
        return min(self.settings.step_users * self.step, self.settings.max_users)

    def tick(self, totals: Totals) -> tuple[int, float] | None:
        """Users and spawn rate for now, or None once the ramp has stopped."""
        if self.stop is not None:
            return None
        self._history.append(totals)
        while len(self._history) > 1 and totals.t - self._history[1].t >= STATS_WINDOW_S:
            self._history.popleft()
        if self.step == 0:
            self._next_step(totals.t)
        in_step = totals.t - self.step_start
        if in_step >= self.settings.hold_s - self.settings.break_s:
            self._judged.append(self._broken(totals))
        if in_step >= self.settings.hold_s:
            self.stop = self._verdict()
            if self.stop is not None:
                LOG.warning(self.stop.line)
                return None
            self._next_step(totals.t)
        return self.users, self.settings.spawn_rate

    def _next_step(self, now: float) -> None:
        self.step, self.step_start = self.step + 1, now
        self._history = deque([self._history[-1]]) if self._history else deque()
        self._judged = []
        line = format_line(
            "step",
            {"step": self.step, "users": self.users, "hold_s": self.settings.hold_s},
            f"step {self.step}: {self.users} users for {self.settings.hold_s:g}s",
        )
        self.steps.append(line)
        LOG.info(line)

    def _broken(self, totals: Totals) -> tuple[str | None, float | None]:
        """Which SLO the last window breaks (and its value), or (None, None)."""
        oldest = self._history[0]
        if totals.t - oldest.t < STATS_WINDOW_S / 2:
            return None, None  # too short a window to say anything
        stats = window_stats(oldest, totals)
        if stats.requests == 0:
            return "no_responses", None
        if stats.error_rate is not None and stats.error_rate > self.settings.error_rate:
            return "error_rate", stats.error_rate
        if (
            stats.requests >= MIN_REQUESTS
            and stats.p95_ms is not None
            and stats.p95_ms > self.settings.p95_ms
        ):
            return "p95_ms", stats.p95_ms
        return None, None

    def _verdict(self) -> RampStop | None:
        judged = self._judged
        broken = [(why, value) for why, value in judged if why is not None]
        if judged and len(broken) >= BREAK_SHARE * len(judged):
            reasons = [why for why, _ in broken]
            reason = max(set(reasons), key=reasons.count)
            values = sorted(v for why, v in broken if why == reason and v is not None)
            observed = values[len(values) // 2] if values else None
            return self._stopped(reason, observed)
        if self.users >= self.settings.max_users:
            return self._stopped("max_users", None)
        return None

    def _stopped(self, reason: str, observed: float | None) -> RampStop:
        s = self.settings
        threshold = {"p95_ms": s.p95_ms, "error_rate": s.error_rate}.get(reason)
        judged_s = f"{s.break_s:g}s"
        text = {
            "p95_ms": f"p95 {observed or 0:.0f} ms above {s.p95_ms:g} ms through the last "
            f"{judged_s} of the step",
            "error_rate": f"error rate {100 * (observed or 0):.2f}% above "
            f"{100 * s.error_rate:g}% through the last {judged_s} of the step",
            "no_responses": f"no request completed through the last {judged_s} of the step",
            "max_users": f"reached {s.max_users} users with every SLO met: no break point found",
        }[reason]
        fields: dict[str, Any] = {"reason": reason, "step": self.step, "users": self.users}
        if observed is not None:
            fields["observed"] = round(observed, 4)
        if threshold is not None:
            fields["threshold"] = threshold
        line = format_line("stop", fields, f"stopped at {self.users} users: {text}")
        return RampStop(reason, self.users, self.step, observed, threshold, line)


def read_totals(runner: Any, now: float) -> Totals:
    total = runner.stats.total
    return Totals(now, total.num_requests, total.num_failures, dict(total.response_times))


class RampUser(FastHttpUser):
    # Five requests per second per user whatever the latency: demand is set by the user count.
    wait_time = constant_pacing(0.2)

    @task
    def page(self) -> None:
        self.client.get("/")


class RampShape(LoadTestShape):
    """Steps of users until an SLO breaks (see the module's docstring)."""

    controller: RampController | None = None

    @property
    def steps(self) -> list[str]:
        return self.controller.steps if self.controller else []

    @property
    def stop(self) -> RampStop | None:
        return self.controller.stop if self.controller else None

    def tick(self) -> tuple[int, float] | None:
        if self.controller is None:
            options = self.runner.environment.parsed_options if self.runner else None
            settings = RampSettings.from_env(
                os.environ,
                users=getattr(options, "num_users", None),
                spawn_rate=getattr(options, "spawn_rate", None),
            )
            self.controller = RampController(settings)
        return self.controller.tick(read_totals(self.runner, self.elapsed_s()))

    def elapsed_s(self) -> float:
        return time.perf_counter() - float(self.start_time)  # LoadTestShape.get_run_time
