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

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from analysis.data import schema
from harness.backends.local import load_status
from harness.config.run import RunConfig
from harness.config.values import parse_cidr
from harness.errors import ClusterError, LoadGeneratorError
from harness.kube import rows
from harness.kube.api import Body, RetryPolicy
from harness.kube.client import KubeClient
from harness.kube.manifests import (
    COMPONENT_LABEL,
    WEB_PORT,
    object_names,
    run_objects,
    run_selector,
    with_owner,
)
from harness.kube.runs import delete_run
from harness.locust_api import LocustApi, LocustSample, LocustWatch, Transport
from harness.samplers.ramp_log import RAMP_SHAPE, PodRampLog, ramp_env
from harness.session.core import (
    LoadPoll,
    NoteFn,
    Observation,
    RunMode,
)
from harness.session.plan import LoadPlan

# The run's own pods' usage is listed at the metrics API's usual resolution (metrics-server's
# --metric-resolution default), not every tick.
USAGE_EVERY_S: Final = 15.0
# While starting, look at the pods every this many seconds (one list of pods, one of events).
DIAGNOSE_EVERY_S: Final = 6.0
# The master answering nothing for this long, once the test ran, means it is gone.
MASTER_SILENT_S: Final = 30.0
# The init container that pip-installs --requirement (k8s-jobs/*-job.yaml).
INSTALL_CONTAINER: Final = "install-requirements"
LOCUST_CONTAINER: Final = "locust"  # the Locust container of both Jobs' pods
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
            why = f"{status.get('reason') or ''} {status.get('message') or ''}".strip()
            problems.append(Problem(f"pod {name} failed" + (f": {why}" if why else ""), True))
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
                container_name = container.get("name")
                hint = ""
                if container_name == INSTALL_CONTAINER:
                    hint = (
                        ": pip could not install the --requirement packages (`kubectl logs "
                        f"{name} -c {INSTALL_CONTAINER}` shows why; --keep keeps the pod)"
                    )
                problems.append(
                    Problem(
                        f"pod {name}, container {container_name} exited with code "
                        f"{terminated.get('exitCode')} ({terminated.get('reason') or 'Error'})"
                        + hint,
                        fatal=bool(hint),
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


class ClusterBackend:
    """The run's Jobs in the cluster; see the module docstring for the order of creation."""

    mode: RunMode = "cluster"

    def __init__(
        self,
        kube: KubeClient,
        config: RunConfig,
        plan: LoadPlan,
        namespace: str,
        *,
        transport: Callable[[KubeClient, str, str], Transport],
        clock: Callable[[], float] = time.time,
        owner: Mapping[str, str] | None = None,
    ) -> None:
        self.kube, self.config, self.plan, self.namespace = kube, config, plan, namespace
        self.owner = owner  # an ownerReference for the master Job (a detached run's controller)
        self.transport = transport
        self.clock = clock
        self.run_id = ""
        self.watch: LocustWatch | None = None
        self.created: list[str] = []
        self.started_s = 0.0
        self.running_since: float | None = None
        self.diagnosed_s = 0.0
        self.reported: set[str] = set()
        self.master_pod = ""
        self.metrics_served = True
        self.usage_listed_s = float("-inf")
        self.usage: dict[str, Body] = {}
        self.ramp = PodRampLog(self._master_log) if plan.shape == RAMP_SHAPE else None

    def start(self, run_dir: Path, note: NoteFn) -> dict[str, Any]:
        """The master Job first, then everything else owned by it (see the module docstring)."""
        self.run_id = run_dir.name  # the run id is the run directory's name
        self.names = object_names(self.run_id)
        self.objects = run_objects(
            self.config,
            self.run_id,
            self.namespace,
            self.plan,
            master_env=ramp_env(os.environ),
            ui_sources=self._ui_sources(note),
        )
        self.watch = LocustWatch(
            LocustApi(self.transport(self.kube, self.namespace, self.names.service))
        )
        note(f"Locust web UI: kubeswarm ui {self.run_id} -n {self.namespace}")
        masters = [
            o
            for o in self.objects
            if o.get("kind") == "Job" and rows.dig(o, "metadata", "name") == self.names.master_job
        ]
        if len(masters) != 1:
            raise ClusterError(f"the manifests of run {self.run_id} have no master Job")
        self.started_s = self.diagnosed_s = self.clock()
        first = masters[0]
        if self.owner is not None:
            first = {**first, "metadata": {**first["metadata"], "ownerReferences": [self.owner]}}
        master = self.kube.create(first, self.namespace)
        self.created.append(f"Job/{self.names.master_job}")
        for obj in self.objects:
            if obj is masters[0]:
                continue
            self.kube.create(with_owner(obj, master), self.namespace)
            self.created.append(f"{obj['kind']}/{rows.dig(obj, 'metadata', 'name')}")
        return {"objects": list(self.created)}

    def _ui_sources(self, note: NoteFn) -> tuple[str, ...]:
        """Where the master's web port may be reached from: ``--ui-from``, else the nodes' own
        addresses (the API server's proxy connects from a node); none known leaves it open."""
        if self.config.ui_from or not self.config.network_policy:
            return self.config.ui_from
        try:
            nodes = self.kube.list_objects("Node")
        except ClusterError as e:
            note(
                f"warning: cannot list nodes ({e}): the master's web port stays open to every pod; "
                "pass --ui-from CIDR (where the API server's proxy connects from) to close it"
            )
            return ()
        addresses = sorted(
            {
                str(a["address"])
                for node in nodes
                for a in rows.dig(node, "status", "addresses") or []
                if a.get("type") in ("InternalIP", "ExternalIP") and a.get("address")
            }
        )
        return tuple(parse_cidr(a) for a in addresses)

    def poll(self, now: float, note: NoteFn) -> LoadPoll:
        assert self.watch is not None  # started
        observation = Observation()
        sample = self.watch.poll(observation)
        if sample is not None:
            observation.load = load_status(sample)
        if self.running_since is not None:
            observation.append(schema.PODS, self._load_pod_rows(now))
        if self.running_since is None:
            if self._started(sample, note):
                self.running_since = now
            else:
                self._check_startup(now, sample, note)
        elif self._master_gone(now, note):
            self.watch.finished = True
        if self.ramp is not None and self.master_pod:
            observation.merge(self.ramp.read(now, final=self.watch.finished))
        return LoadPoll(observation, self.running_since is not None, self.watch.finished)

    def _master_log(self, since_s: int | None) -> str:
        return self.kube.pod_log(self.master_pod, self.namespace, LOCUST_CONTAINER, since_s=since_s)

    def _load_pod_rows(self, now: float) -> list[dict[str, Any]]:
        """The run's own pods, as the workloads of its Jobs: the analysis judges the load
        generator's restarts and OOM kills from them (one list call per tick)."""
        try:
            pods = self.kube.list_objects(
                "Pod", self.namespace, label_selector=run_selector(self.run_id)
            )
        except ClusterError:
            return []
        usage = self._load_pod_usage(now)
        by_component = {"master": self.names.master_job, "worker": self.names.worker_job}
        masters = [
            str(rows.dig(pod, "metadata", "name"))
            for pod in pods
            if rows.dig(pod, "metadata", "labels", COMPONENT_LABEL) == "master"
        ]
        if masters:
            self.master_pod = masters[-1]
        return [
            dict(
                rows.pod_row(
                    now,
                    pod,
                    by_component.get(component, component),
                    usage.get(str(rows.dig(pod, "metadata", "name"))),
                )
            )
            for pod in pods
            if (component := str(rows.dig(pod, "metadata", "labels", COMPONENT_LABEL)))
        ]

    def _load_pod_usage(self, now: float) -> dict[str, Body]:
        """The run's pods' PodMetrics by pod name, listed at most every USAGE_EVERY_S (the
        metrics API's usual resolution: a faster list measures nothing new). The master's
        memory is what the report's ``master_memory`` follows (Locust's stats history grows)."""
        if self.metrics_served and now - self.usage_listed_s >= USAGE_EVERY_S:
            self.usage_listed_s = now
            try:
                listed = self.kube.list_pod_metrics(self.namespace, run_selector(self.run_id))
            except ClusterError:
                listed = []
            if listed is None:  # not served: said once by the client, never asked again
                self.metrics_served = False
            else:
                self.usage = {str(rows.dig(m, "metadata", "name")): m for m in listed}
        return self.usage

    def _started(self, sample: LocustSample | None, note: NoteFn) -> bool:
        if sample is None or self.watch is None:
            return False
        connected = sample.worker_count or 0
        if self.watch.seen_running or connected >= self.plan.expected_workers:
            note(f"{connected} Locust worker(s) connected; the test is running")
            return True
        return False

    def _check_startup(self, now: float, sample: LocustSample | None, note: NoteFn) -> None:
        """Every few seconds while starting: say why pods are not running; give up on what
        cannot fix itself, or when the startup budget is spent."""
        timed_out = now - self.started_s > self.plan.startup_s
        if not timed_out and now - self.diagnosed_s < DIAGNOSE_EVERY_S:
            return
        self.diagnosed_s = now
        problems = self.diagnose()
        for problem in problems:
            if problem.text not in self.reported:  # each reason once, as soon as it is seen
                self.reported.add(problem.text)
                note(f"waiting: {problem.text}")
        fatal = [p for p in problems if p.fatal]
        if not fatal and not timed_out:
            return
        last = self.watch.last if self.watch else None
        connected = (
            "the master never answered"
            if sample is None and last is None
            else f"{(last.worker_count or 0) if last else 0} of "
            f"{self.plan.expected_workers} workers connected"
        )
        why = "; ".join(p.text for p in problems[:6]) or "no pod reports a problem"
        when = f"within {self.plan.startup_s}s" if timed_out else "at all"
        raise LoadGeneratorError(f"the run did not start {when} ({connected}): {why}")

    def diagnose(self) -> list[Problem]:
        """Problems of the run's pods (one list of pods, one of events)."""
        selector = run_selector(self.run_id)
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

    def _master_gone(self, now: float, note: NoteFn) -> bool:
        """Whether the master, which answered before, stopped answering for good."""
        last = self.watch.last_answer_s if self.watch else None
        if last is None or now - last < MASTER_SILENT_S:
            return False
        note(
            f"the Locust master has not answered for {MASTER_SILENT_S:.0f}s: "
            + ("; ".join(p.text for p in self.diagnose()) or "treating the test as over")
        )
        return True

    def scale_workers(self, total: int) -> None:
        """The worker Job's parallelism raised to ``total`` pods (``--workers auto``)."""
        self.kube.scale_job(self.names.worker_job, self.namespace, total)

    def stop(self, note: NoteFn) -> None:
        if self.watch is None or self.watch.last is None:
            return
        try:
            self.watch.api.stop()
        except LoadGeneratorError as e:
            note(f"warning: could not stop the test: {e}")

    def fetch_results(self, locust_dir: Path) -> dict[str, str]:
        """Locust's CSVs and HTML report, while the master waits (--autoquit)."""
        if self.watch is None or self.watch.last is None:
            return {}
        return self.watch.api.fetch_results(locust_dir)

    def close(self, note: NoteFn) -> None:
        if not self.created:
            return
        if self.config.keep:
            note(
                f"kept the run's objects (--keep): `kubeswarm clean {self.run_id} "
                f"-n {self.namespace}` deletes them"
            )
            return
        try:
            deleted = delete_run(self.kube, self.namespace, self.run_id)
        except ClusterError as e:
            note(f"warning: could not delete run {self.run_id} ({e}); its Jobs' deadline will")
            return
        note(f"deleted {len(deleted)} object(s) of run {self.run_id}")
