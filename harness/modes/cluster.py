"""``kubeswarm run`` in a cluster: preflight, the cluster backend, the Kubernetes sampler."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

from harness.actions.chaos import chaos_actions
from harness.actions.kube_pods import chaos_namespace
from harness.actions.workers import AutoWorkersPolicy
from harness.backends.cluster import ClusterBackend, ServiceProxyTransport
from harness.config.run import RunConfig, build_run_config
from harness.kube.client import KubeClient, connect
from harness.kube.manifests import run_objects
from harness.kube.preflight import preflight
from harness.locust_api import Transport
from harness.modes.parts import HpaPace, Parts, WorkerScaling, run_spec
from harness.samplers.kube import KubeSampler, KubeSource
from harness.samplers.kube_state import WatchedState
from harness.samplers.ramp_log import RAMP_SHAPE
from harness.session.core import Reporter, Sampler
from harness.session.plan import plan_for
from harness.session.store import new_run_id


class ClusterMode:
    """``kube`` (a client to use and leave open) and ``transport`` (the way to Locust's web port
    from client, namespace and service; by default the API server's service proxy) are for
    tests; ``startup_timeout`` replaces the deadline's startup margin."""

    name = "cluster"

    def __init__(
        self,
        *,
        kube: KubeClient | None = None,
        transport: Callable[[KubeClient, str, str], Transport] | None = None,
        startup_timeout: float | None = None,
        run_id: str | None = None,
        owner: Mapping[str, str] | None = None,
    ) -> None:
        self.kube = kube
        self.transport = transport or ServiceProxyTransport
        self.startup_timeout = startup_timeout
        # A detached run's (harness.unattended): the id its launcher chose, and the controller's
        # pod as the master Job's owner.
        self.run_id, self.owner = run_id, owner

    def configure(self, values: Mapping[str, Any]) -> RunConfig:
        return build_run_config(values)

    def compose(self, config: RunConfig, reporter: Reporter, resources: ExitStack) -> Parts:
        """Raises ``UsageError``/``ClusterError`` before anything is created."""
        kube = self.kube
        if kube is None:
            kube = connect(config.kubeconfig, config.context, config.namespace, warn=reporter.event)
            resources.callback(kube.close)
        namespace = config.namespace or kube.namespace
        now = time.time()
        plan = (
            plan_for(config)
            if self.startup_timeout is None
            else plan_for(
                dataclasses.replace(config, deadline_s=None), startup_s=self.startup_timeout
            )
        )
        objects = run_objects(config, self.run_id or new_run_id(config.name, now), namespace, plan)
        chaos_in = chaos_namespace(config.chaos_target, config.watch, namespace)
        checked = preflight(
            kube,
            namespace,
            config.watch,
            load_objects=objects,
            chaos_namespaces=[chaos_in] if config.chaos else [],
            scales_workers=config.auto_workers,
            network_policy=config.network_policy,
            reads_master_log=config.shape == RAMP_SHAPE,
            env_secret=bool(config.env.values),
            env_refs=config.env.refs,
        )
        chaos = chaos_actions(
            config.chaos,
            config.chaos_target,
            watch=config.watch,
            kube=kube,
            namespace=namespace,
            pick=config.chaos_pick,
        )
        spec = run_spec(
            "cluster",
            config,
            plan,
            {
                "context": kube.connection.context,
                "namespace": namespace,
                "server": kube.connection.host,
                "server_version": checked.server_version,
                "hpa_sync_period_s": config.hpa_sync_period_s,
            },
            run_id=self.run_id,
        )
        samplers: list[Sampler] = []
        if config.watch:
            state = WatchedState(kube)
            sampler = KubeSampler(kube, config.watch, namespace, since_s=now, state=state)
            resources.callback(sampler.close)  # its watches end with the run
            sampler.metrics_available = checked.metrics_available
            samplers.append(KubeSource(sampler))
        backend = ClusterBackend(
            kube, config, plan, namespace, transport=self.transport, owner=self.owner
        )
        workers = None
        if config.auto_workers and config.max_workers is not None:
            workers = WorkerScaling(AutoWorkersPolicy(config.max_workers), backend.scale_workers)
        return Parts(
            spec=spec,
            backend=backend,
            samplers=samplers,
            actions=chaos,
            workers=workers,
            hpa_pace=HpaPace(config.hpa_sync_period_s),
            warnings=list(checked.warnings),
        )
