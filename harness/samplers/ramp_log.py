"""The ramp shape's own lines (``locustfiles/ramp.py``) read from the master's log.

The shape runs inside Locust and cannot write kubeswarm's files; it logs one line per step and
one when it stops (``kubeswarm ramp: stop reason=p95_ms ...: text``). Each tick the new lines of
the master's log are read: a step becomes a line for the user, the stop a ``ramp_stop`` mark
(the capacity analysis reads why the ramp ended from it) and a line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Final

from analysis.judge.capacity import check_ramp, minimum_hold_s, parse_ramp_line
from harness.session.core import Observation

RAMP_SHAPE: Final = "RampShape"  # the shipped shape class of locustfiles/ramp.py
RAMP_ENV_PREFIX: Final = "KUBESWARM_RAMP_"


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


class RampLog:
    """Follows one log file from where the last read ended."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0

    def read(self, now: float) -> Observation:
        observation = Observation()
        try:
            with self.path.open("rb") as log:
                log.seek(self.offset)
                chunk = log.read()
        except OSError:
            return observation
        complete = chunk[: chunk.rfind(b"\n") + 1]  # a half-written line waits for the next tick
        self.offset += len(complete)
        for raw in complete.decode("utf-8", errors="replace").splitlines():
            parsed = parse_ramp_line(raw)
            if parsed is None:
                continue
            event, _fields, text = parsed
            line = raw[raw.find("kubeswarm ramp:") :]
            if event == "stop":
                observation.mark("ramp_stop", line, now)
            observation.event(f"ramp: {text}")
        return observation
