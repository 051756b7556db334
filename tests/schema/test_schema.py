"""Tier 2: every object kubeswarm can produce validates strictly against Kubernetes' schemas.

kubernetes-validate ships the OpenAPI schemas of each Kubernetes minor version, so this runs
offline. Strict means no field the API server would not know: a typo such as ``activeDeadline``
fails here instead of being dropped (or refused) by a real cluster. The objects are the ones
``kubeswarm render`` prints, with the ownerReference that ``harness.kube`` adds at creation, plus
the RBAC, the example target and the ``kubectl apply -k k8s-jobs/`` base.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from kubernetes_validate.utils import all_versions

from harness.cli import COMMANDS, main
from harness.config.options import OPTIONS
from harness.kube.manifests import kustomization_objects, with_owner
from harness.unattended.objects import detached_objects, owned_by
from tests.conftest import SHOPPER_LOCUSTFILE

pytestmark = pytest.mark.schema

OLDEST = (1, 29)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


VERSIONS = sorted({v for v in all_versions() if _version_key(v)[:2] >= OLDEST}, key=_version_key)


def _render(argv: list[str]) -> list[dict[str, Any]]:
    out = io.StringIO()
    assert main(["render", *argv], environ={}, out=out) == 0
    return [doc for doc in yaml.safe_load_all(out.getvalue()) if doc]


def _as_created(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What harness.kube sends: the master Job as is, the rest owned by it."""
    master, *rest = objects
    created = {**master, "metadata": {**master["metadata"], "uid": "0e9b-4bde-8f1c"}}
    return [master, *(with_owner(obj, created) for obj in rest)]


