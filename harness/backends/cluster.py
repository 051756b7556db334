"""``kubeswarm run`` in a cluster: preflight, create, wait, monitor, fetch, clean up, report.

Creation order is what keeps a dead harness from leaving anything behind: the master Job goes
first (it carries ``activeDeadlineSeconds`` and ``ttlSecondsAfterFinished``), then the ConfigMap,
the Service and the worker Job, each with an ownerReference to it. At every instant each object
of the run either has a deadline or is owned by one that has, so even a SIGKILL between two
requests leaves nothing that lives for long. (The master's pod waits for its ConfigMap to appear,
a second later.)

Locust is read and stopped through the API server's service proxy (``ServiceProxyTransport``),
never a port-forward. One schedule ticks from creation to the end: while starting, each tick asks
the master how many workers have connected and, every few seconds, why the pods that are not
running yet are not (Pending and unschedulable, image pull errors, refused by admission); once the
test runs, each tick samples Locust and the cluster and prints scale events, restarts and OOM kills.

Ctrl-C or SIGTERM: stop the test, fetch what exists, delete the objects, write a partial report. A
second Ctrl-C exits at once; the objects still have their deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TextIO

from analysis.data import schema
from harness.backends.local import RunResult, progress_text
from harness.config.run import RunConfig
from harness.errors import ClusterError, KubeswarmError, LoadGeneratorError
from harness.kube import rows
from harness.kube.api import Body, RetryPolicy
from harness.kube.client import KubeClient, connect
from harness.kube.manifests import (
    WEB_PORT,
    job_deadline_s,
    object_names,
    run_objects,
    run_selector,
    with_owner,
)
from harness.kube.preflight import preflight
from harness.kube.runs import delete_run
from harness.locust_api import LocustApi, LocustSample, LocustWatch, Transport
from harness.processes import sigterm_as_interrupt
from harness.samplers.kube import KubeSampler
from harness.session.schedule import Progress, Schedule, run_ticks
from harness.session.store import RunStatus, RunStore, new_run_id

# While starting, look at the pods every this many seconds (one list of pods, one of events).
DIAGNOSE_EVERY_S: Final = 6.0
# The master answering nothing for this long, once the test ran, means it is gone.
MASTER_SILENT_S: Final = 30.0
# Waiting reasons that do not fix themselves.
FATAL_WAITING: Final = frozenset(
    {"InvalidImageName", "CreateContainerConfigError", "CreateContainerError", "ErrImageNeverPull"}
)


class ServiceProxyTransport:
    """Locust's web API through ``/api/v1/namespaces/NS/services/NAME:8089/proxy/...``."""

    def __init__(
        self, kube: KubeClient, namespace: str, service: str, port: int = WEB_PORT
    ) -> None:
        self.kube, self.namespace, self.service, self.port = kube, namespace, service, port

    def get(self, path: str, timeout_s: float) -> bytes:
        return self._send("GET", path, None, timeout_s)

    def post(self, path: str, form: Mapping[str, str], timeout_s: float) -> bytes:
        return self._send("POST", path, form, timeout_s)

    def _send(
        self, method: str, path: str, form: Mapping[str, str] | None, timeout_s: float
    ) -> bytes:
        retry = RetryPolicy(attempts=2, base_delay_s=0.2, max_delay_s=1.0, timeout_s=timeout_s)
        try:
            return self.kube.proxy(
                method, self.namespace, self.service, self.port, path, form=form, retry=retry
            )
        except ClusterError as e:
            raise LoadGeneratorError(
                f"the Locust master ({self.service}) through the API server: {e}"
            ) from e


@dataclass(frozen=True)
class Problem:
    text: str
    fatal: bool = False


