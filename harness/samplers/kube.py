"""The Kubernetes sampler: what the target's autoscaling did, one pass per tick.

Per watched namespace and tick it reads the HPAs, each workload kind in use (Deployments,
StatefulSets), then per workload its pods and their PodMetrics by the workload's label selector,
then the namespace's events (kept if newer than the run's start and about a watched object). Where
it reads them from is a ``ClusterState`` (``harness.samplers.kube_state``): kept by list+watch
(``WatchedState``, what runs use: API calls per tick independent of the pod count, each pod
decoded once per change) or listed every tick (``ListedState``, the simple reference). Every row
goes to ``samples/`` through the ``RunStore``; the lifecycle ticks this on the fixed schedule of
``harness.session.schedule``.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from analysis.data import schema
from harness.config.values import WatchTarget
from harness.errors import ClusterError
from harness.kube import rows
from harness.kube.api import WORKLOAD_KINDS, Body, WorkloadRef, resolve_targets
from harness.kube.client import KubeClient
from harness.samplers.kube_state import ClusterState, ListedState
from harness.samplers.pod_snapshots import PodSnapshots
from harness.session.core import (
    HpaStatus,
    Observation,
    RowSink,
    TickContext,
    WorkloadStatus,
)


@dataclass
class TickResult:
    """What one tick saw: lines worth printing (scale events, restarts, OOM kills) and a status."""

    notices: list[str] = field(default_factory=list)
    status: str = ""
    pods: int = 0
    hpas: list[HpaStatus] = field(default_factory=list)
    workloads: list[WorkloadStatus] = field(default_factory=list)


@dataclass
class _PodState:
    restarts: int
    reason: str | None


@dataclass(frozen=True)
class _PodView:
    """What a workload's pods said at a generation of the cluster state (``pods_generation``)."""

    generation: object | None
    status: WorkloadStatus
    restarts: dict[str, _PodState]  # by pod name


