"""A detached run's directory, served read-only by its controller and fetched byte for byte.

The controller serves ``/results/<run>`` on its results port: ``GET /index.json`` lists every file
(path, size, SHA-256), ``GET /files/<path>`` returns one, ``GET /healthz`` answers the readiness
probe. Only files the index lists are served, found by walking the run directory at request time,
so no path a client sends reaches the file system; nothing is ever written. ``kubeswarm fetch``
reaches it through the API server's service proxy (``services/proxy`` get, in the shipped Role),
as the Locust UI is reached, and checks each file's size and digest against the index.
"""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final

from harness.errors import ClusterError, RunDirectoryError

INDEX_PATH: Final = "/index.json"
FILES_PREFIX: Final = "/files/"
_CHUNK: Final = 1 << 16


def file_index(run_dir: Path) -> list[dict[str, Any]]:
    """Every regular file under ``run_dir`` (symbolic links are not followed), sorted by path."""
    entries = []
    for path in sorted(run_dir.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        digest = hashlib.sha256()
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        entries.append(
            {
                "path": path.relative_to(run_dir).as_posix(),
                "size": path.stat().st_size,
                "sha256": digest.hexdigest(),
            }
        )
    return entries


class _Handler(BaseHTTPRequestHandler):
    server: _ResultsHttpServer

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/healthz":
            self._reply(200, b"ok\n", "text/plain")
            return
        run_dir = self.server.run_dir()
        if run_dir is None:
            self._reply(404, b"the run directory does not exist yet\n", "text/plain")
            return
        if path == INDEX_PATH:
            body = {"run": run_dir.name, "files": file_index(run_dir)}
            self._reply(200, json.dumps(body).encode(), "application/json")
            return
        wanted = urllib.parse.unquote(path.removeprefix(FILES_PREFIX))
        listed = {e["path"] for e in file_index(run_dir)} if path.startswith(FILES_PREFIX) else ()
        if wanted not in listed:
            self._reply(404, b"no such file in the run directory\n", "text/plain")
            return
        self._reply(200, (run_dir / wanted).read_bytes(), "application/octet-stream")

    def _reply(self, status: int, data: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass  # the controller's log is the run's progress, not every fetch


class _ResultsHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], run_dir: Callable[[], Path | None]) -> None:
        super().__init__(address, _Handler)
        self.run_dir = run_dir


class ResultsServer:
    """Serves the run directory ``run_dir()`` names (None until it exists) on ``port``."""

    def __init__(
        self,
        run_dir: Callable[[], Path | None],
        port: int,
        host: str = "0.0.0.0",  # noqa: S104  # in its pod, for the Service; read-only
    ) -> None:
        self._server = _ResultsHttpServer((host, port), run_dir)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> ResultsServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def fetch_run(get: Callable[[str], bytes], out_dir: Path) -> Path:
    """Downloads the served run directory into ``out_dir/<run>``; returns that directory.

    ``get(path)`` returns the body of a GET on the results server (through the API server's
    proxy in the cluster). Each file is checked against the index's size and SHA-256, written to
    a temporary name and renamed, so an interrupted fetch never leaves a truncated file.
    """
    try:
        index = json.loads(get(INDEX_PATH))
        run = str(index["run"])
        files = list(index["files"])
    except (ValueError, KeyError, TypeError) as e:
        raise ClusterError(f"the results server sent no usable index: {e}") from e
    if not run or "/" in run or run in (".", ".."):
        raise ClusterError(f"the results server named its run {run!r}")
    target = out_dir / run
    for entry in files:
        relative = Path(str(entry["path"]))
        if relative.is_absolute() or ".." in relative.parts:
            raise ClusterError(f"the results server listed a path outside the run: {relative}")
        data = get(FILES_PREFIX + urllib.parse.quote(relative.as_posix()))
        if len(data) != entry["size"] or hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise ClusterError(
                f"{relative} arrived with {len(data)} bytes, not as the index says "
                f"({entry['size']} bytes); the run may still be writing it: fetch again"
            )
        path = target / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(data)
            partial.replace(path)
        except OSError as e:
            raise RunDirectoryError(f"cannot write {path}: {e.strerror}") from e
    return target
