"""``kubeswarm ui``: the in-cluster Locust web UI at a local address, with no port-forward.

A small HTTP reverse proxy on 127.0.0.1 forwards every request (method, path, query, body,
content type) to the master's web port through the API server's service proxy, with the user's own
credentials and RBAC (``services/proxy`` get for GET, create for POST). Locust's UI uses relative
URLs, so it works under any prefix; links the API server rewrote to its own proxy prefix and
redirects to it are mapped back to the local address.
"""

from __future__ import annotations

import contextlib
import threading
import webbrowser
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final, TextIO

from harness.errors import ClusterError, NotFound, UsageError
from harness.kube.api import RetryPolicy, proxy_path
from harness.kube.client import KubeClient
from harness.kube.manifests import WEB_PORT, object_names
from harness.kube.runs import list_runs

# Hop-by-hop headers (RFC 9110 7.6.1) and those urllib3 already acted on (it decodes the body).
_DROP_RESPONSE: Final = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "upgrade",
        "proxy-authenticate",
        "trailer",
        "content-length",
        "content-encoding",
        "date",
        "server",
    }
)
_FORWARD_REQUEST: Final = (
    "Content-Type",
    "Accept",
    "Accept-Language",
    "Cookie",
    "X-Requested-With",
)
# A CSV of a long run's full history can take a while to produce and transfer.
_GET_RETRY: Final = RetryPolicy(attempts=2, base_delay_s=0.2, max_delay_s=1.0, timeout_s=120.0)
_POST_RETRY: Final = RetryPolicy(attempts=1, timeout_s=60.0)  # never send a /swarm twice


@dataclass(frozen=True)
class Upstream:
    kube: KubeClient
    namespace: str
    service: str
    port: int = WEB_PORT

    @property
    def prefix(self) -> str:
        return proxy_path(self.namespace, self.service, self.port, "/")


class _Handler(BaseHTTPRequestHandler):
    server: _ProxyServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._forward()

    def do_HEAD(self) -> None:
        self._forward()

    def do_POST(self) -> None:
        self._forward()

    def do_PUT(self) -> None:
        self._forward()

    def do_DELETE(self) -> None:
        self._forward()

    def _forward(self) -> None:
        upstream = self.server.upstream
        path = self.path
        if path.startswith(upstream.prefix):  # a link the API server rewrote for itself
            path = "/" + path[len(upstream.prefix) :]
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {h: v for h in _FORWARD_REQUEST if (v := self.headers.get(h)) is not None}
        try:
            response = upstream.kube.proxy_raw(
                self.command,
                upstream.namespace,
                upstream.service,
                upstream.port,
                path,
                body=body,
                headers=headers,
                retry=_GET_RETRY if self.command in ("GET", "HEAD") else _POST_RETRY,
            )
        except ClusterError as e:
            self._reply(
                502, {"Content-Type": "text/plain; charset=utf-8"}, f"kubeswarm ui: {e}\n".encode()
            )
            return
        ended = _api_server_status(response.status, response.data)
        if ended is not None:
            self._reply(response.status, {"Content-Type": "text/plain; charset=utf-8"}, ended)
            return
        self._reply(response.status, response.headers, response.data)

    def _reply(self, status: int, headers: Mapping[str, str], data: bytes) -> None:
        upstream = self.server.upstream
        self.send_response(status)
        for name, value in headers.items():
            if name.lower() in _DROP_RESPONSE:
                continue
            local = value
            if name.lower() == "location" and value.startswith(upstream.prefix):
                local = "/" + value[len(upstream.prefix) :]
            self.send_header(name, local)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _ProxyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], upstream: Upstream) -> None:
        super().__init__(address, _Handler)
        self.upstream = upstream


class UiProxy:
    """The running local proxy; ``url`` is where the browser goes. Use as a context manager."""

    def __init__(self, upstream: Upstream, port: int = 0) -> None:
        self.upstream = upstream
        self._server = _ProxyServer(("127.0.0.1", port), upstream)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="kubeswarm-ui", daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/"

    def start(self) -> UiProxy:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> UiProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _api_server_status(status: int, data: bytes) -> bytes | None:
    """A page in the user's words when the API server, not Locust, answered: the master Service
    is gone (the run ended and was cleaned up) or has no ready endpoint (the master is not up)."""
    if status not in (404, 503) or b'"kind":"Status"' not in data.replace(b" ", b""):
        return None
    if status == 404:
        text = (
            "kubeswarm ui: this run has ended: its Locust master and Service are gone. "
            "Its results and report are in the run directory `kubeswarm run` printed.\n"
        )
    else:
        text = "kubeswarm ui: the Locust master is not ready yet (no ready endpoint); retry.\n"
    return text.encode()


def choose_run(kube: KubeClient, namespace: str, run: str | None) -> str:
    """The run named (a run id or its unique suffix), else the newest one still running."""
    runs = list_runs(kube, namespace)
    if run:
        matches = [r.run_id for r in runs if r.run_id == run or r.run_id.endswith(f"-{run}")]
        if len(matches) == 1 or run in matches:
            return run if run in matches else matches[0]
        known = ", ".join(r.run_id for r in runs) or "none"
        raise UsageError(f"no single run {run!r} in namespace {namespace} (runs: {known})")
    active = [r for r in runs if r.state in ("running", "pending")]
    if not active:
        raise UsageError(
            f"no running kubeswarm run in namespace {namespace}; start one with "
            "`kubeswarm run` or name one (kubeswarm list)"
        )
    return active[0].run_id


def serve_ui(
    kube: KubeClient,
    namespace: str,
    run: str | None,
    *,
    port: int,
    open_browser: bool,
    out: TextIO,
    stop: threading.Event | None = None,
) -> str:
    """``kubeswarm ui``: serves until Ctrl-C (or ``stop``); returns the run id it served."""
    run_id = choose_run(kube, namespace, run)
    service = object_names(run_id).service
    try:
        kube.get("Service", service, namespace)
    except NotFound as e:
        raise UsageError(
            f"run {run_id} has no master Service {service} in namespace "
            f"{namespace}: it has finished and was cleaned up"
        ) from e
    with UiProxy(Upstream(kube, namespace, service), port) as proxy:
        print(f"Locust web UI of {run_id}: {proxy.url} (Ctrl-C to stop)", file=out, flush=True)
        if open_browser:
            webbrowser.open(proxy.url)
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
    return run_id
