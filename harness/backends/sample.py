"""``kubeswarm sample``: no load of kubeswarm's own; the session only samples, for a duration."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from harness.config.values import WatchTarget
from harness.errors import UsageError
from harness.kube.client import KubeClient
from harness.kube.preflight import preflight
from harness.samplers.kube import KubeSampler, KubeSource
from harness.samplers.kube_state import WatchedState
from harness.session.core import LoadPoll, NoteFn, Observation, Reporter, RunMode, RunResult
from harness.session.run import SessionSpec, execute


class NoLoad:
    """A backend that generates nothing: the load comes from elsewhere; it ends at the duration."""

    mode: RunMode = "sample"

    def __init__(self, duration_s: float) -> None:
        self.duration_s = duration_s
        self.started_s: float | None = None

    def start(self, run_dir: Path, note: NoteFn) -> dict[str, Any]:
        return {}

    def poll(self, now: float, note: NoteFn) -> LoadPoll:
        if self.started_s is None:
            self.started_s = now
        return LoadPoll(Observation(), True, now - self.started_s >= self.duration_s)

    def stop(self, note: NoteFn) -> None:
        return None

    def fetch_results(self, locust_dir: Path) -> dict[str, str]:
        return {}

    def close(self, note: NoteFn) -> None:
        return None


def sample_only(
    kube: KubeClient,
    targets: tuple[WatchTarget, ...],
    namespace: str,
    *,
    duration_s: float,
    interval_s: float,
    out_dir: Path,
    name: str,
    reporter: Reporter,
) -> RunResult:
    """``kubeswarm sample``: only the Kubernetes sampler, then the report."""
    if not targets:
        raise UsageError("sample: pass at least one --watch hpa/NAME or deployment/NAME")
    report = preflight(kube, namespace, targets, creates=False)
    for warning in report.warnings:
        reporter.event(warning)
    watch = [str(t) for t in targets]
    spec = SessionSpec(
        mode="sample",
        name=name,
        out_dir=out_dir,
        sample_interval_s=interval_s,
        config={"watch": watch, "duration_s": duration_s, "namespace": namespace},
        duration_s=duration_s,
        record={
            "context": kube.connection.context,
            "namespace": namespace,
            "watch": watch,
            "server_version": report.server_version,
        },
    )
    state = WatchedState(kube)
    with KubeSampler(kube, targets, namespace, since_s=time.time(), state=state) as sampler:
        sampler.metrics_available = report.metrics_available
        return execute(spec, NoLoad(duration_s), [KubeSource(sampler)], reporter)
