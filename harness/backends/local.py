"""The local backend: one Locust master and W workers as processes on 127.0.0.1.

They get the flags the in-cluster Jobs get (``harness.session.plan.locust_flags``), plus the local
bind addresses, so a locustfile that works here works in a cluster. The master's web UI stays up
while the test runs; results are fetched from its web routes during the ``--autoquit`` window, as
in the cluster, with the master's own ``--csv`` files as a fallback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import tempfile
import time
import webbrowser
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from analysis.data import schema
from harness.config.run import RunConfig
from harness.errors import LoadGeneratorError
from harness.locust_api import DirectTransport, LocustApi, LocustSample, LocustWatch
from harness.processes import Child, ProcessGroup, free_port
from harness.samplers.master import MasterProcessSampler
from harness.samplers.ramp_log import RAMP_SHAPE, RampLog
from harness.session.core import (
    LoadPoll,
    LoadStatus,
    NoteFn,
    Observation,
    RunMode,
)
from harness.session.plan import LoadPlan, as_argv, locust_flags

# How long the master may take to open its web port.
WEB_STARTUP_TIMEOUT_S: Final = 60.0
CSV_PREFIX: Final = "kubeswarm"


def master_argv(plan: LoadPlan, master_port: int, web_port: int, csv_prefix: Path) -> list[str]:
    """The master's command line: the Job's flags plus local bind addresses and CSV output."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(plan.locustfile),
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(master_port),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
        "--csv",
        str(csv_prefix),
        *as_argv(locust_flags(plan, "master", master_host="")),
    ]


def worker_argv(plan: LoadPlan, master_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(plan.locustfile),
        "--master-port",
        str(master_port),
        *as_argv(locust_flags(plan, "worker", master_host="127.0.0.1")),
    ]


def load_status(sample: LocustSample) -> LoadStatus:
    return LoadStatus(
        state=sample.state,
        users=sample.user_count,
        workers=sample.worker_count,
        rps=sample.rps,
        fail_ratio=sample.fail_ratio,
        p95_ms=sample.p95_ms,
    )


class LocalBackend:
    """Locust master and workers as child processes; see the module docstring."""

    mode: RunMode = "local"

    def __init__(
        self, plan: LoadPlan, *, open_browser: bool = False, env: Mapping[str, str] | None = None
    ) -> None:
        self.plan = plan
        self.open_browser = open_browser
        self.env = env
        self.group: ProcessGroup | None = None
        self.master: Child | None = None
        self.transport: DirectTransport | None = None
        self.watch: LocustWatch | None = None
        self.web_url = ""
        self.master_port = 0
        self.csv_dir = Path(tempfile.mkdtemp(prefix="kubeswarm-locust-"))
        self.ramp: RampLog | None = None
        self.master_sampler: MasterProcessSampler | None = None

    def start(self, run_dir: Path, note: NoteFn) -> dict[str, Any]:
        self.master_port, web_port = free_port(), free_port()
        self.group = ProcessGroup(run_dir / "logs")
        self.master = self.group.start(
            "locust-master",
            master_argv(self.plan, self.master_port, web_port, self.csv_dir / CSV_PREFIX),
            env=self.env,
        )
        self.master_sampler = MasterProcessSampler(self.master.pid)
        if self.plan.shape == RAMP_SHAPE:
            self.ramp = RampLog(self.master.log_path)
        for _ in range(self.plan.workers):
            self.add_worker()
        self.web_url = f"http://127.0.0.1:{web_port}"
        self.transport = DirectTransport(self.web_url)
        self.watch = LocustWatch(LocustApi(self.transport))
        note(f"Locust web UI: {self.web_url}")
        self._wait_ready()
        if self.open_browser:
            webbrowser.open(self.web_url)
        return {"processes": self.group.pids, "locust_web": self.web_url}

    @property
    def worker_count(self) -> int:
        if self.group is None:
            return 0
        return sum(1 for c in self.group.children if c.name.startswith("locust-worker-"))

    def scale_workers(self, total: int) -> None:
        """At least ``total`` worker processes (``--workers auto``)."""
        while self.worker_count < total:
            self.add_worker()

    def add_worker(self) -> Child:
        """One more worker process (also while the test runs: ``--workers auto``)."""
        assert self.group is not None
        return self.group.start(
            f"locust-worker-{self.worker_count}",
            worker_argv(self.plan, self.master_port),
            env=self.env,
        )

    def _wait_ready(self) -> None:
        """Until the master answers on its web port; fails with the master's log if it exits."""
        assert self.master is not None and self.watch is not None
        deadline = time.monotonic() + WEB_STARTUP_TIMEOUT_S
        while True:
            if self.master.exited():
                raise LoadGeneratorError(
                    f"the Locust master exited at start (code {self.master.process.returncode}):"
                    f"\n{self.master.log_tail()}"
                )
            try:
                self.watch.last = self.watch.api.sample()
                return
            except LoadGeneratorError:
                if time.monotonic() > deadline:
                    raise LoadGeneratorError(
                        f"the Locust master did not answer on {self.web_url} within "
                        f"{WEB_STARTUP_TIMEOUT_S:.0f}s:\n{self.master.log_tail()}"
                    ) from None
                time.sleep(0.2)

    def poll(self, now: float, note: NoteFn) -> LoadPoll:
        assert self.watch is not None and self.master is not None
        observation = Observation()
        sample = self.watch.poll(observation)
        if self.master_sampler is not None:
            observation.append(schema.MASTER, self.master_sampler.rows(now))
        if self.ramp is not None:
            observation.merge(self.ramp.read(now))
        if sample is None and self.master.exited():
            self.watch.finished = True
        if sample is not None:
            observation.load = load_status(sample)
        return LoadPoll(observation, self.watch.seen_running, self.watch.finished)

    def stop(self, note: NoteFn) -> None:
        if self.watch is not None:
            with contextlib.suppress(LoadGeneratorError):
                self.watch.api.stop()

    def fetch_results(self, locust_dir: Path) -> dict[str, str]:
        """Locust's files over HTTP; what fails is copied from the master's ``--csv`` output."""
        if self.watch is None or self.master is None:
            return {}
        missing = (
            self.watch.api.fetch_results(locust_dir)
            if not self.master.exited()
            else {name: "master already exited" for name in schema.LOCUST_FILES}
        )
        for name in list(missing):
            fallback = self.csv_dir / f"{CSV_PREFIX}_{name}"
            if fallback.is_file():
                shutil.copyfile(fallback, locust_dir / name)
                del missing[name]
        return missing

    def close(self, note: NoteFn) -> None:
        if self.group is not None:
            self.group.stop_all()
        if self.transport is not None:
            self.transport.close()
        shutil.rmtree(self.csv_dir, ignore_errors=True)


def locust_environ(config: RunConfig, warn: NoteFn) -> dict[str, str] | None:
    """The Locust processes' environment: kubeswarm's own, then the ``--env-from`` objects (read
    once, before anything starts), then ``--env-file`` and ``--env``; None when none is given."""
    if not config.env:
        return None
    from_cluster: dict[str, str] = {}
    if config.env.refs:  # imported only then: a local run otherwise never loads the client
        from harness.kube.envsource import local_env_from

        from_cluster = local_env_from(
            config.env.refs, config.kubeconfig, config.context, config.namespace, warn
        )
    return {**os.environ, **from_cluster, **config.env.as_mapping()}
