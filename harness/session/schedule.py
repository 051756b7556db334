"""The sampling loop: ticks on a fixed schedule and a live line of progress for the user.

Ticks are due at ``start + k * interval``: a slow tick does not push every later one back (no
drift); ticks that could not happen at all are recorded as a ``sampler_gap`` mark, so the analysis
can tell a quiet period from a hole in the data.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from harness.session.store import RunStore


@dataclass
class Schedule:
    """Fixed-rate tick times; ``wait`` sleeps until the next one and reports ticks skipped."""

    interval_s: float
    start_s: float
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    _index: int = 0

    def wait(self) -> tuple[float, int]:
        """Sleeps until the next due tick; returns its due time and how many ticks were skipped."""
        self._index += 1
        due = self.start_s + self._index * self.interval_s
        now = self.clock()
        skipped = 0
        if now > due + self.interval_s:
            skipped = int((now - due) // self.interval_s)
            self._index += skipped
            due = self.start_s + self._index * self.interval_s
        if due > now:
            self.sleep(due - now)
        return due, skipped


def run_ticks(
    store: RunStore,
    schedule: Schedule,
    tick: Callable[[float], bool],
) -> None:
    """Calls ``tick(now)`` on the schedule until it returns False; flushes the store every tick."""
    while True:
        _, skipped = schedule.wait()
        if skipped:
            store.mark("sampler_gap", f"{skipped} tick(s) of {schedule.interval_s:g}s missed")
        keep_going = tick(schedule.clock())
        store.flush()
        if not keep_going:
            return


class Progress:
    """One status line: rewritten in place on a terminal, printed every few seconds otherwise."""

    def __init__(self, out: TextIO | None = None, every_s: float = 5.0) -> None:
        self.out = out or sys.stderr
        self.interactive = self.out.isatty()
        self.every_s = every_s
        self._last_print = 0.0
        self._width = 0

    def update(self, text: str) -> None:
        if self.interactive:
            padded = text.ljust(self._width)
            self._width = len(text)
            self.out.write("\r" + padded)
            self.out.flush()
            return
        now = time.monotonic()
        if now - self._last_print >= self.every_s:
            self._last_print = now
            self.out.write(text + "\n")
            self.out.flush()

    def event(self, text: str) -> None:
        """A line that stays: a scale event, a stage change, a warning."""
        if self.interactive and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self._width = 0
        self.out.write(text + "\n")
        self.out.flush()

    def done(self) -> None:
        if self.interactive and self._width:
            self.out.write("\n")
            self.out.flush()
            self._width = 0
