"""A detached run's status: one ConfigMap (``ks-<run>-status``) its controller keeps current.

States: ``pending`` (created, the controller not up yet), ``starting`` (the controller passed
preflight and created the Locust Jobs), ``running`` (the load runs), ``analysing`` (the results
are fetched, the report is being written), ``done`` (with the verdict) and ``failed`` (with why).
A controller killed outright cannot write ``failed``: ``kubeswarm list`` then reads its Job, which
failed or is gone, and says so (``effective_state``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from harness.errors import ClusterError, UsageError
from harness.kube import rows
from harness.kube.api import RESOURCES, Body, Operation
from harness.kube.client import KubeClient
from harness.unattended.objects import DETACHED_LABEL, detached_names, status_configmap

STATES: Final = ("pending", "starting", "running", "analysing", "done", "failed")
ACTIVE: Final = frozenset({"pending", "starting", "running", "analysing"})


class StatusBoard:
    """Writes one run's status ConfigMap (merge patches: each field is replaced alone)."""

    def __init__(
        self,
        kube: KubeClient,
        namespace: str,
        run_id: str,
        *,
        clock: Callable[[], float] = time.time,
        warn: Callable[[str], None] = lambda _text: None,
    ) -> None:
        self.kube, self.namespace, self.run_id = kube, namespace, run_id
        self.name = detached_names(run_id).status
        self.clock, self.warn = clock, warn

    def ensure(self, run_name: str) -> None:
        """Creates the ConfigMap unless the launcher did (a scheduled run has no launcher)."""
        body = status_configmap(self.name, self.run_id, run_name, state="pending")
        self.kube.create(body, self.namespace)

    def set(self, state: str, **fields: str | None) -> None:
        """One state change; a failure to write it is a warning, never the run's end."""
        data: dict[str, str | None] = {"state": state, "updated": f"{self.clock():.0f}", **fields}
        path = RESOURCES["ConfigMap"].path(self.namespace, self.name)
        op = Operation("patch", "configmaps", self.namespace, self.name)
        try:
            self.kube.request(
                "PATCH",
                path,
                op,
                body={"data": data},
                headers={"Content-Type": "application/merge-patch+json"},
            )
        except ClusterError as e:
            self.warn(f"warning: could not record state {state} of run {self.run_id}: {e}")


@dataclass(frozen=True)
class DetachedRun:
    """One detached run as ``kubeswarm list`` shows it."""

    run_id: str
    name: str
    state: str
    verdict: str
    reason: str
    run_dir: str
    updated: float | None
    serves_until: float | None


def read_status(data: Mapping[str, Any], job: Body | None, job_known: bool) -> DetachedRun:
    """The run's status from its ConfigMap's data and its controller Job (None: gone)."""
    state, reason = effective_state(data, job, job_known)

    def number(key: str) -> float | None:
        try:
            return float(data[key])
        except (KeyError, TypeError, ValueError):
            return None

    return DetachedRun(
        run_id=str(data.get("run", "")),
        name=str(data.get("name", "")),
        state=state,
        verdict=str(data.get("verdict") or "-"),
        reason=reason,
        run_dir=str(data.get("run_dir") or ""),
        updated=number("updated"),
        serves_until=number("serves_until"),
    )


def effective_state(data: Mapping[str, Any], job: Body | None, job_known: bool) -> tuple[str, str]:
    """The recorded state, unless the controller ended without recording an end: failed, and
    why (its Job failed, or is gone)."""
    state = str(data.get("state") or "pending")
    reason = str(data.get("reason") or "")
    if state not in ACTIVE or not job_known:
        return state, reason
    if job is None:
        return "failed", "the controller's Job is gone before the run ended"
    for condition in rows.dig(job, "status", "conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            why = condition.get("message") or condition.get("reason") or "failed"
            return "failed", f"the controller ended before the run did ({why})"
    return state, reason


def list_detached(kube: KubeClient, namespace: str) -> list[DetachedRun]:
    """Detached and scheduled runs in the namespace, newest first (two list calls)."""
    configmaps = kube.list_objects("ConfigMap", namespace, label_selector=DETACHED_LABEL)
    jobs = {
        str(rows.dig(j, "metadata", "labels", DETACHED_LABEL)): j
        for j in kube.list_objects("Job", namespace, label_selector=DETACHED_LABEL)
    }
    runs = []
    for configmap in configmaps:
        if rows.dig(configmap, "metadata", "labels", "app.kubernetes.io/component") != "status":
            continue
        data = configmap.get("data") or {}
        run_id = str(data.get("run", ""))
        # A scheduled run's controller Job is the CronJob's, not labelled by run: not judged here.
        launched = "launched" in data
        runs.append(read_status(data, jobs.get(run_id), job_known=launched))
    return sorted(runs, key=lambda r: r.run_id, reverse=True)


def find_detached(kube: KubeClient, namespace: str, run: str) -> DetachedRun:
    """The detached run named ``run`` (its id, or the unique end of it)."""
    runs = list_detached(kube, namespace)
    matches = [r for r in runs if r.run_id == run or r.run_id.endswith(f"-{run}")]
    exact = [r for r in matches if r.run_id == run]
    if exact or len(matches) == 1:
        return (exact or matches)[0]
    known = ", ".join(r.run_id for r in runs) or "none"
    raise UsageError(f"no single detached run {run!r} in namespace {namespace} (detached: {known})")


def format_detached(runs: list[DetachedRun], now: float) -> str:
    if not runs:
        return ""
    lines = [f"{'DETACHED RUN':<48} {'STATE':<10} {'VERDICT':<10} {'UPDATED':>7}  NOTE"]
    for run in runs:
        age = "-" if run.updated is None else f"{max(0.0, now - run.updated) / 60:.0f}m"
        note = run.reason
        if not note and run.state == "done":
            if run.serves_until is not None and run.serves_until > now:
                note = f"kubeswarm fetch {run.run_id}"
            else:
                note = "results no longer served"
        lines.append(f"{run.run_id:<48} {run.state:<10} {run.verdict:<10} {age:>7}  {note}")
    return "\n".join(lines) + "\n"