class KubeSampler:
    """Samples HPAs, workloads, pods, PodMetrics and events of the watched targets."""

    def __init__(
        self,
        kube: KubeClient,
        targets: Sequence[WatchTarget],
        default_namespace: str,
        since_s: float,
        state: ClusterState | None = None,
    ) -> None:
        self.kube = kube
        self.state: ClusterState = state or ListedState(kube)
        self.targets = resolve_targets(targets, default_namespace)
        self.namespaces = sorted({str(t.namespace) for t in self.targets})
        self.since_s = since_s
        self._hpa_state: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._seen_events: set[tuple[str, str]] = set()
        self._reported: set[str] = set()
        self._snapshots = PodSnapshots()
        self._pod_views: dict[tuple[str, str], _PodView] = {}

    def tick(self, now: float, store: RowSink) -> TickResult:
        """One pass over every watched namespace; a namespace that fails is a ``sampler_gap``."""
        result = TickResult()
        for namespace in self.namespaces:
            try:
                self._sample_namespace(now, namespace, store, result)
            except ClusterError as e:
                store.mark("sampler_gap", f"namespace {namespace}: {e}", now)
                self._once(result, f"sampler: namespace {namespace}: {e}")
        return result

    @property
    def metrics_available(self) -> bool:
        return self.state.metrics_available

    @metrics_available.setter
    def metrics_available(self, value: bool) -> None:
        self.state.metrics_available = value

    def close(self) -> None:
        """Ends the state's watches (a no-op for the listed state)."""
        self.state.close()

    def __enter__(self) -> KubeSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _once(self, result: TickResult, text: str) -> None:
        if text not in self._reported:
            self._reported.add(text)
            result.notices.append(text)

    # -------------------------------------------------------------- one namespace

    def _sample_namespace(
        self, now: float, namespace: str, store: RowSink, result: TickResult
    ) -> None:
        mine = [t for t in self.targets if t.namespace == namespace]
        workloads: list[WorkloadRef] = [
            WorkloadRef(namespace, WORKLOAD_KINDS[t.kind], t.name)
            for t in mine
            if t.kind in WORKLOAD_KINDS
        ]
        hpas = self._sample_hpas(
            now, namespace, [t.name for t in mine if t.kind == "hpa"], store, result
        )
        for hpa in hpas:
            ref = rows.dig(hpa, "spec", "scaleTargetRef") or {}
            if ref.get("kind") in WORKLOAD_KINDS.values():
                workloads.append(WorkloadRef(namespace, str(ref["kind"]), str(ref.get("name"))))
            else:
                self._once(
                    result,
                    f"hpa {namespace}/{rows.dig(hpa, 'metadata', 'name')} scales "
                    f"a {ref.get('kind')}: its pods are not sampled",
                )
        workloads = list(dict.fromkeys(workloads))
        found = self._sample_workloads(now, namespace, workloads, store, result)
        for workload in found:
            self._sample_pods(now, workload, store, result)
        self._sample_events(
            namespace, [t.name for t in mine if t.kind == "hpa"], [w.name for w in workloads], store
        )
        memory = _memory_text(result.workloads)
        result.status = " ".join(p for p in (result.status, memory) if p)

    def _sample_hpas(
        self, now: float, namespace: str, names: list[str], store: RowSink, result: TickResult
    ) -> list[Body]:
        if not names:
            return []
        by_name = {rows.dig(h, "metadata", "name"): h for h in self.state.hpas(namespace)}
        found = []
        for name in names:
            hpa = by_name.get(name)
            if hpa is None:
                self._once(result, f"hpa {namespace}/{name} is gone")
                continue
            found.append(hpa)
            row = rows.hpa_row(now, hpa)
            store.append(schema.HPA, [row])
            metrics = rows.hpa_metric_rows(now, hpa)
            store.append(schema.HPA_METRICS, metrics)
            self._note_scale(namespace, name, row, metrics, result)
        return found

    def _note_scale(
        self, namespace: str, name: str, row: rows.Row, metrics: list[rows.Row], result: TickResult
    ) -> None:
        key = (namespace, name)
        now_state = (row["current_replicas"], row["desired_replicas"])
        before = self._hpa_state.get(key)
        self._hpa_state[key] = now_state
        status = f"{name} {now_state[0]}/{now_state[1]}/{row['max_replicas']}"
        result.status = " ".join(p for p in (result.status, status) if p)
        result.hpas.append(hpa_status(name, row, metrics))
        if before is None or before[0] == now_state[0] or before[0] is None:
            return
        reading = ", ".join(
            f"{m['metric']} {m['current_utilization']:.0f}%/{m['target_utilization']:.0f}%"
            for m in metrics
            if m["current_utilization"] is not None and m["target_utilization"] is not None
        )
        limited = " (at max)" if now_state[0] == row["max_replicas"] else ""
        result.notices.append(
            f"scale: hpa {namespace}/{name} {before[0]} -> {now_state[0]} "
            f"replicas{limited}" + (f"; {reading}" if reading else "")
        )

    def _sample_workloads(
        self,
        now: float,
        namespace: str,
        wanted: list[WorkloadRef],
        store: RowSink,
        result: TickResult,
    ) -> list[tuple[WorkloadRef, Body]]:
        found: list[tuple[WorkloadRef, Body]] = []
        for kind in sorted({w.kind for w in wanted}):
            by_name = {
                rows.dig(o, "metadata", "name"): o for o in self.state.workloads(kind, namespace)
            }
            for ref in (w for w in wanted if w.kind == kind):
                workload = by_name.get(ref.name)
                if workload is None:
                    self._once(result, f"{kind.lower()} {namespace}/{ref.name} is gone")
                    continue
                found.append((ref, workload))
                store.append(schema.WORKLOADS, [{**rows.workload_row(now, workload), "kind": kind}])
        return found

    def _sample_pods(
        self, now: float, workload: tuple[WorkloadRef, Body], store: RowSink, result: TickResult
    ) -> None:
        ref, body = workload
        selector = rows.selector_query(rows.dig(body, "spec", "selector"))
        if selector is None:
            self._once(result, f"{ref.kind.lower()} {ref.namespace}/{ref.name} has no selector")
            return
        key = (ref.namespace, ref.name)
        pod_rows = self.state.pod_rows(now, ref.namespace, selector, ref.name)
        generation = self.state.pods_generation(ref.namespace, selector)
        seen = self._pod_views.get(key)
        unchanged = generation is not None and seen is not None and seen.generation == generation
        if seen is None or not unchanged:
            # Something may have changed (always, for a state that cannot tell): look at every
            # pod. Otherwise the rows are the last ones again and so is what they said.
            # Kept per workload and only for its pods of now, so hours of churn do not add up.
            known = {} if seen is None else seen.restarts
            restarts = {
                str(row["pod"]): self._note_restart(row, known.get(str(row["pod"])), result)
                for row in pod_rows
            }
            seen = self._pod_views[key] = _PodView(
                generation, workload_status(ref.name, pod_rows), restarts
            )
        if self._snapshots.due(key, now, pod_rows, unchanged=unchanged):
            store.append(schema.PODS, pod_rows)
        result.pods += len(pod_rows)
        result.workloads.append(seen.status)

    @staticmethod
    def _note_restart(row: rows.Row, before: _PodState | None, result: TickResult) -> _PodState:
        """The pod's restart state now; a restart since ``before`` is announced."""
        if before is not None and before.restarts == row["restarts"]:
            return before
        now = _PodState(int(row["restarts"]), row["last_termination_reason"])
        if before is None or now.restarts <= before.restarts:
            return now
        pod = f"{row['namespace']}/{row['pod']}"
        if now.reason == "OOMKilled":
            limit = row["memory_limit_bytes"]
            limit_text = f" (limit {limit / 2**20:.0f}Mi)" if limit else ""
            result.notices.append(f"OOM kill: pod {pod}{limit_text}, {now.restarts} restart(s)")
        else:
            result.notices.append(
                f"restart: pod {pod} restarted "
                f"({now.restarts} restart(s), last: {now.reason or 'unknown'})"
            )
        return now

    def _sample_events(
        self, namespace: str, hpas: list[str], workloads: list[str], store: RowSink
    ) -> None:
        names = set(hpas) | set(workloads)
        prefixes = tuple(f"{w}-" for w in workloads)
        fresh = []
        for event in self.state.events(namespace):
            involved = str(rows.dig(event, "involvedObject", "name") or "")
            if involved not in names and not involved.startswith(prefixes):
                continue
            key = (
                str(rows.dig(event, "metadata", "uid")),
                str(rows.dig(event, "metadata", "resourceVersion")),
            )
            when = rows.event_time(event)
            if key in self._seen_events or when is None or when < self.since_s:
                continue
            self._seen_events.add(key)
            fresh.append(rows.event_row(event))
        store.append(schema.EVENTS, sorted(fresh, key=lambda r: r["ts"]))


