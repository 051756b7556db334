"""List+watch of one kind in one namespace, kept in memory (a reflector, as client-go has).

The list-based sampler fetched and decoded every pod of a workload on every tick: about 290 µs of
harness CPU per pod per tick, most of it JSON decoding (docs/PERFORMANCE.md). A ``Reflector`` lists
once, then follows a watch from the list's resourceVersion, so each object is fetched and decoded
once per *change*, not once per tick; the sampler writes its rows from the state kept here.

The protocol, as the API server defines it (and client-go's reflector follows):

- ``GET ...?watch=1&resourceVersion=RV&allowWatchBookmarks=true&timeoutSeconds=N`` streams one JSON
  event per line: ADDED, MODIFIED, DELETED, BOOKMARK (only a newer resourceVersion: watching
  resumes from there after a reconnect instead of from an old, possibly compacted version) and
  ERROR (a ``Status``).
- An ERROR with code 410 (Gone: the version was compacted away) or an HTTP 410 means the state
  cannot be resumed: list again and watch from the new list's version. Every object the list
  returns counts as changed, so nothing that happened in between is lost to the caller.
- The server ends a watch after ``timeoutSeconds``; a dropped connection (an API server restart)
  is resumed from the last resourceVersion after a backoff with full jitter, the list's own
  request retries (``RetryPolicy``) covering the API server being away for a while.

Decoding is where the CPU goes, so each kind is decoded by a ``Codec``: pods into msgspec Structs
that hold only the fields a pods.csv row needs (unknown fields are skipped by the decoder without
building them), the few HPAs, workloads and events into plain dicts for the row functions of
``harness.kube.rows``. The side-by-side figures behind that choice are in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import msgspec

from harness.errors import ClusterError
from harness.kube.api import RESOURCES, Operation, error_for
from harness.kube.client import KubeClient, WatchStream

T = TypeVar("T")
V = TypeVar("V")

# client-go's reflector picks a watch timeout between 5 and 10 minutes so that many clients do not
# reconnect in step; the server closes the watch then and we resume from the last version.
WATCH_TIMEOUT_RANGE_S: Final = (300, 600)
# The API server sends a bookmark about once a minute on a quiet watch: a longer silence is a
# connection that died without a reset, and is treated like one.
WATCH_READ_TIMEOUT_S: Final = 90.0


# ------------------------------------------------------------------ the decoded shapes


class Meta(msgspec.Struct, omit_defaults=True):
    name: str = ""
    namespace: str = ""
    uid: str = ""
    resourceVersion: str = ""  # noqa: N815 (the API's own field names)
    creationTimestamp: str | None = None  # noqa: N815
    deletionTimestamp: str | None = None  # noqa: N815


class _ListMeta(msgspec.Struct):
    resourceVersion: str = ""  # noqa: N815


class _Status(msgspec.Struct):
    """The API's ``Status`` (an ERROR event's object)."""

    code: int = 0
    reason: str = ""
    message: str = ""


class _Event(msgspec.Struct):
    type: str
    object: msgspec.Raw


class _VersionOnly(msgspec.Struct):
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)


class _Resources(msgspec.Struct, omit_defaults=True):
    requests: dict[str, Any] = msgspec.field(default_factory=dict)
    limits: dict[str, Any] = msgspec.field(default_factory=dict)


class _Container(msgspec.Struct, omit_defaults=True):
    resources: _Resources = msgspec.field(default_factory=_Resources)


class _PodSpec(msgspec.Struct, omit_defaults=True):
    containers: list[_Container] = msgspec.field(default_factory=list)


class _Condition(msgspec.Struct, omit_defaults=True):
    type: str = ""
    status: str = ""
    lastTransitionTime: str | None = None  # noqa: N815


class _Terminated(msgspec.Struct, omit_defaults=True):
    reason: str | None = None
    finishedAt: str | None = None  # noqa: N815


class _State(msgspec.Struct, omit_defaults=True):
    terminated: _Terminated | None = None


class _ContainerStatus(msgspec.Struct, omit_defaults=True):
    restartCount: int = 0  # noqa: N815
    state: _State = msgspec.field(default_factory=_State)
    lastState: _State = msgspec.field(default_factory=_State)  # noqa: N815


class _PodStatus(msgspec.Struct, omit_defaults=True):
    phase: str | None = None
    conditions: list[_Condition] = msgspec.field(default_factory=list)
    containerStatuses: list[_ContainerStatus] = msgspec.field(default_factory=list)  # noqa: N815
    startTime: str | None = None  # noqa: N815


class Pod(msgspec.Struct, omit_defaults=True):
    """The fields of a Pod that a pods.csv row is made of, nothing else."""

    metadata: Meta = msgspec.field(default_factory=Meta)
    spec: _PodSpec = msgspec.field(default_factory=_PodSpec)
    status: _PodStatus = msgspec.field(default_factory=_PodStatus)

    def as_body(self) -> dict[str, Any]:
        """The same fields as the API's JSON dict, for ``harness.kube.rows.pod_row``."""
        body: dict[str, Any] = msgspec.to_builtins(self)
        return body


