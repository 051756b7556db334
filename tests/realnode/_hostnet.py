"""The real node's network on this machine, and the host settings it changes, undone exactly.

Pods sit on a Linux bridge whose address is the node IP; the CNI bridge plugin attaches them
with no masquerade and no default route (see `cni_config`). Firewall rules in the mangle table
(traversed before filter and nat, and never touched by kube-proxy) drop:

- anything forwarded into or out of the bridge from or to another interface (IPv4 and IPv6):
  pods reach only each other and this host's processes on the bridge address;
- packets from or to the pod and service ranges leaving by an uplink (an interface holding a
  default route).

Only those two ranges are named: a rule on a broad range such as 10.0.0.0/8 would also cut this
machine's own resolver when it sits in such a range. Every rule carries the comment `RULE_TAG`,
so `down()` removes exactly the rules `up()` added, and nothing else.

Host-global settings the kubelet and kube-proxy change (sysctls, iptables chains) are recorded
before the first start in the state directory and restored by `down()`; the record is written
only when none exists, so a later session after a crash restores the values from before it.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any, Final

from tests.realnode import _firewall

BRIDGE: Final = "ksbr0"
NODE_IP: Final = "10.244.0.1"
POD_CIDR: Final = "10.244.0.0/24"
#: The same range as the control plane's --service-cluster-ip-range.
SERVICE_CIDR: Final = "10.96.0.0/16"
RULE_TAG: Final = "kubeswarm-realnode"
CNI_NETWORK: Final = "kubeswarm-realnode"

#: Set by the kubelet (panic settings, overcommit) or by this module (bridge netfilter); all
#: restored on teardown.
SAVED_SYSCTLS: Final = (
    "kernel.panic",
    "kernel.panic_on_oops",
    "vm.overcommit_memory",
    "net.ipv4.conf.all.route_localnet",
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
)
_SYSCTL_FILE = "sysctls.json"


class HostNetError(RuntimeError):
    """The bridge or the firewall rules could not be set up."""


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise HostNetError(f"{' '.join(argv)} failed: {proc.stderr.strip()}")
    return proc


def _sysctl_path(name: str) -> Path:
    return Path("/proc/sys") / name.replace(".", "/")


def read_sysctl(name: str) -> str | None:
    try:
        return _sysctl_path(name).read_text().strip()
    except OSError:
        return None


def _write_sysctl(name: str, value: str) -> None:
    with contextlib.suppress(OSError):
        _sysctl_path(name).write_text(value + "\n")


def save_sysctls(state_dir: Path) -> None:
    """Record the values to restore, unless a record from an earlier start is still there."""
    path = state_dir / _SYSCTL_FILE
    if path.exists():
        return
    values = {name: read_sysctl(name) for name in SAVED_SYSCTLS}
    path.write_text(json.dumps({k: v for k, v in values.items() if v is not None}, indent=1))


def restore_sysctls(state_dir: Path) -> dict[str, str]:
    """Write back the recorded values; return them (empty when nothing was recorded)."""
    path = state_dir / _SYSCTL_FILE
    try:
        values: dict[str, str] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    for name, value in values.items():
        _write_sysctl(name, value)
    path.unlink(missing_ok=True)
    return values


def uplinks() -> list[str]:
    """Interfaces that hold a default route (IPv4 or IPv6): the ways off this machine."""
    devices: list[str] = []
    for family in ("-4", "-6"):
        out = _run("ip", family, "route", "show", "default", check=False).stdout
        devices += re.findall(r"\bdev (\S+)", out)
    return sorted(set(devices) - {BRIDGE, "lo"})


def _isolation_rules() -> list[tuple[str, str, list[str]]]:
    """(tool, chain, match) of every DROP rule `up()` adds to the mangle table."""
    rules: list[tuple[str, str, list[str]]] = []
    for tool in ("iptables", "ip6tables"):
        rules.append((tool, "FORWARD", ["-i", BRIDGE, "!", "-o", BRIDGE]))
        rules.append((tool, "FORWARD", ["!", "-i", BRIDGE, "-o", BRIDGE]))
    for device in uplinks():
        for cidr in (POD_CIDR, SERVICE_CIDR):
            rules.append(("iptables", "POSTROUTING", ["-o", device, "-s", cidr]))
            rules.append(("iptables", "POSTROUTING", ["-o", device, "-d", cidr]))
    return rules


def up(state_dir: Path) -> None:
    """Firewall rules first (so nothing can leak while the rest comes up), then the bridge."""
    save_sysctls(state_dir)
    for tool, chain, match in _isolation_rules():
        tagged = [*match, "-m", "comment", "--comment", RULE_TAG, "-j", "DROP"]
        if _run(tool, "-t", "mangle", "-C", chain, *tagged, check=False).returncode != 0:
            _run(tool, "-t", "mangle", "-I", chain, "1", *tagged)
    if _run("ip", "link", "show", BRIDGE, check=False).returncode != 0:
        _run("ip", "link", "add", BRIDGE, "type", "bridge")
    _run("ip", "addr", "replace", f"{NODE_IP}/24", "dev", BRIDGE)
    _run("ip", "link", "set", BRIDGE, "up")
    # The host reaches ClusterIPs through the bridge (kube-proxy rewrites them in OUTPUT).
    _run("ip", "route", "replace", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
    # Service traffic between pods on one bridge is bridged, not routed: without this,
    # iptables (kube-proxy's DNAT) never sees it.
    _write_sysctl("net.bridge.bridge-nf-call-iptables", "1")
    _write_sysctl("net.bridge.bridge-nf-call-ip6tables", "1")


def _delete_tagged_rules() -> int:
    removed = 0
    for tool in ("iptables", "ip6tables"):
        for chain in ("FORWARD", "POSTROUTING"):
            listing = _run(tool, "-t", "mangle", "-S", chain, check=False).stdout
            for line in listing.splitlines():
                if f"--comment {RULE_TAG}" not in line or not line.startswith("-A "):
                    continue
                spec = shlex.split(line)[1:]
                if _run(tool, "-t", "mangle", "-D", *spec, check=False).returncode == 0:
                    removed += 1
    return removed


def _delete_kube_chains() -> int:
    """Rules and chains the kubelet, kube-proxy and the policy controller leave (KUBE-*), and
    CNI plugins' (CNI-*)."""
    removed = 0
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            listing = _run(tool, "-t", table, "-S", check=False).stdout.splitlines()
            for line in listing:
                if line.startswith("-A ") and re.search(r"\b(KUBE|CNI)-", line):
                    # shlex: the comments kube-proxy puts on its rules are quoted phrases.
                    _run(tool, "-t", table, "-D", *shlex.split(line)[1:], check=False)
                    removed += 1
            chains = [ln.split()[1] for ln in listing if re.match(r"-N (KUBE|CNI)-", ln)]
            for chain in chains:
                _run(tool, "-t", table, "-F", chain, check=False)
            for chain in chains:
                _run(tool, "-t", table, "-X", chain, check=False)
    return removed


