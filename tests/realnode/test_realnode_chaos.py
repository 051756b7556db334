"""`kubeswarm run --chaos` on a real node: real pods deleted and killed under load.

The example target runs two replicas (no HPA, so the Deployment controller alone replaces what
is hit) and serves a steady Locust load while kubeswarm deletes one pod gracefully and later
kills one. The test checks what a user would: the live lines and marks, that the pods hit are
gone and replaced, and that each disruption in summary.json has a measured recovery and the
requests of its window as Locust's own per-second history counts them. Load: 20 users at one
request per second each, 70 s, only to the Service in the test's namespace.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import pytest

from ._node import RealNode
from ._workloads import (
    EXAMPLE_HOST,
    copy_locustfile,
    deploy,
    example_target,
    finish,
    get,
    read_samples,
    run_args,
    run_dir,
    run_objects,
    start_run,
    summary,
    wait_for,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]

SELECTOR = "app.kubernetes.io/name=example-web"
REPLICAS = 2


def _web_pods(node: RealNode, namespace: str) -> list[dict[str, Any]]:
    path = f"/api/v1/namespaces/{namespace}/pods?labelSelector={SELECTOR}"
    pods: list[dict[str, Any]] = get(node, path)["items"]
    return pods


def _ready(pod: dict[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions") or []
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)


def _all_ready(node: RealNode, namespace: str) -> bool:
    pods = [p for p in _web_pods(node, namespace) if not p["metadata"].get("deletionTimestamp")]
    return len(pods) == REPLICAS and all(_ready(p) for p in pods)


def _cumulative(history: list[dict[str, str]], column: str, at: float) -> float:
    """Locust's cumulative count at time `at` (0 before its first row), as `kubectl`-free
    arithmetic on stats_history.csv: the last Aggregated row at or before `at`."""
    upto = [r for r in history if float(r["Timestamp"]) <= at and r[column] not in ("", "N/A")]
    return float(upto[-1][column]) if upto else 0.0


def test_pod_delete_and_pod_kill_under_load_are_measured(
    realnode: RealNode, namespace: str, tmp_path: Path
) -> None:
    deploy(realnode, namespace, example_target(replicas=REPLICAS, hpa=False))
    wait_for("both example-web replicas ready", lambda: _all_ready(realnode, namespace), 90)
    before = {p["metadata"]["name"] for p in _web_pods(realnode, namespace)}

    out = tmp_path / "runs"
    args = run_args(
        realnode,
        namespace,
        out,
        "-f",
        str(copy_locustfile("health.py", tmp_path)),
        "-H",
        EXAMPLE_HOST,
        "-u",
        "20",
        "-r",
        "20",
        "-t",
        "70s",
        "--workers",
        "1",
        "--watch",
        "deployment/example-web",
        "--interval",
        "2s",
        "--chaos",
        "pod-delete@20s",
        "--chaos",
        "pod-kill@40s",
        "--chaos-target",
        "deployment/example-web",
        # No recovery is that fast: the gate must fail, and only it.
        "--slo",
        "recovery_s<0.001",
    )
    log = tmp_path / "kubeswarm.log"
    code = finish(start_run(args, log), log, timeout_s=300)
    output = log.read_text()
    assert code == 1, f"a failed SLO gate exits 1:\n{output[-3000:]}"
    run = run_dir(out)
    report = summary(run)
    assert report["status"] == "completed", "the run itself succeeded"
    assert report["verdict"] == "fail"
    (slo,) = report["slos"]
    assert slo["expr"] == "recovery_s<0.001" and slo["passed"] is False
    assert slo["observed"] is not None and slo["observed"] > 0
    for name in ("stats.csv", "stats_history.csv"):
        assert (run / "locust" / name).stat().st_size > 0, f"locust/{name} fetched"

    marks = [m for m in read_samples(run, "marks.csv") if m["kind"] == "chaos"]
    assert [("pod-delete" in m["detail"], "pod-kill" in m["detail"]) for m in marks] == [
        (True, False),
        (False, True),
    ], f"one chaos mark per action, in order: {marks}"

    disruptions = report["disruptions"]
    assert [d["action"] for d in disruptions] == ["pod-delete", "pod-kill"]
    hit: list[str] = []
    for d in disruptions:
        assert d["skipped"] is None, d
        (pod,) = d["pods"]
        assert f"chaos {d['action']} {pod} at " in output, "a live line names the pod"
        assert d["target"] == f"{namespace}/deployment/example-web"
        assert d["ready_before"] == REPLICAS
        assert d["recovered"] is True, d
        assert d["recovery_s"] is not None and d["recovery_s"] > 0, d
        assert d["readiness_source"] == "samples/pods.csv"
        hit.append(pod)
    # The oldest ready pods are hit: first one original, then the other (not the replacement).
    assert hit[0] in before and hit[1] in before and hit[0] != hit[1], (hit, before)
    assert slo["observed"] == pytest.approx(max(d["recovery_s"] for d in disruptions), abs=0.11)

    # Requests in each window are Locust's own cumulative counts, not the sampler's estimate.
    with (run / "locust" / "stats_history.csv").open(encoding="utf-8") as f:
        history = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    for d in disruptions:
        assert d["load_source"] == "locust/stats_history.csv"
        lo, hi = d["ts"], d["ts"] + d["window_s"]
        requests = _cumulative(history, "Total Request Count", hi) - _cumulative(
            history, "Total Request Count", lo
        )
        failures = _cumulative(history, "Total Failure Count", hi) - _cumulative(
            history, "Total Failure Count", lo
        )
        assert d["requests"] == pytest.approx(requests, abs=1), d
        assert d["requests"] > 0, "the load went on during the disruption"
        assert d["failures"] == pytest.approx(failures, abs=1), d
        assert 0 <= d["failures"] <= d["requests"]
        assert "error_rate" in d and "error_rate_before" in d
        assert d["error_rate"] == pytest.approx(d["failures"] / d["requests"], abs=1e-5)

    # Errors are real here and may or may not happen; when a window saw more than the time
    # before it, the report must say so.
    codes = {(f["code"], f["subject"]) for f in report["findings"]}
    for d in disruptions:
        more = d["error_rate_before"] is None or d["error_rate"] > d["error_rate_before"]
        if d["failures"] and more:
            assert ("disruption_errors", f"{namespace}/example-web") in codes, report["findings"]
    if not any(d["failures"] for d in disruptions):
        assert all(code != "disruption_errors" for code, _ in codes)

    # As `kubectl get pods` would show it: both pods hit are gone, two replacements serve.
    wait_for("two ready example-web replicas", lambda: _all_ready(realnode, namespace), 60)
    after = {p["metadata"]["name"] for p in _web_pods(realnode, namespace)}
    assert not after & set(hit), f"the pods hit are gone: {after} vs {hit}"
    assert len(after - before) >= 2, f"the Deployment replaced them: {before} -> {after}"
    wait_for(
        "the run's objects to be gone",
        lambda: not any(run_objects(realnode, namespace).values()),
        60,
    )
