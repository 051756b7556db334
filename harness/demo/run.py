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
import webbrowser
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import requests

from analysis.data.units import parse_cpu_millicores, parse_quantity
from analysis.hpa.model import Behavior, HpaSpec, MetricTarget, ScalingPolicy, ScalingRules
from harness import resources
from harness.backends.local import LocalLocust, RunResult, drive
from harness.config.run import LoadConfig
from harness.config.values import WatchTarget
from harness.demo.autoscaler import GunicornScaler, LocalAutoscaler, ScaledTarget
from harness.errors import LoadGeneratorError, UsageError
from harness.processes import Child, ProcessGroup, free_port, sigterm_as_interrupt
from harness.samplers.processes import PodResources, ProcessSampler
from harness.session.schedule import Progress
from harness.session.store import RunStatus, RunStore

SYNC_PERIOD_S = 5.0
DEMO_BEHAVIOR = Behavior(
    scale_up=ScalingRules(
        0.0, (ScalingPolicy("Pods", 4, 15.0), ScalingPolicy("Percent", 100, 15.0))
    ),
    scale_down=ScalingRules(10.0, (ScalingPolicy("Percent", 100, 15.0),)),
)
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
        return cls(
            duration_s=values["duration_s"],
            out_dir=Path(values["out_dir"]),
            users=values["demo_users"],
            workers=values["workers"],
            sample_interval_s=min(values["sample_interval_s"], 1.0),
            min_replicas=values["min_replicas"],
            max_replicas=values["max_replicas"],
            cpu_target_pct=values["cpu_target_pct"],
            memory_target_pct=values["memory_target_pct"],
            cpu_request_m=cpu_request_m,
            memory_request_bytes=memory_request,
            slos=tuple(values["slos"]),
            open_browser=bool(values["open_browser"]),
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
            locustfile=resources.locustfile("step_load.py"),
            host="",
            users=self.users,
            spawn_rate=float(self.users),
            run_time_s=self.duration_s,
            workers=self.workers,
            processes=1,
            autoquit_s=10.0,
        )


def start_target(group: ProcessGroup, replicas: int) -> tuple[Child, str]:
    """Gunicorn serving the demo target on a free loopback port; waits until it answers."""
    port = free_port()
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
            return child, url
        except requests.RequestException:
            if time.monotonic() > deadline:
                raise LoadGeneratorError(f"the demo target did not answer on {url}") from None
            time.sleep(0.2)


def run_demo(config: DemoConfig, out: TextIO) -> RunResult:
    """Runs the demo end to end and writes its report; every process started is stopped."""
    with sigterm_as_interrupt():  # a cancelled CI job gets the Ctrl-C path
        record = asdict(config)
        store = RunStore.create(
            config.out_dir,
            name="demo",
            mode="demo",
            config=record,
            sample_interval_s=config.sample_interval_s,
        )
        progress = Progress()
        target_group = ProcessGroup(store.directory / "logs")
        status: RunStatus = "failed"
        locust: LocalLocust | None = None
        try:
            target, url = start_target(target_group, config.min_replicas)
            load = LoadConfig(**{**asdict(config.load()), "host": url})
            locust = LocalLocust.start(load, store.directory)
            store.update(
                processes=[*target_group.pids, *locust.processes.pids],
                locust_web=locust.web_url,
                watch=[f"pid/{target.pid}"],
                hpa_spec=asdict(config.hpa_spec()),
                hpa_sync_period_s=SYNC_PERIOD_S,
                slos=list(config.slos),
            )
            print(f"run directory: {store.directory}", file=out)
            print(
                f"demo target:   {url} (gunicorn, {config.min_replicas} worker(s) to start)",
                file=out,
            )
            print(f"Locust web UI: {locust.web_url}", file=out, flush=True)
            locust.wait_ready()
            if config.open_browser:
                webbrowser.open(locust.web_url)
            sampler = ProcessSampler(
                WatchTarget("pid", str(target.pid)),
                _pod_resources(config),
                namespace=TARGET.namespace,
                workload_name=TARGET.workload,
            )
            autoscaler = _autoscaler(config, target.pid, progress)
            status = drive(
                locust,
                store,
                config.sample_interval_s,
                progress,
                [_demo_tick(sampler, autoscaler, store)],
            )
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            if locust is not None:
                locust.close()
            target_group.stop_all()
            store.finish(status)
        from analysis.report import format_summary, write_report

        summary = write_report(store.directory, slos=config.slos)
        out.write(format_summary(summary, store.directory))
        return RunResult(store.directory, status, str(summary["verdict"]), summary)


def _pod_resources(config: DemoConfig) -> PodResources:
    return PodResources(
        cpu_request_m=config.cpu_request_m, memory_request_bytes=config.memory_request_bytes
    )


def _autoscaler(config: DemoConfig, master_pid: int, progress: Progress) -> LocalAutoscaler:
    def announce(current: int, desired: int, decision: Any) -> None:
        why = decision.driving_metric or "limits"
        progress.event(f"scale {current} -> {desired} ({why})")

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


def _demo_tick(
    sampler: ProcessSampler, autoscaler: LocalAutoscaler, store: RunStore
) -> Callable[[float], str]:
    def tick(now: float) -> str:
        pods = sampler.tick(now, store)
        autoscaler.tick(now, pods, store)
        return autoscaler.status_text()

    return tick
