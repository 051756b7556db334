"""``--help`` of every command prints its usage and exits 0: the first thing a new user runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from harness.cli import COMMANDS

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("command", [None, *(c.name for c in COMMANDS)])
def test_help_of_every_command_prints_usage(command: str | None) -> None:
    argv = [sys.executable, "-m", "harness", *([command] if command else []), "--help"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: kubeswarm"), done.stdout[:200]
    assert "Traceback" not in done.stderr
    if command is not None:
        summary = next(c.summary for c in COMMANDS if c.name == command)
        # argparse folds the summary's white space; its first words stand under the usage.
        assert " ".join(summary.split()[:3]) in " ".join(done.stdout.split())
