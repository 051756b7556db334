"""``kubeswarm sample``: the Kubernetes sampler alone, for load generated elsewhere."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from harness.backends.local import RunResult
from harness.config.values import WatchTarget
from harness.errors import UsageError
from harness.kube.client import KubeClient
from harness.kube.preflight import preflight
from harness.samplers.kube import KubeSampler
from harness.session.schedule import Progress, Schedule, run_ticks
from harness.session.store import RunStatus, RunStore


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
