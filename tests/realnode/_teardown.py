"""Stopping the real node and undoing its host changes, also after a crash.

`cleanup()` is the one undo path: `RealNode.stop()`, every `RealNode.start()` (first, for what
an earlier session left) and `python -m tests.realnode down` call it. It signals only processes
whose recorded PID and start time still match, or whose command line names the node's state
directory (containerd's shims); it is idempotent.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Final

from tests.realnode import _firewall
from tests.realnode import _hostnet as net

#: Paths the kubelet, containerd and the CNI plugins use whatever they are told.
_HOST_PATHS: Final = (
    Path("/var/lib/kubelet"),
    Path("/run/containerd"),
)
_STOP_ORDER: Final = (
    _firewall.BINARY,
    "metrics-server",
    "kube-proxy",
    "kubelet",
    "coredns",
    "kube-scheduler",
    "kube-controller-manager",
    "kube-apiserver",
    "etcd",
    "containerd",
)


def cache_dir() -> Path:
    return Path(os.environ.get("KUBESWARM_CACHE_DIR") or Path.home() / ".cache" / "kubeswarm")


# Processes, recorded by PID and start time


def start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime), counted after the parenthesised command name.
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, started: str | None) -> bool:
    now = start_time(pid)
    if now is None or (started is not None and now != started):
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def _terminate(pid: int, started: str | None, grace_s: float = 10.0) -> bool:
    """SIGTERM, then SIGKILL after `grace_s`; True if it was running."""
    if not alive(pid, started):
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while alive(pid, started) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if alive(pid, started):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    return True


def _pids_in(pattern: str) -> list[int]:
    """PIDs whose command line contains `pattern` (an absolute path of this node's state)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if pattern in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                errors="replace"
            ):
                found.append(int(entry.name))
    return found


# --------------------------------------------------------------------------------------------
# Teardown (also of what a killed session left)


def _mounts_under(*roots: Path) -> list[str]:
    mounts = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        target = line.split()[1].replace("\\040", " ")
        if any(target == str(r) or target.startswith(f"{r}/") for r in roots):
            mounts.append(target)
    return sorted(mounts, key=len, reverse=True)


def _kubepods_cgroups() -> Iterator[Path]:
    for controller in Path("/sys/fs/cgroup").iterdir():
        top = controller / "kubepods"
        if top.is_dir():
            yield top


def _node_processes(directory: Path) -> set[int]:
    """This node's processes other than ours: by its state directory in their command line
    (containerd's shims), or in the kubepods cgroups (the containers)."""
    found = set(_pids_in(str(directory)))
    for top in _kubepods_cgroups():
        for procs in top.rglob("cgroup.procs"):
            with contextlib.suppress(OSError, ValueError):
                found |= {int(x) for x in procs.read_text().split()}
    return found - {os.getpid()}


def _mount_roots(directory: Path) -> tuple[Path, ...]:
    """Where the node's mounts live (pods' volumes, sandboxes' root filesystems, snapshots)."""
    return (
        directory,
        cache_dir() / "realnode-containerd",
        Path("/run/containerd"),
        Path("/var/lib/kubelet"),
    )


def footprint(directory: Path) -> dict[str, Any]:
    """What the node leaves on this host, as comparable values: all empty when no node runs,
    except the sysctls, which must read as they did before the node first started.

    Processes (by this node's paths or in the kubepods cgroups), mounts and network namespaces,
    the bridge, veths and routes, KUBE-/CNI- chains (kube-router's KUBE-ROUTER-*, KUBE-POD-FW-*,
    KUBE-NWPLCY-* among them) and tagged rules, every ipset, the host paths.
    """
    netns = Path("/run/netns")
    rules = []
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle"):
            listing = subprocess.run(
                [tool, "-t", table, "-S"], capture_output=True, text=True, check=False
            ).stdout
            rules += [
                f"{tool} {table} {line}"
                for line in listing.splitlines()
                if re.search(r"\b(KUBE|CNI)-|kube-router", line) or net.RULE_TAG in line
            ]
    links = subprocess.run(
        ["ip", "-o", "link", "show"], capture_output=True, text=True, check=False
    ).stdout
    routes = subprocess.run(
        ["ip", "route", "show"], capture_output=True, text=True, check=False
    ).stdout
    return {
        "processes": sorted(_node_processes(directory)),
        "mounts": _mounts_under(*_mount_roots(directory), netns),
        "netns": sorted(p.name for p in netns.glob("cni-*")) if netns.is_dir() else [],
        "links": sorted(
            name
            for name in re.findall(r"^\d+: ([^:@]+)", links, re.MULTILINE)
            if name == net.BRIDGE or name.startswith("veth")
        ),
        "routes": sorted(
            line
            for line in routes.splitlines()
            if net.BRIDGE in line or line.startswith((net.SERVICE_CIDR, net.POD_CIDR))
        ),
        "rules": sorted(rules),
        # All of them, not only kube-router's: none may appear or go.
        "ipsets": _firewall.ipsets(),
        "host_paths": sorted(str(p) for p in _HOST_PATHS if p.exists()),
        "kubepods_cgroups": sorted(str(p) for p in _kubepods_cgroups()),
        "sysctls": {name: net.read_sysctl(name) for name in net.SAVED_SYSCTLS},
    }


