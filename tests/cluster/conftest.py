"""Fixtures of the cluster test tier.

`cluster` (session): the cluster the tests talk to. With `KUBESWARM_TEST_KUBECONFIG` set, that
kubeconfig's current context (a real cluster; nothing is started). Otherwise a local control plane
(`_controlplane.ControlPlane`: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
kwok, metrics-server), built once from Go modules into the cache and started for the session.

`namespace` (function): a fresh namespace per test, deleted afterwards.

The first run builds the control plane (tens of minutes on 2 cores; later runs reuse the cache).
The build runs right after collection, before any test, so it is not charged to a test's
timeout; its progress is printed. `bash tests/cluster/controlplane/build.sh` does it by hand.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from harness.kube.client import KubeClient, connect
from tests.controlplane.metrics_adapter import MetricsAdapter
from tests.controlplane.progress import terminal_line

from ._controlplane import Cluster, ControlPlane, ControlPlaneError, find_binaries

KUBECONFIG_ENV = "KUBESWARM_TEST_KUBECONFIG"
HERE = Path(__file__).resolve().parent

_build: dict[str, Path | str] = {}


def _wants_local_control_plane(session: pytest.Session) -> bool:
    if os.environ.get(KUBECONFIG_ENV):
        return False
    return any(Path(str(item.path)).is_relative_to(HERE) for item in session.items)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build (or find in the cache) the control plane before the first test runs."""
    if not _wants_local_control_plane(session):
        return
    try:
        _build["bin_dir"] = find_binaries(lambda line: terminal_line(session.config, line))
    except ControlPlaneError as err:
        # Reported by the `cluster` fixture, so each cluster test errors with the reason.
        _build["error"] = str(err)


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    given = os.environ.get(KUBECONFIG_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            pytest.fail(f"{KUBECONFIG_ENV}={given} is not a file", pytrace=False)
        yield Cluster(kubeconfig=path, simulated=False)
        return
    if "error" in _build:
        pytest.fail(f"cannot build the control plane: {_build['error']}", pytrace=False)
    bin_dir = _build.get("bin_dir")
    cp = ControlPlane(
        bin_dir=bin_dir if isinstance(bin_dir, Path) else None,
        progress=lambda line: terminal_line(request.config, line),
    )
    try:
        cp.start()
    except ControlPlaneError as err:
        pytest.fail(f"the control plane did not start: {err}", pytrace=False)
    try:
        yield Cluster(kubeconfig=cp.kubeconfig, simulated=True, control_plane=cp)
    finally:
        cp.stop()


@pytest.fixture(scope="session")
def api_client(cluster: Cluster) -> Iterator[client.ApiClient]:
    api: client.ApiClient = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(cluster.kubeconfig)
    )
    try:
        yield api
    finally:
        api.close()  # type: ignore[no-untyped-call]


@pytest.fixture
def namespace(api_client: client.ApiClient) -> Iterator[str]:
    core = client.CoreV1Api(api_client)
    name = f"kubeswarm-test-{uuid.uuid4().hex[:8]}"
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(name=name, labels={"kubeswarm.io/test": "cluster"})
        )
    )
    # Pods are refused until the namespace's default ServiceAccount exists.
    deadline = time.monotonic() + 60
    while True:
        try:
            core.read_namespaced_service_account("default", name)
            break
        except ApiException as err:
            if err.status != 404 or time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    try:
        yield name
    finally:
        try:
            core.delete_namespace(name, propagation_policy="Background")
        except ApiException as err:
            if err.status != 404:
                raise


@pytest.fixture
def kube(cluster: Cluster, namespace: str) -> Iterator[KubeClient]:
    """kubeswarm's own client, as admin, defaulting to the test's namespace."""
    admin = connect(cluster.kubeconfig, namespace=namespace, environ={})
    try:
        yield admin
    finally:
        admin.close()


@pytest.fixture(scope="session")
def metrics_adapter(cluster: Cluster) -> MetricsAdapter:
    """The custom/external metrics adapter, started on the local control plane at first use
    (tests that do not ask for it do not pay for it) and stopped with it."""
    if cluster.control_plane is None:
        pytest.skip("writes metric values into the local control plane's metrics adapter")
    try:
        return cluster.control_plane.start_metrics_adapter()
    except ControlPlaneError as err:
        pytest.fail(f"the metrics adapter did not start: {err}", pytrace=False)
