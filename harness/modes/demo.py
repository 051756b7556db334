"""``kubeswarm demo``: the demo target, its local autoscaler and Locust, all on this machine."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import asdict
from typing import Any

from harness.config.run import LoadConfig
from harness.demo.run import (
    DEMO_SHAPE,
    SYNC_PERIOD_S,
    DemoAutoscaling,
    DemoBackend,
    DemoChaos,
    DemoConfig,
)
from harness.modes.parts import HpaPace, Parts
from harness.processes import free_port
from harness.session.core import Reporter
from harness.session.plan import plan_load
from harness.session.run import SessionSpec


class DemoMode:
    name = "demo"

    def configure(self, values: Mapping[str, Any]) -> DemoConfig:
        return DemoConfig.from_values(values)

    def compose(self, config: DemoConfig, reporter: Reporter, resources: ExitStack) -> Parts:
        port = free_port()
        load = LoadConfig(**{**asdict(config.load()), "host": f"http://127.0.0.1:{port}"})
        plan = plan_load(load, startup_s=60.0, shape=config.shape or DEMO_SHAPE)
        backend = DemoBackend(config, plan, port)
        spec = SessionSpec(
            mode="demo",
            name="demo",
            out_dir=config.out_dir,
            sample_interval_s=config.sample_interval_s,
            config={
                **asdict(config),
                "chaos": [str(spec) for spec in config.chaos],
                "env": config.env.as_record(),  # names only, never a value
            },
            slos=config.slos,
            plan=plan,
            record={
                "hpa_spec": asdict(config.hpa_spec()),
                "hpa_sync_period_s": SYNC_PERIOD_S,
                "slos": list(config.slos),
            },
        )
        return Parts(
            spec=spec,
            backend=backend,
            samplers=[DemoAutoscaling(config, backend)],
            # the target's workers are known once it runs: the chaos is built on the first tick
            actions=[DemoChaos(config, backend)] if config.chaos else [],
            hpa_pace=HpaPace(SYNC_PERIOD_S, metrics_delay_s=0.0),  # usage is read directly
        )
