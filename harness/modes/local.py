"""``kubeswarm run --local``: Locust on this machine, the watched processes sampled."""

from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import ExitStack
from typing import Any, Final

from harness.actions.chaos import chaos_actions
from harness.actions.workers import AutoWorkersPolicy, check_local_auto_workers
from harness.backends.local import WEB_STARTUP_TIMEOUT_S, LocalBackend, locust_environ
from harness.config.run import RunConfig, build_run_config
from harness.errors import UsageError
from harness.modes.parts import Parts, WorkerScaling, run_spec
from harness.samplers.local import ProcessSource
from harness.samplers.processes import ProcessSampler
from harness.session.core import Reporter
from harness.session.plan import plan_for

# A local worker process connects within a few seconds: a short wait before judging it.
LOCAL_WORKER_COOLDOWN_S: Final = 10.0


class LocalMode:
    name = "local"

    def configure(self, values: Mapping[str, Any]) -> RunConfig:
        return build_run_config(values)

    def compose(self, config: RunConfig, reporter: Reporter, resources: ExitStack) -> Parts:
        plan = plan_for(config, startup_s=WEB_STARTUP_TIMEOUT_S)
        spec = run_spec("local", config, plan)
        # --workers auto: refused up front when it could outgrow this machine's cores
        max_workers = config.max_workers if config.auto_workers else None
        if max_workers is not None:
            cores = os.cpu_count() or 1
            too_many = check_local_auto_workers(max_workers, config.load.processes, cores)
            if too_many is not None:
                raise UsageError(too_many)
        chaos = chaos_actions(
            config.chaos, config.chaos_target, watch=config.watch, pick=config.chaos_pick
        )
        backend = LocalBackend(
            plan, open_browser=config.open_browser, env=locust_environ(config, reporter.event)
        )
        workers = None
        if max_workers is not None:
            policy = AutoWorkersPolicy(max_workers, cooldown_s=LOCAL_WORKER_COOLDOWN_S)
            workers = WorkerScaling(policy, backend.scale_workers)
        return Parts(
            spec=spec,
            backend=backend,
            samplers=[ProcessSource(ProcessSampler(target)) for target in config.watch],
            actions=chaos,
            workers=workers,
        )