class _Usage(msgspec.Struct):
    usage: dict[str, Any] = msgspec.field(default_factory=dict)


class PodMetrics(msgspec.Struct):
    """One entry of metrics.k8s.io's pod list: when it was measured and what."""

    metadata: Meta = msgspec.field(default_factory=Meta)
    timestamp: str = ""
    window: str = ""
    containers: list[_Usage] = msgspec.field(default_factory=list)

    def as_body(self) -> dict[str, Any]:
        body: dict[str, Any] = msgspec.to_builtins(self)
        return body


class _Dict(msgspec.Struct):
    """Only for reading a dict object's key fields."""

    metadata: Meta = msgspec.field(default_factory=Meta)


class _ObjectList(msgspec.Struct, Generic[T]):
    metadata: _ListMeta = msgspec.field(default_factory=_ListMeta)
    items: list[T] | None = None


_POD_METRICS_LIST: Final = msgspec.json.Decoder(_ObjectList[PodMetrics])


def decode_pod_metrics(data: bytes) -> list[PodMetrics]:
    """A metrics.k8s.io PodMetricsList body."""
    return _POD_METRICS_LIST.decode(data).items or []


# ------------------------------------------------------------------ codecs


@dataclass(frozen=True)
class Codec(Generic[T]):
    """How one kind's list and event objects are decoded, and their identity."""

    list_decoder: msgspec.json.Decoder[_ObjectList[T]]
    object_decoder: msgspec.json.Decoder[T]
    meta: Callable[[T], Meta]


def _dict_meta(obj: dict[str, Any]) -> Meta:
    metadata = obj.get("metadata") or {}
    return Meta(
        name=str(metadata.get("name") or ""),
        namespace=str(metadata.get("namespace") or ""),
        uid=str(metadata.get("uid") or ""),
        resourceVersion=str(metadata.get("resourceVersion") or ""),
    )


POD_CODEC: Final[Codec[Pod]] = Codec(
    msgspec.json.Decoder(_ObjectList[Pod]), msgspec.json.Decoder(Pod), lambda p: p.metadata
)
DICT_CODEC: Final[Codec[dict[str, Any]]] = Codec(
    msgspec.json.Decoder(_ObjectList[dict[str, Any]]),
    msgspec.json.Decoder(dict[str, Any]),
    _dict_meta,
)
_EVENT: Final = msgspec.json.Decoder(_Event)
_STATUS: Final = msgspec.json.Decoder(_Status)
_VERSION: Final = msgspec.json.Decoder(_VersionOnly)


class _Gone(Exception):
    """The watched version is too old (410): list again."""


# ------------------------------------------------------------------ the reflector


@dataclass
class WatchCounters:
    """What a reflector did, for tests and the benchmark."""

    lists: int = 0
    watches: int = 0
    gone: int = 0
    reconnects: int = 0
    events: int = 0


