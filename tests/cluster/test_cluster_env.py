"""``--env`` and ``--env-from`` against a real API server: the run's Secret is owned by the master
Job, reaches both Jobs' pods by envFrom, and goes when the Job goes (the real garbage collector);
a missing reference is refused before anything is created."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import pytest

from harness.config.env import EnvRef, EnvValue, RunEnv
from harness.errors import NotFound, UsageError
from harness.kube.client import KubeClient, connect
from harness.kube.manifests import RUN_LABEL, rbac_objects

from ._controlplane import Cluster
from .test_kube_run import (
    TimedLocust,
    make_config,
    run_objects_left,
    run_with,
    service_account_kubeconfig,
)

pytestmark = pytest.mark.cluster

TOKEN = "tok-3c1d5e7f9a0b"  # noqa: S105 - a made-up value the test looks for


def _run_secrets(kube: KubeClient, namespace: str) -> list[dict[str, Any]]:
    return [
        s
        for s in kube.list_objects("Secret", namespace, label_selector=RUN_LABEL)
        if s["metadata"]["name"].endswith("-env")
    ]


def test_the_run_secret_reaches_the_pods_and_goes_with_the_master_job(
    kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    kube.create(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "settings"},
            "data": {"REGION": "eu-west"},
        },
        namespace,
    )
    env = RunEnv((EnvValue("API_TOKEN", TOKEN),), (), (EnvRef("configmap", "settings"),))
    mid_run: dict[str, Any] = {}

    def look() -> None:
        mid_run["secrets"] = _run_secrets(kube, namespace)
        mid_run["jobs"] = kube.list_objects("Job", namespace, label_selector=RUN_LABEL)

    config = make_config(tmp_path, namespace, run_time_s=5.0, keep=True, env=env)
    result = run_with(config, kube, TimedLocust(workers=2, run_s=5.0, on_running=look))

    assert result.status == "completed"
    (secret,) = mid_run["secrets"]
    master = next(j for j in mid_run["jobs"] if j["metadata"]["name"].endswith("-master"))
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Job", master["metadata"]["uid"])
    assert base64.b64decode(secret["data"]["API_TOKEN"]).decode() == TOKEN
    for job in mid_run["jobs"]:
        (locust,) = job["spec"]["template"]["spec"]["containers"]
        assert locust["envFrom"] == [
            {"configMapRef": {"name": "settings"}},
            {"secretRef": {"name": secret["metadata"]["name"]}},
        ]
    written = [p for p in result.run_dir.rglob("*") if p.is_file()]
    assert not [p for p in written if TOKEN.encode() in p.read_bytes()]

    # --keep left it; deleting the master Job (as its TTL does) takes the Secret with it.
    assert _run_secrets(kube, namespace)
    kube.delete("Job", master["metadata"]["name"], namespace)
    deadline = time.monotonic() + 90
    while _run_secrets(kube, namespace) and time.monotonic() < deadline:
        time.sleep(1)
    assert _run_secrets(kube, namespace) == []
    with pytest.raises(NotFound):
        kube.get("Secret", secret["metadata"]["name"], namespace)
    assert kube.get("ConfigMap", "settings", namespace)  # the user's own object stays


def test_a_missing_reference_is_refused_before_anything_is_created(
    kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    env = RunEnv((EnvValue("API_TOKEN", TOKEN),), (), (EnvRef("secret", "db-credentials"),))
    config = make_config(tmp_path, namespace, env=env)
    with pytest.raises(UsageError, match="secret/db-credentials does not exist") as refused:
        run_with(config, kube, TimedLocust(workers=2, run_s=1.0))
    assert TOKEN not in str(refused.value)
    assert run_objects_left(kube, namespace) == {
        kind: [] for kind in ("Job", "Service", "ConfigMap", "NetworkPolicy")
    }
    assert _run_secrets(kube, namespace) == []


def test_the_shipped_role_with_env_from_reads_the_named_secret_and_no_other(
    cluster: Cluster, kube: KubeClient, namespace: str, tmp_path: Path
) -> None:
    for name in ("db-credentials", "other"):
        kube.create(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "data": {}},
            namespace,
        )
    for obj in rbac_objects(namespace, env_refs=[EnvRef("secret", "db-credentials")]):
        kube.create(obj, namespace)
    kubeconfig = service_account_kubeconfig(
        kube, cluster, namespace, "kubeswarm", tmp_path / "sa-kubeconfig"
    )
    as_sa = connect(kubeconfig, environ={})
    try:
        allowed = RunEnv((EnvValue("API_TOKEN", TOKEN),), (), (EnvRef("secret", "db-credentials"),))
        config = make_config(tmp_path, namespace, run_time_s=5.0, env=allowed)
        result = run_with(config, as_sa, TimedLocust(workers=2, run_s=3.0))
        assert result.status == "completed"
        assert _run_secrets(kube, namespace) == []  # created and deleted as the ServiceAccount

        other = RunEnv((), (), (EnvRef("secret", "other"),))
        with pytest.raises(UsageError, match="secret/other cannot be read"):
            run_with(make_config(tmp_path, namespace, env=other), as_sa, TimedLocust(2, 1.0))
    finally:
        as_sa.close()