def down(state_dir: Path) -> dict[str, Any]:
    """Undo `up()` and what the node's components added; safe to call any number of times."""
    report: dict[str, Any] = {}
    # Pod-side veths go with their network namespaces; any left attached go with the bridge.
    if _run("ip", "link", "show", BRIDGE, check=False).returncode == 0:
        _run("ip", "link", "del", BRIDGE, check=False)
        report["bridge"] = "deleted"
    _run("ip", "route", "del", SERVICE_CIDR, check=False)
    report["kube_rules"] = _delete_kube_chains()
    # After the rules: a set cannot be destroyed while a rule names it.
    report["ipsets"] = _firewall.destroy_ipsets()
    report["isolation_rules"] = _delete_tagged_rules()
    report["sysctls"] = restore_sysctls(state_dir)
    return report


def cni_config(ipam_dir: Path) -> dict[str, Any]:
    """The CNI network: the bridge, host-local addresses, routes only to pods and services."""
    return {
        "cniVersion": "0.4.0",
        "name": CNI_NETWORK,
        "plugins": [
            {
                "type": "bridge",
                "bridge": BRIDGE,
                "isGateway": True,
                # No default route and no masquerade: a pod has no way off this machine.
                "isDefaultGateway": False,
                "ipMasq": False,
                # A pod reaching itself through its Service comes back over the bridge.
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(ipam_dir),
                    "ranges": [
                        [{"subnet": POD_CIDR, "rangeStart": "10.244.0.10", "gateway": NODE_IP}]
                    ],
                    "routes": [{"dst": POD_CIDR}, {"dst": SERVICE_CIDR}],
                },
            },
        ],
    }
