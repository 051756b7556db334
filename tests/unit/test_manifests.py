"""The run's Kubernetes objects: what ``kubeswarm render`` prints and ``harness.kube`` creates."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import COMMANDS, main
from harness.config.options import merge_sources
from harness.config.run import RunConfig, build_run_config
from harness.errors import UsageError
from harness.kube.manifests import (
    CONFIGMAP_LIMIT_BYTES,
    RUN_LABEL,
    kustomization_objects,
    object_names,
    rbac_objects,
    run_objects,
    run_selector,
    to_yaml,
    with_owner,
)

pytestmark = pytest.mark.unit

RENDER = next(c for c in COMMANDS if c.name == "render").options
RUN_ID = "20250102-030405-shop"
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def _config(locustfile: Path, **flags: Any) -> RunConfig:
    given = {"locustfile": str(locustfile), "host": "http://web.shop:8080", **flags}
    return build_run_config(merge_sources(given, {}, None, RENDER))


def _objects(config: RunConfig, namespace: str = "shop") -> dict[str, dict[str, Any]]:
    """By role: master, configmap, service, networkpolicy (when there is one), worker."""
    objects = run_objects(config, RUN_ID, namespace)
    roles = ["master", "configmap", "service", "networkpolicy", "worker"]
    if len(objects) == 4:
        roles.remove("networkpolicy")
    return dict(zip(roles, objects, strict=True))


def _pod(job: dict[str, Any]) -> dict[str, Any]:
    pod: dict[str, Any] = job["spec"]["template"]["spec"]
    return pod


def _locust(job: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in _pod(job)["containers"] if c["name"] == "locust")


def _flag(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_objects_come_in_creation_order_with_the_master_job_first(locustfile: Path) -> None:
    objects = run_objects(_config(locustfile), RUN_ID, "shop")
    kinds = [(o["kind"], o["metadata"]["labels"]["app.kubernetes.io/component"]) for o in objects]
    assert kinds == [
        ("Job", "master"),
        ("ConfigMap", "files"),
        ("Service", "master"),
        ("NetworkPolicy", "master"),
        ("Job", "worker"),
    ]
    assert {o["metadata"]["namespace"] for o in objects} == {"shop"}


@pytest.mark.parametrize(
    "run_id",
    [RUN_ID, "20250102-030405-" + "a" * 40, "20250102-030405-Odd_Name.v2", "x"],
)
def test_names_are_dns_labels_of_at_most_63_characters(run_id: str) -> None:
    names = object_names(run_id)
    for name in (names.configmap, names.service, names.master_job, names.worker_job):
        assert len(name) <= 63
        assert DNS_1035.match(name), name
    assert len({names.configmap, names.master_job, names.worker_job}) == 3


def test_long_run_ids_that_share_a_prefix_get_different_names() -> None:
    first = object_names("20250102-030405-" + "a" * 39 + "b")
    second = object_names("20250102-030405-" + "a" * 39 + "c")
    assert first.master_job != second.master_job


def test_a_run_id_that_cannot_be_a_label_value_is_refused() -> None:
    with pytest.raises(UsageError, match="cannot be a label value"):
        object_names("bad id with spaces")


def test_every_object_and_pod_carries_the_run_labels(locustfile: Path) -> None:
    objects = _objects(_config(locustfile))
    label_sets = [o["metadata"]["labels"] for o in objects.values()]
    label_sets += [
        objects[job]["spec"]["template"]["metadata"]["labels"] for job in ("master", "worker")
    ]
    for labels in label_sets:
        assert labels[RUN_LABEL] == RUN_ID
        assert labels["app.kubernetes.io/instance"] == RUN_ID
        assert labels["app.kubernetes.io/name"] == "kubeswarm"
    assert (
        objects["worker"]["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"]
        == "worker"
    )
    assert run_selector(RUN_ID) == f"kubeswarm.io/run={RUN_ID}"


def test_the_service_selects_the_master_pod_and_not_the_workers(locustfile: Path) -> None:
    objects = _objects(_config(locustfile))
    selector = objects["service"]["spec"]["selector"].items()
    master_labels = objects["master"]["spec"]["template"]["metadata"]["labels"].items()
    worker_labels = objects["worker"]["spec"]["template"]["metadata"]["labels"].items()
    assert selector <= master_labels
    assert not selector <= worker_labels
    ports = {p["name"]: p["port"] for p in objects["service"]["spec"]["ports"]}
    assert ports == {"zmq": 5557, "web": 8089}


def test_master_args_carry_the_load_settings(locustfile: Path) -> None:
    config = _config(
        locustfile,
        users="50",
        spawn_rate="5",
        run_time_s="2m",
        workers="3",
        processes="2",
        autoquit_s="45",
    )
    args = _locust(_objects(config)["master"])["args"]
    assert "--master" in args and "--autostart" in args and "--csv-full-history" in args
    assert _flag(args, "-f") == "/mnt/locust/shop.py"
    assert _flag(args, "-H") == "http://web.shop:8080"
    assert _flag(args, "-u") == "50"
    assert _flag(args, "-r") == "5"
    assert _flag(args, "-t") == "120s"
    assert _flag(args, "--autoquit") == "45"
    assert _flag(args, "--expect-workers") == "6"  # worker pods x processes
    assert _flag(args, "--expect-workers-max-wait") == "300"
    assert _flag(args, "--csv").startswith("/tmp/kubeswarm/")


def test_workers_connect_to_the_service_by_bare_name(locustfile: Path) -> None:
    config = _config(locustfile, workers="4", processes="3")
    objects = _objects(config)
    worker = objects["worker"]
    args = _locust(worker)["args"]
    assert _flag(args, "--master-host") == objects["service"]["metadata"]["name"]
    assert _flag(args, "--processes") == "3"
    assert "--worker" in args
    assert worker["spec"]["parallelism"] == worker["spec"]["completions"] == 4


def test_the_locustfile_path_is_a_key_of_the_mounted_configmap(locustfile: Path) -> None:
    objects = _objects(_config(locustfile))
    for role in ("master", "worker"):
        volume = next(v for v in _pod(objects[role])["volumes"] if "configMap" in v)
        assert volume["configMap"]["name"] == objects["configmap"]["metadata"]["name"]
        mount = next(
            m for m in _locust(objects[role])["volumeMounts"] if m["name"] == volume["name"]
        )
        path = _flag(_locust(objects[role])["args"], "-f")
        assert path == f"{mount['mountPath']}/shop.py"
    assert objects["configmap"]["data"]["shop.py"] == locustfile.read_text(encoding="utf-8")
    assert objects["configmap"]["immutable"] is True


def test_pods_meet_pod_security_restricted(locustfile: Path) -> None:
    objects = _objects(_config(locustfile, requirements=["requests"]))
    for role in ("master", "worker"):
        pod = _pod(objects[role])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        containers = [*pod["initContainers"], *pod["containers"]]
        assert len(containers) == 2
        for container in containers:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert not context.get("privileged")
        assert all(set(v) <= {"name", "configMap", "emptyDir"} for v in pod["volumes"])


def test_jobs_have_a_deadline_and_a_ttl_and_the_master_never_retries(locustfile: Path) -> None:
    objects = _objects(_config(locustfile, run_time_s="10m", autoquit_s="30s"))
    for role in ("master", "worker"):
        spec = objects[role]["spec"]
        # run time + the grace to stop a shape still running at -t + autoquit + startup
        assert spec["activeDeadlineSeconds"] == 600 + 15 + 30 + 300
        assert spec["ttlSecondsAfterFinished"] == 3600
    assert objects["master"]["spec"]["backoffLimit"] == 0


def test_deadline_and_ttl_can_be_set(locustfile: Path) -> None:
    config = _config(locustfile, run_time_s="60s", autoquit_s="30s", deadline_s="3m", ttl_s="10m")
    objects = _objects(config)
    for role in ("master", "worker"):
        assert objects[role]["spec"]["activeDeadlineSeconds"] == 180
        assert objects[role]["spec"]["ttlSecondsAfterFinished"] == 600
    # What is left of the deadline after the run (and the grace to stop it) is what the master
    # waits for its workers.
    assert _flag(_locust(objects["master"])["args"], "--expect-workers-max-wait") == "75"


def test_resources_default_to_one_core_and_256mi_per_worker_process(locustfile: Path) -> None:
    objects = _objects(_config(locustfile, processes="3"))
    worker = _locust(objects["worker"])["resources"]
    assert worker == {
        "requests": {"cpu": "3", "memory": "768Mi"},
        "limits": {"cpu": "3", "memory": "768Mi"},
    }
    master = _locust(objects["master"])["resources"]
    assert master["requests"] == master["limits"] == {"cpu": "500m", "memory": "512Mi"}


def test_resources_and_image_can_be_set(locustfile: Path) -> None:
    config = _config(
        locustfile,
        worker_cpu="1500m",
        worker_memory="2Gi",
        master_cpu="250m",
        master_memory="768Mi",
        image="registry.example/locust:2.47.0-plugins",
        requirements=["locust-plugins"],
    )
    objects = _objects(config)
    assert _locust(objects["worker"])["resources"]["limits"] == {"cpu": "1500m", "memory": "2Gi"}
    assert _locust(objects["master"])["resources"]["requests"] == {"cpu": "250m", "memory": "768Mi"}
    for role in ("master", "worker"):
        pod = _pod(objects[role])
        for container in [*pod["initContainers"], *pod["containers"]]:
            assert container["image"] == "registry.example/locust:2.47.0-plugins"


def test_scheduling_options_reach_both_pods(locustfile: Path, tmp_path: Path) -> None:
    affinity_file = tmp_path / "affinity.yaml"
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "pool", "operator": "In", "values": ["load"]}]}
                ]
            }
        }
    }
    affinity_file.write_text(yaml.safe_dump({"affinity": affinity}), encoding="utf-8")
    config = _config(
        locustfile,
        node_selector=["kubernetes.io/arch=amd64", "pool=load"],
        tolerations=["dedicated=load:NoSchedule", "spot:noexecute"],
        affinity=str(affinity_file),
    )
    for role in ("master", "worker"):
        pod = _pod(_objects(config)[role])
        assert pod["nodeSelector"] == {"kubernetes.io/arch": "amd64", "pool": "load"}
        assert pod["tolerations"] == [
            {"key": "dedicated", "operator": "Equal", "value": "load", "effect": "NoSchedule"},
            {"key": "spot", "operator": "Exists", "effect": "NoExecute"},
        ]
        assert pod["affinity"] == affinity


def test_without_scheduling_options_the_pods_have_none(locustfile: Path) -> None:
    pod = _pod(_objects(_config(locustfile))["master"])
    assert not {"nodeSelector", "tolerations", "affinity"} & set(pod)


def test_requirements_add_an_init_container_and_a_file(locustfile: Path) -> None:
    plain = _objects(_config(locustfile))
    assert "initContainers" not in _pod(plain["master"])
    assert list(plain["configmap"]["data"]) == ["shop.py"]

    objects = _objects(_config(locustfile, requirements=["locust-plugins==4.5", "faker"]))
    assert objects["configmap"]["data"]["kubeswarm-requirements.txt"] == (
        "locust-plugins==4.5\nfaker\n"
    )
    for role in ("master", "worker"):
        pod = _pod(objects[role])
        (init,) = pod["initContainers"]
        assert "/mnt/locust/kubeswarm-requirements.txt" in init["command"][-1]
        target = next(m["mountPath"] for m in init["volumeMounts"] if m["name"] == "site-packages")
        env = {e["name"]: e["value"] for e in _locust(objects[role])["env"]}
        assert env["PYTHONPATH"] == target


def test_a_pip_index_reaches_the_init_containers_pip(locustfile: Path) -> None:
    def requirements_file(url: str) -> str:
        config = _config(locustfile, requirements=["faker"], pip_index_url=url)
        data: str = _objects(config)["configmap"]["data"]["kubeswarm-requirements.txt"]
        return data

    assert requirements_file("https://pypi.mirror.example/simple") == (
        "--index-url https://pypi.mirror.example/simple\nfaker\n"
    )
    # pip ignores a plain-http index whose host it was not told to trust
    assert requirements_file("http://wheels.internal:8080/simple/") == (
        "--index-url http://wheels.internal:8080/simple/\n--trusted-host wheels.internal\nfaker\n"
    )
    with pytest.raises(UsageError, match="give both"):
        _config(locustfile, pip_index_url="https://pypi.mirror.example/simple")


def test_the_master_admits_only_its_workers_and_the_api_servers_proxy(locustfile: Path) -> None:
    objects = _objects(_config(locustfile, ui_from=["10.1.2.3", "fd00::/64"]))
    policy = objects["networkpolicy"]
    master_labels = objects["master"]["spec"]["template"]["metadata"]["labels"]
    worker_labels = objects["worker"]["spec"]["template"]["metadata"]["labels"]
    selected = policy["spec"]["podSelector"]["matchLabels"]
    assert selected.items() <= master_labels.items()
    assert not selected.items() <= worker_labels.items()
    zmq, web = policy["spec"]["ingress"]
    assert zmq["ports"] == [{"port": 5557, "protocol": "TCP"}]
    (workers,) = zmq["from"]
    assert workers["podSelector"]["matchLabels"].items() <= worker_labels.items()
    assert workers["podSelector"]["matchLabels"][RUN_LABEL] == RUN_ID  # this run's workers only
    assert web["ports"] == [{"port": 8089, "protocol": "TCP"}]
    assert web["from"] == [{"ipBlock": {"cidr": "10.1.2.3/32"}}, {"ipBlock": {"cidr": "fd00::/64"}}]
    assert "networkpolicy" not in _objects(_config(locustfile, no_network_policy=True))
    with pytest.raises(UsageError, match="not an IP address or CIDR"):
        _config(locustfile, ui_from=["apiserver"])


def test_extra_files_ship_as_text_or_binary(locustfile: Path, tmp_path: Path) -> None:
    users = tmp_path / "users.csv"
    users.write_text("name\nalice\n", encoding="utf-8")
    image = tmp_path / "logo.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    configmap = _objects(_config(locustfile, extra_files=[str(users), str(image)]))["configmap"]
    assert list(configmap["data"]) == ["shop.py", "users.csv"]
    assert configmap["binaryData"] == {"logo.png": "iVBORw0KGgr//g=="}


def test_files_too_big_for_a_configmap_are_refused_naming_the_size(
    locustfile: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data.json"
    data.write_bytes(b"x" * CONFIGMAP_LIMIT_BYTES)
    config = _config(locustfile, extra_files=[str(data)])
    with pytest.raises(UsageError) as caught:
        run_objects(config, RUN_ID, "shop")
    message = str(caught.value)
    size = CONFIGMAP_LIMIT_BYTES + locustfile.stat().st_size
    assert f"({size} bytes; largest data.json" in message
    assert "1 MiB" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("shop.py", "two shipped files are named shop.py"),
        ("kubeswarm-requirements.txt", "kubeswarm's own file name"),
        ("my data.csv", "only letters, digits and -._"),
    ],
)
def test_bad_extra_file_names_are_refused(
    locustfile: Path, tmp_path: Path, name: str, expected: str
) -> None:
    extra = tmp_path / "extra" / name
    extra.parent.mkdir()
    extra.write_text("x", encoding="utf-8")
    config = _config(locustfile, extra_files=[str(extra)], requirements=["faker"])
    with pytest.raises(UsageError, match=re.escape(expected)):
        run_objects(config, RUN_ID, "shop")


def test_a_missing_extra_file_is_a_usage_error(locustfile: Path, tmp_path: Path) -> None:
    config = _config(locustfile, extra_files=[str(tmp_path / "gone.csv")])
    with pytest.raises(UsageError, match=r"cannot read .*gone\.csv"):
        run_objects(config, RUN_ID, "shop")


def test_with_owner_points_at_the_created_master_job(locustfile: Path) -> None:
    master, configmap = run_objects(_config(locustfile), RUN_ID, "shop")[:2]
    created = {**master, "metadata": {**master["metadata"], "uid": "1234-abcd"}}
    owned = with_owner(configmap, created)
    assert owned["metadata"]["ownerReferences"] == [
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": master["metadata"]["name"],
            "uid": "1234-abcd",
        }
    ]
    assert "ownerReferences" not in configmap["metadata"]  # the input is left alone
    assert with_owner(owned, created) == owned  # applying it twice changes nothing


def test_with_owner_refuses_a_job_that_was_not_created_yet(locustfile: Path) -> None:
    master, configmap = run_objects(_config(locustfile), RUN_ID, "shop")[:2]
    with pytest.raises(ValueError, match=r"metadata\.uid"):
        with_owner(configmap, master)
    elsewhere = {"kind": "Job", "metadata": {"name": "m", "uid": "u", "namespace": "other"}}
    with pytest.raises(ValueError, match="cannot own an object in shop"):
        with_owner(configmap, elsewhere)


def test_patching_never_changes_the_next_run(locustfile: Path) -> None:
    run_objects(_config(locustfile, workers="9", node_selector=["a=b"]), RUN_ID, "one")
    objects = _objects(_config(locustfile), "two")
    assert objects["worker"]["spec"]["parallelism"] == 2
    assert "nodeSelector" not in _pod(objects["worker"])


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--toleration", "dedicated=load:Sometimes"], "effect must be NoSchedule"),
        (["--toleration", "dedicated"], "is not key=value:Effect or key:Effect"),
        (["--node-selector", "pool"], "is not key=value"),
        (["--node-selector", "bad key=x"], "is not a valid label key"),
        (["--worker-memory", "lots"], "--worker-memory: not a Kubernetes quantity"),
        (["--master-cpu", "0"], "--master-cpu: must be a Kubernetes quantity above 0"),
        (
            ["-t", "5m", "--autoquit", "30s", "--deadline", "5m"],
            "--deadline 300s would stop the Jobs before the test ends",
        ),
        # Longer than run time + autoquit, but leaves 1 s to start (failed on a real node)
        (
            ["-t", "30s", "--autoquit", "10s", "--deadline", "41s"],
            "plus 30s for the pods to start (85s)",
        ),
        (["--affinity", "/nonexistent/affinity.yaml"], "--affinity: cannot read"),
    ],
)
def test_bad_cluster_options_are_one_line_and_exit_2(
    flags: list[str], expected: str, locustfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["render", "-f", str(locustfile), "-H", "http://web:8080", *flags]
    code = main(argv, environ={}, out=io.StringIO())
    err = capsys.readouterr().err
    assert code == 2
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err


def test_an_affinity_file_with_unknown_keys_is_refused(
    locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "affinity.yaml"
    path.write_text("nodeAfinity: {}\n", encoding="utf-8")
    argv = ["render", "-f", str(locustfile), "-H", "http://web:8080", "--affinity", str(path)]
    assert main(argv, environ={}, out=io.StringIO()) == 2
    assert "unknown affinity key(s) nodeAfinity" in capsys.readouterr().err


def test_render_prints_yaml_that_kubectl_can_apply(locustfile: Path) -> None:
    out = io.StringIO()
    argv = [
        "render",
        "-f",
        str(locustfile),
        "-H",
        "http://web:8080",
        "-n",
        "load",
        "--workers",
        "3",
        "--name",
        "checkout",
    ]
    assert main(argv, environ={}, out=out) == 0
    documents = list(yaml.safe_load_all(out.getvalue()))
    kinds = ["Job", "ConfigMap", "Service", "NetworkPolicy", "Job"]
    assert [d["kind"] for d in documents] == kinds
    assert {d["metadata"]["namespace"] for d in documents} == {"load"}
    run_id = documents[0]["metadata"]["labels"][RUN_LABEL]
    assert re.fullmatch(r"\d{8}-\d{6}-checkout", run_id)
    assert documents[4]["spec"]["parallelism"] == 3
    # a block, not an escaped string
    assert "    from locust import HttpUser, task\n" in out.getvalue()


def test_render_needs_a_locustfile_and_host_like_run(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["render", "-H", "http://web:8080"], environ={}, out=io.StringIO()) == 2
    assert "no locustfile" in capsys.readouterr().err


def test_render_rbac_is_namespaced_and_least_privilege() -> None:
    out = io.StringIO()
    assert main(["render", "--rbac", "-n", "load"], environ={}, out=out) == 0
    documents = list(yaml.safe_load_all(out.getvalue()))
    assert [d["kind"] for d in documents] == ["ServiceAccount", "Role", "RoleBinding"]
    assert {d["metadata"]["namespace"] for d in documents} == {"load"}
    assert documents[2]["subjects"] == [
        {"kind": "ServiceAccount", "name": "kubeswarm", "namespace": "load"}
    ]
    rules = documents[1]["rules"]
    granted = {
        (group, resource, verb)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert not any("*" in item for triple in granted for item in triple)
    assert not {resource for _, resource, _ in granted} & {"roles", "rolebindings"}
    # The run's own Secret of --env values is created and deleted; no Secret is ever read.
    assert {verb for _, resource, verb in granted if resource == "secrets"} == {"create", "delete"}
    assert ("", "services/proxy", "create") in granted
    assert ("batch", "jobs", "delete") in granted
    assert ("metrics.k8s.io", "pods", "list") in granted
    assert rbac_objects("x")[0]["metadata"]["namespace"] == "x"


def test_the_shipped_role_grants_everything_preflight_asks_for_without_chaos() -> None:
    from harness.kube import preflight

    role = next(o for o in rbac_objects("load") if o["kind"] == "Role")
    granted = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    asked = (
        *preflight.RUN_ACCESS,
        *preflight.WATCH_ACCESS,
        *preflight.AUTO_WORKERS_ACCESS,
        *preflight.NETWORK_POLICY_ACCESS,
        *preflight.RAMP_ACCESS,
        *preflight.ENV_SECRET_ACCESS,
    )
    missing = [
        str(a)
        for a in asked
        if (a.group, f"{a.resource}/{a.subresource}".rstrip("/"), a.verb) not in granted
    ]
    assert missing == []
    chaos = [(a.group, a.resource, a.verb) for a in preflight.CHAOS_ACCESS]
    assert not set(chaos) & granted, "deleting pods is only in the --chaos Role"


def test_the_shipped_kustomizations_list_whole_objects() -> None:
    base = kustomization_objects()
    assert [o["kind"] for o in base] == ["ConfigMap", "Service", "NetworkPolicy", "Job", "Job"]
    target = kustomization_objects("example-target", "demo")
    assert {o["kind"] for o in target} == {
        "ConfigMap",
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
    }
    assert {o["metadata"]["namespace"] for o in target} == {"demo"}


def test_to_yaml_round_trips(locustfile: Path) -> None:
    objects = run_objects(_config(locustfile), RUN_ID, "shop")
    assert list(yaml.safe_load_all(to_yaml(objects))) == objects
