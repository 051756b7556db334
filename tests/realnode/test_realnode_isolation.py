"""While the real node runs, nothing in it has a way off this machine, and the host keeps its own.

Checked on the live host state (iptables, the CNI configuration, resolv.conf), not on the
code that wrote it: these are the properties that make running a real node here safe.
"""

from __future__ import annotations

import ipaddress
import json
import re
import subprocess
from pathlib import Path

import pytest

from . import _hostnet as net
from ._node import RealNode

pytestmark = [pytest.mark.realnode, pytest.mark.cluster]


def _mangle_drops(tool: str) -> list[str]:
    listing = subprocess.run(
        [tool, "-t", "mangle", "-S"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in listing.splitlines() if net.RULE_TAG in line and "-j DROP" in line]


def test_pod_and_service_ranges_cannot_leave_and_the_resolver_stays_reachable(
    realnode: RealNode,
) -> None:
    rules = _mangle_drops("iptables")
    for device in net.uplinks():
        for cidr in (net.POD_CIDR, net.SERVICE_CIDR):
            for direction in ("-s", "-d"):
                assert any(f"{direction} {cidr}" in r and f"-o {device}" in r for r in rules), (
                    f"traffic {direction} {cidr} leaving by {device} is dropped"
                )
    for tool in ("iptables", "ip6tables"):
        forwarded = _mangle_drops(tool)
        assert any(f"-i {net.BRIDGE} ! -o {net.BRIDGE}" in r for r in forwarded), tool
        assert any(f"! -i {net.BRIDGE} -o {net.BRIDGE}" in r for r in forwarded), tool

    # No dropped range may contain this machine's resolver (it can sit in 10.0.0.0/8).
    dropped = [ipaddress.ip_network(m) for r in rules for m in re.findall(r"-[sd] (\S+/\d+)", r)]
    resolv = Path("/etc/resolv.conf").read_text()
    for server in re.findall(r"^nameserver\s+(\S+)", resolv, re.MULTILINE):
        address = ipaddress.ip_address(server.split("%")[0])
        assert not any(address in network for network in dropped), (
            f"the resolver {address} is outside every dropped range"
        )

    conflist = json.loads(next((realnode.dir / "cni" / "net.d").glob("*.conflist")).read_text())
    bridge = conflist["plugins"][0]
    assert bridge["ipMasq"] is False and bridge["isDefaultGateway"] is False
    routes = {r["dst"] for r in bridge["ipam"]["routes"]}
    assert routes == {net.POD_CIDR, net.SERVICE_CIDR}, "pods get no default route"
