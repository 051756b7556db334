"""``run --local --workers auto``: a CPU-bound local worker gets a second one (issue: the local
wiring once never attached the action, so the flag did nothing on this machine)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness.actions.workers import AutoWorkersPolicy
from harness.modes.local import LOCAL_WORKER_COOLDOWN_S
from harness.processes import free_port
from tests.fixtures.workers import first_addition
from tests.local.helpers import REPO, clean_env, csv_rows, kubeswarm_argv, run_dir

pytestmark = pytest.mark.local

# No wait between requests, and a few milliseconds of the worker's own CPU per request: one
# worker process is CPU-bound while the server (sharing this machine's cores) stays nearly idle.
NO_WAIT = """
import time

from locust import FastHttpUser, task


class Flood(FastHttpUser):
    @task
    def index(self) -> None:
        until = time.process_time() + 0.003
        while time.process_time() < until:
            pass
        self.client.get("/")
"""


@pytest.fixture
def fast_server() -> Iterator[str]:
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "bench.fast_server", str(port)], cwd=REPO)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                requests.get(url, timeout=1)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "the fast server did not start"
                time.sleep(0.1)
        yield url
    finally:
        server.terminate()  # by the pid this fixture started
        server.wait(timeout=10)


def test_a_busy_local_worker_gets_another(fast_server: str, tmp_path: Path) -> None:
    locustfile = tmp_path / "flood.py"
    locustfile.write_text(NO_WAIT, encoding="utf-8")
    argv = kubeswarm_argv(
        "run", "--local", "-f", str(locustfile), "-H", fast_server, "-u", "40", "-r", "40",
        "-t", "40s", "--workers", "auto", "--max-workers", "2", "--interval", "1s",
        "--out", str(tmp_path / "runs"),
    )  # fmt: skip
    done = subprocess.run(
        argv, check=False, capture_output=True, text=True, timeout=240, env=clean_env(), cwd=REPO
    )
    assert done.returncode in (0, 1), done.stderr  # an SLO may fail; the run itself must not
    directory = run_dir(tmp_path / "runs")
    marks = csv_rows(directory / "samples" / "marks.csv")
    added = [m for m in marks if m["kind"] == "workers_added"]
    # The policy replayed on the worker samples this run recorded: how busy the worker really was
    # depends on what else this machine runs, the decision on that record must not.
    due = first_addition(
        csv_rows(directory / "samples" / "workers.csv"),
        AutoWorkersPolicy(2, cooldown_s=LOCAL_WORKER_COOLDOWN_S),
    )
    if due is None:
        # Too busy a machine never lets one worker reach 85 % of a core: no addition is right.
        assert added == [], marks
        return
    assert [m["detail"] for m in added] == ["2 workers"], marks
    assert abs(float(added[0]["ts"]) - due) <= 2.0  # at the tick that saw the third hot sample
    # events go to stderr with the status lines when it is not a terminal
    assert "workers: worker " in done.stderr and "adding 1 worker(s), 2 in all" in done.stderr
    running = [r for r in csv_rows(directory / "samples" / "locust.csv") if r["state"] == "running"]
    assert max(int(r["worker_count"]) for r in running) == 2
