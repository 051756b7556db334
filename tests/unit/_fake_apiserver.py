"""A tiny Kubernetes API server on 127.0.0.1 for the adapter's unit tests: real HTTP, no cluster.

It stores objects in memory by collection path (create, get, list with simple label selectors,
delete, watch from a resourceVersion with bookmarks; ``compact`` makes older versions answer 410
and ``drop_watches`` cuts every open watch as an API server restart does), serves the pods' logs
a test writes, answers SelfSubjectAccessReviews from a set of denied ``verb resource`` pairs,
serves ``/version``, and lets a test script answers (status, body, headers, delay) for any path,
e.g. two 503s then the real answer. Service-proxy paths go to a handler the test supplies.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from harness.kube.api import RetryPolicy
from harness.kube.client import KubeClient, connect


@dataclass
class Scripted:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


ProxyHandler = Callable[[Seen], tuple[int, dict[str, str], bytes]]


@dataclass
class FakeApiServer:
    objects: dict[str, dict[str, dict[str, Any]]] = field(default_factory=lambda: defaultdict(dict))
    scripted: dict[str, deque[Scripted]] = field(default_factory=lambda: defaultdict(deque))
    # "create jobs.batch", "get services/proxy" anywhere; "delete pods in shop" in one namespace
    denied: set[str] = field(default_factory=set)
    requests: list[Seen] = field(default_factory=list)
    proxy: ProxyHandler | None = None
    metrics_api: bool = True
    logs: dict[str, str] = field(default_factory=dict)  # pod name -> its log, lines timestamped
    url: str = ""
    version: int = 0
    # (resourceVersion, collection, event type, object) of every change, for watches
    history: list[tuple[int, str, str, dict[str, Any]]] = field(default_factory=list)
    compacted: int = 0
    watch_generation: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, collection: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Creates or replaces an object (a new resourceVersion, seen by watches)."""
        meta = obj.setdefault("metadata", {})
        before = self.objects[collection].get(meta["name"])
        meta.setdefault("uid", before["metadata"]["uid"] if before else str(uuid.uuid4()))
        with self.lock:
            self.version += 1
            meta["resourceVersion"] = str(self.version)
            kind = "MODIFIED" if meta["name"] in self.objects[collection] else "ADDED"
            self.objects[collection][meta["name"]] = obj
            self.history.append((self.version, collection, kind, json.loads(json.dumps(obj))))
        return obj

    def remove(self, collection: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects[collection].pop(name, None)
            if obj is not None:
                self.version += 1
                self.history.append((self.version, collection, "DELETED", obj))
        return obj

    def compact(self) -> None:
        """Watches from any version before now answer 410 Gone."""
        with self.lock:
            self.compacted = self.version

    def drop_watches(self) -> None:
        """Every open watch is cut mid-stream (the connection dies, as when the API server
        restarts)."""
        with self.lock:
            self.watch_generation += 1

    def script(self, path: str, *answers: Scripted) -> None:
        self.scripted[path].extend(answers)

    def seen(self, method: str, prefix: str) -> list[Seen]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]

    # ------------------------------------------------------------------ answering

    def answer(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        self.requests.append(seen)
        queue = self.scripted.get(seen.path)
        if queue:
            scripted = queue.popleft()
            time.sleep(scripted.delay_s)
            return scripted.status, scripted.headers, _json(scripted.body)
        if "/proxy" in seen.path and self.proxy is not None:
            return self.proxy(seen)
        if seen.path.endswith("/log"):
            return self._log(seen)
        if seen.path in ("/version", "/apis/metrics.k8s.io/v1beta1"):
            return self._discovery(seen)
        if seen.path.endswith("/selfsubjectaccessreviews"):
            return self._review(seen)
        return self._crud(seen)

    def _discovery(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        if seen.path == "/version":
            return 200, {}, _json({"gitVersion": "v1.35.0-fake"})
        if self.metrics_api:
            return 200, {}, _json({"kind": "APIResourceList"})
        return 404, {}, _status(404, "the server could not find the requested resource")

    def _log(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        pod = seen.path.split("/")[-2]
        accept = {k.lower(): v for k, v in seen.headers.items()}.get("accept", "")
        if "text/plain" in accept:  # as the real one answers
            return 406, {}, _status(406, "only the following media types are accepted: ...")
        if pod not in self.logs:
            return 404, {}, _status(404, f'pods "{pod}" not found')
        return 200, {"Content-Type": "text/plain"}, self.logs[pod].encode()

    def _review(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        review = json.loads(seen.body)
        attrs = review["spec"]["resourceAttributes"]
        resource = f"{attrs['resource']}.{attrs['group']}" if attrs["group"] else attrs["resource"]
        if attrs.get("subresource"):
            resource += f"/{attrs['subresource']}"
        asked = f"{attrs['verb']} {resource}"
        in_namespace = f"{asked} in {attrs.get('namespace')}"
        review["status"] = {"allowed": not {asked, in_namespace} & self.denied}
        return 201, {}, _json(review)

    def _crud(self, seen: Seen) -> tuple[int, dict[str, str], bytes]:
        parts = seen.path.rstrip("/").split("/")
        # /api/v1/namespaces/NS/KIND[/NAME] or /apis/G/V/namespaces/NS/KIND[/NAME]
        base = 3 if parts[1] == "api" else 4
        collection = "/".join(parts[: base + 3])
        name = parts[base + 3] if len(parts) > base + 3 else None
        if len(parts) == base + 2:  # a cluster-scoped object, e.g. /api/v1/namespaces/NS
            collection, name = "/".join(parts[: base + 1]), parts[base + 1]
        store = self.objects[collection]
        if seen.method == "POST":
            obj = json.loads(seen.body)
            if obj["metadata"]["name"] in store:
                return 409, {}, _status(409, "already exists")
            return 201, {}, _json(self.add(collection, obj))
        if seen.method == "GET" and name is None:
            selector = (seen.query.get("labelSelector") or [""])[0]
            with self.lock:
                items = [o for o in store.values() if _matches(selector, o)]
                listed = {"resourceVersion": str(self.version)}
            return 200, {}, _json({"kind": "List", "metadata": listed, "items": items})
        if name is None or name not in store:
            return 404, {}, _status(404, f"{parts[-1]} not found")
        if seen.method == "DELETE":
            return 200, {}, _json(self.remove(collection, name))
        return 200, {}, _json(store[name])


def collection_of(path: str) -> str:
    parts = path.rstrip("/").split("/")
    return "/".join(parts[: (3 if parts[1] == "api" else 4) + 3])


def watch_lines(fake: FakeApiServer, seen: Seen, write: Callable[[bytes], bool]) -> None:
    """Streams a watch: the changes after the asked version, then new ones as they happen, a
    bookmark every half second when asked for, until the (shortened) timeout; a dropped watch
    returns without ending the stream."""
    collection = collection_of(seen.path)
    selector = (seen.query.get("labelSelector") or [""])[0]
    sent = int((seen.query.get("resourceVersion") or ["0"])[0] or 0)
    bookmarks = (seen.query.get("allowWatchBookmarks") or [""])[0] == "true"
    timeout = min(3.0, float((seen.query.get("timeoutSeconds") or ["3"])[0]))
    with fake.lock:
        generation, compacted = fake.watch_generation, fake.compacted
    if sent < compacted:
        gone = {"kind": "Status", "code": 410, "reason": "Expired", "message": "too old"}
        write(_json({"type": "ERROR", "object": gone}) + b"\n")
        write(b"")
        return
    deadline = time.monotonic() + timeout
    last_bookmark = time.monotonic()
    while time.monotonic() < deadline:
        with fake.lock:
            if fake.watch_generation != generation:
                return  # cut: no final chunk
            events = [e for e in fake.history if e[0] > sent and e[1] == collection]
            version = fake.version
        for rv, _, kind, obj in events:
            if _matches(selector, obj) and not write(_json({"type": kind, "object": obj}) + b"\n"):
                return
            sent = rv
        if bookmarks and time.monotonic() - last_bookmark > 0.5 and version > sent:
            bookmark = {"kind": "Pod", "metadata": {"resourceVersion": str(version)}}
            write(_json({"type": "BOOKMARK", "object": bookmark}) + b"\n")
            sent, last_bookmark = version, time.monotonic()
        time.sleep(0.02)
    write(b"")


def _matches(selector: str, obj: dict[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    for term in filter(None, selector.split(",")):
        key, eq, value = term.partition("=")
        if eq and labels.get(key) != value:
            return False
        if not eq and key not in labels:
            return False
    return True


def _json(body: Any) -> bytes:
    if body is None:
        return b""
    if isinstance(body, bytes):
        return body
    return json.dumps(body).encode()


def _status(code: int, message: str) -> bytes:
    return _json({"kind": "Status", "status": "Failure", "code": code, "message": message})


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        seen = Seen(
            self.command,
            split.path,
            parse_qs(split.query, keep_blank_values=True),
            {k.lower(): v for k, v in self.headers.items()},
            self.rfile.read(length) if length else b"",
        )
        if seen.query.get("watch") and not self.server.fake.scripted.get(seen.path):
            self._watch(seen)
            return
        status, headers, body = self.server.fake.answer(seen)
        self.send_response(status)
        headers = {"Content-Type": "application/json", **headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _watch(self, seen: Seen) -> None:
        self.server.fake.requests.append(seen)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write(data: bytes) -> bool:
            try:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
            except OSError:
                return False
            return True

        watch_lines(self.server.fake, seen, write)
        self.close_connection = True

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeApiServer) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


@contextmanager
def running(fake: FakeApiServer) -> Iterator[FakeApiServer]:
    server = _Server(fake)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def write_kubeconfig(
    path: Path,
    server: str,
    namespace: str = "team",
    bearer: str = "test-token",
    extra_context: str | None = None,
) -> Path:
    contexts = [
        {"name": "fake", "context": {"cluster": "fake", "user": "tester", "namespace": namespace}}
    ]
    if extra_context:
        contexts.append({"name": extra_context, "context": {"cluster": "fake", "user": "tester"}})
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": bearer}}],
        "contexts": contexts,
    }
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


@contextmanager
def client_of(fake: FakeApiServer, kubeconfig: Path, namespace: str) -> Iterator[KubeClient]:
    """kubeswarm's client for the fake, retrying quickly so that failure tests stay short."""
    client = connect(
        write_kubeconfig(kubeconfig, fake.url, namespace=namespace),
        environ={},
        retry=RetryPolicy(attempts=2, base_delay_s=0.01),
    )
    try:
        yield client
    finally:
        client.close()
