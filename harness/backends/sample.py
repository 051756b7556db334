"""``kubeswarm sample``: no load of kubeswarm's own; the session only samples, for a duration."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.session.core import LoadPoll, NoteFn, Observation, RunMode


class NoLoad:
    """A backend that generates nothing: the load comes from elsewhere; it ends at the duration."""

    mode: RunMode = "sample"

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self.started_s: float | None = None

    def start(self, run_dir: Path, note: NoteFn) -> dict[str, Any]:
        return {}

    def poll(self, now: float, note: NoteFn) -> LoadPoll:
        if self.started_s is None:
            self.started_s = now
        return LoadPoll(Observation(), True, now - self.started_s >= self.duration_s)

    def stop(self, note: NoteFn) -> None:
        return None

    def fetch_results(self, locust_dir: Path) -> dict[str, str]:
        return {}

    def close(self, note: NoteFn) -> None:
        return None
