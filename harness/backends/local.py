"""The local backend: one Locust master and W workers as processes on 127.0.0.1.

They get the same flags the in-cluster Jobs get (``--master --autostart --autoquit``,
``--expect-workers``, ``--worker --processes``), so a locustfile that works here works in a cluster.
The master's web UI stays up while the test runs; results are fetched from its web routes during the
``--autoquit`` window, as in the cluster, with the master's own ``--csv`` files as a fallback.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
import time
import webbrowser
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from analysis.data import schema
from harness.config.run import LoadConfig, RunConfig
from harness.errors import LoadGeneratorError
from harness.locust_api import DirectTransport, LocustApi, LocustSample, LocustWatch
from harness.processes import Child, ProcessGroup, free_port, sigterm_as_interrupt
from harness.samplers.processes import ProcessSampler
from harness.session.schedule import Progress, Schedule, run_ticks
from harness.session.store import RunStatus, RunStore

# How long the master may take to open its web port, and workers to connect, before we give up.
STARTUP_TIMEOUT_S = 60.0


def master_args(load: LoadConfig, master_port: int, web_port: int, csv_prefix: Path) -> list[str]:
    """The master's command line: the same flags as the master Job's, plus local bind addresses."""
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(load.locustfile),
        "--master",
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(master_port),
        "--web-host",
        "127.0.0.1",
        "--web-port",
        str(web_port),
        "--autostart",
        "--autoquit",
        str(int(load.autoquit_s)),
        "--expect-workers",
        str(load.workers * load.processes),
        "--expect-workers-max-wait",
        str(int(STARTUP_TIMEOUT_S)),
        "-H",
        load.host,
        "-u",
        str(load.users),
        "-r",
        f"{load.spawn_rate:g}",
        "-t",
        f"{round(load.run_time_s)}s",
        "--csv",
        str(csv_prefix),
        "--csv-full-history",
    ]


def worker_args(load: LoadConfig, master_port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(load.locustfile),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(master_port),
        "--processes",
        str(load.processes),
    ]


@dataclass
class LocalLocust:
    """A running local master and its workers, and what the harness has seen of them."""

    load: LoadConfig
    processes: ProcessGroup
    master: Child
    api: LocustApi
    web_url: str
    csv_dir: Path
    watch: LocustWatch
    transport: DirectTransport

    @classmethod
    def start(cls, load: LoadConfig, run_dir: Path) -> LocalLocust:
        master_port, web_port = free_port(), free_port()
        csv_dir = Path(tempfile.mkdtemp(prefix="kubeswarm-locust-"))
        group = ProcessGroup(run_dir / "logs")
        master = group.start(
            "locust-master", master_args(load, master_port, web_port, csv_dir / "kubeswarm")
        )
        for index in range(load.workers):
            group.start(f"locust-worker-{index}", worker_args(load, master_port))
        web_url = f"http://127.0.0.1:{web_port}"
        transport = DirectTransport(web_url)
        api = LocustApi(transport)
        return cls(load, group, master, api, web_url, csv_dir, LocustWatch(api), transport)

    def wait_ready(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        """Until the master answers on its web port; fails with the master's log if it exits."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self.master.exited():
                raise LoadGeneratorError(
                    f"the Locust master exited at start (code {self.master.process.returncode}):\n"
                    + self.master.log_tail()
                )
            try:
                self.watch.last = self.api.sample()
                return
            except LoadGeneratorError:
                if time.monotonic() > deadline:
                    raise LoadGeneratorError(
                        f"the Locust master did not answer on {self.web_url} within "
                        f"{timeout_s:.0f}s:\n{self.master.log_tail()}"
                    ) from None
                time.sleep(0.2)

    def poll(self, store: RunStore) -> LocustSample | None:
        """One sample into ``locust.csv``, marks for state changes; None if the master is gone."""
        sample = self.watch.poll(store)
        if sample is None and self.master.exited():
            self.watch.finished = True
        return sample

    def fetch_results(self, store: RunStore) -> dict[str, str]:
        """Locust's files into ``locust/`` over HTTP; what fails is copied from ``--csv`` output."""
        locust_dir = store.directory / schema.LOCUST_DIR
        missing = (
            self.api.fetch_results(locust_dir)
            if not self.master.exited()
            else {name: "master already exited" for name in schema.LOCUST_FILES}
        )
        for name in list(missing):
            fallback = self.csv_dir / f"kubeswarm_{name}"
            if fallback.is_file():
                shutil.copyfile(fallback, locust_dir / name)
                del missing[name]
        return missing

    def stop_test(self) -> None:
        with contextlib.suppress(LoadGeneratorError):
            self.api.stop()

    def close(self) -> None:
        self.processes.stop_all()
        self.transport.close()
        shutil.rmtree(self.csv_dir, ignore_errors=True)


