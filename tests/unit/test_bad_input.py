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
from tests.conftest import SHOPPER_LOCUSTFILE

pytestmark = pytest.mark.unit

USER = SHOPPER_LOCUSTFILE


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


def _refused(
    argv: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    out_dir: Path | None = None,
) -> str:
    """Runs the CLI; asserts exit 2, one stderr line, no traceback, no run directory, no process
    left. ``out_dir``: the ``--out`` given (default: ``tmp_path/runs``)."""
    out_dir = out_dir or tmp_path / "runs"
    takes_out = argv[0] in ("run", "demo", "sample")
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    code = main([*argv, *(["--out", str(out_dir)] if takes_out else [])], {}, io.StringIO())
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err
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


# Files that are not what they claim (issue 18): one line, not a UnicodeDecodeError traceback.


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\xcf\x80\xff\xfe binary \x00\x01", "is not UTF-8 text (byte 2)"),
        (USER.encode() + b"\x00\n", "does not compile: source code string cannot contain null"),
    ],
    ids=["binary", "nul-byte"],
)
def test_locustfile_that_is_not_python_text(
    content: bytes,
    expected: str,
    locustfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    locustfile.write_bytes(content)
    err = _refused(_local(locustfile), tmp_path, capsys)
    assert expected in err


def test_locustfile_that_is_a_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(_local(tmp_path), tmp_path, capsys)
    assert f"locustfile {tmp_path} is a directory; pass the Python file" in err


def test_demo_locustfile_that_is_binary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "shape.py"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n")
    err = _refused(["demo", "-f", str(binary)], tmp_path, capsys)
    assert "is not UTF-8 text" in err


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"users: \xff\xfe\n", "is not UTF-8 text (byte 7)"),
        (
            b"users: [5\n",
            "is not valid YAML: expected ',' or ']', but got '<stream end>' at line 2",
        ),
        (b"users: abc\n", "config file, users: must be a whole number, got 'abc'"),
        (b"spawn-rate: fast\n", "config file, spawn-rate: must be a number, got 'fast'"),
        (b"run-time: [1, 2]\n", "config file, run-time: not a duration: '[1, 2]'"),
        (b"users: 2026-13-01\n", "is not valid YAML: month must be in 1..12"),
    ],
    ids=["binary", "yaml", "int", "float", "list-for-duration", "bad-date"],
)
def test_config_file_errors_are_one_line_in_the_users_words(
    content: bytes,
    expected: str,
    locustfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "kubeswarm.yaml"
    config.write_bytes(content)
    err = _refused(_local(locustfile, "--config", str(config)), tmp_path, capsys)
    assert expected in err
    assert "invalid literal" not in err


# -H: Locust runs a whole test at 100 % errors against a URL without a host.


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("http://", "host 'http://' names no host"),
        ("https://:8080", "names no host"),
        ("ftp://web", "must start with http:// or https://"),
        ("http://web:99999", "the port must be a number from 1 to 65535"),
        ("http://web:port", "the port must be a number from 1 to 65535"),
        ("http://[::1", "is not a URL"),
        ("http://a b", "names no host"),
    ],
)
def test_host_without_a_host_is_refused(
    host: str,
    expected: str,
    locustfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = ["run", "--local", "-f", str(locustfile), "-H", host]
    assert expected in _refused(argv, tmp_path, capsys)


# Outputs that cannot be written are found before the load, not after it (root included).


@pytest.fixture
def regular_file(tmp_path: Path) -> Path:
    path = tmp_path / "file"
    path.write_text("not a directory\n", encoding="utf-8")
    return path


def test_junit_under_a_regular_file(
    regular_file: Path, locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junit = regular_file / "sub" / "junit.xml"
    err = _refused(_local(locustfile, "--junit", str(junit)), tmp_path, capsys)
    assert f"--junit {junit}: {regular_file} is a file, not a directory" in err


def test_junit_that_is_a_directory(
    locustfile: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _refused(_local(locustfile, "--junit", str(tmp_path)), tmp_path, capsys)
    assert "is a directory; give a file name" in err


@pytest.mark.parametrize("where", ["file", "proc"])
def test_out_that_cannot_be_written(
    where: str,
    regular_file: Path,
    locustfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # /proc refuses new files to root as well, as a read-only mount would.
    out = regular_file / "sub" if where == "file" else Path("/proc/kubeswarm-runs")
    err = _refused(_local(locustfile), tmp_path, capsys, out_dir=out)
    assert f"--out {out}" in err
    assert (
        "is a file, not a directory" in err if where == "file" else "cannot write in /proc" in err
    )


def _two_runs(tmp_path: Path) -> tuple[Path, Path]:
    from tests.fixtures import scenarios as sc
    from tests.unit.test_analysis_findings import steady

    runs = []
    for name in ("base", "cand"):
        runs.append(sc.build(tmp_path / name, 6, steady("api", 6, 2)))
    return runs[0], runs[1]


def test_compare_out_onto_a_regular_file(
    regular_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base, cand = _two_runs(tmp_path)
    argv = ["compare", str(base), str(cand), "--out", str(regular_file)]
    err = _refused(argv, tmp_path, capsys)
    assert f"--out {regular_file}: {regular_file} is a file, not a directory" in err


def test_compare_a_run_with_itself(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base, _ = _two_runs(tmp_path)
    err = _refused(["compare", str(base), f"{base}/"], tmp_path, capsys)
    assert "is both the baseline and the candidate; give two different runs" in err


def test_report_into_a_run_directory_it_cannot_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # report/ taken by a regular file: root cannot write there either (what a read-only
    # directory is for any other user).
    run_dir, _ = _two_runs(tmp_path)
    (run_dir / "report").write_text("in the way\n", encoding="utf-8")
    err = _refused(["report", str(run_dir)], tmp_path, capsys)
    assert "is a file, not a directory; kubeswarm report writes into the run directory" in err


# Values: argparse's own reading of "-5s", numbers out of range, options that mean nothing.


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["-t", "-5s"], "--run-time: not a duration: '-5s' (a duration cannot be negative)"),
        (["-t", "-5"], "--run-time: not a duration: '-5' (a duration cannot be negative)"),
        (["-u", "-3"], "--users: must be 1 or more, got -3"),
        (["-r", "inf"], "--spawn-rate: must be a number more than 0, got 'inf'"),
        (["--slo", "error_rate<150%"], "error_rate is a share from 0 to 1 (0% to 100%)"),
        (["--slo", "error_rate<2"], "error_rate is a share from 0 to 1"),
        (["--slo", "p95_ms<5%"], "p95_ms is not a share or a percentage; drop the %"),
        (["--max-workers", "4"], "--max-workers bounds --workers auto, but --workers is 2"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_values_that_mean_nothing_are_refused(
    flags: list[str],
    expected: str,
    locustfile: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = _refused(_local(locustfile, *flags), tmp_path, capsys)
    assert expected in err


def test_a_memory_percentage_slo_may_carry_its_percent_sign() -> None:
    from analysis.judge.slo import parse_slo

    assert parse_slo("max_memory_pct_of_limit<90%").threshold == 90.0
    assert parse_slo("error_rate<1%").threshold == 0.01


# A kubeconfig whose server is some web server, not an API server.


def test_server_that_is_not_a_kubernetes_api_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import http.server
    import threading

    class NotFound(http.server.BaseHTTPRequestHandler):
        """Some web server: every path is 404 Not Found, as most answer /version."""

        def do_GET(self) -> None:
            self.send_error(404)

        def log_message(self, format: str, *args: object) -> None:  # quiet test output
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            "apiVersion: v1\nkind: Config\ncurrent-context: web\n"
            f"clusters: [{{name: c, cluster: {{server: '{url}'}}}}]\n"
            "users: [{name: u, user: {token: t}}]\n"
            "contexts: [{name: web, context: {cluster: c, user: u, namespace: shop}}]\n",
            encoding="utf-8",
        )
        argv = ["sample", "--watch", "hpa/web", "--kubeconfig", str(kubeconfig)]
        err = _refused(argv, tmp_path, capsys)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert f"the server at {url} is not a Kubernetes API server (GET /version answered 404" in err
