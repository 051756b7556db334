"""The demo's target: a WSGI service whose CPU and memory per worker grow with its request rate.

It behaves like a typical web app under load, so the demo's autoscaler has something real to react
to: every request burns a fixed amount of CPU (``KUBESWARM_DEMO_CPU_MS``) and keeps a response-sized
buffer (``KUBESWARM_DEMO_KIB_PER_REQUEST``) in a per-worker cache for ``KUBESWARM_DEMO_RETENTION_S``
seconds. A worker's memory is therefore a baseline plus its own request rate times the retention
time: more workers share the load and each one shrinks, as pods behind a Service do.

Buffers are anonymous ``mmap`` regions so that memory freed on eviction goes back to the operating
system at once and shows in RSS, the way a container's working set falls.

Run it with ``gunicorn harness.demo.target:app``; it imports nothing else from kubeswarm.
"""

from __future__ import annotations

import json
import mmap
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Final

_PAGE: Final = mmap.PAGESIZE


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


CPU_MS: Final = _env_float("KUBESWARM_DEMO_CPU_MS", 2.0)
KIB_PER_REQUEST: Final = int(_env_float("KUBESWARM_DEMO_KIB_PER_REQUEST", 512))
RETENTION_S: Final = _env_float("KUBESWARM_DEMO_RETENTION_S", 8.0)

_cache: deque[tuple[float, mmap.mmap]] = deque()


def _burn_cpu(milliseconds: float) -> None:
    """Busy work measured in this thread's CPU time, so a loaded machine does not inflate it."""
    deadline = time.thread_time() + milliseconds / 1000.0
    value = 0
    while time.thread_time() < deadline:
        for i in range(2000):
            value = (value * 31 + i) & 0xFFFFFFFF


def _retain(kib: int, now: float) -> None:
    if kib > 0:
        buffer = mmap.mmap(-1, kib * 1024)
        for offset in range(0, kib * 1024, _PAGE):  # touch every page so it counts in RSS
            buffer[offset] = 1
        _cache.append((now, buffer))
    while _cache and now - _cache[0][0] > RETENTION_S:
        _cache.popleft()[1].close()


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Every path answers 200 with a small JSON body; ``/healthz`` does no work."""
    if environ.get("PATH_INFO") == "/healthz":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok\n"]
    now = time.monotonic()
    _burn_cpu(CPU_MS)
    _retain(KIB_PER_REQUEST, now)
    body = json.dumps({"worker": os.getpid(), "cached": len(_cache)}).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]
