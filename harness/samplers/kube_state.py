"""Where the Kubernetes sampler reads the cluster from: listed every tick, or watched.

``ListedState`` lists HPAs, workloads, pods, PodMetrics and events on every tick (a fixed number of
calls, but every pod fetched and decoded every tick). ``WatchedState`` keeps them by list+watch
(``harness.kube.watch``): a pod is decoded once per change and its row's constant part built then;
each tick only stamps the time and the pod's usage on it. Pod metrics cannot be watched
(metrics.k8s.io has no watch); they are listed at the metrics API's own resolution, learned from
the PodMetrics timestamps (metrics-server's ``--metric-resolution``, 15 s by default): listing
faster returns the same measurement again. An entry whose timestamp has not changed is not parsed
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from harness.errors import ClusterError, NotFound
from harness.kube import rows
from harness.kube.api import Body, Operation
from harness.kube.client import KubeClient
from harness.kube.watch import DICT_CODEC, POD_CODEC, Pod, Reflector, decode_pod_metrics

# How long the first tick waits for a watch's first list (the list's own retries take ~15 s).
SYNC_TIMEOUT_S: Final = 30.0
# Poll PodMetrics at least this often even if their timestamps suggest a longer resolution.
MAX_METRICS_AGE_S: Final = 60.0


class ClusterState(Protocol):
    """What the sampler needs of the cluster, per tick."""

    metrics_available: bool

    def hpas(self, namespace: str) -> list[Body]: ...

    def workloads(self, kind: str, namespace: str) -> list[Body]: ...

    def pod_rows(self, now: float, namespace: str, selector: str, workload: str) -> list[rows.Row]:
        """One pods.csv row per pod matching ``selector``, usage included when known."""
        ...

    def pods_generation(self, namespace: str, selector: str) -> object | None:
        """After ``pod_rows``: a value that changes whenever its rows (``ts`` aside) may have;
        None when the state cannot tell, and every tick's rows are to be looked at."""
        ...

    def events(self, namespace: str) -> list[Body]:
        """Events that may be new since the last call (the sampler keeps what it has seen)."""
        ...

    def close(self) -> None: ...


@dataclass
class ListedState:
    """Everything listed again on every tick."""

    kube: KubeClient
    metrics_available: bool = True

    def hpas(self, namespace: str) -> list[Body]:
        return self.kube.list_objects("HorizontalPodAutoscaler", namespace)

    def workloads(self, kind: str, namespace: str) -> list[Body]:
        return self.kube.list_objects(kind, namespace)

    def pod_rows(self, now: float, namespace: str, selector: str, workload: str) -> list[rows.Row]:
        pods = self.kube.list_objects("Pod", namespace, label_selector=selector)
        metrics: dict[str, Body] = {}
        if self.metrics_available:
            listed = self.kube.list_pod_metrics(namespace, selector)
            if listed is None:
                self.metrics_available = False
            else:
                metrics = {str(rows.dig(m, "metadata", "name")): m for m in listed}
        return [
            rows.pod_row(now, pod, workload, metrics.get(str(rows.dig(pod, "metadata", "name"))))
            for pod in pods
        ]

    def pods_generation(self, namespace: str, selector: str) -> object | None:
        return None

    def events(self, namespace: str) -> list[Body]:
        return self.kube.list_objects("Event", namespace)

    def close(self) -> None:
        pass


@dataclass
class _Usage:
    timestamp: str
    cpu_m: float | None
    memory_bytes: float | None
    usage_ts: float | None


@dataclass
class MetricsPoller:
    """PodMetrics of one selector, listed only when the metrics API may have something new."""

    kube: KubeClient
    namespace: str
    selector: str
    by_pod: dict[str, _Usage] = field(default_factory=dict)
    # Seconds between two measurements of one pod, once two have been seen.
    resolution_s: float | None = None
    due_s: float = 0.0
    lists: int = 0
    # Changes whenever a list brought a new measurement, or a pod came or went.
    generation: int = 0

    def usage(self, now: float) -> dict[str, _Usage] | None:
        """Usage by pod name; None if the metrics API is not served."""
        if now >= self.due_s:
            try:
                self._poll(now)
            except NotFound:
                return None
        return self.by_pod

    def _poll(self, now: float) -> None:
        path = "/apis/metrics.k8s.io/v1beta1/namespaces/" + self.namespace + "/pods"
        op = Operation("list", "pods.metrics.k8s.io", self.namespace)
        data = self.kube.request("GET", path, op, query=[("labelSelector", self.selector)]).data
        self.lists += 1
        fresh: dict[str, _Usage] = {}
        newest: float | None = None
        measured = False  # a new measurement of some pod
        for entry in decode_pod_metrics(data):
            name = entry.metadata.name
            known = self.by_pod.get(name)
            if known is not None and known.timestamp == entry.timestamp:
                fresh[name] = known  # the same measurement again: nothing to parse
                continue
            measured = True
            cpu_m, memory_bytes = rows.usage_sum(c.usage for c in entry.containers)
            usage_ts = rows.timestamp(entry.timestamp)
            fresh[name] = _Usage(entry.timestamp, cpu_m, memory_bytes, usage_ts)
            if known is not None and known.usage_ts is not None and usage_ts is not None:
                step = usage_ts - known.usage_ts
                if step > 0:
                    self.resolution_s = min(step, self.resolution_s or step)
            if usage_ts is not None:
                newest = max(newest or usage_ts, usage_ts)
        if measured or len(fresh) != len(self.by_pod):  # else every pod was known: none went
            self.generation += 1
        self.by_pod = fresh
        if self.resolution_s is None or newest is None:
            self.due_s = now  # every tick until the resolution shows
        else:
            # The next measurement lands a resolution after the newest one; a second of slack
            # for metrics-server's scrape to finish.
            next_measurement = newest + self.resolution_s + 1.0
            self.due_s = min(max(next_measurement, now), now + MAX_METRICS_AGE_S)