@dataclass
class Reflector(Generic[T, V]):
    """The objects of one kind in one namespace (optionally by label selector), kept current by
    list+watch in a background thread; ``transform`` turns each decoded object into what is kept
    (done once per change, so the per-tick cost is only reading ``items``)."""

    kube: KubeClient
    kind: str
    namespace: str
    codec: Codec[T]
    transform: Callable[[T], V]
    label_selector: str | None = None
    backoff_base_s: float = 0.5
    backoff_max_s: float = 16.0
    rng: random.Random = field(default_factory=random.Random)
    counters: WatchCounters = field(default_factory=WatchCounters)
    # The last failure, cleared once a list or a watch succeeds again: while it is set, what is
    # kept may be behind the cluster.
    error: str | None = None
    synced: threading.Event = field(default_factory=threading.Event)
    # Changes whenever what ``items`` returns may have (a list, an added, changed or deleted
    # object; not a bookmark): a reader can skip work on what it already saw.
    generation: int = 0
    _items: dict[str, V] = field(default_factory=dict)
    _changed: dict[str, V] = field(default_factory=dict)
    _version: str | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _stream: WatchStream | None = None
    _thread: threading.Thread | None = None
    _fatal: ClusterError | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"watch {self.kind} {self.namespace}", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def items(self) -> list[V]:
        """The objects as last seen (a copy: safe to iterate while the watch goes on)."""
        with self._lock:
            return list(self._items.values())

    def items_and_generation(self) -> tuple[list[V], int]:
        """``items`` with the generation they are of, read together."""
        with self._lock:
            return list(self._items.values()), self.generation

    def drain_changed(self) -> list[V]:
        """Objects added or changed since the last call (all of them after a re-list)."""
        with self._lock:
            changed, self._changed = list(self._changed.values()), {}
        return changed

    def wait_synced(self, timeout_s: float) -> None:
        """Until the first list is in; ``ClusterError`` if it failed for good (refused: 403,
        404) or is not in within ``timeout_s``."""
        self.synced.wait(timeout_s)
        if self._fatal is not None:
            raise self._fatal
        if not self.synced.is_set():
            raise ClusterError(
                f"listing {RESOURCES[self.kind].described} in {self.namespace} has not "
                f"succeeded yet: {self.error or 'no answer'}"
            )

    # -------------------------------------------------------------- the loop

    def _run(self) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                if self._version is None:
                    self._list()
                self._watch()
                failures = 0
            except _Gone:
                self.counters.gone += 1
                self._version = None
            except (ClusterError, msgspec.MsgspecError) as e:
                # A garbled answer (MsgspecError) is retried like a dropped connection.
                if self._stopping.is_set():
                    return
                if isinstance(e, ClusterError) and self._refused(e):
                    self._fatal = e
                    self.synced.set()
                    return
                self.error = f"{type(e).__name__}: {e}"
                failures += 1
                self.counters.reconnects += 1
                delay = min(self.backoff_max_s, self.backoff_base_s * 2 ** (failures - 1))
                self._stopping.wait(self.rng.uniform(0, delay))

    @staticmethod
    def _refused(error: ClusterError) -> bool:
        from harness.errors import NotFound, PermissionDenied

        return isinstance(error, (NotFound, PermissionDenied))

    def _query(self) -> list[tuple[str, str]]:
        return [("labelSelector", self.label_selector)] if self.label_selector else []

    def _op(self, verb: str) -> Operation:
        return Operation(verb, RESOURCES[self.kind].described, self.namespace)

    def _list(self) -> None:
        path = RESOURCES[self.kind].path(self.namespace)
        data = self.kube.request("GET", path, self._op("list"), query=self._query()).data
        self.counters.lists += 1
        listed = self.codec.list_decoder.decode(data)
        fresh = {self._key(obj): self.transform(obj) for obj in listed.items or []}
        with self._lock:
            self._items = fresh
            self._changed = dict(fresh)
            self.generation += 1
        self._version = listed.metadata.resourceVersion
        self.error = None
        self.synced.set()

    def _key(self, obj: T) -> str:
        meta = self.codec.meta(obj)
        return meta.uid or meta.name

    def _watch(self) -> None:
        assert self._version is not None
        timeout = self.rng.randint(*WATCH_TIMEOUT_RANGE_S)
        query = [
            *self._query(),
            ("watch", "1"),
            ("resourceVersion", self._version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(timeout)),
        ]
        stream = self.kube.open_stream(
            RESOURCES[self.kind].path(self.namespace),
            self._op("watch"),
            query=query,
            read_timeout_s=WATCH_READ_TIMEOUT_S,
        )
        if stream.status == 410:
            stream.close()
            raise _Gone("410 on opening the watch")
        self.counters.watches += 1
        self.error = None
        with self._lock:
            self._stream = stream
        if self._stopping.is_set():
            stream.close()
        try:
            for line in stream.lines():
                self._apply(line)
        finally:
            with self._lock:
                self._stream = None
            stream.close()

    def _apply(self, line: bytes) -> None:
        event = _EVENT.decode(line)
        self.counters.events += 1
        if event.type == "BOOKMARK":
            self._version = _VERSION.decode(event.object).metadata.resourceVersion
            return
        if event.type == "ERROR":
            status = _STATUS.decode(event.object)
            if status.code == 410:
                raise _Gone(status.message)
            raise error_for(
                status.code or 500, bytes(event.object), self._op("watch"), self.kube.connection
            )
        obj = self.codec.object_decoder.decode(event.object)
        key, version = self._key(obj), self.codec.meta(obj).resourceVersion
        with self._lock:
            if event.type == "DELETED":
                self._items.pop(key, None)
                self._changed.pop(key, None)
            else:
                kept = self.transform(obj)
                self._items[key] = kept
                self._changed[key] = kept
            self.generation += 1
        self._version = version or self._version
        self.error = None
