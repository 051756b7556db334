"""The user's side of a detached run: ``run --detach``, ``fetch``, ``attach`` and cleaning.

``run --detach`` creates the run's objects (``objects.detached_objects``), then watches the
controller for a bounded time (``START_WAIT_S``) and returns as soon as the controller has
passed preflight and created the Locust Jobs. A controller that cannot start (its image cannot
be pulled or run, the namespace's quota or admission refuses its pod, its ServiceAccount lacks a
permission its preflight names) is reported here, with the reason, and its objects are deleted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from harness.config.run import RunConfig
from harness.config.values import parse_cidr
from harness.errors import EXIT_USAGE, ClusterError, NotFound, UsageError
from harness.kube import rows
from harness.kube.api import Body
from harness.kube.client import KubeClient
from harness.session.plan import plan_for
from harness.session.store import new_run_id
from harness.unattended.objects import (
    DETACHED_LABEL,
    RESULTS_PORT,
    controller_args,
    detached_names,
    detached_objects,
    owned_by,
)
from harness.unattended.results import fetch_run
from harness.unattended.status import ACTIVE, find_detached

# A warm node starts the controller in a few seconds; a cold one pulls the image first.
START_WAIT_S: Final = 120.0
POLL_S: Final = 1.0
# Waiting reasons of the controller's container that do not fix themselves in START_WAIT_S.
_FATAL_WAITING: Final = frozenset(
    {
        "ErrImagePull",
        "ImagePullBackOff",
        "ErrImageNeverPull",
        "InvalidImageName",
        "CreateContainerConfigError",
        "CreateContainerError",
        "RunContainerError",
    }
)


@dataclass(frozen=True)
class DetachSettings:
    """What a detached run adds to a run's configuration."""

    results_pvc: str | None = None  # --results-pvc: where the run directory is written
    keep_results_s: float = 86400.0  # --keep-results: how long the finished controller serves
    baseline: Path | None = None  # only ``previous`` reaches the controller


@dataclass(frozen=True)
class Launched:
    run_id: str
    namespace: str
    state: str
    waited_s: float


