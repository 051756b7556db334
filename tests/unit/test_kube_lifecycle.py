"""The in-cluster lifecycle against the fake API server and a scripted Locust master.

The Locust side is a ``Transport`` that answers ``/stats/requests`` from a script (or raises, like
a master behind a proxy without endpoints); everything Kubernetes goes over real HTTP to the fake
API server, so creation order, ownerReferences, cleanup and the messages are what a cluster sees.
"""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from analysis.data import schema
from harness.backends.cluster import Problem, pod_problems
from harness.cli.reporter import PlainReporter
from harness.config.options import OPTIONS, merge_sources
from harness.config.run import RunConfig, build_run_config
from harness.errors import LoadGeneratorError, UsageError
from harness.kube.client import KubeClient
from harness.locust_api import Transport
from harness.modes import launch
from harness.modes.cluster import ClusterMode

from ._fake_apiserver import FakeApiServer, client_of, running

pytestmark = pytest.mark.unit

NS = "team"
STATS_HISTORY = ",".join(schema.LOCUST_STATS_HISTORY_COLUMNS) + "\n"


def stats(state: str, workers: int, users: int = 0) -> dict[str, Any]:
    return {
        "state": state,
        "user_count": users,
        "worker_count": workers,
        "current_rps": 10.0,
        "current_fail_per_sec": 0.0,
        "fail_ratio": 0.0,
        "stats": [],
        "errors": [],
        "current_response_time_percentiles": {
            "response_time_percentile_0.5": 5,
            "response_time_percentile_0.95": 9,
        },
    }


class ScriptedLocust:
    """A Locust master as seen through the proxy: each GET /stats/requests takes the next answer
    (a dict, an exception to raise, or None for "not reachable"); the last one repeats."""

    def __init__(self, answers: list[dict[str, Any] | BaseException | None]) -> None:
        self.answers = answers
        self.posts: list[str] = []
        self.gets: list[str] = []

    def get(self, path: str, timeout_s: float) -> bytes:
        self.gets.append(path)
        if path != "/stats/requests":
            if path == "/stats/requests_full_history/csv":
                return STATS_HISTORY.encode()
            return b"csv for " + path.encode()
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        if answer is None:
            raise LoadGeneratorError("503 no endpoints available")
        return json.dumps(answer).encode()

    def post(self, path: str, form: Mapping[str, str], timeout_s: float) -> bytes:
        self.posts.append(path)
        return b"{}"


@pytest.fixture
def fake() -> Iterator[FakeApiServer]:
    with running(FakeApiServer()) as server:
        server.add("/api/v1/namespaces", {"metadata": {"name": NS}})
        yield server


@pytest.fixture
def kube(fake: FakeApiServer, tmp_path: Path) -> Iterator[KubeClient]:
    with client_of(fake, tmp_path / "kc", NS) as client:
        yield client


def make_config(tmp_path: Path, **overrides: Any) -> RunConfig:
    locustfile = tmp_path / "smoke.py"
    locustfile.write_text(
        "from locust import HttpUser, task\n\n\n"
        "class Smoke(HttpUser):\n"
        "    @task\n"
        "    def index(self) -> None:\n"
        '        self.client.get("/")\n',
        encoding="utf-8",
    )
    values = merge_sources({}, {}, None, tuple(OPTIONS))
    values.update(
        locustfile=locustfile,
        host="http://web.team:8080",
        out_dir=tmp_path / "runs",
        namespace=NS,
        run_time_s=5.0,
        workers=2,
    )
    config = build_run_config(values)
    return dataclasses.replace(config, sample_interval_s=0.05, **overrides)


def run(
    config: RunConfig, kube: KubeClient, locust: ScriptedLocust, timeout_s: float = 5.0
) -> tuple[Any, str]:
    """The run's result and every line it said (info, events, status)."""
    out, err = io.StringIO(), io.StringIO()

    def transport(_kube: KubeClient, _namespace: str, _service: str) -> Transport:
        return locust

    result = launch(
        ClusterMode(kube=kube, transport=transport, startup_timeout=timeout_s),
        config,
        PlainReporter(out, err),
    )
    return result, out.getvalue() + err.getvalue()