def _every_option(tmp: Path) -> list[str]:
    locustfile = tmp / "checkout.py"
    locustfile.write_text(SHOPPER_LOCUSTFILE, encoding="utf-8")
    (tmp / "users.csv").write_text("name\nalice\n", encoding="utf-8")
    (tmp / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\xff")
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["load"]}]}
                ]
            }
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "web"}},
                        "topologyKey": "kubernetes.io/hostname",
                    },
                }
            ]
        },
    }
    (tmp / "affinity.yaml").write_text(yaml.safe_dump(affinity), encoding="utf-8")
    (tmp / "run.env").write_text("REGION=eu-west\n", encoding="utf-8")
    # Every option of `render`; flags that only matter to `run` are given too, to show they
    # change nothing that would not validate.
    return [
        "-f", str(locustfile), "-H", "https://web.shop.svc:8443", "-u", "500", "-r", "25",
        "-t", "15m", "--workers", "auto", "--max-workers", "8", "--processes", "4",
        "--watch", "hpa/web",
        "--slo", "p95_ms<500", "--name", "checkout", "--interval", "5s", "-n", "load",
        "--hpa-sync-period", "15s",
        "--image", "registry.example/locust:2.47.0-custom", "--keep",
        "--extra-file", str(tmp / "users.csv"), "--extra-file", str(tmp / "logo.png"),
        "--requirement", "locust-plugins==4.7.0", "--requirement", "faker",
        "--pip-index-url", "https://pypi.mirror.example/simple",
        "--ui-from", "192.0.2.10", "--ui-from", "2001:db8::/64",
        "--autoquit", "1m", "--node-selector", "kubernetes.io/arch=amd64",
        "--node-selector", "pool=load", "--toleration", "dedicated=load:NoSchedule",
        "--toleration", "spot:NoExecute", "--affinity", str(tmp / "affinity.yaml"),
        "--worker-cpu", "3500m", "--worker-memory", "3Gi", "--master-cpu", "2",
        "--master-memory", "1536Mi", "--deadline", "1h", "--ttl", "2h",
        "--kubeconfig", str(tmp / "no-kubeconfig"), "--context", "ci",
        "--env", "API_TOKEN=tok-1", "--env-file", str(tmp / "run.env"),
        "--env-from", "secret/db-credentials", "--env-from", "configmap/settings",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    tmp = tmp_path_factory.mktemp("schema")
    default_file = tmp / "health.py"
    every_option = _every_option(tmp)  # writes checkout.py, a locustfile Locust loads
    default_file.write_text((tmp / "checkout.py").read_text(encoding="utf-8"), encoding="utf-8")
    return {
        "run-default": _as_created(_render(["-f", str(default_file), "-H", "http://web:8080"])),
        "run-every-option": _as_created(_render(every_option)),
        "rbac": _render(["--rbac", "-n", "load"]),
        "rbac-chaos": _render(["--rbac", "--chaos", "-n", "load"]),
        "rbac-env-from": _render(["--rbac", "-n", "load", "--env-from", "secret/db-credentials"]),
        "run-no-network-policy": _as_created(
            _render(["-f", str(default_file), "-H", "http://web:8080", "--no-network-policy"])
        ),
        "example-target": kustomization_objects("example-target", "demo"),
        "kustomize-base": kustomization_objects(),
        "cronjob": _render(
            [
                *("--cronjob", "--schedule", "0 3 * * *", "--rbac", "--results-pvc", "results"),
                *("-f", str(default_file), "-H", "http://web:8080", "-n", "load"),
            ]
        ),
        "detached": _detached(default_file),
    }


def _detached(locustfile: Path) -> list[dict[str, Any]]:
    """A detached run's own objects as ``run --detach`` creates them: the rest owned by the
    status ConfigMap, once with a results volume."""
    objects = []
    for pvc in (None, "results"):
        root, *rest = detached_objects(
            run_id="20261206-030000-checkout",
            run_name="checkout",
            namespace="load",
            image="registry.example/kubeswarm:0.1.0",
            args=["run", "--controller-run", "20261206-030000-checkout"],
            files=[locustfile],
            results_pvc=pvc,
            run_deadline_s=400,
            keep_results_s=86400,
        )
        created = {**root, "metadata": {**root["metadata"], "uid": "0e9b-4bde-8f1c"}}
        objects += [root, *(owned_by(obj, created) for obj in rest)]
    return objects


CASES = [
    "run-default",
    "run-every-option",
    "rbac",
    "rbac-chaos",
    "rbac-env-from",
    "run-no-network-policy",
    "example-target",
    "kustomize-base",
    "cronjob",
    "detached",
]


def test_versions_cover_1_29_through_the_newest_shipped() -> None:
    assert _version_key(VERSIONS[0])[:2] == OLDEST
    assert VERSIONS[-1] == kubernetes_validate.latest_version()
    assert len(VERSIONS) >= 5


def test_the_every_option_case_sets_every_option_of_render(tmp_path: Path) -> None:
    given = set(_every_option(tmp_path))
    render = next(c for c in COMMANDS if c.name == "render")
    unset = [
        OPTIONS[name].flags[-1]
        for name in render.options
        # --no-network-policy removes an object; the other cases render without it. The
        # CronJob's options have a case of their own.
        if name
        not in ("rbac", "rbac_chaos", "no_network_policy", "cronjob", "schedule", "results_pvc")
        and name != "keep_results_s"
        and not set(OPTIONS[name].flags) & given
    ]
    assert not unset, f"add {unset} to _every_option"


def test_every_option_really_changes_the_objects(
    produced: dict[str, list[dict[str, Any]]],
) -> None:
    master, secret, configmap, _service, policy, worker = produced["run-every-option"]
    assert secret["stringData"] == {"REGION": "<redacted>", "API_TOKEN": "<redacted>"}
    assert len(master["spec"]["template"]["spec"]["containers"][0]["envFrom"]) == 3
    assert policy["spec"]["ingress"][1]["from"] == [
        {"ipBlock": {"cidr": "192.0.2.10/32"}},
        {"ipBlock": {"cidr": "2001:db8::/64"}},
    ]
    pod = worker["spec"]["template"]["spec"]
    assert {"nodeSelector", "tolerations", "affinity", "initContainers"} <= set(pod)
    assert "binaryData" in configmap
    assert master["spec"]["activeDeadlineSeconds"] == 3600
    assert {o["kind"] for o in produced["example-target"]} >= {"HorizontalPodAutoscaler"}


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_objects_validate_strictly(
    case: str, version: str, produced: dict[str, list[dict[str, Any]]]
) -> None:
    objects = produced[case]
    assert objects
    for obj in objects:
        where = f"{obj['kind']}/{obj['metadata']['name']} ({case}) against Kubernetes {version}"
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            path = ".".join(str(part) for part in e.path)
            pytest.fail(f"{where}: {path}: {e.message}")
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{where}: {e.message}")
