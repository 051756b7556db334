"""The HPA controller's state between syncs: recommendations, scale events, stabilization, rates.

``analysis.hpa.model`` computes what each metric proposes at one sync; this module is what
``horizontal.go`` keeps between syncs and applies on top: the recommendation history behind the
stabilization windows, the scale events behind the scale-rate policies (spec.behavior), the limits
of the path without behavior, the min/max clamp and the conditions the controller reports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

from analysis.hpa.model import (
    Behavior,
    ControllerSettings,
    Decision,
    HpaSpec,
    MetricProposal,
    PodUsage,
    ScalingRules,
    Tolerances,
    combine_proposals,
)
from analysis.hpa.sources import source_proposal
from analysis.hpa.targets import MetricReadings

_T = TypeVar("_T")
# Go int32 bounds: the controller starts its policy limit search from them.
_INT32_MAX = 2**31 - 1
_INT32_MIN = -(2**31)


@dataclass
class _Recommendation:
    replicas: int
    at_s: float


@dataclass
class _ScaleEvent:
    change: int  # replicas added or removed, never negative
    at_s: float
    outdated: bool = False


@dataclass(frozen=True)
class _Normalized:
    desired: int
    able_reason: str
    limited_reason: str
    limited: bool


def _stabilize_without_behavior(
    history: list[_Recommendation], now_s: float, window_s: float, desired: int
) -> int:
    """horizontal.go stabilizeRecommendation: the max recommendation of the window."""
    cutoff, highest, old_index = now_s - window_s, desired, None
    for i, rec in enumerate(history):
        if rec.at_s < cutoff:
            old_index = i
        else:
            highest = max(highest, rec.replicas)
    _reuse_or_append(history, old_index, _Recommendation(desired, now_s))
    return highest


def _limit_without_behavior(current: int, desired: int, spec: HpaSpec) -> tuple[int, str]:
    """horizontal.go convertDesiredReplicasWithRules: scale-up limit max(2 x current, 4)."""
    scale_up_limit = int(max(2.0 * current, 4.0))  # scaleUpLimitFactor, scaleUpLimitMinimum
    if spec.max_replicas > scale_up_limit:
        highest, reason = scale_up_limit, "ScaleUpLimit"
    else:
        highest, reason = spec.max_replicas, "TooManyReplicas"
    if desired < spec.min_replicas:
        return spec.min_replicas, "TooFewReplicas"
    if desired > highest:
        return highest, reason
    return desired, "DesiredWithinRange"


def _stabilize_with_behavior(
    history: list[_Recommendation], now_s: float, behavior: Behavior, current: int, desired: int
) -> tuple[int, str]:
    """horizontal.go stabilizeRecommendationWithBehaviors: min of the up window, max of down."""
    up_cutoff = now_s - behavior.scale_up.stabilization_window_s
    down_cutoff = now_s - behavior.scale_down.stabilization_window_s
    up_floor, down_ceiling, old_index = desired, desired, None
    for i, rec in enumerate(history):
        if rec.at_s > up_cutoff:
            up_floor = min(up_floor, rec.replicas)
        if rec.at_s > down_cutoff:
            down_ceiling = max(down_ceiling, rec.replicas)
        if rec.at_s < up_cutoff and rec.at_s < down_cutoff:
            old_index = i
    _reuse_or_append(history, old_index, _Recommendation(desired, now_s))
    stabilized = min(max(current, up_floor), down_ceiling)
    return stabilized, "ScaleUpStabilized" if desired >= current else "ScaleDownStabilized"


def _changed_in_period(events: list[_ScaleEvent], now_s: float, period_s: float) -> int:
    """horizontal.go getReplicasChangePerPeriod."""
    return sum(event.change for event in events if event.at_s > now_s - period_s)


def _policy_limit(
    current: int,
    events: tuple[list[_ScaleEvent], list[_ScaleEvent]],
    rules: ScalingRules,
    now_s: float,
    scale_up: bool,
) -> int:
    """horizontal.go calculateScaleUpLimitWithScalingRules / calculateScaleDownLimitWithBehaviors.

    Each policy counts from the replicas at the start of its period; "Max" picks the policy
    allowing the biggest change, "Min" the smallest.
    """
    if rules.select_policy == "Disabled":
        return current
    # the biggest change is the highest limit going up and the lowest going down
    use_max = (rules.select_policy == "Max") == scale_up
    limit = _INT32_MIN if use_max else _INT32_MAX
    ups, downs = events
    for policy in rules.policies:
        added = _changed_in_period(ups, now_s, policy.period_s)
        removed = _changed_in_period(downs, now_s, policy.period_s)
        start = current - added + removed
        if policy.kind == "Pods":
            proposed = start + policy.value if scale_up else start - policy.value
        elif scale_up:  # rounded up so that a small percentage still adds a pod
            proposed = math.ceil(start * (1 + policy.value / 100))
        else:
            proposed = int(start * (1 - policy.value / 100))
        limit = max(limit, proposed) if use_max else min(limit, proposed)
    return limit


def _reuse_or_append(items: list[_T], old_index: int | None, item: _T) -> None:
    # The controller overwrites one expired entry instead of growing its history.
    if old_index is None:
        items.append(item)
    else:
        items[old_index] = item


class HpaController:
    """Stateful: keeps the recommendation history and the scale events, like the controller.

    One instance stands for one HPA in kube-controller-manager; call ``reconcile`` once per sync
    (every 15 s by default) with the target's current replicas and its pods. The controller
    records its own scale event when desired != current, so a caller that applies
    ``desired_replicas`` calls nothing else.
    """

    def __init__(self, spec: HpaSpec, settings: ControllerSettings | None = None) -> None:
        self.spec = spec
        self.settings = settings or ControllerSettings()
        self._recommendations: list[_Recommendation] = []
        self._scale_up_events: list[_ScaleEvent] = []
        self._scale_down_events: list[_ScaleEvent] = []
        # Conditions persist between syncs; a branch that does not set one keeps the last value.
        self._active: tuple[bool, str] = (True, "")
        self._limited: tuple[bool, str] = (False, "")

    def tolerances(self) -> Tolerances:
        behavior = self.spec.behavior
        if behavior is None:
            return Tolerances(self.settings.tolerance, self.settings.tolerance)
        return Tolerances(behavior.scale_down.tolerance, behavior.scale_up.tolerance)

    def remember(self, now_s: float, recommendation: int) -> None:
        """A sync whose outcome is known but not its inputs: only its recommendation is kept
        for the stabilization windows (a replay fills the syncs a recording did not see)."""
        self._recommendations.append(_Recommendation(recommendation, now_s))

    def reconcile(
        self,
        now_s: float,
        current_replicas: int,
        pods: Sequence[PodUsage],
        readings: MetricReadings | None = None,
    ) -> Decision:
        """One sync of horizontal.go reconcileAutoscaler; ``readings`` are the Object and
        External metrics' values at this sync (Resource, ContainerResource and Pods metrics
        are on the pods)."""
        if not self._recommendations:  # recordInitialRecommendation
            self._recommendations.append(_Recommendation(current_replicas, now_s))
        spec = self.spec
        if current_replicas == 0 and spec.min_replicas != 0:
            self._active = (False, "ScalingDisabled")
            return self._decide(now_s, current_replicas, 0)
        if current_replicas > spec.max_replicas:
            reason = "Current number of replicas above Spec.MaxReplicas"
            return self._decide(now_s, current_replicas, spec.max_replicas, rescale_reason=reason)
        if current_replicas < spec.min_replicas:
            reason = "Current number of replicas below Spec.MinReplicas"
            return self._decide(now_s, current_replicas, spec.min_replicas, rescale_reason=reason)
        return self._reconcile_metrics(now_s, current_replicas, pods, readings)

    def _reconcile_metrics(
        self,
        now_s: float,
        current: int,
        pods: Sequence[PodUsage],
        readings: MetricReadings | None,
    ) -> Decision:
        tolerances = self.tolerances()
        proposals = tuple(
            source_proposal(
                target,
                pods,
                current,
                readings,
                tolerances,
                now_s=now_s,
                timing=self.settings.readiness,
            )
            for target in self.spec.metrics
        )
        combined = combine_proposals(proposals, current)
        if combined is None:
            failed = next((p for p in proposals if p.replicas is None), None)
            source = failed.source if failed is not None else "Resource"
            self._active = (False, f"FailedGet{source}Metric")
            return self._decide(now_s, current, current, proposals=proposals)
        self._active = (True, "ValidMetricFound")
        metric_desired, driving = combined
        reason = ""
        if metric_desired > current:
            reason = f"{driving.reason_name} above target"
        elif metric_desired < current:
            reason = "All metrics below target"
        normalized = self._normalize(now_s, current, metric_desired)
        self._limited = (normalized.limited, normalized.limited_reason)
        return self._decide(
            now_s,
            current,
            normalized.desired,
            proposals=proposals,
            driving=driving.resource,
            able_reason=normalized.able_reason,
            rescale_reason=reason,
            metric_desired=metric_desired,
        )

    def _normalize(self, now_s: float, current: int, desired: int) -> _Normalized:
        """horizontal.go normalizeDesiredReplicas / normalizeDesiredReplicasWithBehaviors."""
        behavior = self.spec.behavior
        if behavior is None:
            window_s = self.settings.downscale_stabilization_s
            stabilized = _stabilize_without_behavior(
                self._recommendations, now_s, window_s, desired
            )
            stabilized_reason = "ScaleDownStabilized"
            final, limited_reason = _limit_without_behavior(current, stabilized, self.spec)
        else:
            stabilized, stabilized_reason = _stabilize_with_behavior(
                self._recommendations, now_s, behavior, current, desired
            )
            final, limited_reason = self._limit_with_behavior(now_s, current, stabilized)
        able_reason = stabilized_reason if stabilized != desired else "ReadyForNewScale"
        return _Normalized(final, able_reason, limited_reason, limited=final != stabilized)

    def _limit_with_behavior(self, now_s: float, current: int, desired: int) -> tuple[int, str]:
        """horizontal.go convertDesiredReplicasWithBehaviorRate."""
        behavior = self.spec.behavior
        assert behavior is not None
        events = (self._scale_up_events, self._scale_down_events)
        if desired > current:
            up = _policy_limit(current, events, behavior.scale_up, now_s, scale_up=True)
            up = max(up, current)  # no further scale up until old events leave the period
            if self.spec.max_replicas > up:
                highest, reason = up, "ScaleUpLimit"
            else:
                highest, reason = self.spec.max_replicas, "TooManyReplicas"
            if desired > highest:
                return highest, reason
        elif desired < current:
            down = _policy_limit(current, events, behavior.scale_down, now_s, scale_up=False)
            down = min(down, current)
            if self.spec.min_replicas < down:
                lowest, reason = down, "ScaleDownLimit"
            else:
                lowest, reason = self.spec.min_replicas, "TooFewReplicas"
            if desired < lowest:
                return lowest, reason
        return desired, "DesiredWithinRange"

    def _store_scale_event(self, now_s: float, previous: int, new: int) -> None:
        """horizontal.go storeScaleEvent: only kept when spec.behavior is set."""
        behavior = self.spec.behavior
        if behavior is None:
            return
        if new > previous:
            events, rules = self._scale_up_events, behavior.scale_up
        else:
            events, rules = self._scale_down_events, behavior.scale_down
        longest_period_s = max((p.period_s for p in rules.policies), default=0.0)
        old_index = None
        for i, event in enumerate(events):  # markScaleEventsOutdated, then reuse the last one
            event.outdated = event.outdated or event.at_s < now_s - longest_period_s
            old_index = i if event.outdated else old_index
        _reuse_or_append(events, old_index, _ScaleEvent(abs(new - previous), now_s))

    def _decide(
        self,
        now_s: float,
        current: int,
        desired: int,
        *,
        proposals: tuple[MetricProposal, ...] = (),
        driving: str | None = None,
        able_reason: str = "SucceededGetScale",
        rescale_reason: str = "",
        metric_desired: int | None = None,
    ) -> Decision:
        if desired != current:
            self._store_scale_event(now_s, current, desired)
            able_reason = "SucceededRescale"
        return Decision(
            desired_replicas=desired,
            proposals=proposals,
            driving_metric=driving,
            able_to_scale=True,
            scaling_active=self._active[0],
            scaling_limited=self._limited[0],
            limited_reason=self._limited[1],
            able_to_scale_reason=able_reason,
            scaling_active_reason=self._active[1],
            rescale_reason=rescale_reason if desired != current else "",
            metric_desired_replicas=metric_desired,
        )
