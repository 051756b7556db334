"""``kubeswarm list``, ``kubeswarm clean`` and ``kubeswarm sample``: runs found by their label.

Every object of a run carries ``kubeswarm.io/run=<run id>``; listing and deleting go by that label
alone, so they find leftovers of a harness that died, whatever it had created by then.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

from harness.errors import UsageError
from harness.kube import rows
from harness.kube.api import Body
from harness.kube.client import KubeClient, connect
from harness.kube.manifests import RUN_LABEL, object_names

# Deleted in this order: the master Job first (its deletion alone would take the rest through the
# ownerReferences), then what a half-finished creation may have left without an owner.
RUN_KINDS: Final = ("Job", "Service", "ConfigMap", "NetworkPolicy")


@contextmanager
def cluster_session(values: Mapping[str, Any]) -> Iterator[tuple[KubeClient, str]]:
    """A client from the ``--kubeconfig``/``--context``/``-n`` values and the namespace to use."""
    import sys

    kube = connect(
        values.get("kubeconfig"),
        values.get("context"),
        values.get("namespace"),
        warn=lambda text: print(text, file=sys.stderr),
    )
    try:
        yield kube, values.get("namespace") or kube.namespace
    finally:
        kube.close()


@dataclass(frozen=True)
class RunInfo:
    """One run in the cluster, as ``kubeswarm list`` shows it."""

    run_id: str
    namespace: str
    state: str  # running, succeeded, failed, unknown
    created: float | None
    deadline_s: int | None
    jobs: tuple[str, ...]


def _job_state(job: rows.Row) -> str:
    status = job.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("status") == "True" and condition.get("type") in ("Complete", "Failed"):
            return "succeeded" if condition["type"] == "Complete" else "failed"
    return "running" if status.get("active") else "pending"


def list_runs(kube: KubeClient, namespace: str) -> list[RunInfo]:
    """Runs in the namespace, newest first, from their Jobs (one list call)."""
    by_run: dict[str, list[rows.Row]] = {}
    for job in kube.list_objects("Job", namespace, label_selector=RUN_LABEL):
        run_id = str(rows.dig(job, "metadata", "labels", RUN_LABEL))
        by_run.setdefault(run_id, []).append(job)
    infos = []
    for run_id, jobs in by_run.items():
        master = next(
            (
                j
                for j in jobs
                if rows.dig(j, "metadata", "labels", "app.kubernetes.io/component") == "master"
            ),
            jobs[0],
        )
        infos.append(
            RunInfo(
                run_id=run_id,
                namespace=namespace,
                state=_job_state(master),
                created=rows.timestamp(rows.dig(master, "metadata", "creationTimestamp")),
                deadline_s=rows.dig(master, "spec", "activeDeadlineSeconds"),
                jobs=tuple(sorted(str(rows.dig(j, "metadata", "name")) for j in jobs)),
            )
        )
    return sorted(infos, key=lambda i: (i.created or 0.0, i.run_id), reverse=True)


def format_runs(infos: list[RunInfo], now: float) -> str:
    if not infos:
        return "no kubeswarm runs in this namespace\n"
    lines = [f"{'RUN':<48} {'STATE':<10} {'AGE':>6}  JOBS"]
    for info in infos:
        age = "-" if info.created is None else f"{(now - info.created) / 60:.0f}m"
        lines.append(f"{info.run_id:<48} {info.state:<10} {age:>6}  {', '.join(info.jobs)}")
    return "\n".join(lines) + "\n"


def delete_run(kube: KubeClient, namespace: str, run_id: str | None) -> list[str]:
    """Deletes every object of one run (``run_id``) or of all runs (None), propagation Background.

    Returns ``Kind/name`` of every object the run had: each is deleted here or, once its owner
    (the master Job) is deleted, by the garbage collector. Objects already going are not an error.
    """
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    listed = {
        kind: kube.list_objects(kind, namespace, label_selector=selector) for kind in RUN_KINDS
    }
    found = [
        (kind, str(rows.dig(obj, "metadata", "name"))) for kind in RUN_KINDS for obj in listed[kind]
    ]
    # The Secret of --env values is found through the Jobs that use it, not listed: listing
    # Secrets would let kubeswarm read every Secret of the namespace.
    found += [("Secret", name) for name in _env_secrets(listed["Job"])]
    for kind, name in found:
        kube.delete(kind, name, namespace)  # False: its owner's deletion already took it
    return [f"{kind}/{name}" for kind, name in found]


def _env_secrets(jobs: list[Body]) -> list[str]:
    """The run Secrets (``object_names(run).secret``) that the Jobs' pods take variables from."""
    names = set()
    for job in jobs:
        own = object_names(str(rows.dig(job, "metadata", "labels", RUN_LABEL))).secret
        for container in rows.dig(job, "spec", "template", "spec", "containers") or []:
            for source in container.get("envFrom") or []:
                if rows.dig(source, "secretRef", "name") == own:
                    names.add(own)
    return sorted(names)


def clean(kube: KubeClient, namespace: str, run_id: str | None, all_runs: bool) -> list[str]:
    """``kubeswarm clean RUN`` or ``--all``: what was deleted."""
    if bool(run_id) == all_runs:
        raise UsageError("clean: name one run (kubeswarm list shows them) or pass --all")
    deleted = delete_run(kube, namespace, None if all_runs else run_id)
    if run_id and not deleted:
        raise UsageError(
            f"no objects of run {run_id} in namespace {namespace} (kubeswarm list shows the runs)"
        )
    return deleted
