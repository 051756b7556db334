"""The Kubernetes adapter against a real HTTP server on 127.0.0.1: retries, error mapping, proxy."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ClusterError, NotFound, PermissionDenied, UsageError
from harness.kube.api import RetryPolicy, proxy_path
from harness.kube.client import KubeClient, connect

from ._fake_apiserver import FakeApiServer, Scripted, running, write_kubeconfig

pytestmark = pytest.mark.unit

PODS = "/api/v1/namespaces/team/pods"


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with running(FakeApiServer()) as server:
        yield server


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def kube(fake: FakeApiServer, tmp_path: Path, sleeps: list[float]) -> Iterator[KubeClient]:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url)
    client = connect(kubeconfig, environ={}, retry=RetryPolicy(attempts=3, timeout_s=2.0))
    client.sleep = sleeps.append
    client.rng = random.Random(7)
    try:
        yield client
    finally:
        client.close()


def test_connect_reads_context_namespace_and_sends_the_token(
    kube: KubeClient, fake: FakeApiServer
) -> None:
    assert kube.namespace == "team"
    assert kube.connection.context == "fake"
    assert kube.list_objects("Pod") == []
    assert fake.requests[-1].headers["authorization"] == "Bearer test-token"


def test_namespace_flag_beats_the_context(fake: FakeApiServer, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", fake.url)
    client = connect(kubeconfig, namespace="other", environ={})
    assert client.namespace == "other"
    client.close()


def test_missing_kubeconfig_and_unknown_context_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        connect(tmp_path / "nope", environ={})
    with pytest.raises(UsageError, match="no kubeconfig"):
        connect(None, environ={"HOME": str(tmp_path)})
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9", extra_context="prod")
    with pytest.raises(UsageError, match=r"context 'staging' is not in .*contexts: fake, prod"):
        connect(kubeconfig, context="staging", environ={})


def test_kubeconfig_from_the_environment(fake: FakeApiServer, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", fake.url, namespace="envns")
    client = connect(None, environ={"KUBECONFIG": str(kubeconfig)})
    assert client.namespace == "envns"
    client.close()


def test_503_and_429_are_retried_with_backoff(
    kube: KubeClient, fake: FakeApiServer, sleeps: list[float]
) -> None:
    fake.script(
        PODS,
        Scripted(503, {"message": "etcd leader changed"}),
        Scripted(429, {"message": "slow down"}, headers={"Retry-After": "2"}),
    )
    assert kube.list_objects("Pod") == []
    assert len(fake.seen("GET", PODS)) == 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 0.5
    assert sleeps[1] >= 2.0  # Retry-After is honoured


def test_gives_up_after_the_attempts_naming_the_server(
    kube: KubeClient, fake: FakeApiServer
) -> None:
    fake.script(PODS, *[Scripted(500, {"message": "boom"})] * 3)
    with pytest.raises(
        ClusterError,
        match=r"list pods in namespace team failed 3 times on "
        r"http://127\.0\.0\.1:\d+; last: 500: boom",
    ):
        kube.list_objects("Pod")


def test_a_slow_answer_is_a_timeout_and_retried(kube: KubeClient, fake: FakeApiServer) -> None:
    fake.script(PODS, Scripted(200, {"items": []}, delay_s=3.0))
    assert kube.list_objects("Pod") == []
    assert len(fake.seen("GET", PODS)) == 2


def test_connection_refused_is_retried_then_reported(tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", "http://127.0.0.1:9")
    client = connect(kubeconfig, environ={}, retry=RetryPolicy(attempts=2, base_delay_s=0.01))
    with pytest.raises(ClusterError, match=r"failed 2 times .*Connection refused|failed 2 times"):
        client.list_objects("Pod")
    assert client.calls == 2
    client.close()


def test_403_names_the_verb_resource_and_namespace(kube: KubeClient, fake: FakeApiServer) -> None:
    message = (
        'jobs.batch is forbidden: User "ci" cannot create resource "jobs" in API group '
        '"batch" in the namespace "team"'
    )
    fake.script("/apis/batch/v1/namespaces/team/jobs", Scripted(403, {"message": message}))
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}}
    with pytest.raises(
        PermissionDenied,
        match=r"may not create jobs\.batch x in namespace team "
        r"\(403 Forbidden\); grant it with the Role",
    ):
        kube.create(job)
    assert len(fake.seen("POST", "/apis/batch")) == 1  # a 403 is not retried


def test_admission_refusal_keeps_the_servers_reason(kube: KubeClient, fake: FakeApiServer) -> None:
    fake.script(
        "/api/v1/namespaces/team/pods",
        Scripted(
            403,
            {
                "message": 'pods "p" is forbidden: violates PodSecurity '
                '"restricted:latest": privileged'
            },
        ),
    )
    with pytest.raises(PermissionDenied, match="violates PodSecurity"):
        kube.create({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})


def test_404_is_not_found_and_delete_of_a_missing_object_is_fine(kube: KubeClient) -> None:
    with pytest.raises(NotFound, match=r"horizontalpodautoscalers\.autoscaling web in namespace"):
        kube.get("HorizontalPodAutoscaler", "web")
    assert kube.delete("Job", "gone") is False


def test_metrics_api_404_degrades_with_one_warning(kube: KubeClient, fake: FakeApiServer) -> None:
    warnings: list[str] = []
    kube.warn = warnings.append
    path = "/apis/metrics.k8s.io/v1beta1/namespaces/team/pods"
    fake.script(path, Scripted(404, {"message": "not found"}), Scripted(404, {"message": "x"}))
    assert kube.list_pod_metrics("team", "app=web") is None
    assert kube.list_pod_metrics("team", "app=web") is None
    assert len(warnings) == 1 and "replicas only" in warnings[0]
    fake.metrics_api = False
    assert kube.metrics_api_available() is False


def test_create_delete_use_background_propagation(kube: KubeClient, fake: FakeApiServer) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "labels": {"a": "b"}}}
    created = kube.create(job)
    assert created["metadata"]["uid"]
    assert [o["metadata"]["name"] for o in kube.list_objects("Job", label_selector="a=b")] == ["j"]
    assert kube.delete("Job", "j") is True
    delete = fake.seen("DELETE", "/apis/batch/v1/namespaces/team/jobs/j")[0]
    assert b'"propagationPolicy": "Background"' in delete.body


def test_a_retried_create_that_landed_returns_the_object(
    kube: KubeClient, fake: FakeApiServer
) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j", "labels": {"r": "1"}}}
    fake.add("/apis/batch/v1/namespaces/team/jobs", dict(job))  # the first attempt landed
    assert kube.create(job)["metadata"]["name"] == "j"


def test_access_review(kube: KubeClient, fake: FakeApiServer) -> None:
    fake.denied.add("get services/proxy")
    assert kube.can_i("create", "jobs", "team", group="batch") is True
    assert kube.can_i("get", "services", "team", subresource="proxy") is False


def test_proxy_path_keeps_colon_and_slashes() -> None:
    assert (
        proxy_path("team", "ks-run-master", 8089, "/stats/requests")
        == "/api/v1/namespaces/team/services/ks-run-master:8089/proxy/stats/requests"
    )
    with pytest.raises(UsageError):
        proxy_path("Team", "x", 1)


def test_proxy_get_and_post_reach_the_service_path(kube: KubeClient, fake: FakeApiServer) -> None:
    def backend(seen: object) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": "text/plain"}, b"hello"

    fake.proxy = backend
    assert kube.proxy("GET", "team", "svc", 8089, "/stats/requests/csv?x=1") == b"hello"
    assert kube.proxy("POST", "team", "svc", 8089, "/swarm", form={"user_count": "5"}) == b"hello"
    get, post = fake.requests[-2:]
    assert get.path == "/api/v1/namespaces/team/services/svc:8089/proxy/stats/requests/csv"
    assert get.query == {"x": ["1"]}
    assert post.body == b"user_count=5"
    assert post.headers["content-type"] == "application/x-www-form-urlencoded"


def test_proxy_without_endpoints_is_a_cluster_error(kube: KubeClient, fake: FakeApiServer) -> None:
    path = "/api/v1/namespaces/team/services/svc:8089/proxy/stats/requests"
    fake.script(
        path,
        *[Scripted(503, {"kind": "Status", "message": 'no endpoints available for service "svc"'})]
        * 2,
    )
    with pytest.raises(ClusterError, match="no endpoints available"):
        kube.proxy("GET", "team", "svc", 8089, "/stats/requests")
