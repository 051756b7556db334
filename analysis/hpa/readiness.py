"""When the HPA controller leaves a pod's CPU out: the readiness timing rules of groupPods.

A starting pod burns CPU on initialization that says nothing about load; counting it would
scale up on every scale-up. ``replica_calculator.go`` groupPods therefore ignores a pod's CPU
during ``--horizontal-pod-autoscaler-cpu-initialization-period`` unless it is Ready and a whole
metrics window was measured since it became Ready, and after that period ignores only a pod that
has not been Ready since ``--horizontal-pod-autoscaler-initial-readiness-delay`` after its start.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ReadinessTiming:
    """kube-controller-manager flags behind the CPU readiness rules, with their defaults."""

    cpu_initialization_period_s: float = 300.0  # --horizontal-pod-autoscaler-cpu-init... 5m
    initial_readiness_delay_s: float = 30.0  # --horizontal-pod-autoscaler-initial-readiness-delay
    # metrics-server's scrape window, the PodMetrics ``window`` it reports by default
    metric_window_s: float = 15.0


def cpu_unready(
    *,
    ready: bool,
    start_ts: float | None,
    ready_since_ts: float | None,
    metric_ts: float | None,
    metric_window_s: float | None,
    now_s: float | None,
    timing: ReadinessTiming,
) -> bool:
    """Whether the controller leaves this pod's CPU out at ``now_s`` (all times epoch s).

    Without a start time, a readiness transition time or the sync's time, only readiness is
    known: a not-Ready pod is left out, as during the initialization period.
    """
    if now_s is None or start_ts is None or ready_since_ts is None:
        return not ready
    if start_ts + timing.cpu_initialization_period_s > now_s:
        measured = now_s if metric_ts is None else metric_ts
        window = timing.metric_window_s if metric_window_s is None else metric_window_s
        return not ready or measured < ready_since_ts + window
    return not ready and start_ts + timing.initial_readiness_delay_s > ready_since_ts
