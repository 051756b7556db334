"""The master's NetworkPolicy, enforced on real pods (kube-router's policy controller, `_firewall`).

During a real `kubeswarm run`, probe pods try TCP connections to the master's zmq (5557) and web
(8089) ports, by pod IP and by the Service's ClusterIP, from inside the probe containers (crictl
exec): from another namespace, and from the run's own namespace without being one of its
workers. With the policy they are refused while the run's worker connects and loads the target
and `kubeswarm ui` reaches the web port through the API server's proxy (from the node, which the
policy allows); with `--no-network-policy` the same probe connects. Probes target only this
node's pod and service ranges.
"""

from __future__ import annotations

import gzip
import ipaddress
import json
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import _firewall
from . import _hostnet as net
from ._node import PYTHON_IMAGE, RealNode
from ._workloads import (
    EXAMPLE_HOST,
    RUN_LABEL,
    copy_locustfile,
    deploy,
    deploy_and_wait,
    example_target,
    finish,
    fresh_namespace,
    get,
    read_samples,
    run_args,
    run_dir,
    start_run,
    ui_stats,
    wait_for,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]

ZMQ_PORT, WEB_PORT = 5557, 8089
PROBE_POD = "netpol-probe"
#: Runs in the probe container: one TCP connect per "host:port", each reported as "connected",
#: "refused" (kube-router's REJECT answers with an ICMP port unreachable) or the error (a
#: timeout when that answer is lost, e.g. to the kernel's ICMP rate limit).
PROBE_SCRIPT = """
import json, socket, sys
result = {}
for target in json.loads(sys.argv[1]):
    host, port = target.rsplit(":", 1)
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
        result[target] = "connected"
    except ConnectionRefusedError:
        result[target] = "refused"
    except OSError as e:
        result[target] = f"{type(e).__name__}: {e}"
print(json.dumps(result))
"""


@pytest.fixture
def enforced(realnode: RealNode) -> RealNode:
    if realnode.netpol_unsupported:
        pytest.skip(f"NetworkPolicy cannot be enforced here: {realnode.netpol_unsupported}")
    return realnode


@pytest.fixture
def other_namespace(realnode: RealNode) -> Iterator[str]:
    """A second namespace, for a pod that has nothing to do with the run."""
    with fresh_namespace(realnode, "kubeswarm-realnode-other") as name:
        yield name


def _probe_pod() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": PROBE_POD, "labels": {"app.kubernetes.io/name": PROBE_POD}},
        "spec": {
            # PID 1 ignores SIGTERM: without this every deletion waits the default 30 s.
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "probe",
                    "image": PYTHON_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", "import time; time.sleep(3600)"],
                }
            ],
        },
    }


