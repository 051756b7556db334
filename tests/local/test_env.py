"""``--env`` and ``--env-file`` in a real local run: the locustfile gets the token from its
environment and sends it; the value is nowhere in what kubeswarm writes or prints."""

from __future__ import annotations

import hashlib
import secrets
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.local.helpers import REPO, clean_env, kubeswarm_argv, run_dir, run_json

pytestmark = pytest.mark.local

LOCUSTFILE = """
import os

from locust import HttpUser, constant_pacing, task


class TokenUser(HttpUser):
    wait_time = constant_pacing(0.5)

    @task
    def call(self) -> None:
        self.client.get("/api", headers={"Authorization": "Bearer " + os.environ["API_TOKEN"]})
"""


@dataclass
class TokenServer:
    """Counts requests by whether they carried ``Bearer <token>``."""

    token: str
    url: str = ""
    authorized: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def token_server() -> Iterator[TokenServer]:
    state = TokenServer(token="tok-" + secrets.token_hex(16))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.headers.get("Authorization") == f"Bearer {state.token}"
            with state.lock:
                if ok:
                    state.authorized += 1
                else:
                    state.refused += 1
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _files_holding(directory: Path, value: str) -> list[str]:
    """Every file under ``directory`` whose bytes contain ``value``, whatever its kind."""
    needle = value.encode()
    return [str(p) for p in directory.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _run(tmp_path: Path, target: TokenServer, *flags: str) -> subprocess.CompletedProcess[str]:
    locustfile = tmp_path / "token_user.py"
    locustfile.write_text(LOCUSTFILE, encoding="utf-8")
    argv = kubeswarm_argv(
        "run", "--local", "-f", str(locustfile), "-H", target.url, "-u", "3", "-r", "3",
        "-t", "4s", "--workers", "1", "--interval", "1s", "--autoquit", "3",
        "--out", str(tmp_path / "runs"), *flags,
    )  # fmt: skip
    return subprocess.run(
        argv,
        check=False,
        capture_output=True,
        text=True,
        timeout=180,
        env=clean_env(),
        cwd=REPO,
    )


@pytest.mark.parametrize("given", ["--env", "--env-file"])
def test_the_locustfile_gets_the_value_and_it_is_written_nowhere(
    token_server: TokenServer, tmp_path: Path, given: str
) -> None:
    if given == "--env":
        flags = ["--env", f"API_TOKEN={token_server.token}"]
    else:
        env_file = tmp_path / "secrets.env"
        env_file.write_text(f'# for the test\nAPI_TOKEN="{token_server.token}"\n', encoding="utf-8")
        flags = ["--env-file", str(env_file)]

    completed = _run(tmp_path, token_server, *flags)

    assert completed.returncode == 0, completed.stderr
    assert token_server.authorized > 0
    assert token_server.refused == 0
    directory = run_dir(tmp_path / "runs")
    assert run_json(directory)["config"]["env"]["names"] == ["API_TOKEN"]
    assert (directory / "locust" / "stats.csv").is_file()
    assert (directory / "logs").is_dir()
    assert _files_holding(directory, token_server.token) == []
    assert token_server.token not in completed.stdout + completed.stderr


def test_the_server_counts_only_the_right_token(token_server: TokenServer, tmp_path: Path) -> None:
    """The other half of the proof: a wrong value reaches the server and is refused."""
    completed = _run(tmp_path, token_server, "--env", "API_TOKEN=wrong")

    assert completed.returncode in (0, 1), completed.stderr
    assert token_server.authorized == 0
    assert token_server.refused > 0


DEMO_LOCUSTFILE = """
import hashlib
import os

from locust import HttpUser, constant_pacing, task


class TokenUser(HttpUser):
    wait_time = constant_pacing(0.5)

    @task
    def call(self) -> None:
        # Named by a digest of the token: the test finds the name, never the token itself.
        digest = hashlib.sha256(os.environ["API_TOKEN"].encode()).hexdigest()[:16]
        self.client.get("/", name=f"token-{digest}")
"""


def test_the_demo_gives_the_env_file_to_its_locust_processes(tmp_path: Path) -> None:
    token = "tok-" + secrets.token_hex(16)
    env_file = tmp_path / "demo.env"
    env_file.write_text(f"API_TOKEN={token}\n", encoding="utf-8")
    locustfile = tmp_path / "token_demo.py"
    locustfile.write_text(DEMO_LOCUSTFILE, encoding="utf-8")
    argv = kubeswarm_argv(
        "demo", "-t", "6s", "-u", "2", "--workers", "1", "-f", str(locustfile),
        "--env-file", str(env_file), "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    completed = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=240, env=clean_env(), cwd=REPO
    )

    assert completed.returncode == 0, completed.stderr
    directory = run_dir(tmp_path / "runs")
    digest = hashlib.sha256(token.encode()).hexdigest()[:16]
    stats = (directory / "locust" / "stats.csv").read_text(encoding="utf-8")
    assert f"token-{digest}" in stats
    assert run_json(directory)["config"]["env"] == {
        "names": ["API_TOKEN"],
        "files": [str(env_file)],
        "from": [],
    }
    assert _files_holding(directory, token) == []
    assert token not in completed.stdout + completed.stderr
