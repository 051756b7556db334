"""Unattended runs without a cluster: the CronJob a user commits to Git, the controller's command
line, the results server and fetch over real HTTP, and the state `kubeswarm list` shows."""

from __future__ import annotations

import io
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness.cli import main
from harness.config.options import OPTIONS
from harness.errors import ClusterError, UsageError
from harness.unattended.objects import (
    DETACHED_LABEL,
    controller_args,
    detached_names,
    detached_objects,
    owned_by,
)
from harness.unattended.results import ResultsServer, fetch_run
from harness.unattended.status import effective_state, format_detached, read_status


def _render(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(["render", *args], environ={}, out=out), out.getvalue()


def _cron_flags(locustfile: Path) -> list[str]:
    return [
        "--cronjob",
        "--schedule",
        "*/5 * * * *",
        "-f",
        str(locustfile),
        "-H",
        "http://web:8080",
        "-t",
        "30s",
        "--name",
        "nightly",
        "--results-pvc",
        "kubeswarm-results",
        "--image",
        "localhost/kubeswarm:dev",
        "-n",
        "shop",
        "--slo",
        "p95_ms<300",
    ]


def test_render_cronjob_is_byte_stable_forbids_overlap_and_compares_with_the_previous_run(
    locustfile: Path,
) -> None:
    code, first = _render(*_cron_flags(locustfile), "--rbac")
    _, second = _render(*_cron_flags(locustfile), "--rbac")
    assert code == 0
    assert first == second, "the same flags print the same bytes (fit for Git)"
    objects = list(yaml.safe_load_all(first))
    assert [o["kind"] for o in objects] == ["ServiceAccount", "RoleBinding", "ConfigMap", "CronJob"]
    cron = objects[-1]
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"
    assert cron["spec"]["successfulJobsHistoryLimit"] == 3
    assert cron["spec"]["failedJobsHistoryLimit"] == 3
    job = cron["spec"]["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 0
    pod = job["template"]["spec"]
    assert pod["serviceAccountName"] == objects[0]["metadata"]["name"]
    args = pod["containers"][0]["args"]
    assert args[:3] == ["run", "--controller-run", "new"]
    assert args[args.index("--baseline") + 1] == "previous"
    assert args[args.index("--keep-results") + 1] == "0s", "it exits with the verdict's code"
    assert args[args.index("--locustfile") + 1] == f"/mnt/kubeswarm/{locustfile.name}"
    assert args[args.index("--slo") + 1] == "p95_ms<300"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["results"]["persistentVolumeClaim"] == {"claimName": "kubeswarm-results"}
    assert objects[2]["data"] == {locustfile.name: locustfile.read_text()}
    assert objects[1]["roleRef"]["name"] == "kubeswarm"


def test_the_cronjob_runs_the_settings_of_the_config_file_and_the_environment(
    locustfile: Path, tmp_path: Path
) -> None:
    # A team keeps its run in a --config file and sets one more value in CI's environment: the
    # scheduled runs must run those settings, not the defaults.
    config = tmp_path / "nightly.yaml"
    config.write_text("users: 40\nslo: [error_rate<1%, p99_ms<900]\nkeep: true\n")
    out = io.StringIO()
    code = main(
        ["render", "--config", str(config), *_cron_flags(locustfile)],
        environ={"KUBESWARM_SPAWN_RATE": "4"},
        out=out,
    )
    assert code == 0
    cron = list(yaml.safe_load_all(out.getvalue()))[-1]
    args = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--users") + 1] == "40"
    assert args[args.index("--spawn-rate") + 1] == "4"
    assert "--keep" in args
    # the command line's --slo wins over the file's, as it does for an attended run
    slos = [args[i + 1] for i, a in enumerate(args) if a == "--slo"]
    assert slos == ["p95_ms<300"]


def test_render_cronjob_without_a_results_volume_or_schedule_is_refused(locustfile: Path) -> None:
    flags = _cron_flags(locustfile)
    without_pvc = flags[: flags.index("--results-pvc")] + flags[flags.index("--results-pvc") + 2 :]
    assert _render(*without_pvc)[0] == 2
    without_schedule = [f for f in flags if f not in ("--schedule", "*/5 * * * *")]
    assert _render(*without_schedule)[0] == 2


def test_the_controller_runs_the_users_flags_with_files_from_its_configmap() -> None:
    raw = {
        "locustfile": "/home/me/load/shop.py",
        "host": "http://web:8080",
        "users": "20",
        "watch": ["hpa/web", "other/hpa/api"],
        "extra_files": ["/home/me/load/data.csv"],
        "keep": True,
        "kubeconfig": "/home/me/.kube/config",
        "detach": True,
        "namespace": "shop",
    }
    options = tuple(raw)
    args = controller_args(raw, "20261206-010203-shop", "shop", options)
    assert args[:7] == [
        *("run", "--controller-run", "20261206-010203-shop"),
        *("-n", "shop", "--out", "/results"),
    ]
    assert args[7:] == [
        *("--locustfile", "/mnt/kubeswarm/shop.py", "--host", "http://web:8080"),
        *("--users", "20", "--watch", "hpa/web", "--watch", "other/hpa/api"),
        *("--extra-file", "/mnt/kubeswarm/data.csv", "--keep"),
    ]
    assert not any("/home/me" in a for a in args), "no path of the launcher's machine"


def test_detach_refuses_values_that_would_stand_in_the_pods_command_line() -> None:
    with pytest.raises(UsageError, match="--env") as refused:
        controller_args({"env": ["TOKEN=s3cret"]}, "r", "shop", ("env",))
    assert "s3cret" not in str(refused.value)


def test_a_detached_run_is_rooted_in_its_status_and_meets_pod_security_restricted(
    locustfile: Path,
) -> None:
    objects = detached_objects(
        run_id="20261206-010203-shop",
        run_name="shop",
        namespace="shop",
        image="localhost/kubeswarm:dev",
        args=["run"],
        files=[locustfile],
        results_pvc=None,
        run_deadline_s=400,
        keep_results_s=3600,
        results_from=("10.244.0.1/32",),
    )
    kinds = [o["kind"] for o in objects]
    assert kinds == [
        *("ConfigMap", "ServiceAccount", "RoleBinding", "ConfigMap", "Service"),
        *("NetworkPolicy", "Job"),
    ]
    (rule,) = objects[5]["spec"]["ingress"]
    assert rule == {
        "ports": [{"port": 8080, "protocol": "TCP"}],
        "from": [{"ipBlock": {"cidr": "10.244.0.1/32"}}],
    }, "only the API server's proxy (from the node) reaches the results"
    status = objects[0]
    assert status["data"]["state"] == "pending"
    names = detached_names("20261206-010203-shop")
    assert status["metadata"]["name"] == names.status
    root = {**status, "metadata": {**status["metadata"], "uid": "u-1"}}
    owned = owned_by(objects[-1], root)
    assert owned["metadata"]["ownerReferences"][0]["uid"] == "u-1"
    for obj in objects:
        assert "kubeswarm.io/run" not in obj["metadata"].get("labels", {}), (
            "the controller deletes its Locust objects by that label: never its own"
        )
        assert len(obj["metadata"]["name"]) <= 63
    job = objects[-1]
    assert job["spec"]["activeDeadlineSeconds"] == 400 + 3600 + 600
    pod = job["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    container = pod["containers"][0]
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert objects[4]["spec"]["selector"][DETACHED_LABEL] == "20261206-010203-shop"


@pytest.fixture
def served(tmp_path: Path) -> tuple[Path, str]:
    run = tmp_path / "results" / "20261206-010203-shop"
    (run / "samples").mkdir(parents=True)
    (run / "report").mkdir()
    (run / "run.json").write_text('{"id": "20261206-010203-shop"}')
    (run / "samples" / "hpa.csv").write_bytes(b"ts,replicas\n1,2\n" * 5000)
    (run / "report" / "report.html").write_bytes(bytes(range(256)) * 64)
    (tmp_path / "results" / "secret.txt").write_text("outside the run")
    (run / "link.txt").symlink_to(tmp_path / "results" / "secret.txt")
    return run, ""


def test_fetch_brings_back_the_served_run_directory_byte_for_byte(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    run, _ = served
    server = ResultsServer(lambda: run, 0, host="127.0.0.1").start()
    base = f"http://127.0.0.1:{server.port}"

    def get(path: str) -> bytes:
        with urllib.request.urlopen(base + path, timeout=10) as response:  # noqa: S310
            return bytes(response.read())

    try:
        fetched = fetch_run(get, tmp_path / "fetched")
        for escape in ("/files/../secret.txt", "/files/link.txt", "/files/%2e%2e/secret.txt"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                get(escape)
            refused.value.close()
            assert refused.value.code == 404
    finally:
        server.close()
    assert fetched == tmp_path / "fetched" / run.name
    files = sorted(p.relative_to(run) for p in run.rglob("*") if p.is_file() and not p.is_symlink())
    assert sorted(p.relative_to(fetched) for p in fetched.rglob("*") if p.is_file()) == files
    for relative in files:
        assert (fetched / relative).read_bytes() == (run / relative).read_bytes()


def test_fetch_refuses_a_file_that_does_not_match_the_index(tmp_path: Path) -> None:
    index = b'{"run": "r", "files": [{"path": "a.csv", "size": 3, "sha256": "00"}]}'

    def get(path: str) -> bytes:
        return index if path == "/index.json" else b"abc"

    with pytest.raises(ClusterError, match=r"a\.csv arrived"):
        fetch_run(get, tmp_path)
    assert not (tmp_path / "r" / "a.csv").exists()


def test_a_controller_that_died_without_recording_an_end_is_listed_as_failed() -> None:
    running = {"run": "r1", "name": "shop", "state": "running", "launched": "true"}
    failed_job = {
        "status": {
            "conditions": [
                {"type": "Failed", "status": "True", "message": "Job has reached the backoff"}
            ]
        }
    }
    assert effective_state(running, {"status": {}}, True) == ("running", "")
    state, why = effective_state(running, failed_job, True)
    assert state == "failed" and "backoff" in why
    assert effective_state(running, None, True)[0] == "failed"
    done = {**running, "state": "done", "verdict": "pass", "serves_until": "2000"}
    assert effective_state(done, None, True) == ("done", "")
    text = format_detached([read_status(done, None, True)], now=1000.0)
    assert "r1" in text and "done" in text and "pass" in text and "kubeswarm fetch r1" in text


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--local"], "--local"),
        (["--env", "TOKEN=s3cret"], "--env"),
        (["--baseline", "runs/old"], "--baseline previous"),
    ],
)
def test_run_detach_refuses_before_it_contacts_a_cluster(
    locustfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: list[str],
    said: str,
) -> None:
    (tmp_path / "runs" / "old").mkdir(parents=True)
    missing = tmp_path / "no-such-kubeconfig"
    argv = ["run", "--detach", "-f", str(locustfile), "-H", "http://web:8080", "-t", "30s"]
    code = main(
        [*argv, "--kubeconfig", str(missing), "--out", str(tmp_path / "runs"), *flags],
        environ={},
        out=io.StringIO(),
    )
    error = capsys.readouterr().err
    assert code == 2, error
    assert said in error and "s3cret" not in error
    assert str(missing) not in error, "refused before any connection is tried"


def test_a_controller_that_cannot_pull_its_image_is_reported_by_detach_and_removed(
    locustfile: Path, tmp_path: Path
) -> None:
    from harness.config.run import build_run_config
    from harness.session.store import new_run_id
    from harness.unattended.launcher import DetachSettings, detach

    from ._fake_apiserver import FakeApiServer, client_of, running

    now = 1_800_000_000.0
    run_id = new_run_id("shop", now)
    values = {
        **{n: o.default for n, o in OPTIONS.items()},
        "locustfile": locustfile,
        "host": "http://web:8080",
        "name": "shop",
        "namespace": "shop",
    }
    config = build_run_config(values)
    with running(FakeApiServer()) as fake, client_of(fake, tmp_path / "kc", "shop") as kube:
        fake.add(
            "/api/v1/namespaces/shop/pods",
            {
                "metadata": {"name": "ctl-x", "labels": {DETACHED_LABEL: run_id}},
                "status": {
                    "phase": "Pending",
                    "containerStatuses": [
                        {
                            "name": "kubeswarm",
                            "state": {
                                "waiting": {
                                    "reason": "ErrImagePull",
                                    "message": "pull access denied for kubeswarm:typo",
                                }
                            },
                        }
                    ],
                },
            },
        )
        with pytest.raises(ClusterError, match=r"cannot start.*ErrImagePull.*kubeswarm:typo"):
            detach(
                kube,
                config,
                DetachSettings(),
                {"locustfile": str(locustfile), "host": "http://web:8080"},
                ("locustfile", "host"),
                note=lambda _line: None,
                clock=lambda: now,
                sleep=lambda _s: None,
            )
        left = [
            obj
            for path, objects in fake.objects.items()
            if not path.endswith("/pods")
            for obj in objects.values()
        ]
        names = [o["metadata"]["name"] for o in left]
        assert f"ks-{run_id}-status" not in names, "the run's root is deleted"
        assert f"ks-{run_id}-ctl" in names, "the controller Job was created, then watched"
        owners = {o["metadata"]["ownerReferences"][0]["name"] for o in left}
        assert owners == {f"ks-{run_id}-status"}, "what is left goes with the root (the GC)"