def pod_problems(pods: Sequence[Body], events: Sequence[Body]) -> list[Problem]:
    """Why the run's pods are not running: one line per pod or failed creation, worst first."""
    problems: list[Problem] = []
    for pod in pods:
        name = rows.dig(pod, "metadata", "name")
        status = pod.get("status") or {}
        phase = status.get("phase")
        if phase == "Failed":
            problems.append(
                Problem(
                    f"pod {name} failed: {status.get('reason') or ''} "
                    f"{status.get('message') or ''}".rstrip(),
                    fatal=True,
                )
            )
        for condition in status.get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                problems.append(
                    Problem(
                        f"pod {name} is Pending, not scheduled: "
                        f"{condition.get('message') or condition.get('reason')}"
                    )
                )
        statuses = (status.get("initContainerStatuses") or []) + (
            status.get("containerStatuses") or []
        )
        for container in statuses:
            waiting = rows.dig(container, "state", "waiting") or {}
            reason = waiting.get("reason")
            if reason and reason not in ("ContainerCreating", "PodInitializing"):
                problems.append(
                    Problem(
                        f"pod {name}, container {container.get('name')}: {reason}: "
                        f"{waiting.get('message') or ''}".rstrip(": "),
                        fatal=reason in FATAL_WAITING,
                    )
                )
            terminated = (
                rows.dig(container, "lastState", "terminated")
                or rows.dig(container, "state", "terminated")
                or {}
            )
            if terminated and terminated.get("exitCode") not in (0, None):
                problems.append(
                    Problem(
                        f"pod {name}, container {container.get('name')} exited with code "
                        f"{terminated.get('exitCode')} ({terminated.get('reason') or 'Error'})"
                    )
                )
    for event in events:
        if event.get("type") == "Warning" and event.get("reason") == "FailedCreate":
            message = " ".join(str(event.get("message") or "").split())
            problems.append(
                Problem(
                    f"{rows.dig(event, 'involvedObject', 'kind')} "
                    f"{rows.dig(event, 'involvedObject', 'name')} cannot create pods: {message}",
                    fatal="forbidden" in message,
                )
            )
    return sorted(problems, key=lambda p: not p.fatal)


