"""The wheel carries the locustfiles and manifests that kubeswarm needs at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.local.helpers import REPO

pytestmark = pytest.mark.local


def test_wheel_ships_locustfiles_and_manifests(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--quiet",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("kubeswarm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for shipped in sorted((REPO / "locustfiles").glob("*.py")):
        assert f"harness/_data/locustfiles/{shipped.name}" in names
    manifests = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "k8s-jobs").rglob("*.yaml"))
    assert manifests, "k8s-jobs/ has no manifests"
    for manifest in manifests:
        assert f"harness/_data/{manifest}" in names
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    scripts = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "kubeswarm = harness.cli:main" in scripts
    assert "kubectl-swarm = harness.cli:main" in scripts
