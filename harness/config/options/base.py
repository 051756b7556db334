"""The option table's parts that every concern uses: ``Option``, the startup and stop bounds of
a run, and the parsers no other module owns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from harness.config.values import positive_int

# Pods of an in-cluster run need time before the load starts: scheduling, pulling the Locust image
# on a cold node, pip installing --requirement, workers connecting. Five minutes covers a slow
# pull; it is also how long the master waits for its workers before giving up.
STARTUP_MARGIN_S: Final = 300.0
# A --deadline must leave at least this to start: two pods scheduled and running on a warm node
# take 10-20 s; less would fail every run at its start.
MIN_STARTUP_S: Final = 30
# After the run-time bound, how long a run may take to stop (a LoadTestShape's last tick, the
# /stop request) before the autoquit window; part of every run's budget.
STOP_GRACE_S: Final = 15
# Measured (docs/DECISIONS.md, "Load pod requests"): a Locust 2.47 worker process holds 53 MiB
# RSS with 20 users and 62 MiB with 300 (about 32 KiB a user); 256 MiB is four times the busy
# figure, room for ~6,000 users per process, more than one core can drive.
WORKER_MEMORY_MI_PER_PROCESS: Final = 256


@dataclass(frozen=True)
class Option:
    """One setting: its flags, how its text becomes a value, its default and its help."""

    name: str
    flags: tuple[str, ...]
    parse: Callable[[str], Any]
    default: Any
    help: str
    multiple: bool = False
    switch: bool = False
    metavar: str | None = None
    # Read from the command line only, never from KUBESWARM_* or the --config file (--env: a
    # value in a file belongs in --env-file, which says where it is; docs/DECISIONS.md).
    flag_only: bool = False


def workers_count(text: str) -> int | str:
    """``--workers``: a count, or ``auto`` (decided while the load runs)."""
    return "auto" if text.strip().lower() == "auto" else positive_int(text)