@dataclass
class ClusterRun:
    """One in-cluster run's objects and progress; ``run_cluster`` drives it."""

    kube: KubeClient
    config: RunConfig
    namespace: str
    store: RunStore
    objects: list[Body]
    progress: Progress
    transport: Transport
    startup_timeout_s: float
    clock: Callable[[], float] = time.time
    watch: LocustWatch = field(init=False)
    created: list[str] = field(default_factory=list)
    sampler: KubeSampler | None = None

    def __post_init__(self) -> None:
        self.watch = LocustWatch(LocustApi(self.transport))
        self.names = object_names(self.store.run_id)

    @property
    def expected_workers(self) -> int:
        return self.config.load.workers * self.config.load.processes

    def create(self) -> None:
        """The master Job first, then everything else owned by it (see the module docstring)."""
        masters = [
            o
            for o in self.objects
            if o.get("kind") == "Job" and rows.dig(o, "metadata", "name") == self.names.master_job
        ]
        if len(masters) != 1:
            raise ClusterError(f"the manifests of run {self.store.run_id} have no master Job")
        master = self.kube.create(masters[0], self.namespace)
        self.created.append(f"Job/{self.names.master_job}")
        for obj in self.objects:
            if obj is masters[0]:
                continue
            self.kube.create(with_owner(obj, master), self.namespace)
            self.created.append(f"{obj['kind']}/{rows.dig(obj, 'metadata', 'name')}")
        self.store.update(objects=list(self.created))

    def drive(self) -> RunStatus:
        """Ticks from creation until the test has finished; a first Ctrl-C stops the test."""
        start = self.clock()
        load = self.config.load
        deadline = start + self.startup_timeout_s + load.run_time_s + load.autoquit_s + 60.0
        state: dict[str, float | None] = {"running_since": None, "diagnosed": start}

        def tick(now: float) -> bool:
            sample = self.watch.poll(self.store)
            result = self.sampler.tick(now, self.store) if self.sampler else None
            for notice in result.notices if result else ():
                self.progress.event(notice)
            cluster_text = result.status if result else ""
            if state["running_since"] is None:
                if self._started(sample):
                    state["running_since"] = now
                else:
                    self._check_startup(now, start, state, sample)
            elif self._master_gone(now):
                self.watch.finished = True
            text = progress_text(sample or self.watch.last, now - start, load.run_time_s)
            self.progress.update(f"{text}  {cluster_text}".rstrip())
            if now > deadline:
                raise LoadGeneratorError(f"the test did not finish within {deadline - start:.0f}s")
            return not self.watch.finished

        try:
            run_ticks(
                self.store, Schedule(self.config.sample_interval_s, start, clock=self.clock), tick
            )
        except KeyboardInterrupt:
            self.progress.done()
            self.progress.event(
                "interrupted: stopping the test, fetching what exists, cleaning "
                "up (Ctrl-C again exits at once; the Jobs' deadline removes the "
                "rest)"
            )
            self.stop_test()
            return "interrupted"
        self.progress.done()
        return "completed" if self.watch.seen_running else "failed"

    def _started(self, sample: LocustSample | None) -> bool:
        if sample is None:
            return False
        connected = sample.worker_count or 0
        if self.watch.seen_running or connected >= self.expected_workers:
            self.progress.event(f"{connected} Locust worker(s) connected; the test is running")
            return True
        return False

    def _check_startup(
        self, now: float, start: float, state: dict[str, float | None], sample: LocustSample | None
    ) -> None:
        timed_out = now - start > self.startup_timeout_s
        last = state["diagnosed"] or start
        if not timed_out and now - last < DIAGNOSE_EVERY_S:
            return
        state["diagnosed"] = now
        problems = self.diagnose()
        fatal = [p for p in problems if p.fatal]
        if not fatal and not timed_out:
            return
        connected = (
            "the master never answered"
            if sample is None and self.watch.last is None
            else f"{(self.watch.last.worker_count or 0) if self.watch.last else 0} of "
            f"{self.expected_workers} workers connected"
        )
        why = "; ".join(p.text for p in problems[:6]) or "no pod reports a problem"
        when = f"within {self.startup_timeout_s:.0f}s" if timed_out else "at all"
        raise LoadGeneratorError(f"the run did not start {when} ({connected}): {why}")

    def diagnose(self) -> list[Problem]:
        """Problems of the run's pods (one list of pods, one of events)."""
        selector = run_selector(self.store.run_id)
        try:
            pods = self.kube.list_objects("Pod", self.namespace, label_selector=selector)
            jobs = {self.names.master_job, self.names.worker_job}
            events = [
                e
                for e in self.kube.list_objects("Event", self.namespace)
                if rows.dig(e, "involvedObject", "name") in jobs
            ]
        except ClusterError as e:
            return [Problem(f"cannot read the run's pods: {e}")]
        return pod_problems(pods, events)

    def _master_gone(self, now: float) -> bool:
        """Whether the master, which answered before, stopped answering for good."""
        if self.watch.last_answer_s is None or now - self.watch.last_answer_s < MASTER_SILENT_S:
            return False
        self.progress.event(
            f"the Locust master has not answered for {MASTER_SILENT_S:.0f}s: "
            + ("; ".join(p.text for p in self.diagnose()) or "treating the test as over")
        )
        return True

    def stop_test(self) -> None:
        if self.watch.last is None:
            return
        try:
            self.watch.api.stop()
        except LoadGeneratorError as e:
            self.progress.event(f"warning: could not stop the test: {e}")

    def fetch_results(self) -> None:
        """Locust's CSVs and HTML report into ``locust/``, while the master waits (--autoquit)."""
        if self.watch.last is None:
            return
        missing = self.watch.api.fetch_results(self.store.directory / schema.LOCUST_DIR)
        for name, why in missing.items():
            self.progress.event(f"warning: could not fetch Locust's {name}: {why}")

    def cleanup(self) -> None:
        if self.config.keep:
            self.progress.event(
                f"kept the run's objects (--keep): `kubeswarm clean "
                f"{self.store.run_id} -n {self.namespace}` deletes them"
            )
            return
        deleted = delete_run(self.kube, self.namespace, self.store.run_id)
        self.progress.event(f"deleted {len(deleted)} object(s) of run {self.store.run_id}")