def detach(
    kube: KubeClient,
    config: RunConfig,
    settings: DetachSettings,
    raw: Mapping[str, Any],
    options: Sequence[str],
    *,
    note: Callable[[str], None],
    wait_s: float = START_WAIT_S,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Launched:
    """Creates a detached run and waits until its controller runs; see the module docstring."""
    check_detach(settings, raw, options)
    namespace = config.namespace or kube.namespace
    started = clock()
    run_id = new_run_id(config.name, started)
    files = [config.load.locustfile, *config.extra_files]
    objects = detached_objects(
        run_id=run_id,
        run_name=config.name,
        namespace=namespace,
        image=config.image,
        args=controller_args(raw, run_id, namespace, options),
        files=files,
        results_pvc=settings.results_pvc,
        run_deadline_s=plan_for(config).deadline_s,
        keep_results_s=settings.keep_results_s,
        results_from=_results_sources(kube, config, note) if config.network_policy else None,
    )
    root = kube.create(objects[0], namespace)
    try:
        for obj in objects[1:]:
            kube.create(owned_by(obj, root), namespace)
        note(f"detached run {run_id} in namespace {namespace}; waiting for its controller")
        state = _wait_for_controller(
            kube, namespace, run_id, wait_s=wait_s, clock=clock, sleep=sleep
        )
    except BaseException:
        kube.delete("ConfigMap", str(root["metadata"]["name"]), namespace)
        raise
    return Launched(run_id, namespace, state, clock() - started)


def _results_sources(
    kube: KubeClient, config: RunConfig, note: Callable[[str], None]
) -> tuple[str, ...]:
    """Where the results port may be reached from: ``--ui-from``, else the nodes' addresses
    (where the API server's proxy connects from, as for the master's web port)."""
    if config.ui_from:
        return config.ui_from
    try:
        nodes = kube.list_objects("Node")
    except ClusterError as e:
        note(f"warning: cannot list nodes ({e}): the results port stays open to every pod")
        return ()
    addresses = {
        str(a["address"])
        for node in nodes
        for a in rows.dig(node, "status", "addresses") or []
        if a.get("type") in ("InternalIP", "ExternalIP") and a.get("address")
    }
    return tuple(parse_cidr(a) for a in sorted(addresses))


def check_detach(settings: DetachSettings, raw: Mapping[str, Any], options: Sequence[str]) -> None:
    """What ``--detach`` refuses, before anything is sent anywhere."""
    if settings.baseline not in (None, Path("previous")):
        raise UsageError(
            "--detach compares only with --baseline previous (a run in the cluster); compare "
            "fetched runs with `kubeswarm compare`"
        )
    controller_args(raw, "check", "check", options)


def _wait_for_controller(
    kube: KubeClient,
    namespace: str,
    run_id: str,
    *,
    wait_s: float,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> str:
    names = detached_names(run_id)
    deadline = clock() + wait_s
    problems: list[str] = []
    while clock() < deadline:
        data = kube.get("ConfigMap", names.status, namespace).get("data") or {}
        state = str(data.get("state"))
        if state == "failed":
            why = str(data.get("reason") or "no reason recorded")
            error = UsageError if data.get("exit_code") == str(EXIT_USAGE) else ClusterError
            raise error(f"the controller of run {run_id} failed: {why}")
        if state not in ("pending", "None"):
            return state
        problems, fatal = controller_problems(kube, namespace, run_id, names.job)
        if fatal:
            why = "; ".join(problems)
            raise ClusterError(f"the controller of run {run_id} cannot start: {why}")
        sleep(POLL_S)
    why = "; ".join(problems) or "no problem reported by its pod"
    raise ClusterError(f"the controller of run {run_id} did not start within {wait_s:.0f}s: {why}")


def controller_problems(
    kube: KubeClient, namespace: str, run_id: str, job: str
) -> tuple[list[str], bool]:
    """Why the controller's pod is not running yet, and whether that will not fix itself."""
    pods = kube.list_objects("Pod", namespace, label_selector=f"{DETACHED_LABEL}={run_id}")
    problems, fatal = [], False
    for pod in pods:
        name = rows.dig(pod, "metadata", "name")
        status = pod.get("status") or {}
        if status.get("phase") == "Failed":
            problems.append(f"pod {name} failed: {status.get('reason') or ''}".rstrip(": "))
            fatal = True
        for container in status.get("containerStatuses") or []:
            waiting = rows.dig(container, "state", "waiting") or {}
            terminated = rows.dig(container, "state", "terminated") or {}
            if waiting.get("reason") in _FATAL_WAITING:
                problems.append(f"pod {name}: {waiting['reason']}: {waiting.get('message') or ''}")
                fatal = True
            if terminated and terminated.get("exitCode") not in (0, None):
                problems.append(
                    f"pod {name} exited with code {terminated.get('exitCode')} "
                    f"({terminated.get('reason') or 'Error'}: {terminated.get('message') or ''})"
                )
                fatal = True
    for event in kube.list_objects("Event", namespace):
        if rows.dig(event, "involvedObject", "name") != job or event.get("type") != "Warning":
            continue
        message = " ".join(str(event.get("message") or "").split())
        problems.append(f"Job {job}: {event.get('reason')}: {message}")
        fatal = fatal or event.get("reason") == "FailedCreate"
    return [p.strip() for p in problems], fatal


def fetch(kube: KubeClient, namespace: str, run: str, out_dir: Path) -> Path:
    """``kubeswarm fetch RUN``: the run directory, from its controller's results server."""
    found = find_detached(kube, namespace, run)
    service = detached_names(found.run_id).service

    def get(path: str) -> bytes:
        return kube.proxy("GET", namespace, service, RESULTS_PORT, path)

    try:
        return fetch_run(get, out_dir)
    except NotFound as e:
        raise UsageError(
            f"run {found.run_id} is {found.state} and its results are no longer served "
            "(--keep-results ran out; with --results-pvc they are on that volume)"
        ) from e
    except ClusterError as e:
        if found.state in ACTIVE:
            raise ClusterError(f"run {found.run_id} is {found.state}: {e}") from e
        raise


def attach(
    kube: KubeClient,
    namespace: str,
    run: str,
    out: TextIO,
    *,
    poll_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """``kubeswarm attach RUN``: the controller's lines as they come, until the run ends;
    returns its last state."""
    printed: set[str] = set()
    while True:
        found = find_detached(kube, namespace, run)
        pod = _status_field(kube, namespace, found.run_id, "pod")
        if pod:
            try:
                log = kube.pod_log(pod, namespace, "kubeswarm")
            except (NotFound, ClusterError):
                log = ""
            for line in log.splitlines():
                if line not in printed:
                    printed.add(line)
                    out.write(line.partition(" ")[2] + "\n")
            out.flush()
        if found.state not in ACTIVE:
            note = f": {found.reason}" if found.reason else ""
            out.write(f"run {found.run_id}: {found.state}, verdict {found.verdict}{note}\n")
            return found.state
        sleep(poll_s)


def _status_field(kube: KubeClient, namespace: str, run_id: str, key: str) -> str:
    body: Body = kube.get("ConfigMap", detached_names(run_id).status, namespace)
    return str((body.get("data") or {}).get(key) or "")


def clean_detached(kube: KubeClient, namespace: str, run: str | None) -> list[str]:
    """Deletes detached runs' roots (status ConfigMaps): the garbage collector takes the rest."""
    selector = DETACHED_LABEL if run is None else f"{DETACHED_LABEL}={run}"
    roots = [
        str(rows.dig(c, "metadata", "name"))
        for c in kube.list_objects("ConfigMap", namespace, label_selector=selector)
        if rows.dig(c, "metadata", "labels", "app.kubernetes.io/component") == "status"
    ]
    for name in roots:
        kube.delete("ConfigMap", name, namespace)
    return [f"ConfigMap/{name}" for name in roots]