def cleanup(  # noqa: PLR0912 - one ordered list of undo steps reads best in one place
    directory: Path,
    node_bin: Path | None,
    say: Callable[[str], None] = print,
    keep_dir: bool | None = None,
) -> dict[str, Any]:
    """Stop the node and undo its host changes; idempotent, and complete after a crash.

    The state directory (logs, certificates) is removed unless `keep_dir`, which defaults to
    the environment variable KUBESWARM_REALNODE_KEEP=1.
    """
    report: dict[str, Any] = {}
    pids_file = directory / "pids.json"
    pids: dict[str, dict[str, Any]] = (
        json.loads(pids_file.read_text()) if pids_file.exists() else {}
    )
    sock = directory / "containerd" / "containerd.sock"
    if node_bin is None and (directory / "node-bin").exists():
        node_bin = Path((directory / "node-bin").read_text().strip())
    # Pods first, through the CRI, while containerd runs: that tears down their networks.
    crictl = node_bin / "crictl" if node_bin is not None else None
    stopped: list[str] = []
    rec = pids.get("containerd")
    if rec and alive(rec["pid"], rec["started"]) and crictl is not None and crictl.exists():
        # Nothing may restart pods, nor rewrite the filter table while it is cleaned up.
        for name in (_firewall.BINARY, "metrics-server", "kube-proxy", "kubelet"):
            if name in pids and _terminate(pids[name]["pid"], pids[name]["started"]):
                stopped.append(name)
        base = [str(crictl), "-r", f"unix://{sock}", "-t", "20s"]
        subprocess.run([*base, "rmp", "-af"], capture_output=True, check=False, timeout=120)
    for name in _STOP_ORDER:
        rec = pids.get(name)
        if rec and _terminate(rec["pid"], rec["started"]):
            stopped.append(name)
    report["stopped"] = stopped
    # Shims and containers of a containerd that died uncleanly: found by this node's paths.
    strays = _node_processes(directory)
    for pid in sorted(strays):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    report["stray_processes_killed"] = len(strays)
    time.sleep(0.3 if strays else 0)
    mounts = _mounts_under(*_mount_roots(directory))
    netns = Path("/run/netns")
    if netns.is_dir():
        for ns in netns.glob("cni-*"):
            mounts.append(str(ns))
    for target in mounts:
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)
    for ns in netns.glob("cni-*") if netns.is_dir() else []:
        ns.unlink(missing_ok=True)
    report["unmounted"] = len(mounts)
    report["network"] = net.down(directory)
    for top in _kubepods_cgroups():
        for cgroup in sorted(
            (p for p in top.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
        ):
            with contextlib.suppress(OSError):
                cgroup.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()
    # Fixed paths of the kubelet, containerd and CNI; only this node uses them on this machine.
    for path in _HOST_PATHS:
        shutil.rmtree(path, ignore_errors=True)
    logs_link_dir = Path("/var/log/containers")
    if logs_link_dir.is_dir():
        for link in logs_link_dir.iterdir():
            if link.is_symlink() and str(link.readlink()).startswith(str(directory)):
                link.unlink()
        with contextlib.suppress(OSError):
            logs_link_dir.rmdir()
    cni_cache = Path("/var/lib/cni/results")
    if cni_cache.is_dir():
        for result in cni_cache.glob(f"{net.CNI_NETWORK}-*"):
            result.unlink()
    with contextlib.suppress(OSError):
        netns.rmdir()
    if directory.exists():
        if keep_dir is None:
            keep_dir = os.environ.get("KUBESWARM_REALNODE_KEEP") == "1"
        if keep_dir:
            (directory / "pids.json").unlink(missing_ok=True)
            say(f"kept {directory} (KUBESWARM_REALNODE_KEEP=1)")
        else:
            # sysctls.json is gone (restored) by now; everything else is this session's.
            shutil.rmtree(directory, ignore_errors=True)
    if stopped or strays or mounts:
        say(f"cleaned up: {report}")
    return report
