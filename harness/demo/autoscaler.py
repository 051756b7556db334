"""The demo's autoscaler: an HPA for a local gunicorn, using the same replica calculation.

Gunicorn adds a worker on SIGTTIN and removes one on SIGTTOU, so its workers stand in for a
Deployment's pods. Like the controller, which reads the scale it acts on each sync, every sync
starts from the workers gunicorn really has (its master's children), not from the signals sent:
a signal can be merged, lost or still in flight, and a worker can die. Each sync, the per-worker
usage the sampler recorded since the previous sync is averaged (the way metrics-server reports
usage over a window), handed to the pure HPA model of ``analysis.hpa.model``, and the decision
applied. Every tick it writes ``hpa.csv``,
``hpa_metrics.csv`` and ``workloads.csv`` exactly as the cluster sampler records a real HPA.
"""

from __future__ import annotations

import os
import signal
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psutil

from analysis.data import schema
from analysis.hpa.controller import HpaController
from analysis.hpa.model import Decision, HpaSpec, PodUsage
from harness.samplers.processes import PodResources, ProcessPod
from harness.session.core import RowSink


@dataclass(frozen=True)
class ScaledTarget:
    """Names under which the target appears in the samples, as an HPA and its Deployment would."""

    namespace: str
    hpa: str
    workload: str


@dataclass
class GunicornScaler:
    """Changes the worker count of a gunicorn master by signals (sent to its pid only)."""

    master_pid: int
    send: Callable[[int, int], None] = os.kill
    # Signals of one kind that arrive before the handler ran merge into one: space them out.
    spacing_s: float = 0.05

    def workers(self) -> int | None:
        """The workers the master has now (its children); None if the master is gone."""
        try:
            return len(psutil.Process(self.master_pid).children())
        except psutil.Error:
            return None

    def scale(self, current: int, desired: int) -> None:
        signum = signal.SIGTTIN if desired > current else signal.SIGTTOU
        for _ in range(abs(desired - current)):
            self.send(self.master_pid, signum)
            time.sleep(self.spacing_s)


def rescale_message(decision: Decision) -> str:
    """``New size: 3; reason: cpu resource utilization (percentage of request) above target``."""
    return f"New size: {decision.desired_replicas}; reason: {decision.rescale_reason}"


@dataclass
class LocalAutoscaler:
    """Reconciles every ``sync_period_s`` and records the HPA's status every tick."""

    spec: HpaSpec
    target: ScaledTarget
    resources: PodResources
    scaler: GunicornScaler
    sync_period_s: float
    replicas: int
    controller: HpaController = field(init=False)
    last_decision: Decision | None = None
    _last_sync: float | None = None
    _cpu_window: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    on_scale: Callable[[int, int, Decision], None] | None = None

    def __post_init__(self) -> None:
        self.controller = HpaController(self.spec)

    def tick(self, now: float, pods: Sequence[ProcessPod], store: RowSink) -> None:
        for pod in pods:
            if pod.cpu_m is not None:
                self._cpu_window[pod.name].append(pod.cpu_m)
        if self._last_sync is None or now - self._last_sync >= self.sync_period_s:
            current, decision = self._sync(now, pods)
            if decision.desired_replicas != current:
                store.append(schema.EVENTS, [self._rescale_event(now, decision)])
        self._record(now, pods, store)

    def _rescale_event(self, now: float, decision: Decision) -> dict[str, Any]:
        """The event the real controller writes for a rescale, in its words, so the report
        explains the demo's scalings as it explains a cluster's."""
        return {
            "ts": now,
            "namespace": self.target.namespace,
            "kind": "HorizontalPodAutoscaler",
            "name": self.target.hpa,
            "reason": "SuccessfulRescale",
            "type": "Normal",
            "message": rescale_message(decision),
        }

    def _sync(self, now: float, pods: Sequence[ProcessPod]) -> tuple[int, Decision]:
        """One reconcile: the replicas it started from and its decision."""
        usage = [self._pod_usage(pod, now) for pod in pods]
        self._cpu_window.clear()
        self._last_sync = now
        counted = self.scaler.workers()
        current = self.replicas if counted is None else counted
        decision = self.controller.reconcile(now, current, usage)
        self.last_decision = decision
        if decision.desired_replicas != current:
            self.scaler.scale(current, decision.desired_replicas)
            if self.on_scale is not None:
                self.on_scale(current, decision.desired_replicas, decision)
        self.replicas = decision.desired_replicas
        return current, decision

    def _pod_usage(self, pod: ProcessPod, now: float) -> PodUsage:
        window = self._cpu_window.get(pod.name)
        return PodUsage(
            name=pod.name,
            ready=True,
            cpu_m=sum(window) / len(window) if window else None,
            memory_bytes=pod.memory_bytes,
            cpu_request_m=self.resources.cpu_request_m,
            memory_request_bytes=self.resources.memory_request_bytes,
            # a worker serves once it runs: started and Ready at its creation; the usage is the
            # average since the previous sync, as metrics-server reports a window
            start_ts=pod.started_s,
            ready_since_ts=pod.started_s,
            metric_ts=now,
            metric_window_s=self.sync_period_s,
        )

    def _record(self, now: float, pods: Sequence[ProcessPod], store: RowSink) -> None:
        decision = self.last_decision
        t = self.target
        store.append(
            schema.HPA,
            [
                {
                    "ts": now,
                    "namespace": t.namespace,
                    "hpa": t.hpa,
                    "target_kind": "Deployment",
                    "target_name": t.workload,
                    "min_replicas": self.spec.min_replicas,
                    "max_replicas": self.spec.max_replicas,
                    "current_replicas": len(pods),
                    "desired_replicas": self.replicas,
                    "able_to_scale": decision.able_to_scale if decision else None,
                    "scaling_active": decision.scaling_active if decision else None,
                    "scaling_limited": decision.scaling_limited if decision else None,
                }
            ],
        )
        if decision is not None:
            store.append(
                schema.HPA_METRICS,
                [
                    {
                        "ts": now,
                        "namespace": t.namespace,
                        "hpa": t.hpa,
                        "metric": p.resource,
                        "current_utilization": p.utilization_pct,
                        "target_utilization": p.target_pct,
                        "current_value": p.average_value,
                        "target_value": p.target_average_value,
                        "metric_type": p.source,
                        "target_type": (
                            "AverageValue" if p.target_average_value is not None else "Utilization"
                        ),
                    }
                    for p in decision.proposals
                ],
            )
        store.append(
            schema.WORKLOADS,
            [
                {
                    "ts": now,
                    "namespace": t.namespace,
                    "kind": "Deployment",
                    "name": t.workload,
                    "replicas": self.replicas,
                    "ready_replicas": len(pods),
                    "available_replicas": len(pods),
                }
            ],
        )

    def status_text(self) -> str:
        decision = self.last_decision
        parts = [f"replicas {self.replicas}/{self.spec.max_replicas}"]
        if decision is not None:
            parts += [
                f"{p.resource} {p.utilization_pct}%"
                for p in decision.proposals
                if p.utilization_pct is not None
            ]
        return " ".join(parts)
