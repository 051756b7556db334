"""Unattended runs on a real node: `kubeswarm run --detach`, `list`, `attach`, `fetch`, a killed
launcher, a killed controller, and a CronJob fired by the real CronJob controller.

kubeswarm's own image (tests/realnode/images/build-kubeswarm.sh: the Locust image plus kubeswarm
from this checkout) runs all three roles. The node's API server listens on 127.0.0.1 only, so a
relay on the node's bridge address serves it to pods as `kubernetes.default` (`_inpod_api`).
Namespaces enforce Pod Security "restricted". Runs are 2 users for 30 s against the example
target in their own namespace; the test that runs four at once (three detached runs in three
namespaces and a scheduled one) overlaps them to keep the tier short.
"""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ._inpod_api import InPodApi
from ._node import RealNode
from ._workloads import (
    copy_locustfile,
    cri_containers,
    deploy_and_wait,
    example_target,
    get,
    kubeswarm_command,
    run_objects,
    ui_stats,
    wait_for,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]

HERE = Path(__file__).resolve().parent
HOST = "http://example-web:8080"
_PATHS = {
    "ServiceAccount": "/api/v1/namespaces/{ns}/serviceaccounts",
    "Role": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/roles",
    "RoleBinding": "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings",
    "ConfigMap": "/api/v1/namespaces/{ns}/configmaps",
    "CronJob": "/apis/batch/v1/namespaces/{ns}/cronjobs",
    "PersistentVolumeClaim": "/api/v1/namespaces/{ns}/persistentvolumeclaims",
}


@pytest.fixture(scope="module")
def image(realnode: RealNode) -> str:
    """kubeswarm's image, built once (cached by the hash of its sources) and imported."""
    proc = subprocess.run(
        ["bash", str(HERE / "images" / "build-kubeswarm.sh"), str(realnode.artifacts.images)],
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    tar = Path(proc.stdout.strip().splitlines()[-1])
    ref = (tar.parent / "kubeswarm.ref").read_text().strip()
    ctr = ["ctr", "--address", str(realnode.containerd_socket), "-n", "k8s.io"]
    imported = subprocess.run(
        [*ctr, "images", "import", str(tar)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr
    # Earlier builds' images in containerd's store (it lives in the cache): only this one stays.
    listed = subprocess.run(
        [*ctr, "images", "ls", "-q"], capture_output=True, text=True, check=True, timeout=60
    )
    old = [r for r in listed.stdout.split() if r.startswith("localhost/kubeswarm:") and r != ref]
    if old:
        subprocess.run([*ctr, "images", "rm", *old], capture_output=True, check=False, timeout=60)
    return ref


@pytest.fixture(scope="module")
def in_pod_api(realnode: RealNode) -> Iterator[InPodApi]:
    relay = InPodApi(realnode).start()
    try:
        yield relay
    finally:
        relay.close()


def _apply(node: RealNode, namespace: str, objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        path = _PATHS[obj["kind"]].format(ns=namespace)
        status, body = node.api(path, "POST", obj)
        assert status == 201, f"creating {obj['kind']}: HTTP {status}: {body}"


def _kubeswarm(
    node: RealNode, *args: str, timeout_s: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*kubeswarm_command(), *args, "--kubeconfig", str(node.kubeconfig)],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
        env={"NO_COLOR": "1", "PATH": "/usr/bin:/bin"},
    )


def _namespace(node: RealNode, image: str, created: list[str]) -> str:
    """A namespace enforcing Pod Security "restricted", with the shipped Role (render --rbac)
    and the example target."""
    name = f"ks-detach-{uuid.uuid4().hex[:6]}"
    labels = {f"pod-security.kubernetes.io/{m}": "restricted" for m in ("enforce", "warn")}
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
    status, resp = node.api("/api/v1/namespaces", "POST", body)
    assert status == 201, resp
    created.append(name)
    wait_for(
        f"the default ServiceAccount of {name}",
        lambda: node.api(f"/api/v1/namespaces/{name}/serviceaccounts/default")[0] == 200,
        60,
        0.2,
    )
    rbac = _kubeswarm(node, "render", "--rbac", "-n", name)
    assert rbac.returncode == 0, rbac.stderr
    _apply(node, name, [o for o in yaml.safe_load_all(rbac.stdout) if o])
    deploy_and_wait(node, name, example_target(hpa=False))
    return name


def _results_volume(node: RealNode, namespace: str, directory: Path, created: list[str]) -> str:
    """A hostPath PersistentVolume bound to a claim in `namespace` (the node is this machine:
    the test reads the volume's directory directly)."""
    directory.mkdir(parents=True)
    directory.chmod(0o777)  # the controller runs as uid 1000
    pv = f"ks-detach-{uuid.uuid4().hex[:6]}"
    status, body = node.api(
        "/api/v1/persistentvolumes",
        "POST",
        {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {"name": pv},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "hostPath": {"path": str(directory), "type": "Directory"},
            },
        },
    )
    assert status == 201, body
    created.append(pv)
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "kubeswarm-results"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "",
            "volumeName": pv,
            "resources": {"requests": {"storage": "1Gi"}},
        },
    }
    _apply(node, namespace, [claim])
    return "kubeswarm-results"


