"""The API server, reachable from pods: for a controller that runs kubeswarm inside the cluster.

The real node's API server listens on 127.0.0.1 only (tests/cluster/_controlplane.py), which
pods cannot reach, and runs without an endpoint reconciler. `InPodApi` relays TCP from the
node's bridge address (`NODE_IP`, which only the pods and this host reach) to it, and gives the
`kubernetes` Service an EndpointSlice pointing at the relay, so in-cluster clients connect to
`https://10.96.0.1:443` as in any cluster (its certificate names that address). TLS passes
through the relay untouched; nothing listens on any other address. `close()` removes both.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
from typing import Any, Final
from urllib.parse import urlsplit

from . import _hostnet as net
from ._node import RealNode

SLICE: Final = "kubernetes-in-pod-relay"
SLICES: Final = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"


def _relay(client: socket.socket, upstream_addr: tuple[str, int]) -> None:
    with contextlib.ExitStack() as stack:
        stack.enter_context(client)
        try:
            upstream = stack.enter_context(socket.create_connection(upstream_addr, timeout=10))
        except OSError:
            return
        upstream.settimeout(None)
        selector = stack.enter_context(selectors.DefaultSelector())
        peers = {client: upstream, upstream: client}
        for end in peers:
            selector.register(end, selectors.EVENT_READ)
        while True:
            for key, _ in selector.select(timeout=300):
                sock: Any = key.fileobj
                try:
                    data = sock.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                peers[sock].sendall(data)


class InPodApi:
    """A relay NODE_IP:port -> the API server, and the `kubernetes` Service's EndpointSlice."""

    def __init__(self, node: RealNode) -> None:
        self.node = node
        server = urlsplit(node.server)
        self.upstream = (str(server.hostname), int(server.port or 443))
        self.listener = socket.create_server((net.NODE_IP, 0))
        self.port = int(self.listener.getsockname()[1])
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=_relay, args=(client, self.upstream), daemon=True).start()

    def start(self) -> InPodApi:
        self._thread.start()
        self.node.api(f"{SLICES}/{SLICE}", "DELETE")
        status, body = self.node.api(
            SLICES,
            "POST",
            {
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "metadata": {
                    "name": SLICE,
                    "labels": {
                        "kubernetes.io/service-name": "kubernetes",
                        "endpointslice.kubernetes.io/managed-by": "kubeswarm-tests",
                    },
                },
                "addressType": "IPv4",
                "endpoints": [{"addresses": [net.NODE_IP], "conditions": {"ready": True}}],
                "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}],
            },
        )
        assert status == 201, f"creating the kubernetes EndpointSlice: HTTP {status}: {body}"
        return self

    def close(self) -> None:
        self.node.api(f"{SLICES}/{SLICE}", "DELETE")
        self.listener.close()
        self._thread.join(timeout=5)