def startup_timeout_s(config: RunConfig) -> float:
    """As long as the master waits for its workers (``--expect-workers-max-wait``): the part of
    the Jobs' deadline that is not run time or autoquit."""
    return max(1.0, job_deadline_s(config) - config.load.run_time_s - config.load.autoquit_s)


def run_cluster(
    config: RunConfig,
    out: TextIO,
    *,
    startup_timeout: float | None = None,
    kube: KubeClient | None = None,
    transport: Callable[[KubeClient, str, str], Transport] | None = None,
    progress: Progress | None = None,
) -> RunResult:
    """``kubeswarm run``: the whole in-cluster lifecycle; returns the run directory and verdict.

    ``transport`` builds the way to Locust's web port from (client, namespace, service); by
    default the API server's service proxy. Raises ``UsageError``/``ClusterError`` before anything
    is created, ``LoadGeneratorError`` (after cleaning up) if the test could not start.
    """
    progress = progress or Progress()
    own_client = kube is None
    kube = kube or connect(config.kubeconfig, config.context, config.namespace, warn=progress.event)
    try:
        return _run(
            config,
            out,
            kube,
            timeout_s=startup_timeout or startup_timeout_s(config),
            transport=transport or ServiceProxyTransport,
            progress=progress,
        )
    finally:
        if own_client:
            kube.close()


def _run(
    config: RunConfig,
    out: TextIO,
    kube: KubeClient,
    *,
    timeout_s: float,
    transport: Callable[[KubeClient, str, str], Transport],
    progress: Progress,
) -> RunResult:
    namespace = config.namespace or kube.namespace
    now = time.time()
    run_objects(config, new_run_id(config.name, now), namespace)  # files readable and fitting
    report = preflight(kube, namespace, config.watch)
    for warning in report.warnings:
        progress.event(warning)
    store = RunStore.create(
        config.out_dir,
        name=config.name,
        mode="cluster",
        config=config.as_record(),
        sample_interval_s=config.sample_interval_s,
        now_s=now,
    )
    objects = run_objects(config, store.run_id, namespace)
    store.update(
        context=kube.connection.context,
        namespace=namespace,
        server=kube.connection.host,
        server_version=report.server_version,
        watch=[str(t) for t in config.watch],
        slos=list(config.slos),
    )
    print(f"run directory: {store.directory}", file=out)
    print(f"Locust web UI: kubeswarm ui {store.run_id} -n {namespace}", file=out, flush=True)
    names = object_names(store.run_id)
    run = ClusterRun(
        kube,
        config,
        namespace,
        store,
        objects,
        progress,
        transport(kube, namespace, names.service),
        timeout_s,
    )
    if config.watch:
        run.sampler = KubeSampler(kube, config.watch, namespace, since_s=now)
        run.sampler.metrics_available = report.metrics_available
    status: RunStatus = "failed"
    failure: KubeswarmError | None = None
    try:
        with sigterm_as_interrupt():
            try:
                run.create()
                status = run.drive()
            except KeyboardInterrupt:
                status = "interrupted"
                progress.event("interrupted: fetching what exists and cleaning up")
                run.stop_test()
            except KubeswarmError as e:
                failure = e
            run.fetch_results()
            run.cleanup()
    finally:
        store.finish(status)  # also on a second Ctrl-C: the run directory stays readable
    if failure is not None:
        raise failure
    from analysis.report import format_summary, write_report

    summary = write_report(store.directory, slos=config.slos)
    out.write(format_summary(summary, store.directory))
    return RunResult(store.directory, status, str(summary["verdict"]), summary)