@pytest.fixture
def cluster_objects(realnode: RealNode) -> Iterator[tuple[list[str], list[str]]]:
    """Namespaces and PersistentVolumes a test creates, deleted afterwards."""
    namespaces: list[str] = []
    volumes: list[str] = []
    try:
        yield namespaces, volumes
    finally:
        for name in namespaces:
            realnode.api(f"/api/v1/namespaces/{name}", "DELETE")
        for name in volumes:
            realnode.api(f"/api/v1/persistentvolumes/{name}", "DELETE")


def _detach_args(
    node: RealNode, image: str, namespace: str, locustfile: Path, *extra: str
) -> list[str]:
    return [
        *kubeswarm_command(),
        "run",
        "--detach",
        "--kubeconfig",
        str(node.kubeconfig),
        "-n",
        namespace,
        "--image",
        image,
        "-f",
        str(locustfile),
        "-H",
        HOST,
        "-u",
        "2",
        "-r",
        "2",
        "--master-cpu",
        "100m",
        "--master-memory",
        "256Mi",
        "--worker-cpu",
        "100m",
        "--worker-memory",
        "256Mi",
        "--autoquit",
        "10s",
        "--watch",
        "deployment/example-web",
        "--slo",
        "error_rate<50%",
        *extra,
    ]


def _list(node: RealNode, namespace: str) -> dict[str, list[str]]:
    """`kubeswarm list`'s detached runs: run id -> [state, verdict, note...]."""
    proc = _kubeswarm(node, "list", "-n", namespace)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("DETACHED RUN", 1)[-1].splitlines()[1:]
    return {line.split()[0]: line.split()[1:] for line in lines if line.strip()}


def _wait_state(
    node: RealNode, namespace: str, run_id: str, states: set[str], timeout_s: float
) -> list[str]:
    found: list[str] = []

    def reached() -> bool:
        found[:] = _list(node, namespace).get(run_id, [])
        return bool(found) and found[0] in states

    wait_for(f"run {run_id} in {namespace} to be {'/'.join(sorted(states))}", reached, timeout_s, 3)
    return found


def _run_id(text: str) -> str:
    match = re.search(r"detached run (\S+) in namespace", text)
    assert match, text
    return match.group(1)