def _pod_key(pod: Pod) -> rows.Row:
    """The part of a pod's row that changes only when the pod does (built once per change)."""
    row = rows.pod_row(0.0, pod.as_body(), "", None)
    del row["ts"], row["cpu_m"], row["memory_bytes"], row["workload"]
    row.pop("usage_ts", None)
    return row


@dataclass
class WatchedState:
    """HPAs, workloads, pods and events by list+watch; PodMetrics at their own resolution."""

    kube: KubeClient
    metrics_available: bool = True
    sync_timeout_s: float = SYNC_TIMEOUT_S
    _reflectors: dict[tuple[str, str, str], Reflector[Any, Any]] = field(default_factory=dict)
    _metrics: dict[tuple[str, str], MetricsPoller] = field(default_factory=dict)
    # What the last ``pod_rows`` of (namespace, selector) was built from.
    _generations: dict[tuple[str, str], tuple[int, int | None, bool]] = field(default_factory=dict)

    def _reflector(
        self, kind: str, namespace: str, selector: str | None = None
    ) -> Reflector[Any, Any]:
        key = (kind, namespace, selector or "")
        reflector = self._reflectors.get(key)
        if reflector is None:
            if kind == "Pod":
                reflector = Reflector(self.kube, kind, namespace, POD_CODEC, _pod_key, selector)
            else:
                reflector = Reflector(self.kube, kind, namespace, DICT_CODEC, _same, selector)
            self._reflectors[key] = reflector
            reflector.start()
        reflector.wait_synced(self.sync_timeout_s)
        if reflector.error is not None:
            # Cut off (an API server restart): what is kept may be stale, so this tick is a
            # gap; the watch resumes (or re-lists) by itself and nothing changed is lost.
            raise ClusterError(f"watching {kind} in {namespace}: {reflector.error}")
        return reflector

    @property
    def reflectors(self) -> list[Reflector[Any, Any]]:
        return list(self._reflectors.values())

    @property
    def pollers(self) -> list[MetricsPoller]:
        return list(self._metrics.values())

    def hpas(self, namespace: str) -> list[Body]:
        return self._reflector("HorizontalPodAutoscaler", namespace).items()

    def workloads(self, kind: str, namespace: str) -> list[Body]:
        return self._reflector(kind, namespace).items()

    def pod_rows(self, now: float, namespace: str, selector: str, workload: str) -> list[rows.Row]:
        pods, generation = self._reflector("Pod", namespace, selector).items_and_generation()
        usage: dict[str, _Usage] = {}
        poller = self._metrics.get((namespace, selector))
        if self.metrics_available:
            if poller is None:
                poller = self._metrics[(namespace, selector)] = MetricsPoller(
                    self.kube, namespace, selector
                )
            found = poller.usage(now)
            if found is None:
                self.metrics_available = False
                self.kube.list_pod_metrics(namespace, selector)  # its one warning
            else:
                usage = found
        self._generations[(namespace, selector)] = (
            generation,
            None if poller is None else poller.generation,
            self.metrics_available,
        )
        none = _Usage("", None, None, None)
        out = []
        for kept in pods:
            seen = usage.get(kept["pod"], none)
            row = dict(kept)
            row["ts"] = now
            row["workload"] = workload
            row["cpu_m"] = seen.cpu_m
            row["memory_bytes"] = seen.memory_bytes
            row["usage_ts"] = seen.usage_ts
            out.append(row)
        return out

    def pods_generation(self, namespace: str, selector: str) -> object | None:
        return self._generations.get((namespace, selector))

    def events(self, namespace: str) -> list[Body]:
        return self._reflector("Event", namespace).drain_changed()

    def close(self) -> None:
        for reflector in self._reflectors.values():
            reflector.stop()


def _same(obj: Body) -> Body:
    return obj