def _pct(value: float | None, of: float | None) -> float | None:
    return None if value is None or not of else value * 100.0 / of


def _memory_text(workloads: Sequence[WorkloadStatus]) -> str:
    """The highest memory % of request and of limit over the workloads' pods."""
    of_request = [w.memory_pct_of_request for w in workloads if w.memory_pct_of_request is not None]
    of_limit = [w.memory_pct_of_limit for w in workloads if w.memory_pct_of_limit is not None]
    parts = []
    if of_request:
        parts.append(f"mem {max(of_request):.0f}%req")
    if of_limit:
        parts.append(f"{max(of_limit):.0f}%lim")
    return " ".join(parts)


def hpa_status(name: str, row: rows.Row, metrics: list[rows.Row]) -> HpaStatus:
    """The live view's line for one HPA; the driving metric by the report's rule (the highest
    ratio of current to target, ``analysis.judge.scaling.metric_ratios``)."""
    readings = tuple(tuple(map(m.get, _READING_COLUMNS)) for m in metrics)
    try:
        metric, utilization, target = _driving_metric(readings)
    except TypeError:  # a value the API should not have sent, unhashable: computed uncached
        metric, utilization, target = _driving_metric.__wrapped__(readings)
    return HpaStatus(
        name=name,
        current=_opt_int(row.get("current_replicas")),
        desired=_opt_int(row.get("desired_replicas")),
        max_replicas=_opt_int(row.get("max_replicas")),
        driving_metric=metric,
        utilization_pct=utilization,
        target_pct=target,
    )


# The HPA's readings change once per controller sync (15 s), not per tick: the frame the report's
# rule needs is built once per distinct reading, not every tick.
_READING_COLUMNS: Final = tuple(name for name in schema.HPA_METRICS.names if name != "ts")


@functools.lru_cache(maxsize=64)
def _driving_metric(
    readings: tuple[tuple[object, ...], ...],
) -> tuple[str | None, float | None, float | None]:
    if not readings:
        return None, None, None
    import pandas as pd

    from analysis.judge.scaling import metric_ratios

    frame = pd.DataFrame(list(readings), columns=list(_READING_COLUMNS))
    frame.insert(0, "ts", 0.0)  # the rule reads it; the live line has no use for it
    numeric = ["current_utilization", "target_utilization", "current_value", "target_value"]
    frame[numeric] = frame[numeric].astype(float)
    ratios = metric_ratios(frame).dropna(subset=["ratio"])
    if ratios.empty:
        return None, None, None
    top = ratios.iloc[int(ratios["ratio"].to_numpy().argmax())]
    return str(top["metric"]), _opt_float(top["utilization"]), _opt_float(top["target"])


def workload_status(name: str, pod_rows: list[rows.Row]) -> WorkloadStatus:
    """Pods, ready pods and the highest memory % of request and of limit among them."""
    request_pcts = [_pct(r["memory_bytes"], r["memory_request_bytes"]) for r in pod_rows]
    limit_pcts = [_pct(r["memory_bytes"], r["memory_limit_bytes"]) for r in pod_rows]
    return WorkloadStatus(
        name=name,
        pods=len(pod_rows),
        ready=sum(1 for r in pod_rows if r.get("ready") is True),
        memory_pct_of_request=max((p for p in request_pcts if p is not None), default=None),
        memory_pct_of_limit=max((p for p in limit_pcts if p is not None), default=None),
    )


def _opt_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def _opt_float(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


class KubeSource:
    """The Kubernetes sampler as the session ticks it."""

    def __init__(self, sampler: KubeSampler) -> None:
        self.sampler = sampler

    def tick(self, ctx: TickContext) -> Observation:
        observation = Observation()
        result = self.sampler.tick(ctx.now, observation)
        observation.events += result.notices
        observation.hpas += result.hpas
        observation.workloads += result.workloads
        return observation