def created(fake: FakeApiServer) -> list[dict[str, Any]]:
    return [
        json.loads(r.body)
        for r in fake.requests
        if r.method == "POST" and not r.path.endswith("accessreviews")
    ]


def remaining(fake: FakeApiServer) -> list[str]:
    return [
        name
        for path, objs in fake.objects.items()
        for name in objs
        if path.startswith(f"/api/v1/namespaces/{NS}/") or "/apis/batch" in path
        if "/pods" not in path and "/events" not in path
    ]


def test_a_run_creates_master_first_owns_the_rest_fetches_and_cleans_up(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    locust = ScriptedLocust(
        [
            None,
            stats("ready", 1),
            stats("ready", 2),
            stats("spawning", 2, 5),
            stats("running", 2, 10),
            stats("stopped", 2),
        ]
    )
    result, out = run(make_config(tmp_path), kube, locust)
    objects = created(fake)
    assert [o["kind"] for o in objects] == ["Job", "ConfigMap", "Service", "NetworkPolicy", "Job"]
    master_name = objects[0]["metadata"]["name"]
    for obj in objects[1:]:
        (owner,) = obj["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"]) == ("Job", master_name)
        assert owner["uid"]
    assert "ownerReferences" not in objects[0]["metadata"]
    assert remaining(fake) == []  # everything deleted ...
    deletes = [r for r in fake.requests if r.method == "DELETE"]
    assert deletes and all(b"Background" in r.body for r in deletes)  # ... with its pods
    assert result.status == "completed"
    run_dir = result.run_dir
    assert json.loads((run_dir / "run.json").read_text())["status"] == "completed"
    assert (run_dir / "locust" / "stats_history.csv").read_text() == STATS_HISTORY
    marks = (run_dir / "samples" / "marks.csv").read_text()
    assert "test_start" in marks and "spawn_complete" in marks and "test_stop" in marks
    assert f"kubeswarm ui {run_dir.name} -n {NS}" in out
    assert not [r for r in fake.requests if r.path.endswith("/log")]  # no ramp: no log read


def test_workers_that_never_connect_name_the_pending_pod(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    config = make_config(tmp_path)
    fake.add(
        f"/api/v1/namespaces/{NS}/pods",
        {
            "metadata": {
                "name": "ks-x-worker-abcde",
                "namespace": NS,
                "labels": {"kubeswarm.io/run": "placeholder"},
            },
            "status": {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/3 nodes are available: 3 Insufficient cpu.",
                    }
                ],
            },
        },
    )

    def label_pods_with_the_run(seen: Any) -> None:
        for pod in fake.objects[f"/api/v1/namespaces/{NS}/pods"].values():
            pod["metadata"]["labels"]["kubeswarm.io/run"] = json.loads(seen.body)["metadata"][
                "labels"
            ]["kubeswarm.io/run"]

    original = fake.answer

    def answer(seen: Any) -> tuple[int, dict[str, str], bytes]:
        if seen.method == "POST" and seen.path.endswith("/jobs"):
            label_pods_with_the_run(seen)
        return original(seen)

    fake.answer = answer  # type: ignore[method-assign]
    with pytest.raises(
        LoadGeneratorError,
        match=r"did not start within 1s \(1 of 2 workers "
        r"connected\): pod ks-x-worker-abcde is Pending, not scheduled: 0/3 nodes "
        r"are available: 3 Insufficient cpu",
    ):
        run(config, kube, ScriptedLocust([stats("ready", 1)]), timeout_s=1.0)
    assert remaining(fake) == []
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


