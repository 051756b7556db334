"""``kubeswarm demo``: the whole pipeline on one machine in about a minute and a half.

A demo target (``harness.demo.target`` under gunicorn) whose per-worker CPU and memory grow with its
request rate, a local autoscaler running the HPA model on it, the step-load locustfile on a local
Locust master and workers, the process sampler, and the report: the same files a cluster run
writes, so the demo shows exactly what a user gets from a real run.

Time is compressed so that a short run shows scale-up, hold and scale-down: the autoscaler syncs
every 5 s (an HPA every 15 s) and its scale-down stabilization window is 10 s (300 s by default).
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from analysis.data.units import parse_cpu_millicores, parse_quantity
from analysis.hpa.model import Behavior, HpaSpec, MetricTarget, ScalingPolicy, ScalingRules
from analysis.judge.scaling import rescale_metric
from harness import resources
from harness.actions.chaos import chaos_actions
from harness.backends.local import LocalBackend
from harness.config.chaos import ChaosPick, ChaosSpec, check_chaos
from harness.config.checks import inspect_locustfile
from harness.config.env import RunEnv, build_run_env
from harness.config.run import LoadConfig, check_locustfile
from harness.config.values import WatchTarget
from harness.demo.autoscaler import (
    GunicornScaler,
    LocalAutoscaler,
    ScaledTarget,
    rescale_message,
)
from harness.errors import LoadGeneratorError, UsageError
from harness.processes import Child, ProcessGroup
from harness.samplers.local import ProcessSource
from harness.samplers.processes import PodResources, ProcessSampler
from harness.session.core import (
    Action,
    HpaStatus,
    LoadPoll,
    NoteFn,
    Observation,
    RunMode,
    TickContext,
)
from harness.session.plan import LoadPlan

SYNC_PERIOD_S = 5.0
DEMO_BEHAVIOR = Behavior(
    scale_up=ScalingRules(
        0.0, (ScalingPolicy("Pods", 4, 15.0), ScalingPolicy("Percent", 100, 15.0))
    ),
    scale_down=ScalingRules(10.0, (ScalingPolicy("Percent", 100, 15.0),)),
)
DEMO_SHAPE = "StepLoadShape"  # the shape class of the shipped step_load.py
TARGET = ScaledTarget(namespace="local", hpa="demo-target", workload="demo-target")


@dataclass(frozen=True)
class DemoConfig:
    """The demo's settings; the autoscaler ones mirror an HPA spec and a pod's requests."""

    duration_s: float
    out_dir: Path
    users: int
    workers: int
    sample_interval_s: float
    min_replicas: int
    max_replicas: int
    cpu_target_pct: int
    memory_target_pct: int
    cpu_request_m: float
    memory_request_bytes: float
    slos: tuple[str, ...]
    open_browser: bool = False
    chaos: tuple[ChaosSpec, ...] = ()  # disruptions of the demo target's workers
    chaos_pick: ChaosPick = "oldest"
    locustfile: Path | None = None  # None: the shipped step load
    shape: str | None = None  # the locustfile's LoadTestShape class
    env: RunEnv = field(default_factory=RunEnv)  # --env, --env-file: for the Locust processes

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> DemoConfig:
        try:
            cpu_request_m = parse_cpu_millicores(values["cpu_request"])
            memory_request = parse_quantity(values["memory_request"])
        except ValueError as e:
            raise UsageError(str(e)) from e
        if values["min_replicas"] > values["max_replicas"]:
            raise UsageError(
                f"--min-replicas {values['min_replicas']} is above --max-replicas "
                f"{values['max_replicas']}"
            )
        if cpu_request_m <= 0 or memory_request <= 0:
            raise UsageError("--cpu-request and --memory-request must be more than 0")
        if values["workers"] == "auto":
            raise UsageError("demo: --workers auto is for run; give the demo a number of workers")
        chaos = tuple(values.get("chaos") or ())
        check_chaos(chaos, values["duration_s"], None, local=True)
        locustfile = values.get("locustfile")
        shape = None
        if locustfile is not None:
            locustfile = check_locustfile(Path(locustfile))
            shape = inspect_locustfile(locustfile).shape_class
        return cls(
            duration_s=values["duration_s"],
            out_dir=Path(values["out_dir"]),
            users=values["demo_users"],
            workers=int(values["workers"]),
            sample_interval_s=min(values["sample_interval_s"], 1.0),
            min_replicas=values["min_replicas"],
            max_replicas=values["max_replicas"],
            cpu_target_pct=values["cpu_target_pct"],
            memory_target_pct=values["memory_target_pct"],
            cpu_request_m=cpu_request_m,
            memory_request_bytes=memory_request,
            slos=tuple(values["slos"]),
            open_browser=bool(values["open_browser"]),
            chaos=chaos,
            chaos_pick=values.get("chaos_pick") or "oldest",
            locustfile=locustfile,
            shape=shape,
            env=build_run_env(values.get("env", ()), values.get("env_files", ()), ()),
        )

    def hpa_spec(self) -> HpaSpec:
        return HpaSpec(
            self.min_replicas,
            self.max_replicas,
            (
                MetricTarget("cpu", self.cpu_target_pct),
                MetricTarget("memory", self.memory_target_pct),
            ),
            DEMO_BEHAVIOR,
        )

    def load(self) -> LoadConfig:
        return LoadConfig(
            locustfile=self.locustfile or resources.locustfile("step_load.py"),
            host="",
            users=self.users,
            spawn_rate=float(self.users),
            run_time_s=self.duration_s,
            workers=self.workers,
            processes=1,
            autoquit_s=10.0,
        )


def start_target(group: ProcessGroup, replicas: int, port: int) -> Child:
    """Gunicorn serving the demo target on ``port`` of 127.0.0.1; waits until it answers."""
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(replicas),
        "--graceful-timeout",
        "3",
        "--timeout",
        "30",
        "harness.demo.target:app",
    ]
    child = group.start("demo-target", argv, env=os.environ, cwd=Path(__file__).parents[2])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30.0
    while True:
        if child.exited():
            raise LoadGeneratorError(f"the demo target did not start:\n{child.log_tail()}")
        try:
            requests.get(url + "/healthz", timeout=1.0)
            return child
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise LoadGeneratorError(f"the demo target did not answer on {url}") from None
            time.sleep(0.2)


class DemoBackend:
    """The local backend, plus the demo target it loads (started first, stopped last)."""

    mode: RunMode = "demo"

    def __init__(self, config: DemoConfig, plan: LoadPlan, port: int) -> None:
        self.config = config
        self.port = port
        environ = {**os.environ, **config.env.as_mapping()} if config.env else None
        self.locust = LocalBackend(plan, open_browser=config.open_browser, env=environ)
        self.group: ProcessGroup | None = None
        self.target: Child | None = None

    def start(self, run_dir: Path, note: NoteFn) -> dict[str, Any]:
        self.group = ProcessGroup(run_dir / "logs")
        self.target = start_target(self.group, self.config.min_replicas, self.port)
        note(
            f"demo target:   http://127.0.0.1:{self.port} (gunicorn, "
            f"{self.config.min_replicas} worker(s) to start)"
        )
        fields = self.locust.start(run_dir, note)
        return {
            **fields,
            "processes": [*self.group.pids, *fields["processes"]],
            "watch": [f"pid/{self.target.pid}"],
        }

    def poll(self, now: float, note: NoteFn) -> LoadPoll:
        return self.locust.poll(now, note)

    def stop(self, note: NoteFn) -> None:
        self.locust.stop(note)

    def fetch_results(self, locust_dir: Path) -> dict[str, str]:
        return self.locust.fetch_results(locust_dir)

    def close(self, note: NoteFn) -> None:
        self.locust.close(note)
        if self.group is not None:
            self.group.stop_all()


class DemoAutoscaling:
    """The demo target's processes sampled, and the local autoscaler's sync and records."""

    def __init__(self, config: DemoConfig, backend: DemoBackend) -> None:
        self.config = config
        self.backend = backend
        self.source: ProcessSource | None = None
        self.autoscaler: LocalAutoscaler | None = None
        self.scale_events: list[str] = []

    def tick(self, ctx: TickContext) -> Observation:
        if self.source is None or self.autoscaler is None:
            assert self.backend.target is not None  # the backend started before any tick
            pid = self.backend.target.pid
            self.source = ProcessSource(
                ProcessSampler(
                    WatchTarget("pid", str(pid)),
                    _pod_resources(self.config),
                    namespace=TARGET.namespace,
                    workload_name=TARGET.workload,
                )
            )
            self.autoscaler = _autoscaler(self.config, pid, self.scale_events.append)
        observation = self.source.tick(ctx)
        self.autoscaler.tick(ctx.now, self.source.pods, observation)
        observation.events += self.scale_events
        self.scale_events.clear()
        decision = self.autoscaler.last_decision
        driving = decision.driving_metric if decision is not None else None
        proposal = (
            next((p for p in decision.proposals if p.resource == driving), None)
            if decision is not None
            else None
        )
        observation.hpas.append(
            HpaStatus(
                name=TARGET.hpa,
                current=self.autoscaler.replicas,
                desired=decision.desired_replicas if decision is not None else None,
                max_replicas=self.config.max_replicas,
                driving_metric=driving,
                utilization_pct=proposal.utilization_pct if proposal else None,
                target_pct=_target_pct(self.config, driving),
            )
        )
        return observation


class DemoChaos:
    """``--chaos`` against the demo target's gunicorn workers, built once the target runs."""

    def __init__(self, config: DemoConfig, backend: DemoBackend) -> None:
        self.config = config
        self.backend = backend
        self.actions: list[Action] | None = None

    def tick(self, ctx: TickContext) -> Observation:
        if self.actions is None:
            assert self.backend.target is not None and self.backend.locust.group is not None
            self.actions = chaos_actions(
                self.config.chaos,
                None,
                watch=[WatchTarget("pid", str(self.backend.target.pid))],
                pick=self.config.chaos_pick,
                protected_pids=self.backend.locust.group.pids,
                workload_name=TARGET.workload,
            )
        observation = Observation()
        for action in self.actions:
            observation.merge(action.tick(ctx))
        return observation


def _target_pct(config: DemoConfig, metric: str | None) -> float | None:
    targets = {"cpu": config.cpu_target_pct, "memory": config.memory_target_pct}
    return None if metric is None else float(targets.get(metric, 0)) or None


def _pod_resources(config: DemoConfig) -> PodResources:
    return PodResources(
        cpu_request_m=config.cpu_request_m, memory_request_bytes=config.memory_request_bytes
    )


def _autoscaler(config: DemoConfig, master_pid: int, event: NoteFn) -> LocalAutoscaler:
    def announce(current: int, desired: int, decision: Any) -> None:
        # The controller's own reason, as its SuccessfulRescale event records it for the report.
        said = rescale_metric(rescale_message(decision))
        why = f"{said[1]} above target" if said and said[1] else decision.rescale_reason.lower()
        event(f"scale: {TARGET.hpa} {current} -> {desired} ({why})")

    scaler = LocalAutoscaler(
        config.hpa_spec(),
        TARGET,
        _pod_resources(config),
        GunicornScaler(master_pid),
        SYNC_PERIOD_S,
        config.min_replicas,
    )
    scaler.on_scale = announce
    return scaler
