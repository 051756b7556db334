"""Fixtures shared by the tiers: a real HTTP server on 127.0.0.1 to put load on, and the smallest
locustfile Locust accepts."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.do_GET()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http_target() -> Iterator[str]:
    """A real HTTP server on a free loopback port, answering every path; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# One user with one task: what the config, manifest and bad-input tests hand to a command.
SHOPPER_LOCUSTFILE = (
    "from locust import HttpUser, task\n\n\n"
    "class Shopper(HttpUser):\n"
    "    @task\n"
    "    def browse(self) -> None:\n"
    '        self.client.get("/")\n'
)


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    """``shop.py`` in the test's directory, holding ``SHOPPER_LOCUSTFILE``."""
    path = tmp_path / "shop.py"
    path.write_text(SHOPPER_LOCUSTFILE, encoding="utf-8")
    return path