def test_pod_security_refusal_fails_fast(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    original = fake.answer

    def answer(seen: Any) -> tuple[int, dict[str, str], bytes]:
        if seen.method == "POST" and seen.path.endswith("/jobs"):
            name = json.loads(seen.body)["metadata"]["name"]
            fake.add(
                f"/api/v1/namespaces/{NS}/events",
                {
                    "metadata": {"name": f"{name}.1", "namespace": NS},
                    "involvedObject": {"kind": "Job", "name": name},
                    "type": "Warning",
                    "reason": "FailedCreate",
                    "message": 'Error creating: pods "x" is forbidden: violates PodSecurity '
                    '"restricted:latest": runAsNonRoot != true',
                },
            )
        return original(seen)

    fake.answer = answer  # type: ignore[method-assign]
    with pytest.raises(LoadGeneratorError, match=r"did not start at all .*violates PodSecurity"):
        run(make_config(tmp_path), kube, ScriptedLocust([None]), timeout_s=60.0)
    assert remaining(fake) == []


def test_ctrl_c_stops_the_test_fetches_and_cleans_up(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    locust = ScriptedLocust(
        [stats("ready", 2), stats("running", 2, 10), KeyboardInterrupt(), stats("stopped", 2)]
    )
    result, _ = run(make_config(tmp_path), kube, locust)
    assert result.status == "interrupted"
    assert locust.posts == ["/stop"]
    assert "/stats/report" in locust.gets  # results fetched after the interrupt
    assert remaining(fake) == []
    assert (result.run_dir / "report" / "summary.json").is_file()  # the partial report


def test_keep_leaves_the_objects(fake: FakeApiServer, kube: KubeClient, tmp_path: Path) -> None:
    locust = ScriptedLocust([stats("running", 2, 10), stats("stopped", 2)])
    run(make_config(tmp_path, keep=True), kube, locust)
    assert len(remaining(fake)) == 4


def test_missing_verbs_are_all_named_before_anything_is_created(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    fake.denied |= {"create jobs.batch", "get services/proxy"}
    with pytest.raises(
        UsageError,
        match=r"missing permission\(s\): create jobs\.batch in "
        r"namespace team; get services/proxy in namespace team",
    ):
        run(make_config(tmp_path), kube, ScriptedLocust([None]))
    assert created(fake) == []
    assert not (tmp_path / "runs").exists()


def test_unknown_hpa_is_bad_input(fake: FakeApiServer, kube: KubeClient, tmp_path: Path) -> None:
    from harness.config.values import WatchTarget

    config = make_config(tmp_path, watch=(WatchTarget("hpa", "web"),))
    with pytest.raises(UsageError, match=r"hpa/web not found in namespace team"):
        run(config, kube, ScriptedLocust([None]))
    assert created(fake) == []


def test_chaos_asks_for_delete_pods_where_the_watched_hpas_pods_are(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    """``--watch shop/hpa/web -n team --chaos``: the pods deleted are shop's, so ``delete pods``
    is checked in shop (granted in team is not enough), before anything is created."""
    from harness.config.chaos import parse_chaos
    from harness.config.values import WatchTarget

    fake.add("/api/v1/namespaces", {"metadata": {"name": "shop"}})
    fake.add(
        "/apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers",
        {
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}},
        },
    )
    fake.denied.add("delete pods in shop")
    config = make_config(
        tmp_path,
        watch=(WatchTarget("hpa", "web", "shop"),),
        chaos=(parse_chaos("pod-kill@2s"),),
    )
    with pytest.raises(UsageError, match=r"delete pods in namespace shop"):
        run(config, kube, ScriptedLocust([None]))
    assert created(fake) == []


def test_pod_problems_reads_waiting_reasons_and_failures() -> None:
    pods: list[dict[str, Any]] = [
        {
            "metadata": {"name": "m"},
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {
                        "name": "locust",
                        "state": {
                            "waiting": {
                                "reason": "ImagePullBackOff",
                                "message": "pull access denied",
                            }
                        },
                    }
                ],
            },
        },
        {
            "metadata": {"name": "w"},
            "status": {
                "phase": "Failed",
                "reason": "DeadlineExceeded",
                "message": "Pod was active too long",
            },
        },
        {
            "metadata": {"name": "ok"},
            "status": {
                "phase": "Pending",
                "containerStatuses": [
                    {"name": "locust", "state": {"waiting": {"reason": "ContainerCreating"}}}
                ],
            },
        },
    ]
    assert pod_problems(pods, []) == [
        Problem("pod w failed: DeadlineExceeded Pod was active too long", fatal=True),
        Problem("pod m, container locust: ImagePullBackOff: pull access denied"),
    ]


