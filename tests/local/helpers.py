"""What the local end-to-end tests share: running kubeswarm as a real process, finding its run."""

from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parents[2]


def kubeswarm_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "harness", *args]


def run_dir(out: Path) -> Path:
    """The one run directory kubeswarm wrote under ``out``."""
    runs = [p for p in out.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def run_json(directory: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((directory / "run.json").read_text(encoding="utf-8"))
    return data


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def alive(pids: list[int]) -> list[int]:
    """Processes of these ids that still run (zombies of this test process do not count)."""
    living = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                living.append(pid)
        except psutil.NoSuchProcess:
            pass
    return living


def descendants_alive(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    """Waits up to ``timeout_s`` for the processes to go; returns those still there."""
    deadline = time.monotonic() + timeout_s
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive(pids)


def clean_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("KUBESWARM_USERS", None)
    return env
