"""A node killed outright (every component SIGKILLed, as when the machine's session dies) leaves
containers, shims, network namespaces, the bridge, rules (kube-router's policy chains among them),
ipsets and changed sysctls behind. A later
start cleans that up before it starts again, and `python -m tests.realnode down` (`make
dev-cluster-down`) restores the host exactly as it was before the node first started.

This test takes the node down, so it runs after every other test of the tier (marker
`realnode_crash`, ordered in conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from . import _firewall
from ._node import RealNode
from ._teardown import alive, footprint
from ._workloads import (
    ROOT,
    create_namespace,
    deploy,
    deploy_and_wait,
    example_target,
    get,
    wait_for,
)

pytestmark = [pytest.mark.realnode, pytest.mark.cluster, pytest.mark.realnode_crash]

NAMESPACE = "kubeswarm-realnode-recovery"


#: Selects the target's pod: kube-router gives it a policy chain and the policy its ipsets.
POLICY = {
    "apiVersion": "networking.k8s.io/v1",
    "kind": "NetworkPolicy",
    "metadata": {"name": "recovery"},
    "spec": {
        "podSelector": {"matchLabels": {"app.kubernetes.io/name": "example-web"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"podSelector": {}}], "ports": [{"port": 8080}]}],
    },
}


def _running_target(node: RealNode) -> None:
    """A fresh namespace with the example target's pod running (a sandbox, a netns, a veth)
    behind a NetworkPolicy enforced by kube-router (its chains and ipsets)."""
    create_namespace(node, NAMESPACE)
    deploy(node, NAMESPACE, [POLICY])
    deploy_and_wait(node, NAMESPACE, example_target(replicas=1, hpa=False))
    if not node.netpol_unsupported:
        wait_for(
            "kube-router's ipsets for the policy",
            lambda: any(s.startswith("KUBE-DST-") for s in _firewall.ipsets()),
            60,
            0.5,
        )


def _crash(node: RealNode) -> list[int]:
    """SIGKILL every component at once, as a dying machine session would; their PIDs."""
    pids: dict[str, dict[str, Any]] = json.loads((node.dir / "pids.json").read_text())
    for rec in pids.values():
        os.kill(rec["pid"], signal.SIGKILL)
    for rec in pids.values():
        pid = int(rec["pid"])
        wait_for(f"pid {pid} to go", lambda pid=pid: not alive(pid, None), 10, 0.1)  # type: ignore[misc]
    return [rec["pid"] for rec in pids.values()]


def test_a_killed_node_is_cleaned_up_by_the_next_start_and_by_down(
    realnode: RealNode, host_before_node: dict[str, Any]
) -> None:
    _running_target(realnode)
    _crash(realnode)
    left = footprint(realnode.dir)
    # What the killed node left: the test below means something only if this is so.
    assert left["processes"], "the pod's containers and their shims outlive the components"
    assert left["netns"], "the pod's network namespace is still mounted"
    assert "ksbr0" in left["links"], "the bridge is still there"
    assert any("kubeswarm-realnode" in r for r in left["rules"]), "isolation rules stay"
    assert any("KUBE-" in r for r in left["rules"]), "kube-proxy's and the kubelet's chains stay"
    if not realnode.netpol_unsupported:
        assert any("-N KUBE-ROUTER-FORWARD" in r for r in left["rules"]), "kube-router's chains"
        assert any("-j KUBE-ROUTER-FORWARD" in r for r in left["rules"]), "and the jumps to them"
        assert any(s.startswith(("KUBE-SRC-", "KUBE-DST-")) for s in left["ipsets"]), "its ipsets"
    assert left["mounts"], "the pod's volumes and the sandbox's rootfs stay mounted"
    assert left["sysctls"] != host_before_node["sysctls"], "the kubelet's sysctls stay changed"

    # A later start: cleans up first, then comes up and runs pods again.
    realnode.start()
    assert not [pid for pid in left["processes"] if alive(pid, None)], (
        "every container and shim of the killed node was stopped"
    )
    assert not set(left["netns"]) & set(footprint(realnode.dir)["netns"])
    _running_target(realnode)
    pods = get(realnode, f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Running"]

    # Killed again, then stopped the way a user would after a crash.
    _crash(realnode)
    assert footprint(realnode.dir) != host_before_node
    down = subprocess.run(
        [sys.executable, "-m", "tests.realnode", "down"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert down.returncode == 0, down.stdout + down.stderr
    # Lazy unmounts and killed processes can take a moment to be gone from /proc.
    deadline = time.monotonic() + 10
    while footprint(realnode.dir) != host_before_node and time.monotonic() < deadline:
        time.sleep(0.5)
    after = footprint(realnode.dir)
    assert after == host_before_node, {
        key: (host_before_node[key], after[key])
        for key in after
        if after[key] != host_before_node[key]
    }
    assert not realnode.dir.exists(), "the state directory is removed"