def _probe(node: RealNode, namespace: str, targets: list[tuple[str, int]]) -> dict[str, str]:
    """TCP connects from inside the namespace's probe container, each to a pod or service IP of
    this node."""
    for host, _ in targets:
        address = ipaddress.ip_address(host)
        assert any(
            address in ipaddress.ip_network(cidr) for cidr in (net.POD_CIDR, net.SERVICE_CIDR)
        ), f"{host} is not in this node's pod or service range"
    listed = subprocess.run(
        [
            *node.crictl,
            "ps",
            "-q",
            "--state",
            "Running",
            "--label",
            f"io.kubernetes.pod.namespace={namespace}",
            "--label",
            f"io.kubernetes.pod.name={PROBE_POD}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    (container,) = listed.stdout.split()
    argument = json.dumps([f"{host}:{port}" for host, port in targets])
    proc = subprocess.run(
        [*node.crictl, "exec", container, "python3", "-c", PROBE_SCRIPT, argument],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    result: dict[str, str] = json.loads(proc.stdout)
    return result


def _blocked(results: dict[str, str]) -> bool:
    """Every connection was refused or never answered: none got through."""
    return bool(results) and all(
        r == "refused" or r.startswith("TimeoutError") for r in results.values()
    )


def _probe_pods_running(node: RealNode, *namespaces: str) -> None:
    def running() -> bool:
        return all(
            get(node, f"/api/v1/namespaces/{ns}/pods/{PROBE_POD}")["status"].get("phase")
            == "Running"
            for ns in namespaces
        )

    wait_for("the probe pods to run", running, 90)


def _master(node: RealNode, namespace: str) -> tuple[str, str]:
    """The running master pod's IP and its Service's ClusterIP."""
    pods = get(node, f"/api/v1/namespaces/{namespace}/pods?labelSelector={RUN_LABEL}")["items"]
    (master,) = [
        p
        for p in pods
        if p["metadata"]["labels"].get("app.kubernetes.io/component") == "master"
        and p["status"].get("phase") == "Running"
    ]
    services = get(node, f"/api/v1/namespaces/{namespace}/services?labelSelector={RUN_LABEL}")
    (service,) = services["items"]
    return master["status"]["podIP"], service["spec"]["clusterIP"]


def _policy_enforced(node: RealNode, namespace: str) -> str:
    """Wait until kube-router puts the run's NetworkPolicy in front of the master; its name."""
    collection = f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies"
    (policy,) = get(node, f"{collection}?labelSelector={RUN_LABEL}")["items"]
    name = policy["metadata"]["name"]

    def in_place() -> bool:
        rules = "\n".join(_firewall.filter_rules())
        # The master pod's chain runs through the policy's chain, which accepts its sources.
        return f"run through nw policy {name}" in rules and (
            f"selected by policy name {name} namespace {namespace}" in rules
        )

    wait_for(f"kube-router to enforce NetworkPolicy {name}", in_place, 60, 0.5)
    return str(name)


def _assert_rules_touch_only_pods(pod_ips: set[str]) -> None:
    """kube-router's rules in the built-in chains only jump to its own chains, and those hand
    a packet to a pod's chain only by that pod's address: nothing else on the host is filtered."""
    rules = _firewall.filter_rules()
    for line in rules:
        if re.match(r"-A (INPUT|FORWARD|OUTPUT) ", line) and "kube-router" in line:
            assert re.search(r"-j KUBE-ROUTER-(INPUT|FORWARD|OUTPUT)$", line), line
    pod_range = ipaddress.ip_network(net.POD_CIDR)
    to_pod_chains = [
        line
        for line in rules
        if re.match(r"-A KUBE-ROUTER-\w+ ", line) and "-j KUBE-POD-FW-" in line
    ]
    assert to_pod_chains, "the node's pods have their chains"
    for line in to_pod_chains:
        match = re.search(r"-[sd] (\d+\.\d+\.\d+\.\d+)/32", line)
        assert match, f"a jump to a pod chain names one address: {line}"
        assert ipaddress.ip_address(match.group(1)) in pod_range, line
    assert pod_ips <= {m for line in to_pod_chains for m in re.findall(r"([\d.]+)/32", line)}
    for table in ("nat", "mangle", "raw"):
        listing = subprocess.run(
            ["iptables-save", "-t", table], capture_output=True, text=True, check=False
        ).stdout
        assert "KUBE-ROUTER" not in listing and "kube-router" not in listing, table


def _start(
    node: RealNode, namespace: str, tmp_path: Path, *extra: str
) -> tuple[subprocess.Popen[bytes], Path, Path]:
    out = tmp_path / "runs"
    locustfile = str(copy_locustfile("health.py", tmp_path))
    args = run_args(node, namespace, out, "-f", locustfile, "-H", EXAMPLE_HOST)
    log = tmp_path / "kubeswarm.log"
    return start_run([*args, "-u", "3", "-r", "3", "--workers", "1", *extra], log), out, log


def _loading(out: Path) -> list[dict[str, str]]:
    """The run's Locust samples once the worker is connected and requests are answered."""

    def running() -> bool:
        try:
            rows = read_samples(run_dir(out), "locust.csv")
        except (AssertionError, FileNotFoundError):
            return False
        return any(r["state"] == "running" and float(r["rps"] or 0) > 0 for r in rows)

    wait_for("Locust running with requests answered", running, 150)
    return read_samples(run_dir(out), "locust.csv")


def test_the_policy_shuts_the_masters_ports_to_every_pod_but_the_runs_workers(
    enforced: RealNode,
    namespace: str,
    other_namespace: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    node = enforced
    deploy(node, namespace, [_probe_pod()])
    deploy(node, other_namespace, [_probe_pod()])
    deploy_and_wait(node, namespace, example_target(hpa=False))
    run, out, log = _start(node, namespace, tmp_path, "-t", "45s")
    processes.append(run)
    _loading(out)
    _policy_enforced(node, namespace)
    enforced_at = time.time()
    master_ip, cluster_ip = _master(node, namespace)
    _probe_pods_running(node, namespace, other_namespace)
    target = get(node, f"/api/v1/namespaces/{namespace}/services/example-web")["spec"]["clusterIP"]

    master_ports = [(ip, port) for ip in (master_ip, cluster_ip) for port in (ZMQ_PORT, WEB_PORT)]
    # The same probe reaches the target (no policy selects it): the probe pods' network works.
    outsider = _probe(node, other_namespace, [*master_ports, (target, 8080)])
    assert outsider.pop(f"{target}:8080") == "connected", outsider
    assert _blocked(outsider), f"from another namespace: {outsider}"
    neighbour = _probe(node, namespace, [*master_ports, (target, 8080)])
    assert neighbour.pop(f"{target}:8080") == "connected", neighbour
    assert _blocked(neighbour), f"from the run's namespace: {neighbour}"

    stats = ui_stats(node, namespace, run_dir(out).name)
    assert stats["state"] == "running" and stats["worker_count"] == 1, stats
    pods = get(node, f"/api/v1/namespaces/{namespace}/pods?labelSelector={RUN_LABEL}")["items"]
    _assert_rules_touch_only_pods({p["status"]["podIP"] for p in pods if p["status"].get("podIP")})

    code = finish(run, log, timeout_s=180)
    assert code == 0, log.read_text()[-3000:]
    rows = read_samples(run_dir(out), "locust.csv")
    later = [r for r in rows if float(r["ts"]) > enforced_at and r["state"] == "running"]
    assert later, "samples were taken while the policy was enforced"
    assert all(int(float(r["worker_count"])) == 1 for r in later), "the worker stayed connected"
    assert any(float(r["rps"] or 0) > 0 for r in later), "and its requests were answered"


def test_no_network_policy_leaves_the_masters_ports_open(
    enforced: RealNode,
    namespace: str,
    other_namespace: str,
    tmp_path: Path,
    processes: list[subprocess.Popen[bytes]],
) -> None:
    node = enforced
    deploy(node, other_namespace, [_probe_pod()])
    deploy_and_wait(node, namespace, example_target(hpa=False))
    run, out, log = _start(node, namespace, tmp_path, "-t", "5m", "--no-network-policy")
    processes.append(run)
    try:
        _loading(out)
        policies = get(node, f"/apis/networking.k8s.io/v1/namespaces/{namespace}/networkpolicies")
        assert policies["items"] == [], "no NetworkPolicy was created"
        master_ip, cluster_ip = _master(node, namespace)
        _probe_pods_running(node, other_namespace)
        targets = [(ip, port) for ip in (master_ip, cluster_ip) for port in (ZMQ_PORT, WEB_PORT)]
        opened = _probe(node, other_namespace, targets)
        assert set(opened.values()) == {"connected"}, f"from another namespace: {opened}"
    finally:
        run.send_signal(signal.SIGINT)
        finish(run, log, timeout_s=90)


def test_a_kernel_without_a_needed_option_is_named_in_the_skip_reason(tmp_path: Path) -> None:
    """What the NetworkPolicy tests say on a kernel that cannot enforce (read from its config)."""
    if not shutil.which("ipset"):
        pytest.skip("the ipset command is missing (tests/realnode/install-packages.sh installs it)")
    config = tmp_path / "config.gz"
    options = [o for o in _firewall.KERNEL_OPTIONS if o != "CONFIG_NETFILTER_XT_MATCH_PHYSDEV"]
    config.write_bytes(gzip.compress("".join(f"{o}=y\n" for o in options).encode()))
    reason = _firewall.unsupported_reason(config)
    assert reason is not None and reason.endswith(": CONFIG_NETFILTER_XT_MATCH_PHYSDEV"), reason
    as_modules = "".join(f"{o}=m\n" for o in _firewall.KERNEL_OPTIONS)
    config.write_bytes(gzip.compress(as_modules.encode()))
    assert _firewall.unsupported_reason(config) is None
