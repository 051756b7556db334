"""Fixtures of the real-node tier (marker `realnode`).

`realnode` (session): a real single-node cluster on this machine (`_node.RealNode`): the
cluster tier's control plane without kwok, plus containerd, runc, a real kubelet, kube-proxy,
CoreDNS and metrics-server. Needs root; Debian packages are installed when missing; binaries
and images are built once into the cache (right after collection, progress printed, so the
build is not charged to a test's timeout). On a machine that cannot run it (not root, no apt),
every test of the tier is skipped with the reason.

`host_before_node` (session): what the host looked like before the node started (after the
cleanup every start runs first), to compare with after a teardown.

`namespace` (function): a fresh namespace, deleted afterwards.

`processes` (function): a list to put started `kubeswarm` processes in; any still running when
the test ends (it failed half-way) is killed, so no run outlives its test.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.controlplane.progress import terminal_line

from ._node import Artifacts, RealNode, RealNodeError, RealNodeUnavailable, build, state_dir
from ._teardown import cleanup, footprint
from ._workloads import fresh_namespace

HERE = Path(__file__).resolve().parent
_build: dict[str, Artifacts | str] = {}


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find in the cache) binaries and images before the first test runs."""
    if not any(Path(str(item.path)).is_relative_to(HERE) for item in session.items):
        return
    try:
        _build["artifacts"] = build(lambda line: terminal_line(session.config, line))
    except RealNodeUnavailable as err:
        _build["unavailable"] = str(err)
    except RealNodeError as err:
        _build["error"] = str(err)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that take the node down (`realnode_crash`) run after every test that uses it."""
    last = [item for item in items if item.get_closest_marker("realnode_crash")]
    items[:] = [item for item in items if item not in last] + last


def _usable() -> None:
    if "unavailable" in _build:
        pytest.skip(f"this machine cannot run a real node: {_build['unavailable']}")
    if "error" in _build:
        pytest.fail(f"cannot build the real node: {_build['error']}", pytrace=False)


@pytest.fixture(scope="session")
def host_before_node() -> dict[str, object]:
    _usable()
    cleanup(state_dir(), None, lambda line: None, keep_dir=False)
    return footprint(state_dir())


@pytest.fixture(scope="session")
def realnode(
    request: pytest.FixtureRequest, host_before_node: dict[str, object]
) -> Iterator[RealNode]:
    _usable()
    artifacts = _build["artifacts"]
    assert isinstance(artifacts, Artifacts)
    node = RealNode(artifacts, progress=lambda line: terminal_line(request.config, line))
    try:
        node.start()
    except RealNodeError as err:
        node.stop()
        pytest.fail(f"the real node did not start: {err}", pytrace=False)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def namespace(realnode: RealNode) -> Iterator[str]:
    with fresh_namespace(realnode, "kubeswarm-realnode") as name:
        yield name


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
