"""``kubeswarm list``, ``kubeswarm clean`` and ``kubeswarm sample``: runs found by their label.

Every object of a run carries ``kubeswarm.io/run=<run id>``; listing and deleting go by that label
alone, so they find leftovers of a harness that died, whatever it had created by then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO

from harness.errors import UsageError
from harness.kube import rows
from harness.kube.client import KubeClient, connect
from harness.kube.preflight import preflight
from harness.kube.sampler import KubeSampler
from harness.local import RunResult
from harness.manifests import RUN_LABEL
from harness.monitor import Progress, Schedule, run_ticks
from harness.runstore import RunStatus, RunStore
from harness.values import WatchTarget

# Deleted in this order: the master Job first (its deletion alone would take the rest through the
# ownerReferences), then what a half-finished creation may have left without an owner.
RUN_KINDS: Final = ("Job", "Service", "ConfigMap")


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

    Returns ``Kind/name`` of what was deleted. Objects already going are not an error.
    """
    selector = f"{RUN_LABEL}={run_id}" if run_id else RUN_LABEL
    deleted = []
    for kind in RUN_KINDS:
        for obj in kube.list_objects(kind, namespace, label_selector=selector):
            name = str(rows.dig(obj, "metadata", "name"))
            if kube.delete(kind, name, namespace):
                deleted.append(f"{kind}/{name}")
    return deleted


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


def sample_only(
    kube: KubeClient,
    targets: tuple[WatchTarget, ...],
    namespace: str,
    *,
    duration_s: float,
    interval_s: float,
    out_dir: Path,
    name: str,
    out: TextIO,
    clock: Callable[[], float] = time.time,
) -> RunResult:
    """``kubeswarm sample``: only the sampler, for load generated elsewhere, then the report."""
    if not targets:
        raise UsageError("sample: pass at least one --watch hpa/NAME or deployment/NAME")
    progress = Progress()
    report = preflight(kube, namespace, targets, creates=False)
    for warning in report.warnings:
        progress.event(warning)
    start = clock()
    store = RunStore.create(
        out_dir,
        name=name,
        mode="sample",
        config={
            "watch": [str(t) for t in targets],
            "duration_s": duration_s,
            "namespace": namespace,
        },
        sample_interval_s=interval_s,
        now_s=start,
    )
    store.update(
        context=kube.connection.context,
        namespace=namespace,
        watch=[str(t) for t in targets],
        server_version=report.server_version,
    )
    print(f"run directory: {store.directory}", file=out, flush=True)
    sampler = KubeSampler(kube, targets, namespace, since_s=start)
    sampler.metrics_available = report.metrics_available
    status: RunStatus = "completed"

    def tick(now: float) -> bool:
        result = sampler.tick(now, store)
        for notice in result.notices:
            progress.event(notice)
        progress.update(
            f"[{now - start:4.0f}s/{duration_s:.0f}s] {result.pods} pods  {result.status}"
        )
        return now - start < duration_s

    try:
        tick(clock())
        store.flush()
        run_ticks(store, Schedule(interval_s, start, clock=clock), tick)
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        progress.done()
        store.finish(status)
    from analysis.report import format_summary, write_report

    summary = write_report(store.directory)
    out.write(format_summary(summary, store.directory))
    return RunResult(store.directory, status, str(summary["verdict"]), summary)