def _tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# The CronJob fires at whole minutes and its second run waits for the first (Forbid).
@pytest.mark.timeout(900)
def test_detached_runs_finish_without_their_launcher_and_a_cronjob_compares_its_runs(
    realnode: RealNode,
    image: str,
    in_pod_api: InPodApi,
    cluster_objects: tuple[list[str], list[str]],
    tmp_path: Path,
) -> None:
    namespaces, volumes = cluster_objects
    locustfile = copy_locustfile("health.py", tmp_path)
    ns = [_namespace(realnode, image, namespaces) for _ in range(3)]

    # The schedule first: the CronJob controller fires it at the next minute while the detached
    # runs go. An SLO no run can meet: each run FAILs, so each Job fails (what alerting watches).
    claim = _results_volume(realnode, ns[0], tmp_path / "volume", volumes)
    rendered = _kubeswarm(
        realnode,
        "render",
        "--cronjob",
        "--schedule",
        "* * * * *",
        "--rbac",
        "-n",
        ns[0],
        "--name",
        "nightly",
        "--results-pvc",
        claim,
        *_detach_args(realnode, image, ns[0], locustfile, "-t", "15s", "--slo", "p95_ms<0.001")[
            len(kubeswarm_command()) + 2 :
        ],
    )
    assert rendered.returncode == 0, rendered.stderr
    again = _kubeswarm(realnode, *rendered.args[len(kubeswarm_command()) :])
    assert again.stdout == rendered.stdout, "render --cronjob is byte-stable"
    cron_objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]
    _apply(realnode, ns[0], cron_objects)

    # Three detached runs at once; the first launcher is killed as soon as it has said its run id.
    logs = [tmp_path / f"launcher-{i}.log" for i in range(3)]
    launchers = []
    started = time.monotonic()
    for i, namespace in enumerate(ns):
        args = _detach_args(
            realnode, image, namespace, locustfile, "-t", "30s", "--name", f"shop{i}"
        )
        with logs[i].open("wb") as log:
            launchers.append(subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT))
    wait_for(
        "the first launcher to name its run", lambda: "detached run" in logs[0].read_text(), 60, 0.2
    )
    launchers[0].send_signal(signal.SIGKILL)
    launchers[0].wait()
    returned_s = []
    for proc in launchers[1:]:
        assert proc.wait(timeout=180) == 0
        returned_s.append(time.monotonic() - started)
    runs = [_run_id(log.read_text()) for log in logs]
    print(f"detach returned after {', '.join(f'{s:.1f}s' for s in returned_s)}")
    for i in (1, 2):
        text = logs[i].read_text()
        assert f"kubeswarm fetch {runs[i]}" in text
        state = _list(realnode, ns[i])[runs[i]][0]
        assert state in ("starting", "running"), f"detach returned while the run goes: {state}"

    follow = _kubeswarm(realnode, "attach", runs[1], "-n", ns[1], timeout_s=400)
    assert follow.returncode == 0, follow.stdout[-2000:] + follow.stderr
    assert "verdict: PASS" in follow.stdout, "attach showed the controller's lines to the end"
    assert f"run {runs[1]}: done, verdict pass" in follow.stdout

    for i, namespace in enumerate(ns):
        state, verdict, *_ = _wait_state(realnode, namespace, runs[i], {"done", "failed"}, 300)
        assert (state, verdict) == ("done", "pass"), f"{namespace}: {state} {verdict}"
        out = tmp_path / f"fetched-{i}"
        fetched = _kubeswarm(realnode, "fetch", runs[i], "-n", namespace, "--out", str(out))
        assert fetched.returncode == 0, fetched.stderr
        run = out / runs[i]
        record = json.loads((run / "run.json").read_text())
        assert record["namespace"] == namespace and record["status"] == "completed"
        summary = json.loads((run / "report" / "summary.json").read_text())
        assert summary["verdict"] == "pass"
        for name in (
            "samples/locust.csv",
            "samples/pods.csv",
            "locust/stats.csv",
            "report/report.html",
        ):
            assert (run / name).stat().st_size > 0, name
        assert len((run / "samples" / "locust.csv").read_text().splitlines()) > 5
        again_out = tmp_path / f"again-{i}"
        assert (
            _kubeswarm(
                realnode, "fetch", runs[i], "-n", namespace, "--out", str(again_out)
            ).returncode
            == 0
        )
        assert _tree(again_out / runs[i]) == _tree(run), "fetch returns the same bytes each time"
        # (the namespace of the schedule may hold its own run's objects meanwhile)
        left = [n for names in run_objects(realnode, namespace).values() for n in names]
        assert not [n for n in left if runs[i] in n], f"no Locust object of the run left: {left}"

    # `kubeswarm clean RUN` deletes a detached run: its status, and through it everything else.
    cleaned = _kubeswarm(realnode, "clean", runs[2], "-n", ns[2])
    assert cleaned.returncode == 0, cleaned.stderr
    assert f"ks-{runs[2]}-status" in cleaned.stdout

    def detached_gone() -> bool:
        selector = f"labelSelector=kubeswarm.io/detached-run%3D{runs[2]}"
        return not any(
            get(realnode, f"{path.format(ns=ns[2])}?{selector}")["items"]
            for path in (*_PATHS.values(), "/apis/batch/v1/namespaces/{ns}/jobs")
            if "cronjobs" not in path
        )

    wait_for("the cleaned run's objects to be gone", detached_gone, 60)
    assert runs[2] not in _list(realnode, ns[2])

    # The schedule: two runs fired by the real CronJob controller, the second compared with the
    # first, each Job failed by the FAIL verdict.
    jobs_path = f"/apis/batch/v1/namespaces/{ns[0]}/jobs"

    def two_cron_jobs_done() -> bool:
        jobs = get(realnode, jobs_path)["items"]
        done = [j for j in jobs if j["status"].get("failed") or j["status"].get("succeeded")]
        return len(done) >= 2

    wait_for("two runs of the CronJob", two_cron_jobs_done, 420, 5)
    realnode.api(f"/apis/batch/v1/namespaces/{ns[0]}/cronjobs/ks-cron-nightly", "DELETE")
    jobs = get(realnode, jobs_path)["items"]
    assert all(
        j["status"].get("failed")
        for j in jobs
        if j["status"].get("failed") or j["status"].get("succeeded")
    )
    kept = sorted(d for d in (tmp_path / "volume").iterdir() if d.name.endswith("-nightly"))
    assert len(kept) >= 2, kept
    first, second = kept[0], kept[1]
    summary = json.loads((second / "report" / "summary.json").read_text())
    assert summary["verdict"] == "fail"
    assert summary["comparison"]["baseline"]["run_id"] == first.name
    assert "comparison" not in json.loads((first / "report" / "summary.json").read_text())
    listed = _list(realnode, ns[0])
    assert listed[first.name][:2] == ["done", "fail"] and listed[second.name][:2] == [
        "done",
        "fail",
    ]


