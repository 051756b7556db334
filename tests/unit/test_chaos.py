"""``--chaos``: parsing and checking the flags, choosing pods, and deleting them through the fake
API server (real HTTP), with the mark and the line the user sees."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from analysis.data.chaosmark import parse_chaos_detail
from harness.actions.chaos import PodChaos, chaos_actions
from harness.actions.kube_pods import chaos_namespace
from harness.actions.pods import Victim, choose
from harness.config.chaos import ChaosSpec, check_chaos, parse_chaos, parse_chaos_target
from harness.config.options import merge_sources
from harness.config.values import WatchTarget
from harness.errors import UsageError
from harness.kube.client import KubeClient
from harness.kube.manifests import RUN_LABEL, rbac_objects
from harness.kube.preflight import preflight
from harness.session.core import TickContext

from ._fake_apiserver import FakeApiServer, client_of, running

pytestmark = pytest.mark.unit

NS = "shop"
NOW = 1_700_000_100.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pod-delete@30s", ChaosSpec("pod-delete", 1, 30.0)),
        ("pod-kill:2@1m", ChaosSpec("pod-kill", 2, 60.0)),
        ("pod-kill:3@90", ChaosSpec("pod-kill", 3, 90.0)),
    ],
)
def test_parse(text: str, expected: ChaosSpec) -> None:
    assert parse_chaos(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pod-explode@30s", "unknown action 'pod-explode'; use pod-delete, pod-kill"),
        ("pod-kill:0@30s", "COUNT must be 1 or more"),
        ("pod-kill:x@30s", "COUNT must be a whole number"),
        ("pod-kill", "is not ACTION[:COUNT]@WHEN"),
        ("pod-kill@soon", "WHEN: not a duration"),
    ],
)
def test_bad_specs(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        parse_chaos(text)


def test_flag_errors_are_one_line_usage_errors() -> None:
    with pytest.raises(UsageError, match=r"^--chaos: 'pod-kill:0@1s': COUNT must be 1 or more"):
        merge_sources({"chaos": ["pod-kill:0@1s"]}, {}, None, ("chaos",))


def test_render_takes_chaos_as_a_switch() -> None:
    assert merge_sources({"rbac_chaos": True}, {}, None, ("rbac_chaos",)) == {"rbac_chaos": True}


def test_when_past_the_run_time_is_refused() -> None:
    with pytest.raises(UsageError, match="90s is not before the end of the test"):
        check_chaos([parse_chaos("pod-kill@90s")], 60.0, None, local=False)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cmd/locust", "kubeswarm's own load generator"),
        ("hpa/web", "name the workload"),
    ],
)
def test_refused_targets(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_chaos_target(text)


def test_target_must_suit_the_mode() -> None:
    specs = [parse_chaos("pod-kill@1s")]
    with pytest.raises(UsageError, match="a local run disrupts local processes"):
        check_chaos(specs, 60.0, parse_chaos_target("deployment/web"), local=True)
    with pytest.raises(UsageError, match="a cluster run disrupts pods"):
        check_chaos(specs, 60.0, parse_chaos_target("cmd/gunicorn"), local=False)


def test_choose_oldest_ready_first_or_random() -> None:
    pods = [
        Victim("c", 30.0, True),
        Victim("a", 10.0, False),
        Victim("b", 20.0, True),
        Victim("d", None, True),
    ]
    assert [v.name for v in choose(pods, 2, "oldest", random.Random(1))] == ["b", "c"]
    assert [v.name for v in choose(pods, 9, "oldest", random.Random(1))] == ["b", "c", "d"]
    picked = choose(pods, 2, "random", random.Random(1))
    assert len(picked) == 2 and all(v.ready for v in picked)


# ---------------------------------------------------------------- against the fake API server


def _pod(
    name: str, created: str, ready: bool, owner: str = "web-5d8f", **labels: str
) -> dict[str, Any]:
    """A pod of Deployment ``web`` (its ReplicaSet ``web-5d8f`` owns it), unless ``owner`` says
    another ReplicaSet does."""
    return {
        "metadata": {
            "name": name,
            "namespace": NS,
            "creationTimestamp": created,
            "labels": {"app": "web", "pod-template-hash": owner.rsplit("-", 1)[1], **labels},
            "ownerReferences": [{"kind": "ReplicaSet", "name": owner, "controller": True}],
        },
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False"}]},
    }


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[FakeApiServer, KubeClient]]:
    with running(FakeApiServer()) as fake, client_of(fake, tmp_path / "kc", NS) as client:
        fake.add(
            f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers",
            {
                "metadata": {"name": "web-hpa", "namespace": NS},
                "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "web"}},
            },
        )
        fake.add(
            f"/apis/apps/v1/namespaces/{NS}/deployments",
            {
                "kind": "Deployment",
                "metadata": {"name": "web", "namespace": NS},
                "spec": {"selector": {"matchLabels": {"app": "web"}}},
            },
        )
        yield fake, client


def _tick(actions: list[Any], elapsed_s: float) -> Any:
    (action,) = actions
    return action.tick(TickContext(now=NOW, run_start=NOW - 90, test_start=NOW - elapsed_s))


def test_pod_kill_deletes_the_oldest_ready_pod_at_once(
    kube: tuple[FakeApiServer, KubeClient],
) -> None:
    fake, client = kube
    pods = f"/api/v1/namespaces/{NS}/pods"
    fake.add(pods, _pod("web-new", "2024-05-01T12:05:00Z", True))
    fake.add(pods, _pod("web-old", "2024-05-01T12:00:00Z", True))
    fake.add(pods, _pod("web-unready", "2024-05-01T11:00:00Z", False))
    fake.add(pods, _pod("ks-run-worker-x", "2024-05-01T10:00:00Z", True, **{RUN_LABEL: "r"}))
    actions = chaos_actions(
        [parse_chaos("pod-kill@60s")], None, watch=[WatchTarget("hpa", "web-hpa")], kube=client
    )

    assert _tick(actions, 59.0).rows == []  # not due yet
    observation = _tick(actions, 61.0)

    (delete,) = fake.seen("DELETE", pods)
    assert delete.path.endswith("/web-old")
    assert json.loads(delete.body)["gracePeriodSeconds"] == 0
    assert observation.events == ["chaos pod-kill web-old at 61s"]
    ((table, (row,)),) = observation.rows
    assert table.file_name == "marks.csv" and row["kind"] == "chaos" and row["ts"] == NOW
    mark = parse_chaos_detail(row["detail"])
    assert mark is not None
    assert (mark.target, mark.workload, mark.pods, mark.ready_before) == (
        "shop/deployment/web",
        "web",
        ("web-old",),
        2,  # ready ones; kubeswarm's own pod is never a candidate
    )
    assert _tick(actions, 70.0).rows == []  # done once


def test_pod_delete_keeps_the_pods_own_grace_period(
    kube: tuple[FakeApiServer, KubeClient],
) -> None:
    fake, client = kube
    pods = f"/api/v1/namespaces/{NS}/pods"
    for i in range(3):
        fake.add(pods, _pod(f"web-{i}", f"2024-05-01T12:0{i}:00Z", True))
    actions = chaos_actions(
        [parse_chaos("pod-delete:2@1s")], parse_chaos_target("deployment/web"), kube=client
    )
    observation = _tick(actions, 5.0)
    deleted = [r.path.rsplit("/", 1)[1] for r in fake.seen("DELETE", pods)]
    assert deleted == ["web-0", "web-1"]
    assert all("gracePeriodSeconds" not in json.loads(r.body) for r in fake.seen("DELETE", pods))
    assert observation.events == ["chaos pod-delete web-0, web-1 at 5s"]


def test_no_pods_is_a_skipped_disruption_not_a_crash(
    kube: tuple[FakeApiServer, KubeClient],
) -> None:
    _, client = kube
    actions = chaos_actions(
        [parse_chaos("pod-kill@1s")], parse_chaos_target("deployment/web"), kube=client
    )
    observation = _tick(actions, 2.0)
    assert observation.events == [
        "chaos pod-kill skipped at 2s: no running pods of shop/deployment/web"
    ]
    mark = parse_chaos_detail(observation.rows[0][1][0]["detail"])
    assert mark is not None and mark.skipped and mark.pods == ()


def test_a_missing_workload_is_recorded_as_skipped(kube: tuple[FakeApiServer, KubeClient]) -> None:
    _, client = kube
    actions = chaos_actions(
        [parse_chaos("pod-kill@1s")], parse_chaos_target("deployment/gone"), kube=client
    )
    observation = _tick(actions, 2.0)
    assert observation.events[0].startswith("chaos pod-kill skipped at 2s: the API server refused")


def test_no_target_at_all_is_a_usage_error(kube: tuple[FakeApiServer, KubeClient]) -> None:
    _, client = kube
    with pytest.raises(UsageError, match="--chaos needs a target"):
        chaos_actions([parse_chaos("pod-kill@1s")], None, kube=client)
    with pytest.raises(UsageError, match="--chaos needs a target"):
        chaos_actions([parse_chaos("pod-kill@1s")], None)


def test_render_rbac_adds_delete_pods_only_with_chaos() -> None:
    plain = rbac_objects("load")
    assert not any(
        "delete" in r["verbs"] and "pods" in r["resources"]
        for o in plain
        for r in o.get("rules", [])
    )
    extra = [o for o in rbac_objects("load", chaos=True) if o not in plain]
    assert [(o["kind"], o["metadata"]["name"]) for o in extra] == [
        ("Role", "kubeswarm-chaos"),
        ("RoleBinding", "kubeswarm-chaos"),
    ]
    assert extra[0]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]
    assert all(o["metadata"]["namespace"] == "load" for o in extra)
    assert extra[1]["subjects"][0]["namespace"] == "load"


def test_preflight_asks_for_delete_pods_only_with_chaos(
    kube: tuple[FakeApiServer, KubeClient],
) -> None:
    fake, client = kube
    fake.denied.add("delete pods")
    fake.add("/api/v1/namespaces", {"metadata": {"name": NS}})
    targets = [WatchTarget("hpa", "web-hpa", NS)]
    preflight(client, NS, targets, creates=False)  # no --chaos: not asked
    with pytest.raises(UsageError, match=r"delete pods in namespace shop.*render --rbac --chaos"):
        preflight(client, NS, targets, creates=False, chaos_namespaces=[NS])


def test_only_pods_the_workload_owns_are_hit_however_wide_its_selector(
    kube: tuple[FakeApiServer, KubeClient],
) -> None:
    """``app=web`` also matches a pod of Deployment ``web-canary`` and a bare pod: never hit."""
    fake, client = kube
    pods = f"/api/v1/namespaces/{NS}/pods"
    fake.add(pods, _pod("canary-0", "2024-05-01T10:00:00Z", True, owner="web-canary-77aa"))
    bare = _pod("bare-0", "2024-05-01T10:00:00Z", True)
    bare["metadata"]["ownerReferences"] = []
    fake.add(pods, bare)
    fake.add(pods, _pod("web-0", "2024-05-01T12:00:00Z", True))
    actions = chaos_actions(
        [parse_chaos("pod-kill:3@1s")], parse_chaos_target("deployment/web"), kube=client
    )
    observation = _tick(actions, 2.0)
    assert [r.path.rsplit("/", 1)[1] for r in fake.seen("DELETE", pods)] == ["web-0"]
    assert observation.events == ["chaos pod-kill web-0 at 2s"]


def test_preview_lists_the_pick_and_deletes_nothing(
    kube: tuple[FakeApiServer, KubeClient],
) -> None:
    fake, client = kube
    pods = f"/api/v1/namespaces/{NS}/pods"
    fake.add(pods, _pod("web-new", "2024-05-01T12:05:00Z", True))
    fake.add(pods, _pod("web-old", "2024-05-01T12:00:00Z", True))
    (action,) = chaos_actions(
        [parse_chaos("pod-delete@30s")], None, watch=[WatchTarget("hpa", "web-hpa")], kube=client
    )
    assert isinstance(action, PodChaos)
    assert action.preview() == (
        "pod-delete:1@30s on shop/deployment/web: would delete web-old "
        "(oldest of 2 ready of 2 pods now)"
    )
    assert fake.seen("DELETE", pods) == []


@pytest.mark.parametrize(
    ("target", "watch", "expected"),
    [
        (None, ["shop/hpa/web"], "shop"),  # the watched HPA's namespace, not -n's
        (None, ["hpa/web"], "load"),
        ("other/deployment/api", ["shop/hpa/web"], "other"),
        (None, ["shop/deployment/web", "hpa/x"], "shop"),
        (None, [], "load"),
    ],
)
def test_chaos_namespace_is_the_disrupted_workloads(
    target: str | None, watch: list[str], expected: str
) -> None:
    from harness.config.values import parse_watch

    chosen = parse_chaos_target(target) if target else None
    assert chaos_namespace(chosen, [parse_watch(w) for w in watch], "load") == expected


def test_dry_run_in_a_cluster_lists_the_pick_and_the_missing_permission(
    kube: tuple[FakeApiServer, KubeClient], tmp_path: Path
) -> None:
    """``run --chaos ... --chaos-dry-run`` as a user types it: the pick, the permission the run
    would be refused for, exit 0, and nothing created or deleted."""
    import io

    from harness.cli import main

    fake, _ = kube
    pods = f"/api/v1/namespaces/{NS}/pods"
    fake.add(pods, _pod("web-a", "2024-05-01T12:00:00Z", True))
    fake.denied.add("delete pods in shop")
    locustfile = tmp_path / "shop.py"
    locustfile.write_text(
        "from locust import HttpUser, task\n\n\nclass U(HttpUser):\n"
        "    @task\n    def index(self) -> None:\n        self.client.get('/')\n",
        encoding="utf-8",
    )
    out = io.StringIO()
    argv = [
        "run", "-f", str(locustfile), "-H", "http://web:8080", "-t", "60s",
        "--kubeconfig", str(tmp_path / "kc"), "-n", NS, "--watch", "hpa/web-hpa",
        "--chaos", "pod-kill@30s", "--chaos-dry-run", "--out", str(tmp_path / "runs"),
    ]  # fmt: skip
    assert main(argv, environ={}, out=out) == 0
    assert out.getvalue().splitlines() == [
        "chaos dry run: pod-kill:1@30s on shop/deployment/web: would kill web-a "
        "(oldest of 1 ready of 1 pods now)",
        "chaos dry run: the run would be refused: missing permission delete pods in namespace shop",
    ]
    assert [r for r in fake.requests if r.method in ("DELETE", "PUT", "PATCH")] == []
    assert [r for r in fake.requests if r.method == "POST" and "accessreview" not in r.path] == []
    assert not (tmp_path / "runs").exists()
