"""Every bad input is refused before anything starts: exit 2, one line, no run directory, no
process left, and for cluster runs no API call (the kubeconfig points at a closed port, so a
request would end in a ClusterError, exit 3, after retries)."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from harness.cli import COMMANDS, main
from harness.config.checks import CLUSTER_ONLY, inspect_locustfile
from harness.config.options import OPTIONS, merge_sources
from harness.errors import UsageError
from harness.kube.preflight import LoadPods, NodeRoom, node_rooms, place_load_pods

pytestmark = pytest.mark.unit

USER = (
    "from locust import HttpUser, task\n\n\n"
    "class Shopper(HttpUser):\n"
    "    @task\n"
    "    def browse(self) -> None:\n"
    '        self.client.get("/")\n'
)


@pytest.fixture
def locustfile(tmp_path: Path) -> Path:
    path = tmp_path / "shop.py"
    path.write_text(USER, encoding="utf-8")
    return path


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    """A valid kubeconfig whose API server is a loopback port nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "kubeconfig"
    path.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: closed\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: closed, context: {cluster: c, user: u}}]\n",
        encoding="utf-8",
    )
    return path


def _refused(argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    """Runs the CLI; asserts exit 2, one stderr line, no run directory, no process left."""
    out_dir = tmp_path / "runs"
    takes_out = argv[0] in ("run", "demo", "sample")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    code = main([*argv, *(["--out", str(out_dir)] if takes_out else [])], {}, io.StringIO())
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert not out_dir.exists()
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before
    return err


def _local(locustfile: Path, *extra: str) -> list[str]:
    return ["run", "--local", "-f", str(locustfile), "-H", "http://127.0.0.1:9", *extra]


def _cluster(locustfile: Path, kubeconfig: Path, *extra: str) -> list[str]:
    base = ["run", "-f", str(locustfile), "-H", "http://web:8080"]
    return [*base, "--kubeconfig", str(kubeconfig), *extra]


# --slo and --whatif: parsed when the flags are read, not after the load.


def test_mistyped_slo_is_refused_before_the_load(
    locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(_local(locustfile, "--slo", "p95<500"), tmp_path, capsys)
    assert "--slo: 'p95<500': unknown name 'p95'" in err


def test_mistyped_slo_in_the_environment_names_the_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["report", "somewhere"], {"KUBESWARM_SLO": "p95_ms<<5"}, io.StringIO())
    assert code == 2
    assert "KUBESWARM_SLO: 'p95_ms<<5': expected NAME OP NUMBER" in capsys.readouterr().err


def test_bad_whatif_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(["report", str(tmp_path), "--whatif", "web:maxx=3"], tmp_path, capsys)
    assert "--whatif: 'web:maxx=3': unknown key 'maxx'" in err


def test_cluster_run_with_bad_slo_never_connects(
    locustfile: Path, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _refused(_cluster(locustfile, kubeconfig, "--slo", "p95_ms<fast"), tmp_path, capsys)


# Watch targets must suit the mode and exist.


def test_cluster_target_with_local_is_refused(
    locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(_local(locustfile, "--watch", "hpa/web"), tmp_path, capsys)
    assert "--watch hpa/web: a cluster object, but --local" in err


def test_local_target_in_a_cluster_run_is_refused_before_connecting(
    locustfile: Path, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(_cluster(locustfile, kubeconfig, "--watch", "pid/1"), tmp_path, capsys)
    assert "a local process, but this run samples a cluster" in err


def test_sample_refuses_local_targets_before_connecting(
    kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sample", "--watch", "cmd/gunicorn", "--kubeconfig", str(kubeconfig)]
    assert "a local process" in _refused(argv, tmp_path, capsys)


def test_pid_that_does_not_exist(
    locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    gone = done.stdout.strip()  # a pid that has just exited (reuse this soon is unlikely)
    if psutil.pid_exists(int(gone)):
        pytest.skip("the pid was reused")
    err = _refused(_local(locustfile, "--watch", f"pid/{gone}"), tmp_path, capsys)
    assert f"no process {gone} is running" in err


def test_pattern_that_matches_nothing(
    locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(_local(locustfile, "--watch", "cmd/no-such-server-4f2a"), tmp_path, capsys)
    assert "no running process has 'no-such-server-4f2a' in its command line" in err


@pytest.mark.parametrize("pattern", ["locust", "shop.py", "--master"])
def test_pattern_that_matches_kubeswarms_own_locust(
    pattern: str, locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(_local(locustfile, "--watch", f"cmd/{pattern}"), tmp_path, capsys)
    assert "also matches the Locust processes kubeswarm starts" in err


# Cluster-only options with --local.


CLUSTER_FLAGS = [
    ["-n", "shop"],
    ["--context", "prod"],
    ["--image", "my/locust:1"],
    ["--keep"],
    ["--node-selector", "pool=load"],
    ["--toleration", "load=true:NoSchedule"],
    ["--requirement", "faker"],
    ["--worker-cpu", "2"],
    ["--worker-memory", "1Gi"],
    ["--master-cpu", "2"],
    ["--master-memory", "2Gi"],
    ["--deadline", "1h"],
    ["--ttl", "10m"],
]


@pytest.mark.parametrize("flags", CLUSTER_FLAGS, ids=lambda f: f[0])
def test_cluster_option_with_local_is_refused(
    flags: list[str], locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(_local(locustfile, *flags), tmp_path, capsys)
    assert "--local runs Locust on this machine, so these cluster options mean nothing" in err


def test_kubeconfig_with_local_is_refused(
    locustfile: Path, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(_local(locustfile, "--kubeconfig", str(kubeconfig)), tmp_path, capsys)
    assert "--kubeconfig (picks the cluster)" in err


def test_every_cluster_only_option_is_a_run_option() -> None:
    run = next(c for c in COMMANDS if c.name == "run")
    assert set(CLUSTER_ONLY) <= set(run.options)


# The locustfile, loaded by Locust's own loader in a subprocess.


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from locust import HttpUser\n", "has no User class"),
        ("import no_such_module_7c1\n", "line 1: ModuleNotFoundError: No module named"),
        (USER + "raise RuntimeError('needs TOKEN')\n", "RuntimeError: needs TOKEN"),
        (
            USER + "from locust import LoadTestShape\n"
            "class A(LoadTestShape):\n    def tick(self): return None\n"
            "class B(LoadTestShape):\n    def tick(self): return None\n",
            "2 LoadTestShape classes (A, B)",
        ),
    ],
    ids=["no-user", "import-error", "raises", "two-shapes"],
)
def test_locustfile_that_locust_cannot_run(
    source: str,
    expected: str,
    locustfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    locustfile.write_text(source, encoding="utf-8")
    err = _refused(_local(locustfile), tmp_path, capsys)
    assert expected in err


def test_locustfile_info_names_users_and_shape(locustfile: Path) -> None:
    locustfile.write_text(
        USER + "from locust import LoadTestShape\n\n\n"
        "class Steps(LoadTestShape):\n    def tick(self): return None\n",
        encoding="utf-8",
    )
    info = inspect_locustfile(locustfile)
    assert (info.user_classes, info.shape_class) == (("Shopper",), "Steps")


# Kubeconfig files a user may point at by mistake.


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"clusters: [unclosed\n", "is not valid YAML at line 2"),
        (b"\xff\xfe\x00\x01binary", "is not UTF-8 text"),
        (b"just a string\n", "is not a kubeconfig"),
        (b"apiVersion: v1\nkind: Config\nclusters: 5\n", "is not a valid kubeconfig"),
    ],
    ids=["yaml", "binary", "scalar", "shape"],
)
def test_broken_kubeconfig_is_one_line(
    content: bytes, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kubeconfig"
    path.write_bytes(content)
    err = _refused(["list", "--kubeconfig", str(path)], tmp_path, capsys)
    assert expected in err


# demo takes -t/--run-time as run does; --duration stays.


@pytest.mark.parametrize("flag", ["-t", "--run-time", "--duration"])
def test_demo_run_time_flags(flag: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(["demo", flag, "0s"], tmp_path, capsys)
    assert "must be longer than 0 s" in err
    demo = next(c for c in COMMANDS if c.name == "demo")
    values = merge_sources({"duration_s": "45s"}, {}, None, demo.options)
    assert values["duration_s"] == 45.0
    assert OPTIONS["duration_s"].flags[:1] == ("-t",)


# Preflight: the load pods must fit in what the nodes can still schedule.


def _node(name: str, cpu: str, memory: str, **spec: object) -> dict[str, object]:
    return {
        "metadata": {"name": name, "labels": {"pool": name}},
        "spec": spec,
        "status": {
            "allocatable": {"cpu": cpu, "memory": memory},
            "conditions": [{"type": "Ready", "status": "True"}],
        },
    }


def _pod(node: str, cpu: str, memory: str, phase: str = "Running") -> dict[str, object]:
    container = {"resources": {"requests": {"cpu": cpu, "memory": memory}}}
    return {"spec": {"nodeName": node, "containers": [container]}, "status": {"phase": phase}}


def _workers(count: int, cpu: float = 1.0) -> LoadPods:
    return LoadPods("worker", count, cpu, 256 * 2**20, {}, ())


def test_free_room_is_allocatable_minus_running_pods() -> None:
    rooms = node_rooms(
        [_node("a", "2", "4Gi"), _node("b", "4", "8Gi", unschedulable=True)],
        [_pod("a", "800m", "1Gi"), _pod("a", "2", "1Gi", phase="Succeeded")],
    )
    assert [(r.name, round(r.cpu, 3), r.memory) for r in rooms] == [("a", 1.2, 3 * 2**30)]


def test_workers_that_do_not_all_fit_are_refused_naming_the_numbers() -> None:
    rooms = [NodeRoom("a", {}, (), 1.2, 8 * 2**30)]
    with pytest.raises(UsageError) as caught:
        place_load_pods([_workers(2)], rooms)
    assert str(caught.value) == (
        "workers need 2 x 1 CPU and 256Mi memory, but only 1 fits now (the largest free node "
        "has 1.2 CPU and 8Gi memory (a)); lower --worker-cpu/--worker-memory or --processes or "
        "--workers, or free room on the nodes"
    )


def test_master_that_fits_nowhere_is_refused() -> None:
    rooms = [NodeRoom("a", {}, (), 0.3, 8 * 2**30), NodeRoom("b", {}, (), 0.2, 16 * 2**30)]
    master = LoadPods("master", 1, 0.5, 512 * 2**20, {}, ())
    with pytest.raises(UsageError, match=r"master need 1 x 0.5 CPU .* most free is 0.3 CPU \(a\)"):
        place_load_pods([master], rooms)


def test_pods_that_fit_across_nodes_pass() -> None:
    rooms = [NodeRoom("a", {}, (), 2.5, 8 * 2**30), NodeRoom("b", {}, (), 1.0, 2**30)]
    master = LoadPods("master", 1, 0.5, 512 * 2**20, {}, ())
    place_load_pods([master, _workers(3)], rooms)


def test_nodes_the_pods_may_not_use_do_not_count() -> None:
    taint = {"key": "gpu", "value": "true", "effect": "NoSchedule"}
    rooms = [NodeRoom("gpu", {"pool": "gpu"}, (taint,), 64.0, 2**40)]
    with pytest.raises(UsageError, match="no schedulable node accepts the worker pods"):
        place_load_pods([_workers(1)], rooms)
    tolerating = LoadPods("worker", 1, 1.0, 2**20, {}, ({"key": "gpu", "operator": "Exists"},))
    place_load_pods([tolerating], rooms)
