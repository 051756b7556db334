"""The node's NetworkPolicy enforcer (kube-router's policy controller) and what it leaves behind.

The CNI bridge enforces nothing, so the node runs kube-router's network policy controller on its
own (`kube-router-netpol`, built by tests/cluster/controlplane/build.sh from ./netpol): no BGP
router, no service proxy, no masquerade, IPv4 only. It writes only the filter table and ipsets:

- a jump to KUBE-ROUTER-INPUT/-FORWARD/-OUTPUT at the top of INPUT, FORWARD and OUTPUT;
- in those chains, jumps to a per-pod chain (KUBE-POD-FW-*) matching that pod's own address
  (`-s IP` / `-d IP`), RETURNs for the service range and node ports, and an ACCEPT of packets its
  pod chains marked; the pod chains jump to per-policy chains (KUBE-NWPLCY-*) that match ipsets;
- ipsets KUBE-SRC-* and KUBE-DST-* (pod addresses and ipBlocks of each policy), and briefly a
  TMP-* set per set type while it swaps their contents.

Nothing there names any address but the node's pods, its service range and a policy's ipBlocks.
The rules and chains all carry KUBE-, which `_hostnet.down()` already removes; the ipsets are
destroyed by `destroy_ipsets()` after them (a set is in use while a rule names it).
"""

from __future__ import annotations

import gzip
import re
import shutil
import subprocess
from pathlib import Path
from typing import Final

#: The binary build.sh puts in node-bin/, and its process name in pids.json.
BINARY: Final = "kube-router-netpol"
#: The filter table's chains kube-router jumps to from the built-in chains.
TOP_CHAINS: Final = ("KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT")
#: Kernel options its rules need (read from kube-router's pkg/controllers/netpol: the matches
#: set, comment, mark, addrtype, conntrack, limit, multiport, physdev; the targets MARK, NFLOG,
#: REJECT; hash:ip and hash:net sets) and bridged traffic passing through iptables at all.
KERNEL_OPTIONS: Final = (
    "CONFIG_IP_SET",
    "CONFIG_IP_SET_HASH_IP",
    "CONFIG_IP_SET_HASH_NET",
    "CONFIG_NETFILTER_XT_SET",
    "CONFIG_NETFILTER_XT_MATCH_COMMENT",
    "CONFIG_NETFILTER_XT_MATCH_MARK",
    "CONFIG_NETFILTER_XT_MATCH_ADDRTYPE",
    "CONFIG_NETFILTER_XT_MATCH_CONNTRACK",
    "CONFIG_NETFILTER_XT_MATCH_LIMIT",
    "CONFIG_NETFILTER_XT_MATCH_MULTIPORT",
    "CONFIG_NETFILTER_XT_MATCH_PHYSDEV",
    "CONFIG_NETFILTER_XT_TARGET_MARK",
    "CONFIG_NETFILTER_XT_TARGET_NFLOG",
    "CONFIG_IP_NF_TARGET_REJECT",
    "CONFIG_BRIDGE_NETFILTER",
)
_KERNEL_CONFIG: Final = Path("/proc/config.gz")
#: kube-router's own set names: per policy, and its temporary swap sets (TMP- and 16 base32
#: characters of a hash of the set's options), which only a killed controller leaves.
_OWN_SET: Final = re.compile(r"^(KUBE-SRC-|KUBE-DST-|TMP-[A-Z2-7]{16}$)")


def unsupported_reason(kernel_config: Path = _KERNEL_CONFIG) -> str | None:
    """Why the controller cannot run here, or None. Reads the running kernel's own build
    configuration where it publishes one; without it, the controller's start says."""
    if shutil.which("ipset") is None:
        return "the ipset command is missing (tests/realnode/install-packages.sh installs it)"
    try:
        text = gzip.decompress(kernel_config.read_bytes()).decode()
    except OSError:
        return None
    enabled = set(re.findall(r"^(CONFIG_\w+)=[ym]$", text, re.MULTILINE))
    missing = [option for option in KERNEL_OPTIONS if option not in enabled]
    if missing:
        return f"the kernel lacks what kube-router's policy rules need: {', '.join(missing)}"
    return None


def argv(node_bin: Path, kubeconfig: Path, node_name: str, service_cidr: str) -> list[str]:
    return [
        str(node_bin / BINARY),
        f"--kubeconfig={kubeconfig}",
        f"--hostname-override={node_name}",
        # Traffic to ClusterIPs is left to kube-proxy (RETURN), as in any kube-router setup.
        f"--service-cluster-ip-range={service_cidr}",
        # Every pod, namespace and policy change syncs at once; this only repairs drift.
        "--iptables-sync-period=1m",
        "--v=1",
    ]


def filter_rules() -> list[str]:
    """`iptables-save -t filter`, line by line (empty when iptables is missing)."""
    try:
        proc = subprocess.run(
            ["iptables-save", "-t", "filter"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return []
    return proc.stdout.splitlines()


def running() -> bool:
    """The controller has put its top-level chains in place and jumps to them."""
    rules = filter_rules()
    return all(
        any(line.startswith(f"-A {builtin} ") and line.endswith(f"-j {chain}") for line in rules)
        for builtin, chain in zip(("INPUT", "FORWARD", "OUTPUT"), TOP_CHAINS, strict=True)
    )


def ipsets() -> list[str]:
    """Names of every ipset on the host (empty when ipset is missing)."""
    try:
        proc = subprocess.run(["ipset", "list", "-n"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return []
    return sorted(proc.stdout.split())


def destroy_ipsets() -> list[str]:
    """Destroy kube-router's ipsets (after the rules naming them are gone); their names."""
    destroyed = []
    for name in ipsets():
        if not _OWN_SET.match(name):
            continue
        proc = subprocess.run(["ipset", "destroy", name], capture_output=True, check=False)
        if proc.returncode == 0:
            destroyed.append(name)
    return destroyed
