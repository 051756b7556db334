"""What a mode's composition root hands to the session, and what every mode shares.

A mode turns its frozen config into ``Parts``: the session's spec, the backend, the samplers and
the actions of its own. ``launch`` adds what every mode has in common the same way for all of
them: the ramp's warning, ``--workers auto`` growing the backend, the caller's extra actions, and
the report writer; then it runs the session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from harness.actions.auto_workers import AutoWorkers
from harness.actions.workers import AutoWorkersPolicy
from harness.config.run import RunConfig
from harness.samplers.ramp_log import RAMP_SHAPE, ramp_warning
from harness.session.core import Action, Backend, Reporter, RunMode, RunResult, Sampler
from harness.session.plan import LoadPlan
from harness.session.run import Report, SessionSpec, default_report, execute

ConfigT = TypeVar("ConfigT")
ConfigT_co = TypeVar("ConfigT_co", covariant=True)


@dataclass(frozen=True)
class WorkerScaling:
    """``--workers auto``: the policy, and how the backend grows to a number of workers."""

    policy: AutoWorkersPolicy
    grow: Callable[[int], None]


@dataclass(frozen=True)
class HpaPace:
    """How fast the watched autoscaler reacts: what the ramp's steps must leave room for."""

    sync_period_s: float
    metrics_delay_s: float | None = None  # None: the metrics pipeline's usual delay


@dataclass
class Parts:
    """A run's parts, as one mode composed them."""

    spec: SessionSpec
    backend: Backend
    samplers: Sequence[Sampler]
    actions: Sequence[Action] = ()  # the mode's own, chaos included
    workers: WorkerScaling | None = None
    hpa_pace: HpaPace | None = None  # None: no autoscaler is watched
    warnings: Sequence[str] = field(default_factory=list)  # said before the run starts


class Mode(Protocol[ConfigT]):
    """One way to run: ``configure`` validates the CLI's values into a frozen config before
    anything starts, ``compose`` builds the parts (resources it opens go on ``resources``)."""

    name: str

    def configure(self, values: Mapping[str, Any]) -> ConfigT: ...

    def compose(self, config: ConfigT, reporter: Reporter, resources: ExitStack) -> Parts: ...


def run_spec(
    mode: RunMode,
    config: RunConfig,
    plan: LoadPlan,
    record: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
) -> SessionSpec:
    """The session's spec of ``kubeswarm run`` (local or cluster): ``record`` adds the mode's own
    run.json fields to what every run records (its watch targets and SLOs)."""
    return SessionSpec(
        mode=mode,
        name=config.name,
        out_dir=config.out_dir,
        sample_interval_s=config.sample_interval_s,
        config=config.as_record(),
        slos=config.slos,
        plan=plan,
        record={
            **(record or {}),
            "watch": [str(t) for t in config.watch],
            "slos": list(config.slos),
        },
        run_id=run_id,
    )


def launch(
    mode: Mode[ConfigT],
    config: ConfigT,
    reporter: Reporter,
    *,
    report: Report = default_report,
    actions: Sequence[Action] = (),
    environ: Mapping[str, str] | None = None,
) -> RunResult:
    """Composes the run in ``mode``, adds what every mode shares, and runs it to its report."""
    with ExitStack() as resources:
        parts = mode.compose(config, reporter, resources)
        for warning in [*parts.warnings, *_ramp_warnings(parts, environ or os.environ)]:
            reporter.event(warning)
        shared: list[Action] = [*actions, *parts.actions]
        if parts.workers is not None and parts.spec.plan is not None:
            grow = AutoWorkers(parts.workers.policy, parts.spec.plan.workers, parts.workers.grow)
            shared.append(grow)
        return execute(
            parts.spec, parts.backend, parts.samplers, reporter, actions=shared, report=report
        )


def _ramp_warnings(parts: Parts, environ: Mapping[str, str]) -> list[str]:
    plan = parts.spec.plan
    if plan is None or plan.shape != RAMP_SHAPE or parts.hpa_pace is None:
        return []
    pace = parts.hpa_pace
    text = ramp_warning(environ, pace.sync_period_s, metrics_delay_s=pace.metrics_delay_s)
    return [] if text is None else [f"warning: {text}"]
