"""``kubeswarm ui``: the local reverse proxy in front of the API server's service proxy."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from harness.errors import UsageError
from harness.kube.api import proxy_path
from harness.kube.client import KubeClient
from harness.kube.uiproxy import UiProxy, Upstream, serve_ui

from ._fake_apiserver import FakeApiServer, Seen, running, write_kubeconfig

pytestmark = pytest.mark.unit

NS = "team"
SERVICE = "ks-20250101-120000-smoke-master"
PREFIX = proxy_path(NS, SERVICE, 8089, "/")


def locust_behind_the_proxy(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    """What the API server returns for the master's web port."""
    path = seen.path[len(PREFIX) - 1 :]
    if path == "/":
        return 200, {"Content-Type": "text/html"}, b'<script src="./assets/index.js"></script>'
    if path == "/stats/requests/csv":
        return (
            200,
            {"Content-Type": "text/csv", "Content-Disposition": "attachment;filename=requests.csv"},
            b"Type,Name\n",
        )
    if path == "/swarm" and seen.method == "POST":
        return (
            200,
            {"Content-Type": "application/json"},
            b'{"success": true, "got": "' + seen.body + b'"}',
        )
    if path == "/old":
        return 302, {"Location": PREFIX + "new"}, b""
    return 404, {"Content-Type": "text/plain"}, b"not found"


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[KubeClient, FakeApiServer]]:
    from harness.kube.client import connect

    with running(FakeApiServer(proxy=locust_behind_the_proxy)) as fake:
        client = connect(write_kubeconfig(tmp_path / "kc", fake.url, namespace=NS), environ={})
        try:
            yield client, fake
        finally:
            client.close()


def test_the_ui_its_assets_csv_downloads_and_start_work(
    kube: tuple[KubeClient, FakeApiServer],
) -> None:
    client, fake = kube
    with UiProxy(Upstream(client, NS, SERVICE)) as proxy, requests.Session() as browser:
        assert proxy.url.startswith("http://127.0.0.1:")
        page = browser.get(proxy.url, timeout=10)
        assert page.status_code == 200 and "./assets/index.js" in page.text
        csv = browser.get(proxy.url + "stats/requests/csv", timeout=10)
        assert csv.headers["Content-Disposition"] == "attachment;filename=requests.csv"
        assert csv.content == b"Type,Name\n"
        form = {"user_count": "10", "spawn_rate": "2", "host": "http://web"}
        started = browser.post(proxy.url + "swarm", data=form, timeout=10)
        assert b"user_count=10&spawn_rate=2&host=http%3A%2F%2Fweb" in started.content
        # A link the API server rewrote to its own prefix still works.
        rewritten = browser.get(proxy.url.rstrip("/") + PREFIX + "stats/requests/csv", timeout=10)
        assert rewritten.content == b"Type,Name\n"
        moved = browser.get(proxy.url + "old", timeout=10, allow_redirects=False)
        assert (moved.status_code, moved.headers["Location"]) == (302, "/new")
        assert browser.get(proxy.url + "nope", timeout=10).status_code == 404  # Locust's own
    post = fake.seen("POST", PREFIX)[0]
    assert post.path == PREFIX + "swarm"


def test_serve_ui_picks_the_running_run_and_prints_the_address(
    kube: tuple[KubeClient, FakeApiServer],
) -> None:
    client, fake = kube
    run_id = "20250101-120000-smoke"
    fake.add(
        f"/apis/batch/v1/namespaces/{NS}/jobs",
        {
            "metadata": {
                "name": SERVICE,
                "namespace": NS,
                "creationTimestamp": "2025-01-01T12:00:00Z",
                "labels": {"kubeswarm.io/run": run_id, "app.kubernetes.io/component": "master"},
            },
            "status": {"active": 1},
        },
    )
    fake.add(f"/api/v1/namespaces/{NS}/services", {"metadata": {"name": SERVICE}})
    out, stop = io.StringIO(), threading.Event()
    stop.set()  # serve, print, and return at once
    assert serve_ui(client, NS, None, port=0, open_browser=False, out=out, stop=stop) == run_id
    assert f"Locust web UI of {run_id}: http://127.0.0.1:" in out.getvalue()
    with pytest.raises(UsageError, match="no single run 'other'"):
        serve_ui(client, NS, "other", port=0, open_browser=False, out=out, stop=stop)


def test_the_api_servers_own_404_after_a_run_ended_is_said_in_words() -> None:
    from harness.kube.uiproxy import _api_server_status

    gone = b'{"kind":"Status","apiVersion":"v1","status":"Failure","code":404}'
    text = _api_server_status(404, gone)
    assert text is not None and b"this run has ended" in text
    not_ready = b'{"kind": "Status", "code": 503, "message": "no endpoints available"}'
    assert b"not ready yet" in (_api_server_status(503, not_ready) or b"")
    # Locust's own 404 (a page it does not have) is passed through untouched.
    assert _api_server_status(404, b"<html>Not Found</html>") is None
    assert _api_server_status(200, gone) is None
