"""The ramp shape's own lines (``locustfiles/ramp.py``) read from the master's log.

The shape runs inside Locust and cannot write kubeswarm's files; it logs one line per step and
one when it stops (``kubeswarm ramp: stop reason=p95_ms ...: text``). The new lines of the
master's log are read as the run goes (a local master's file each tick, a master pod's log
through the API server every few seconds and when the test ends): a step becomes a line for the
user, the stop a ``ramp_stop`` mark (the capacity analysis reads why the ramp ended from it) and
a line.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Final

from analysis.judge.capacity import (
    RAMP_LINE_PREFIX,
    check_ramp,
    minimum_hold_s,
    parse_ramp_line,
)
from harness.errors import KubeswarmError
from harness.session.core import Observation

RAMP_SHAPE: Final = "RampShape"  # the shipped shape class of locustfiles/ramp.py
RAMP_ENV_PREFIX: Final = "KUBESWARM_RAMP_"
#: Seconds each pod log read reaches back beyond the previous one (clock skew, slow requests).
OVERLAP_S: Final = 10


def ramp_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The ramp's settings from kubeswarm's environment, for the master Job's env (local
    processes inherit them)."""
    return {k: v for k, v in sorted(environ.items()) if k.startswith(RAMP_ENV_PREFIX)}


def ramp_warning(
    environ: Mapping[str, str], sync_period_s: float, *, metrics_delay_s: float | None = None
) -> str | None:
    """A warning when the ramp's steps (``KUBESWARM_RAMP_HOLD_S``, judged over their last
    ``KUBESWARM_RAMP_BREAK_S``) are shorter than the HPA can react in."""
    settings: dict[str, float] = {}
    for name in ("HOLD_S", "BREAK_S"):
        text = environ.get(f"{RAMP_ENV_PREFIX}{name}")
        if not text:
            continue
        try:
            settings[name] = float(text)
        except ValueError:
            return f"{RAMP_ENV_PREFIX}{name}={text!r} is not a number of seconds"
    options: dict[str, float] = {}
    if "BREAK_S" in settings:
        options["break_s"] = settings["BREAK_S"]
    if metrics_delay_s is not None:
        options["metrics_delay_s"] = metrics_delay_s
    hold_s = settings.get("HOLD_S", minimum_hold_s(15.0))
    return check_ramp(hold_s, sync_period_s, **options)


def ramp_observation(lines: Iterable[tuple[float, str]]) -> Observation:
    """The ramp's lines among ``(time, line)`` of the master's log: each an event for the user,
    the stop also a ``ramp_stop`` mark at its time."""
    observation = Observation()
    for when, raw in lines:
        parsed = parse_ramp_line(raw)
        if parsed is None:
            continue
        event, _fields, text = parsed
        if event == "stop":
            observation.mark("ramp_stop", raw[raw.find(RAMP_LINE_PREFIX) :], when)
        observation.event(f"ramp: {text}")
    return observation


class RampLog:
    """Follows one log file (a local master's) from where the last read ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self, now: float) -> Observation:
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                chunk = log.read()
        except OSError:
            return Observation()
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a half-written line waits for the next tick
        self.offset += len(complete)
        text = complete.decode("utf-8", errors="replace")
        return ramp_observation((now, line) for line in text.splitlines())


class PodRampLog:
    """Follows the master pod's log through the API server (``pods/log``) in a cluster.

    ``read(since_s)`` returns the log with each line led by its RFC 3339 time (``timestamps``),
    the whole log when ``since_s`` is None. Read every ``every_s`` (the ramp logs a line per
    step: there is nothing to hurry for) and once more when the test is over; each read overlaps
    the one before, and a line already seen is skipped. A read that fails is tried at the next.
    """

    def __init__(self, read: Callable[[int | None], str], every_s: float = 5.0) -> None:
        self._read = read
        self.every_s = every_s
        self.read_s: float | None = None
        self.seen: set[str] = set()

    def read(self, now: float, *, final: bool = False) -> Observation:
        if not final and self.read_s is not None and now - self.read_s < self.every_s:
            return Observation()
        since = None if self.read_s is None else math.ceil(now - self.read_s) + OVERLAP_S
        try:
            text = self._read(since)
        except KubeswarmError:
            return Observation()
        self.read_s = now
        lines: list[tuple[float, str]] = []
        for raw in text.splitlines():
            if raw in self.seen or parse_ramp_line(raw) is None:
                continue
            self.seen.add(raw)
            stamp, _, line = raw.partition(" ")
            lines.append((min(now, _epoch(stamp) or now), line))
        return ramp_observation(lines)


def _epoch(stamp: str) -> float | None:
    """Seconds since the epoch of a log line's RFC 3339 time (nanoseconds are cut to micro)."""
    try:
        return dt.datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None
