"""``--chaos`` on the cluster tier: real pod deletions through the API server, a real Deployment
controller replacing them, kwok making the replacements Ready, and the recovery measured from the
sampled readiness. (kwok runs no containers: errors under load are the real-node tier's.)"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from analysis.data import schema
from harness.config.chaos import parse_chaos
from harness.config.values import WatchTarget
from harness.kube.client import KubeClient

from ._controlplane import Cluster
from .test_kube_run import (
    RUN_KINDS,
    TimedLocust,
    create_target,
    make_config,
    read_csv,
    run_objects_left,
    run_with,
)

pytestmark = pytest.mark.cluster


def web_pods(kube: KubeClient, namespace: str, count: int, timeout_s: float = 60.0) -> set[str]:
    """The names of the Deployment's pods once ``count`` of them exist."""
    deadline = time.monotonic() + timeout_s
    while True:
        names = {p["metadata"]["name"] for p in kube.list_objects("Pod", namespace, "app=web")}
        if len(names) >= count:
            return names
        assert time.monotonic() < deadline, f"{len(names)} of {count} web pods after {timeout_s}s"
        time.sleep(0.5)


def test_pod_delete_is_replaced_by_the_deployment_and_the_recovery_is_measured(
    cluster: Cluster,
    kube: KubeClient,
    namespace: str,
    tmp_path: Path,
) -> None:
    if not cluster.simulated:
        pytest.skip("deletes pods of a kwok Deployment of its own")
    create_target(kube, namespace, replicas=2)
    before = web_pods(kube, namespace, 2)
    config = make_config(
        tmp_path,
        namespace,
        watch=(WatchTarget("hpa", "web"),),
        chaos=(parse_chaos("pod-delete@6s"),),
    )
    result = run_with(config, kube, TimedLocust(workers=2, run_s=30.0))

    marks = [m for m in read_csv(result.run_dir, schema.MARKS) if m["kind"] == "chaos"]
    assert len(marks) == 1 and "pod-delete" in marks[0]["detail"]
    summary = json.loads((result.run_dir / "report" / "summary.json").read_text())
    (disruption,) = summary["disruptions"]
    (hit,) = disruption["pods"]
    assert hit in before
    # The Deployment replaced it: a web pod the run did not start with, and the one hit gone.
    after = {p["metadata"]["name"] for p in kube.list_objects("Pod", namespace, "app=web")}
    assert hit not in after and after - before
    assert disruption["recovered"] is True
    assert disruption["recovery_s"] is not None and 0 <= disruption["recovery_s"] < 25
    assert disruption["ready_before"] == 2
    assert run_objects_left(kube, namespace) == {kind: [] for kind in RUN_KINDS}
