"""`kubeswarm ui` on a real node: the running test's Locust UI in a real (headless) browser.

The page, its scripts and its live stats all come through kubeswarm's local proxy and the API
server's service proxy from the real master pod; the browser gets no other network.
"""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import pytest

from ._node import RealNode
from ._workloads import (
    EXAMPLE_HOST,
    copy_locustfile,
    deploy_and_wait,
    example_target,
    finish,
    kubeswarm_ui,
    read_samples,
    run_args,
    run_dir,
    start_run,
    wait_for,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def test_ui_shows_the_running_test(
    realnode: RealNode, namespace: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    if not CHROMIUM.is_file():
        pytest.skip("Chromium is missing (scripts/ensure-chromium installs it)")
    deploy_and_wait(realnode, namespace, example_target(hpa=False))
    out = tmp_path / "runs"
    locustfile = str(copy_locustfile("health.py", tmp_path))
    args = run_args(realnode, namespace, out, "-f", locustfile, "-H", EXAMPLE_HOST)
    log = tmp_path / "run.log"
    run = start_run([*args, "-u", "3", "-r", "3", "-t", "5m", "--workers", "1"], log)
    processes.append(run)
    try:

        def running() -> bool:
            try:
                rows = read_samples(run_dir(out), "locust.csv")
            except (AssertionError, FileNotFoundError):
                return False
            return any(r["state"] == "running" and float(r["rps"] or 0) > 0 for r in rows)

        wait_for("Locust running", running, 120)
        run_id = run_dir(out).name
        with kubeswarm_ui(realnode, namespace, run_id) as address:
            dom = subprocess.run(
                [
                    str(CHROMIUM),
                    *FLAGS,
                    f"--user-data-dir={tmp_path / 'profile'}",
                    # Time for the page's scripts to fetch the stats and render them.
                    "--virtual-time-budget=15000",
                    "--dump-dom",
                    address,
                ],
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert dom.returncode == 0, dom.stderr[-2000:]
            html = dom.stdout
            assert "Aggregated" in html, f"the stats table rendered: {html[-2000:]}"
            assert re.search(r">\s*RUNNING\s*<", html, re.IGNORECASE), "the test shows as running"
    finally:
        run.send_signal(signal.SIGINT)
        finish(run, log, timeout_s=90)
