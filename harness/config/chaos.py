"""``--chaos ACTION[:COUNT]@WHEN``, ``--chaos-target`` and ``--chaos-pick``: parsed and checked.

A disruption is planned before the run starts, so everything that can be wrong with it (an unknown
action, a count below one, a time after the test ends, a target that is kubeswarm's own load
generator) is refused here, as a one-line ``UsageError``, before anything is created.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal, get_args

from analysis.data.units import parse_duration
from harness.config.values import WatchTarget, parse_watch
from harness.errors import UsageError

ChaosAction = Literal["pod-delete", "pod-kill"]
ChaosPick = Literal["oldest", "random"]
CHAOS_ACTIONS: Final[tuple[str, ...]] = get_args(ChaosAction)
CHAOS_PICKS: Final[tuple[str, ...]] = get_args(ChaosPick)
_SPEC: Final = re.compile(r"^\s*([a-z-]+)(?::([^@]*))?@(.+?)\s*$")
# Locust's processes and containers carry its name in their command line; a pattern that would
# match them could make kubeswarm disrupt the load generator that is measuring the disruption.
_LOAD_GENERATOR_WORD: Final = "locust"


@dataclass(frozen=True)
class ChaosSpec:
    """One planned disruption: ``pod-kill:2@60s`` kills 2 pods 60 s after the test started."""

    action: ChaosAction
    count: int  # pods hit at once
    at_s: float  # seconds since the test started (Locust's first users), as -t counts

    @property
    def grace_period_s(self) -> int | None:
        """What the pods get to shut down: their own grace period (None) or none at all."""
        return 0 if self.action == "pod-kill" else None

    def __str__(self) -> str:
        return f"{self.action}:{self.count}@{self.at_s:g}s"


def parse_chaos(text: str) -> ChaosSpec:
    """``pod-delete@30s``, ``pod-kill:2@1m``; ValueError naming what a valid spec looks like."""
    match = _SPEC.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not ACTION[:COUNT]@WHEN (examples: pod-delete@30s, pod-kill:2@1m)"
        )
    action, count_text, when = match.groups()
    if action not in CHAOS_ACTIONS:
        raise ValueError(f"{text!r}: unknown action {action!r}; use {', '.join(CHAOS_ACTIONS)}")
    try:
        count = 1 if count_text is None else int(count_text)
    except ValueError:
        raise ValueError(f"{text!r}: COUNT must be a whole number, got {count_text!r}") from None
    if count < 1:
        raise ValueError(f"{text!r}: COUNT must be 1 or more, got {count}")
    try:
        at_s = parse_duration(when)
    except ValueError as e:
        raise ValueError(f"{text!r}: WHEN: {e}") from None
    return ChaosSpec(action, count, at_s)  # type: ignore[arg-type]  # checked just above


def parse_chaos_target(text: str) -> WatchTarget:
    """``deployment/NAME``, ``NAMESPACE/deployment/NAME``, ``statefulset/NAME``; local:
    ``pid/PID`` (the workers of a pre-fork server) or ``cmd/PATTERN``."""
    target = parse_watch(text)
    if target.kind == "hpa":
        raise ValueError(
            f"{text!r}: name the workload whose pods are disrupted (deployment/NAME); "
            "without --chaos-target the first watched HPA's workload is used"
        )
    if target.kind == "cmd" and _LOAD_GENERATOR_WORD in target.name.lower():
        raise ValueError(f"{text!r} would match kubeswarm's own load generator (Locust)")
    if target.kind == "pid" and int(target.name) in _own_pids():
        raise ValueError(f"{text!r} is kubeswarm itself")
    return target


def parse_chaos_pick(text: str) -> ChaosPick:
    lowered = text.strip().lower()
    if lowered not in CHAOS_PICKS:
        raise ValueError(f"{text!r}: use {' or '.join(CHAOS_PICKS)}")
    return lowered  # type: ignore[return-value]  # one of CHAOS_PICKS


def _own_pids() -> set[int]:
    return {os.getpid(), os.getppid()}


def check_chaos(
    specs: Sequence[ChaosSpec], run_time_s: float, target: WatchTarget | None, *, local: bool
) -> None:
    """Each disruption falls inside the test, and the target suits the mode (``UsageError``)."""
    for spec in specs:
        if spec.at_s >= run_time_s:
            raise UsageError(
                f"--chaos {spec}: {spec.at_s:g}s is not before the end of the test "
                f"({run_time_s:g}s); choose an earlier time or a longer run time"
            )
    if not specs or target is None:
        return
    is_local_target = target.kind in ("pid", "cmd")
    if local and not is_local_target:
        raise UsageError(
            f"--chaos-target {target}: a local run disrupts local processes (pid/PID, cmd/PATTERN)"
        )
    if not local and is_local_target:
        raise UsageError(
            f"--chaos-target {target}: a cluster run disrupts pods of a workload "
            "(deployment/NAME, NAMESPACE/deployment/NAME)"
        )
