"""``kubeswarm sample``: only the Kubernetes sampler, for a duration, then the report."""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.backends.sample import NoLoad
from harness.config.options import OPTIONS
from harness.config.values import WatchTarget
from harness.errors import UsageError
from harness.kube.client import KubeClient, connect
from harness.kube.preflight import preflight
from harness.modes.parts import Parts
from harness.samplers.kube import KubeSampler, KubeSource
from harness.samplers.kube_state import WatchedState
from harness.session.core import Reporter
from harness.session.run import SessionSpec


@dataclass(frozen=True)
class SampleConfig:
    watch: tuple[WatchTarget, ...]
    duration_s: float
    interval_s: float
    out_dir: Path
    name: str
    hpa_sync_period_s: float = OPTIONS["hpa_sync_period_s"].default
    kubeconfig: Path | None = None
    context: str | None = None
    namespace: str | None = None

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> SampleConfig:
        if not values.get("watch"):
            raise UsageError("sample: pass at least one --watch hpa/NAME or deployment/NAME")
        kubeconfig = values.get("kubeconfig")
        return cls(
            watch=tuple(values["watch"]),
            duration_s=values["run_time_s"],
            interval_s=values["sample_interval_s"],
            hpa_sync_period_s=values["hpa_sync_period_s"],
            out_dir=Path(values["out_dir"]),
            name=values.get("name") or "sample",
            kubeconfig=None if kubeconfig is None else Path(kubeconfig),
            context=values.get("context"),
            namespace=values.get("namespace"),
        )


class SampleMode:
    """``kube`` (a client to use and leave open) is for tests."""

    name = "sample"

    def __init__(self, *, kube: KubeClient | None = None) -> None:
        self.kube = kube

    def configure(self, values: Mapping[str, Any]) -> SampleConfig:
        return SampleConfig.from_values(values)

    def compose(self, config: SampleConfig, reporter: Reporter, resources: ExitStack) -> Parts:
        kube = self.kube
        if kube is None:
            kube = connect(config.kubeconfig, config.context, config.namespace, warn=reporter.event)
            resources.callback(kube.close)
        namespace = config.namespace or kube.namespace
        checked = preflight(kube, namespace, config.watch, creates=False)
        watch = [str(t) for t in config.watch]
        spec = SessionSpec(
            mode="sample",
            name=config.name,
            out_dir=config.out_dir,
            sample_interval_s=config.interval_s,
            config={"watch": watch, "duration_s": config.duration_s, "namespace": namespace},
            duration_s=config.duration_s,
            record={
                "context": kube.connection.context,
                "namespace": namespace,
                "watch": watch,
                "server_version": checked.server_version,
                "hpa_sync_period_s": config.hpa_sync_period_s,
            },
        )
        state = WatchedState(kube)
        sampler = KubeSampler(kube, config.watch, namespace, since_s=time.time(), state=state)
        resources.callback(sampler.close)  # its watches end with the run
        sampler.metrics_available = checked.metrics_available
        return Parts(
            spec=spec,
            backend=NoLoad(config.duration_s),
            samplers=[KubeSource(sampler)],
            warnings=list(checked.warnings),
        )