def test_a_failed_pip_install_is_fatal_and_says_where_pips_output_is() -> None:
    # As seen on a real node: the pod failed with no reason of its own, the init container
    # exited 1; the message must not end in "failed:" and must say what to look at.
    pod: dict[str, Any] = {
        "metadata": {"name": "ks-run-master-t58s5"},
        "status": {
            "phase": "Failed",
            "initContainerStatuses": [
                {
                    "name": "install-requirements",
                    "state": {"terminated": {"exitCode": 1, "reason": "Error"}},
                }
            ],
        },
    }
    problems = pod_problems([pod], [])
    assert problems[0] == Problem("pod ks-run-master-t58s5 failed", fatal=True)
    (pip,) = [p for p in problems if "install-requirements" in p.text]
    assert pip.fatal
    assert "kubectl logs ks-run-master-t58s5 -c install-requirements" in pip.text


def test_a_ramp_in_a_cluster_reads_its_steps_and_stop_from_the_master_pods_log(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path
) -> None:
    step = "kubeswarm ramp: step step=1 users=10: 10 users for 60 s"
    stop = (
        "kubeswarm ramp: stop reason=p95_ms step=2 users=20 observed=900 threshold=500: "
        "stopped at 20 users: p95 900 ms above 500 ms"
    )
    pods = f"/api/v1/namespaces/{NS}/pods"

    class MasterWithLog(ScriptedLocust):
        """Its pod appears when the test runs; the stop is logged when the test stops."""

        def get(self, path: str, timeout_s: float) -> bytes:
            answer = super().get(path, timeout_s)
            state = json.loads(answer).get("state") if path == "/stats/requests" else None
            if state == "running" and "master-0" not in fake.logs:
                job = next(o for o in created(fake) if o["kind"] == "Job")
                labels = job["spec"]["template"]["metadata"]["labels"]
                fake.add(pods, {"metadata": {"name": "master-0", "labels": labels}, "status": {}})
                fake.logs["master-0"] = (
                    "2026-12-02T10:00:00.5Z [2026-12-02 10:00:00,500] m/INFO/locust.main: ready\n"
                    f"2026-12-02T10:00:01.25Z [2026-12-02 10:00:01,250] m/INFO/ramp: {step}\n"
                )
            if state == "stopped":
                fake.logs["master-0"] += (
                    f"2026-12-02T10:01:02.123456789Z [2026-12-02 10:01:02,123] m/WARNING/ramp: "
                    f"{stop}\n"
                )
            return answer

    locust = MasterWithLog(
        [stats("ready", 2), stats("running", 2, 10), stats("running", 2, 20), stats("stopped", 2)]
    )
    result, out = run(make_config(tmp_path, shape="RampShape"), kube, locust)

    marks = (result.run_dir / "samples" / "marks.csv").read_text().splitlines()
    ramp_stops = [m for m in marks if ",ramp_stop," in m]
    assert len(ramp_stops) == 1 and stop in ramp_stops[0]
    assert ramp_stops[0].startswith("1796205662.123")  # the time the kubelet logged it
    assert out.count("ramp: 10 users for 60 s") == 1  # read twice, said once
    assert "ramp: stopped at 20 users" in out
    reads = fake.seen("GET", f"{pods}/master-0/log")
    assert len(reads) >= 2
    assert reads[0].query["container"] == ["locust"] and reads[0].query["timestamps"] == ["true"]
    assert "sinceSeconds" not in reads[0].query and "sinceSeconds" in reads[-1].query