def test_killing_the_controller_stops_the_load_and_keeps_what_was_recorded(
    realnode: RealNode,
    image: str,
    in_pod_api: InPodApi,
    cluster_objects: tuple[list[str], list[str]],
    tmp_path: Path,
) -> None:
    namespaces, volumes = cluster_objects
    namespace = _namespace(realnode, image, namespaces)
    claim = _results_volume(realnode, namespace, tmp_path / "volume", volumes)
    locustfile = copy_locustfile("health.py", tmp_path)
    args = _detach_args(
        realnode, image, namespace, locustfile, "-t", "120s", "--results-pvc", claim
    )
    launched = subprocess.run(args, capture_output=True, text=True, timeout=180, check=False)
    assert launched.returncode == 0, launched.stdout + launched.stderr
    run_id = _run_id(launched.stdout)
    _wait_state(realnode, namespace, run_id, {"running"}, 120)
    samples = tmp_path / "volume" / run_id / "samples" / "locust.csv"

    def at_full_strength() -> bool:
        # Locust says "spawning" until its worker reports the users started, which a 100m worker
        # on a busy node can take several seconds to do: the UI is asked once the samples say
        # the run reached its 2 users.
        if not samples.is_file():
            return False
        rows = list(csv.DictReader(samples.read_text().splitlines()))
        return len(rows) > 4 and any(
            r["state"] == "running" and r["user_count"] == "2" for r in rows
        )

    wait_for("the run at its 2 users, in the samples on the volume", at_full_strength, 120)
    assert run_objects(realnode, namespace)["pods"], "the load runs"
    stats = ui_stats(realnode, namespace, run_id)
    assert stats["state"] == "running" and stats["user_count"] == 2, "kubeswarm ui serves it"

    pods = get(
        realnode,
        f"/api/v1/namespaces/{namespace}/pods?labelSelector=app.kubernetes.io/component=controller",
    )
    (controller,) = [p["metadata"]["name"] for p in pods["items"]]
    status, body = realnode.api(
        f"/api/v1/namespaces/{namespace}/pods/{controller}",
        "DELETE",
        {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0},
    )
    assert status == 200, body
    killed = time.monotonic()

    def load_gone() -> bool:
        return not any(run_objects(realnode, namespace).values()) and not cri_containers(
            realnode, namespace
        )

    wait_for("the Locust Jobs, pods and containers to be gone", load_gone, 120, 2)
    print(f"load gone {time.monotonic() - killed:.1f}s after the controller pod was deleted")
    _, *rest = _wait_state(realnode, namespace, run_id, {"failed"}, 120)
    assert "controller" in " ".join(rest), rest
    recorded = samples.read_text().splitlines()
    assert len(recorded) > 4, "what was recorded before the kill is kept on the volume"
    assert (tmp_path / "volume" / run_id / "run.json").is_file()
