"""A real single-node Kubernetes cluster on this machine, for the real-node test tier.

`RealNode.start()` brings up, in this order: the network (`_hostnet`), containerd (own root,
state and socket; runc; CNI bridge), the locally built images imported into it, etcd,
kube-apiserver, kube-controller-manager and kube-scheduler (the cluster tier's binaries and
certificate helpers, without kwok), CoreDNS, a real kubelet and kube-proxy, kube-router's
NetworkPolicy controller (`_firewall`; skipped, with the reason in `netpol_unsupported`, on a
kernel without what its rules need) and metrics-server scraping the kubelet; then it waits for
the node to be Ready and the metrics API to answer.
`RealNode.stop()` ends every process by its PID and undoes every change to the host.

The node is one per machine: the kubelet uses fixed ports (10250, 10248) and fixed paths
(/var/lib/kubelet, /var/log/containers, /run/netns, ...). Its state directory is fixed too, so
`cleanup()` can always find what an earlier session left, even one that was killed: `start()`
calls it first, and it is idempotent. PIDs are recorded with their start times, so a PID reused
by an unrelated process is never signalled.

Host facts that shape the configuration: root here lacks CAP_SYS_RESOURCE, so runc cannot lower
oom_score_adj (containerd's `restrict_oom_score_adj`, `oomScoreAdj: 0` for kubelet and
kube-proxy); cgroups are v1 (`failCgroupV1: false`, cgroupfs driver).

Nothing listens on or connects to any address off this machine: the control plane is on
127.0.0.1, the node's components on the bridge address, and pods have no route off the host.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from tests.controlplane import commands as cmd
from tests.controlplane.https import Https, etcd_healthy
from tests.controlplane.pki import Pki, issue, load_ca, write_kubeconfig, write_pair, write_pki
from tests.controlplane.processes import component_env, die_with_parent, free_ports, tail
from tests.realnode import _firewall
from tests.realnode import _hostnet as net
from tests.realnode._teardown import alive, cache_dir, cleanup, start_time

HERE: Final = Path(__file__).resolve().parent
NODE_BUILD: Final = HERE.parent / "cluster" / "controlplane" / "build.sh"
IMAGE_BUILD: Final = HERE / "images" / "build.sh"
PACKAGES: Final = HERE / "install-packages.sh"

NODE_NAME: Final = "kubeswarm-realnode"
LOCUST_IMAGE: Final = "localhost/kubeswarm-locust:2.47.0"
PYTHON_IMAGE: Final = "localhost/kubeswarm-python:3.11"
PAUSE_IMAGE: Final = "localhost/kubeswarm-pause:1"
IMAGE_TARS: Final = {
    "pause.tar": PAUSE_IMAGE,
    "python.tar": PYTHON_IMAGE,
    "locust.tar": LOCUST_IMAGE,
}

#: Fixed, so a later session finds what a killed one left (one node per machine anyway).
STATE_DIR_ENV: Final = "KUBESWARM_REALNODE_DIR"
DEFAULT_STATE_DIR: Final = Path("/var/lib/kubeswarm-realnode")


class RealNodeError(RuntimeError):
    """The node could not be built or started."""


class RealNodeUnavailable(RealNodeError):
    """This machine cannot run the node (not root, packages cannot be installed)."""


def state_dir() -> Path:
    return Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)


# --------------------------------------------------------------------------------------------
# Building


@dataclass(frozen=True)
class Artifacts:
    """Where `build()` left the binaries and images."""

    controlplane_bin: Path
    node_bin: Path
    images: Path


def _run_build(argv: list[str], progress: Callable[[str], None]) -> str:
    """Run a build script, streaming its lines; return its last line (the output directory)."""
    lines: list[str] = []
    with subprocess.Popen(
        ["nice", *argv], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            progress(lines[-1])
    if proc.returncode == 3:
        raise RealNodeUnavailable("\n".join(lines[-5:]))
    if proc.returncode != 0 or not lines:
        raise RealNodeError(
            f"{' '.join(argv)} failed (exit {proc.returncode}):\n" + "\n".join(lines[-30:])
        )
    return lines[-1].strip()


def build(progress: Callable[[str], None] = print) -> Artifacts:
    """Install missing Debian packages, build (or find cached) binaries and images."""
    if os.geteuid() != 0:
        raise RealNodeUnavailable("the real node needs root (containers, bridge, iptables)")
    _run_build(["bash", str(PACKAGES)], progress)
    if shutil.which("go") is None:
        raise RealNodeUnavailable("the Go toolchain (go) is not on PATH; install Go >= 1.25")
    node_bin = Path(_run_build(["bash", str(NODE_BUILD), "node"], progress))
    images = Path(_run_build(["bash", str(IMAGE_BUILD)], progress))
    return Artifacts(node_bin.parent / "bin", node_bin, images)


# --------------------------------------------------------------------------------------------
# The node


@dataclass
class RealNode:
    """`start()` then use `kubeconfig`; `stop()` always (it is also safe after a failed start)."""

    artifacts: Artifacts
    progress: Callable[[str], None] = print
    #: Children get SIGTERM when this process dies (pytest); off for a standalone dev cluster.
    die_with_parent: bool = True
    start_timeout_s: float = 240.0
    dir: Path = field(default_factory=state_dir)
    kubeconfig: Path = field(init=False)
    server: str = field(init=False, default="")
    start_seconds: float = field(init=False, default=0.0)
    #: Why NetworkPolicy is not enforced on this node (None: it is).
    netpol_unsupported: str | None = field(init=False, default=None)
    _https: Https | None = field(init=False, default=None)
    _children: list[subprocess.Popen[bytes]] = field(init=False, default_factory=list)
    _t0: float = field(init=False, default_factory=time.monotonic)

    def __post_init__(self) -> None:
        self.kubeconfig = self.dir / "admin.kubeconfig"

    # ------------------------------------------------------------------ public

    @property
    def containerd_socket(self) -> Path:
        return self.dir / "containerd" / "containerd.sock"

    @property
    def crictl(self) -> list[str]:
        """argv prefix of crictl talking to this node's containerd."""
        sock = f"unix://{self.containerd_socket}"
        return [str(self.artifacts.node_bin / "crictl"), "-r", sock, "-i", sock, "-t", "10s"]

    def log_path(self, component: str) -> Path:
        return self.dir / "logs" / f"{component}.log"

    def start(self) -> None:
        self._t0 = time.monotonic()
        cleanup(self.dir, self.artifacts.node_bin, self._say, keep_dir=False)
        (self.dir / "logs").mkdir(parents=True)
        # For a cleanup by a later process (`python -m tests.realnode down`, a crashed session).
        (self.dir / "node-bin").write_text(str(self.artifacts.node_bin))
        try:
            self._start(time.monotonic() + self.start_timeout_s)
        except BaseException:
            self._say(f"start failed; logs in {self.dir / 'logs'}")
            raise
        self.start_seconds = time.monotonic() - self._t0
        self._say(
            f"node {NODE_NAME} Ready in {self.start_seconds:.1f}s; KUBECONFIG={self.kubeconfig}"
        )

    def stop(self) -> dict[str, Any]:
        report = cleanup(self.dir, self.artifacts.node_bin, self._say)
        for child in self._children:  # all ended by cleanup(); collect their exit status
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        return report

    def api(
        self, path: str, method: str = "GET", body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        assert self._https is not None, "not started"
        return self._https.request(self.server + path, method, body)

    # ------------------------------------------------------------------ internals

    def _say(self, message: str) -> None:
        self.progress(f"[realnode {time.monotonic() - self._t0:5.1f}s] {message}")

    def _spawn(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> int:
        log = self.log_path(name).open("ab")
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.dir,
            env=component_env(env),
            start_new_session=True,
            preexec_fn=die_with_parent if self.die_with_parent else None,  # noqa: PLW1509
        )
        log.close()
        self._children.append(popen)
        pids_file = self.dir / "pids.json"
        pids = json.loads(pids_file.read_text()) if pids_file.exists() else {}
        pids[name] = {"pid": popen.pid, "started": start_time(popen.pid)}
        pids_file.write_text(json.dumps(pids, indent=1))
        self._say(f"started {name} (pid {popen.pid})")
        return popen.pid

    def _wait(
        self,
        what: str,
        check: Callable[[], bool],
        deadline: float,
        blame: str,
        interval: float = 0.25,
    ) -> None:
        pids = json.loads((self.dir / "pids.json").read_text())
        while True:
            for name, rec in pids.items():
                if not alive(rec["pid"], rec["started"]):
                    raise RealNodeError(
                        f"{name} exited while waiting for {what}; last lines of its log:\n"
                        + tail(self.log_path(name))
                    )
            with contextlib.suppress(Exception):
                if check():
                    self._say(f"ready: {what}")
                    return
            if time.monotonic() > deadline:
                raise RealNodeError(
                    f"timed out waiting for {what}; last lines of {blame}'s log:\n"
                    + tail(self.log_path(blame))
                )
            time.sleep(interval)

    def _start(self, deadline: float) -> None:
        net.up(self.dir)
        self._say(f"network up: bridge {net.BRIDGE} {net.NODE_IP}, isolation rules in place")
        self._start_containerd(deadline)
        self._import_images(deadline)
        pki, kubeconfigs = self._write_pki()
        self._start_controlplane(pki, kubeconfigs, deadline)
        self._start_coredns(kubeconfigs["admin"])
        self._start_kubelet(pki, kubeconfigs["kubelet"], deadline)
        self._start_kube_proxy(kubeconfigs["kube-proxy"])
        # The admin identity: it lists pods, namespaces and policies cluster-wide, reads its Node.
        self._start_netpol(kubeconfigs["admin"], deadline)
        self._start_metrics_server(pki, deadline)

    # containerd ------------------------------------------------------------------------------

    def _start_containerd(self, deadline: float) -> None:
        d = self.dir / "containerd"
        (self.dir / "cni" / "net.d").mkdir(parents=True)
        (self.dir / "cni" / "net.d" / "10-kubeswarm.conflist").write_text(
            json.dumps(net.cni_config(self.dir / "cni" / "ipam"), indent=1)
        )
        d.mkdir(parents=True, exist_ok=True)
        config = f"""\
version = 2
# The image store lives in the cache, so images are imported once, not at every start.
root = "{cache_dir() / "realnode-containerd"}"
state = "{d / "state"}"
[grpc]
  address = "{self.containerd_socket}"
[ttrpc]
  address = "{d / "containerd.sock.ttrpc"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj, so never ask it to.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{self.dir / "cni" / "net.d"}"
    max_conf_num = 1
"""
        (d / "config.toml").write_text(config)
        self._spawn("containerd", ["containerd", "--config", str(d / "config.toml")])
        self._wait(
            "containerd",
            lambda: self._ctr("version").returncode == 0,
            deadline,
            "containerd",
        )

    def _ctr(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ctr", "--address", str(self.containerd_socket), "-n", "k8s.io", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )

    def _import_images(self, deadline: float) -> None:
        marker_dir = cache_dir() / "realnode-containerd" / "kubeswarm-imported"
        marker_dir.mkdir(parents=True, exist_ok=True)
        present = set(self._ctr("images", "ls", "-q").stdout.split())
        for tar, ref in IMAGE_TARS.items():
            # The image directory's name is its build key: a rebuilt image is imported again.
            marker = marker_dir / f"{self.artifacts.images.name}-{tar}"
            if ref in present and marker.exists():
                continue
            t0 = time.monotonic()
            proc = self._ctr("images", "import", str(self.artifacts.images / tar))
            if proc.returncode != 0:
                raise RealNodeError(f"importing {tar} failed: {proc.stderr.strip()}")
            marker.touch()
            self._say(f"imported {ref} in {time.monotonic() - t0:.1f}s")

    # control plane ---------------------------------------------------------------------------

    def _write_pki(self) -> tuple[Pki, dict[str, Path]]:
        pki_dir = self.dir / "pki"
        pki = write_pki(pki_dir)
        ca = load_ca(pki)
        extra = {
            # The Node authorizer and NodeRestriction know the kubelet by this name and group.
            "kubelet": issue(
                f"system:node:{NODE_NAME}", issuer=ca, organizations=["system:nodes"], client=True
            ),
            "kubelet-serving": issue(
                NODE_NAME, issuer=ca, server=True, dns_names=[NODE_NAME], ips=[net.NODE_IP]
            ),
            # Bound to the system:node-proxier role by the bootstrap policy.
            "kube-proxy": issue("system:kube-proxy", issuer=ca, client=True),
        }
        written = {name: write_pair(pki_dir, name, pair) for name, pair in extra.items()}
        api_port = free_ports(1)[0]
        self.server = f"https://127.0.0.1:{api_port}"
        clients = {
            "admin": pki.clients["admin"],
            "kube-controller-manager": pki.clients["kube-controller-manager"],
            "kube-scheduler": pki.clients["kube-scheduler"],
            "kubelet": written["kubelet"],
            "kube-proxy": written["kube-proxy"],
        }
        kubeconfigs = {}
        for name, (cert, key) in clients.items():
            kubeconfigs[name] = self.dir / f"{name}.kubeconfig"
            write_kubeconfig(
                kubeconfigs[name], self.server, ca=pki.ca_cert, cert=cert, key=key, user=name
            )
        self._https = Https(pki.ca_cert, *pki.clients["admin"])
        return pki, kubeconfigs

    def _start_controlplane(self, pki: Pki, kc: dict[str, Path], deadline: float) -> None:
        bin_dir = self.artifacts.controlplane_bin
        etcd_port, peer_port, kcm_port, sched_port = free_ports(4)
        api_port = self.server.rsplit(":", 1)[1]
        etcd_url, peer_url = f"http://127.0.0.1:{etcd_port}", f"http://127.0.0.1:{peer_port}"
        self._spawn("etcd", cmd.etcd_argv(bin_dir, self.dir / "etcd", etcd_url, peer_url))

        self._wait("etcd", lambda: etcd_healthy(etcd_url), deadline, "etcd")
        self._spawn(
            "kube-apiserver",
            [
                *cmd.apiserver_argv(bin_dir, etcd_url, api_port, pki, net.SERVICE_CIDR),
                # Logs, exec and the node proxy go to the kubelet, whose certificate is checked.
                f"--kubelet-client-certificate={pki.clients['admin'][0]}",
                f"--kubelet-client-key={pki.clients['admin'][1]}",
                f"--kubelet-certificate-authority={pki.ca_cert}",
                "--kubelet-preferred-address-types=InternalIP",
                # The API server is on 127.0.0.1, which pods cannot reach (and Locust needs not).
                "--endpoint-reconciler-type=none",
            ],
        )
        self._wait(
            "kube-apiserver", lambda: self.api("/readyz")[0] == 200, deadline, "kube-apiserver"
        )
        self._spawn(
            "kube-controller-manager",
            cmd.controller_manager_argv(
                bin_dir, kc["kube-controller-manager"], kcm_port, pki, net.SERVICE_CIDR
            ),
        )
        self._spawn(
            "kube-scheduler", cmd.scheduler_argv(bin_dir, kc["kube-scheduler"], sched_port, pki)
        )

    # node components -------------------------------------------------------------------------

    def _start_coredns(self, kubeconfig: Path) -> None:
        # Only the cluster's names: nothing is forwarded, so a pod cannot resolve (or reach)
        # anything outside the cluster through it.
        corefile = self.dir / "Corefile"
        corefile.write_text(
            f""".:53 {{
    bind {net.NODE_IP}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        ttl 5
    }}
}}
"""
        )
        self._spawn("coredns", [str(self.artifacts.node_bin / "coredns"), "-conf", str(corefile)])

    def _start_kubelet(self, pki: Pki, kubeconfig: Path, deadline: float) -> None:
        empty_resolv = self.dir / "resolv.conf"
        empty_resolv.write_text("")  # pods get the cluster's DNS and nothing of this machine's
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "failCgroupV1": False,  # this machine has cgroups v1 (1.35 refuses it by default)
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
            "address": net.NODE_IP,
            "port": 10250,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": 10248,
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(pki.ca_cert)},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(self.dir / "pki" / "kubelet-serving.crt"),
            "tlsPrivateKeyFile": str(self.dir / "pki" / "kubelet-serving.key"),
            "resolvConf": str(empty_resolv),
            "clusterDomain": "cluster.local",
            "clusterDNS": [net.NODE_IP],
            "podCIDR": net.POD_CIDR,
            "maxPods": 60,
            "serializeImagePulls": False,
            # The disk of a test machine is often nearly full: do not evict or collect images.
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
                "nodefs.inodesFree": "1%",
            },
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "oomScoreAdj": 0,  # no CAP_SYS_RESOURCE: a negative value is refused
            "podLogsDir": str(self.dir / "pod-logs"),
            "volumePluginDir": str(self.dir / "volume-plugins"),
            "nodeStatusUpdateFrequency": "10s",
            "cgroupsPerQOS": True,
            "enforceNodeAllocatable": ["pods"],
        }
        config_path = self.dir / "kubelet-config.json"
        config_path.write_text(json.dumps(config, indent=1))
        self._spawn(
            "kubelet",
            [
                str(self.artifacts.node_bin / "kubelet"),
                f"--config={config_path}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.dir / 'kubelet'}",
                f"--cert-dir={self.dir / 'kubelet-pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={net.NODE_IP}",
                "--v=1",
            ],
        )
        self._wait("node Ready", self._node_ready, deadline, "kubelet", interval=0.5)

    def _node_ready(self) -> bool:
        status, node = self.api(f"/api/v1/nodes/{NODE_NAME}")
        conditions = node.get("status", {}).get("conditions") or [] if status == 200 else []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _start_kube_proxy(self, kubeconfig: Path) -> None:
        config = {
            "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
            "kind": "KubeProxyConfiguration",
            "mode": "iptables",
            "oomScoreAdj": 0,
            "clientConnection": {"kubeconfig": str(kubeconfig)},
            "hostnameOverride": NODE_NAME,
            "clusterCIDR": net.POD_CIDR,
            "healthzBindAddress": "127.0.0.1:10256",
            "metricsBindAddress": "127.0.0.1:10249",
            "nodePortAddresses": [f"{net.NODE_IP}/32"],
            # Zero: leave this machine's conntrack settings alone.
            "conntrack": {
                "maxPerCore": 0,
                "min": 0,
                "tcpEstablishedTimeout": "0s",
                "tcpCloseWaitTimeout": "0s",
            },
            # No route_localnet sysctl and no masquerading of traffic that stays on the bridge.
            "iptables": {"localhostNodePorts": False, "masqueradeAll": False},
        }
        path = self.dir / "kube-proxy-config.json"
        path.write_text(json.dumps(config, indent=1))
        self._spawn(
            "kube-proxy", [str(self.artifacts.node_bin / "kube-proxy"), f"--config={path}", "--v=1"]
        )

    def _start_netpol(self, kubeconfig: Path, deadline: float) -> None:
        """After the node is Ready: kube-router reads the node's address from its Node object."""
        self.netpol_unsupported = _firewall.unsupported_reason()
        if self.netpol_unsupported:
            self._say(f"NetworkPolicy is not enforced: {self.netpol_unsupported}")
            return
        self._spawn(
            _firewall.BINARY,
            _firewall.argv(self.artifacts.node_bin, kubeconfig, NODE_NAME, net.SERVICE_CIDR),
            # kube-router looks its Node up by this variable first (then the host name).
            env={"NODE_NAME": NODE_NAME},
        )
        self._wait(
            "NetworkPolicy controller (kube-router's chains in place)",
            _firewall.running,
            deadline,
            _firewall.BINARY,
        )

    def _start_metrics_server(self, pki: Pki, deadline: float) -> None:
        port = free_ports(1)[0]
        # As in the cluster tier: an ExternalName Service to localhost behind the APIService.
        for path, body in cmd.metrics_apiservice_objects(port, pki.ca_cert):
            status, resp = self.api(path, "POST", body)
            if status not in (200, 201, 409):
                raise RealNodeError(f"POST {path}: HTTP {status}: {resp}")
        self._spawn(
            "metrics-server",
            # The real kubelet, at the node's InternalIP, with its certificate verified.
            cmd.metrics_server_argv(
                self.artifacts.controlplane_bin, self.kubeconfig, port, pki, pki.ca_cert
            ),
        )
        self._wait(
            "metrics API (node metrics from the kubelet)",
            lambda: self.api(f"/apis/metrics.k8s.io/v1beta1/nodes/{NODE_NAME}")[0] == 200,
            deadline,
            "metrics-server",
            interval=1.0,
        )