def progress_text(sample: LocustSample | None, elapsed_s: float, total_s: float) -> str:
    clock = f"[{elapsed_s:4.0f}s/{total_s:.0f}s]"
    if sample is None:
        return f"{clock} waiting for Locust"
    p95 = "-" if sample.p95_ms is None else f"{sample.p95_ms:.0f}ms"
    return (
        f"{clock} {sample.state:<8} users {sample.user_count:>4}  rps {sample.rps:7.1f}  "
        f"p95 {p95:>6}  fail {sample.fail_ratio:6.2%}"
    )


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    status: RunStatus
    verdict: str
    summary: dict[str, Any] = field(default_factory=dict)


Extra = Callable[[float], str]


def drive(
    locust: LocalLocust,
    store: RunStore,
    interval_s: float,
    progress: Progress,
    extras: Sequence[Extra] = (),
) -> RunStatus:
    """Samples until the test has finished (or Ctrl-C); fetches results; returns the run status.

    ``extras`` are other samplers ticked on the same schedule; each returns a progress fragment.
    """
    total_s = locust.load.run_time_s
    start = time.time()
    deadline = start + STARTUP_TIMEOUT_S + total_s + locust.load.autoquit_s

    def tick(now: float) -> bool:
        sample = locust.poll(store)
        fragments = [progress_text(sample or locust.watch.last, now - start, total_s)]
        fragments += [extra(now) for extra in extras]
        progress.update("  ".join(f for f in fragments if f))
        if now > deadline:
            raise LoadGeneratorError(f"the test did not finish within {deadline - start:.0f}s")
        return not locust.watch.finished

    status: RunStatus = "completed"
    try:
        run_ticks(store, Schedule(interval_s, start), tick)
    except KeyboardInterrupt:
        progress.event(
            "interrupted: stopping the test and fetching what exists "
            "(Ctrl-C again to skip fetching)"
        )
        status = "interrupted"
        locust.stop_test()
    progress.done()
    missing = locust.fetch_results(store)
    for name, why in missing.items():
        progress.event(f"warning: could not fetch Locust's {name}: {why}")
    if status == "completed" and not locust.watch.seen_running:
        status = "failed"
    return status


def run_local(config: RunConfig, out: TextIO) -> RunResult:
    """``kubeswarm run --local``: Locust on this machine, local targets sampled, then the report."""
    with sigterm_as_interrupt():  # a cancelled CI job gets the Ctrl-C path
        store = RunStore.create(
            config.out_dir,
            name=config.name,
            mode="local",
            config=config.as_record(),
            sample_interval_s=config.sample_interval_s,
        )
        samplers = [ProcessSampler(target) for target in config.watch]
        progress = Progress()
        status: RunStatus = "failed"
        locust = LocalLocust.start(config.load, store.directory)
        store.update(
            processes=locust.processes.pids,
            locust_web=locust.web_url,
            watch=[str(t) for t in config.watch],
            slos=list(config.slos),
        )
        try:
            print(f"run directory: {store.directory}", file=out)
            print(f"Locust web UI: {locust.web_url}", file=out, flush=True)
            locust.wait_ready()
            if config.open_browser:
                webbrowser.open(locust.web_url)
            extras = [_sampler_extra(sampler, store) for sampler in samplers]
            status = drive(locust, store, config.sample_interval_s, progress, extras)
        except KeyboardInterrupt:
            status = "interrupted"
        finally:
            locust.close()
            store.finish(status)
        from analysis.report import format_summary, write_report

        summary = write_report(store.directory, slos=config.slos)
        out.write(format_summary(summary, store.directory))
        return RunResult(store.directory, status, str(summary["verdict"]), summary)


def _sampler_extra(sampler: ProcessSampler, store: RunStore) -> Extra:
    def tick(now: float) -> str:
        pods = sampler.tick(now, store)
        memory = sum(pod.memory_bytes for pod in pods) / 2**20
        return f"{sampler.workload}: {len(pods)} proc {memory:.0f}MiB"

    return tick
