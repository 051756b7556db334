"""``--env``, ``--env-file``, ``--env-from``: parsing, the manifests, render, the Role, preflight
and the cluster lifecycle against the fake API server; a value is never shown or recorded."""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.cli import COMMANDS, main
from harness.config.env import EnvRef
from harness.config.options import merge_sources
from harness.config.run import RunConfig, build_run_config
from harness.errors import UsageError
from harness.kube.client import KubeClient
from harness.kube.envsource import read_env_from
from harness.kube.manifests import object_names, rbac_objects, run_objects, with_owner

from ._fake_apiserver import FakeApiServer, Scripted, write_kubeconfig
from .test_kube_lifecycle import (
    NS,
    ScriptedLocust,
    created,
    fake,
    kube,
    make_config,
    remaining,
    run,
    stats,
)

pytestmark = pytest.mark.unit

__all__ = ["fake", "kube"]  # fixtures shared with the lifecycle tests

RENDER = next(c for c in COMMANDS if c.name == "render").options
RUN = next(c for c in COMMANDS if c.name == "run").options
TOKEN = "tok-9f8e7d6c5b4a"  # noqa: S105 - a made-up value the tests look for
RUN_ID = "20250102-030405-shop"


def _config(locustfile: Path, **flags: Any) -> RunConfig:
    given = {"locustfile": str(locustfile), "host": "http://web.shop:8080", **flags}
    return build_run_config(merge_sources(given, {}, None, RENDER))


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit code and everything kubeswarm printed (stdout and stderr)."""
    out = io.StringIO()
    code = main(argv, environ={}, out=out)
    captured = capsys.readouterr()
    return code, out.getvalue() + captured.out + captured.err


def _locust(job: dict[str, Any]) -> dict[str, Any]:
    pod = job["spec"]["template"]["spec"]
    return next(c for c in pod["containers"] if c["name"] == "locust")


# --- parsing and refusals ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--env", f"1API={TOKEN}"], "'1API' is not a valid environment variable name"),
        (["--env", f"API-TOKEN={TOKEN}"], "'API-TOKEN' is not a valid environment variable name"),
        (["--env", TOKEN], "give NAME=VALUE"),
        (["--env-from", "vault/db"], "give secret/NAME or configmap/NAME"),
    ],
)
def test_bad_input_is_one_line_exit_2_without_the_value(
    argv: list[str], said: str, locustfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, printed = _main(["render", "-f", str(locustfile), "-H", "http://web:8080", *argv], capsys)
    assert code == 2
    assert said in printed
    assert len(printed.strip().splitlines()) == 1
    assert TOKEN not in printed


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (f"API_TOKEN={TOKEN}\n{TOKEN} is not a line\n", "line 2: not NAME=VALUE"),
        (f"OK=1\n2FA_TOKEN={TOKEN}\n", "line 2: '2FA_TOKEN' is not a valid environment variable"),
        ("API_TOKEN\n", "line 1: API_TOKEN has no value"),
    ],
)
def test_a_bad_env_file_names_the_line_and_never_its_value(
    content: str, said: str, locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "run.env"
    env_file.write_text(content, encoding="utf-8")
    argv = ["render", "-f", str(locustfile), "-H", "http://web:8080", "--env-file", str(env_file)]
    code, printed = _main(argv, capsys)
    assert code == 2
    assert said in printed
    assert TOKEN not in printed


def test_an_env_file_is_dotenv_with_literal_values_and_env_wins(
    locustfile: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "run.env"
    env_file.write_text(
        "# settings\nexport REGION=eu-west\nAPI_TOKEN='from-file'\nPASSWORD=\"p$HOME\"\n",
        encoding="utf-8",
    )
    config = _config(
        locustfile, env_files=[str(env_file)], env=["API_TOKEN=from-flag", "EXTRA=a=b"]
    )
    assert config.env.as_mapping() == {
        "REGION": "eu-west",
        "PASSWORD": "p$HOME",  # not expanded: a token with $ arrives as written
        "API_TOKEN": "from-flag",
        "EXTRA": "a=b",
    }


def test_literal_values_come_only_from_the_command_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--env is read from the command line only") as caught:
        merge_sources({}, {"KUBESWARM_ENV": f"API_TOKEN={TOKEN}"}, None, RUN)
    assert TOKEN not in str(caught.value)
    config_file = tmp_path / "kubeswarm.yaml"
    config_file.write_text(f"env: [API_TOKEN={TOKEN}]\n", encoding="utf-8")
    with pytest.raises(UsageError, match="not from the config file") as caught:
        merge_sources({}, {}, config_file, RUN)
    assert TOKEN not in str(caught.value)


def test_env_files_and_references_may_come_from_the_config_file(tmp_path: Path) -> None:
    env_file = tmp_path / "run.env"
    env_file.write_text("API_TOKEN=x\n", encoding="utf-8")
    config_file = tmp_path / "kubeswarm.yaml"
    config_file.write_text(
        f"env-file: [{env_file}]\nenv-from: [secret/api, configmap/settings]\n", encoding="utf-8"
    )
    values = merge_sources({}, {}, config_file, RUN)
    assert [f.path for f in values["env_files"]] == [env_file]
    assert values["env_from"] == (EnvRef("secret", "api"), EnvRef("configmap", "settings"))


@pytest.mark.parametrize(
    "typed",
    [
        ["report", "some-run", "--env", f"API_TOKEN={TOKEN}"],  # --env is not report's
        ["report", "some-run", f"--env=API_TOKEN={TOKEN}"],
        ["run", f"--keep={TOKEN}"],  # a switch given a value
        ["run", f"--en={TOKEN}"],  # ambiguous: --env, --env-file, --env-from
        [f"API_TOKEN={TOKEN}"],  # where the command goes
    ],
)
def test_argparse_errors_never_repeat_what_was_typed(
    typed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, printed = _main(typed, capsys)
    assert code == 2
    assert TOKEN not in printed
    assert printed.startswith("kubeswarm: error: kubeswarm")


def test_an_unknown_flag_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, printed = _main(["report", "some-run", "--env", f"API_TOKEN={TOKEN}"], capsys)
    assert code == 2
    assert "unrecognized arguments: --env;" in printed


# --- the manifests and render --------------------------------------------------------------------


def test_values_go_into_a_secret_that_master_and_workers_take_by_env_from(
    locustfile: Path,
) -> None:
    config = _config(
        locustfile,
        env=[f"API_TOKEN={TOKEN}"],
        env_from=["secret/db-credentials", "configmap/settings"],
    )
    objects = run_objects(config, RUN_ID, "shop")
    names = object_names(RUN_ID)
    assert [o["kind"] for o in objects] == [
        "Job",
        "Secret",
        "ConfigMap",
        "Service",
        "NetworkPolicy",
        "Job",
    ]
    secret = objects[1]
    assert secret["metadata"]["name"] == names.secret
    assert secret["metadata"]["namespace"] == "shop"
    assert secret["metadata"]["labels"]["kubeswarm.io/run"] == RUN_ID
    assert secret["stringData"] == {"API_TOKEN": TOKEN}
    expected = [
        {"secretRef": {"name": "db-credentials"}},
        {"configMapRef": {"name": "settings"}},
        {"secretRef": {"name": names.secret}},  # last: --env wins over the referenced objects
    ]
    for job in (objects[0], objects[-1]):
        assert _locust(job)["envFrom"] == expected
    master = {"kind": "Job", "metadata": {"name": names.master_job, "uid": "u-1"}}
    owned = with_owner(secret, master)
    assert owned["metadata"]["ownerReferences"] == [
        {"apiVersion": "batch/v1", "kind": "Job", "name": names.master_job, "uid": "u-1"}
    ]


def test_references_alone_make_no_secret(locustfile: Path) -> None:
    objects = run_objects(_config(locustfile, env_from=["configmap/settings"]), RUN_ID, "shop")
    assert "Secret" not in [o["kind"] for o in objects]
    assert _locust(objects[0])["envFrom"] == [{"configMapRef": {"name": "settings"}}]


def test_without_env_the_pods_have_no_env_from(locustfile: Path) -> None:
    objects = run_objects(_config(locustfile), RUN_ID, "shop")
    assert "Secret" not in [o["kind"] for o in objects]
    assert all("envFrom" not in _locust(o) for o in objects if o["kind"] == "Job")


def test_render_shows_names_and_references_never_values(
    locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env_file = tmp_path / "run.env"
    env_file.write_text(f"DB_PASSWORD={TOKEN}-db\n", encoding="utf-8")
    argv = [
        "render", "-f", str(locustfile), "-H", "http://web:8080", "-n", "shop",
        "--env", f"API_TOKEN={TOKEN}", "--env-file", str(env_file),
        "--env-from", "secret/db-credentials",
    ]  # fmt: skip
    code, printed = _main(argv, capsys)
    assert code == 0
    assert TOKEN not in printed
    documents = list(yaml.safe_load_all(printed))
    secret = next(d for d in documents if d["kind"] == "Secret")
    assert secret["stringData"] == {"DB_PASSWORD": "<redacted>", "API_TOKEN": "<redacted>"}
    jobs = [d for d in documents if d["kind"] == "Job"]
    for job in jobs:
        assert {"secretRef": {"name": "db-credentials"}} in _locust(job)["envFrom"]
        assert {"secretRef": {"name": secret["metadata"]["name"]}} in _locust(job)["envFrom"]


def test_the_run_record_keeps_names_and_references_only(locustfile: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "run.env"
    env_file.write_text(f"DB_PASSWORD={TOKEN}\n", encoding="utf-8")
    config = _config(
        locustfile,
        env=[f"API_TOKEN={TOKEN}"],
        env_files=[str(env_file)],
        env_from=["configmap/settings"],
    )
    record = config.as_record()
    assert record["env"] == {
        "names": ["DB_PASSWORD", "API_TOKEN"],
        "files": [str(env_file)],
        "from": ["configmap/settings"],
    }
    assert TOKEN not in json.dumps(record, default=str)
    assert TOKEN not in repr(config)


def test_render_rbac_with_env_from_may_read_those_secrets_by_name_only(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["render", "--rbac", "-n", "shop", "--env-from", "secret/db", "--env-from", "cm/x"]
    code, printed = _main(argv, capsys)
    assert code == 0
    role = next(d for d in yaml.safe_load_all(printed) if d["kind"] == "Role")
    reads = [r for r in role["rules"] if "secrets" in r["resources"] and "get" in r["verbs"]]
    assert reads == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["db"]}
    ]
    plain = next(o for o in rbac_objects("shop") if o["kind"] == "Role")
    assert not [r for r in plain["rules"] if "resourceNames" in r]


# --- against the fake API server ------------------------------------------------------------------


def test_the_secret_is_created_after_the_master_job_owned_by_it_and_deleted(
    fake: FakeApiServer, kube: KubeClient, tmp_path: Path, locustfile: Path
) -> None:
    fake.add(f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "settings"}})
    env = _config(locustfile, env=[f"API_TOKEN={TOKEN}"], env_from=["configmap/settings"]).env
    locust = ScriptedLocust([stats("running", 2, 10), stats("stopped", 2)])
    result, said = run(make_config(tmp_path, env=env), kube, locust)
    objects = created(fake)
    assert [o["kind"] for o in objects][:2] == ["Job", "Secret"]
    master, secret = objects[0], objects[1]
    (owner,) = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"]) == ("Job", master["metadata"]["name"])
    assert secret["stringData"] == {"API_TOKEN": TOKEN}
    assert remaining(fake) == ["settings"]  # the run's Secret deleted, the user's object kept
    deleted = [r.path for r in fake.requests if r.method == "DELETE"]
    assert any(p.endswith(f"/secrets/{secret['metadata']['name']}") for p in deleted)
    assert TOKEN not in said
    on_disk = [p.read_bytes() for p in result.run_dir.rglob("*") if p.is_file()]
    assert not [b for b in on_disk if TOKEN.encode() in b]
    record = json.loads((result.run_dir / "run.json").read_text(encoding="utf-8"))
    assert record["config"]["env"]["names"] == ["API_TOKEN"]


def test_preflight_refuses_missing_references_before_creating_anything(
    fake: FakeApiServer, tmp_path: Path, locustfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.add(f"/api/v1/namespaces/{NS}/secrets", {"metadata": {"name": "present"}})
    kubeconfig = write_kubeconfig(tmp_path / "kc", fake.url, namespace=NS)
    argv = [
        "run", "-f", str(locustfile), "-H", "http://web:8080", "--kubeconfig", str(kubeconfig),
        "-n", NS, "--out", str(tmp_path / "runs"), "--env", f"API_TOKEN={TOKEN}",
        "--env-from", "secret/present", "--env-from", "secret/db-credentials",
        "--env-from", "configmap/settings",
    ]  # fmt: skip
    code, printed = _main(argv, capsys)
    assert code == 2
    assert "secret/db-credentials does not exist; configmap/settings does not exist" in printed
    assert "secret/present" not in printed.split("(")[0]
    assert len(printed.strip().splitlines()) == 1
    assert TOKEN not in printed
    assert created(fake) == []
    assert not (tmp_path / "runs").exists()


def test_preflight_asks_for_the_secret_verbs_only_when_there_are_values(
    fake: FakeApiServer, tmp_path: Path, locustfile: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake.denied |= {"create secrets", "delete secrets"}
    kubeconfig = write_kubeconfig(tmp_path / "kc", fake.url, namespace=NS)
    base = ["run", "-f", str(locustfile), "-H", "http://web:8080", "--kubeconfig", str(kubeconfig)]
    code, printed = _main([*base, "-n", NS, "--env", f"API_TOKEN={TOKEN}"], capsys)
    assert code == 2
    assert "create secrets in namespace team; delete secrets in namespace team" in printed
    assert created(fake) == []


def test_a_local_run_reads_referenced_objects_once_later_ones_winning(
    fake: FakeApiServer, kube: KubeClient
) -> None:
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    fake.add(
        f"/api/v1/namespaces/{NS}/secrets",
        {"metadata": {"name": "api"}, "data": {"API_TOKEN": b64(TOKEN), "REGION": b64("us")}},
    )
    fake.add(
        f"/api/v1/namespaces/{NS}/configmaps",
        {"metadata": {"name": "settings"}, "data": {"REGION": "eu", "bad.key": "x"}},
    )
    warnings: list[str] = []
    refs = [EnvRef("secret", "api"), EnvRef("configmap", "settings")]
    assert read_env_from(kube, NS, refs, warnings.append) == {"API_TOKEN": TOKEN, "REGION": "eu"}
    assert warnings == [
        "warning: --env-from configmap/settings: key(s) bad.key are not valid variable names "
        "and are not set"
    ]


def test_env_from_in_a_local_run_without_a_kubeconfig_is_refused_in_one_line(
    locustfile: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    argv = [
        "run", "--local", "-f", str(locustfile), "-H", "http://127.0.0.1:9", "-t", "5s",
        "--out", str(tmp_path / "runs"), "--env-from", "secret/api",
    ]  # fmt: skip
    code, printed = _main(argv, capsys)
    assert code == 2
    assert "--env-from reads from the cluster, but: no kubeconfig" in printed
    assert len(printed.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_an_unreadable_reference_names_the_role_that_grants_it(
    fake: FakeApiServer, kube: KubeClient
) -> None:
    fake.add(f"/api/v1/namespaces/{NS}/configmaps", {"metadata": {"name": "settings"}})
    forbidden = {"kind": "Status", "code": 403, "reason": "Forbidden", "message": "forbidden"}
    fake.script(f"/api/v1/namespaces/{NS}/secrets/db", Scripted(403, forbidden))
    refs = [EnvRef("secret", "db"), EnvRef("configmap", "settings")]
    with pytest.raises(UsageError) as refused:
        read_env_from(kube, NS, refs, lambda _: None)
    assert str(refused.value) == (
        f"--env-from in namespace {NS}: secret/db cannot be read (get secrets is not allowed) "
        f"(kubeswarm render --rbac --env-from secret/db --env-from configmap/settings -n {NS} "
        "| kubectl apply -f - grants the reads)"
    )


def test_values_too_large_for_a_secret_are_refused_naming_the_size(
    locustfile: Path, tmp_path: Path
) -> None:
    env_file = tmp_path / "big.env"
    env_file.write_text(f"BLOB={'x' * (1024 * 1024)}\n", encoding="utf-8")
    config = _config(locustfile, env_files=[str(env_file)])
    with pytest.raises(UsageError, match=r"values are 1048580 bytes, more than the 1 MiB"):
        run_objects(config, RUN_ID, "shop")
