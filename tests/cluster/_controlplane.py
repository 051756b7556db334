"""A real Kubernetes control plane on 127.0.0.1 for the cluster test tier.

`ControlPlane` runs upstream binaries built from Go modules by `controlplane/build.sh` (cached,
built once): etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok (fake nodes that
run pods and report simulated usage) and metrics-server (the real one, behind the aggregation
layer). Each runs as a child process with its own log file; `stop()` ends each by its PID.

What differs from a production cluster, on purpose:
- no kubelet and no container runtime: kwok plays the kubelets of the fake nodes, so pods go
  Running and Ready at once, pods owned by a Job succeed after a delay, and per-container usage
  comes from pod annotations (see `controlplane/kwok.yaml` and `USAGE_*` below);
- pod IPs come from a loopback range (`POD_CIDR`), so nothing ever connects off this machine; the
  endpoints controllers refuse such addresses, so Services get no endpoints;
- kube-controller-manager runs with `--horizontal-pod-autoscaler-sync-period=5s` (the default is
  15 s) to keep HPA tests short; every other HPA default is kept.

Everything listens on 127.0.0.1 only; nothing here contacts any other address.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from analysis.data.units import parse_quantity
from tests.controlplane.commands import (
    METRICS_ADAPTER_APIS,
    aggregated_api_objects,
    apiserver_argv,
    controller_manager_argv,
    etcd_argv,
    metrics_adapter_argv,
    metrics_apiservice_objects,
    metrics_server_argv,
    scheduler_argv,
)
from tests.controlplane.https import Https, etcd_healthy
from tests.controlplane.metrics_adapter import MetricsAdapter
from tests.controlplane.pki import SERVICE_CLUSTER_IP_RANGE, Pki, write_kubeconfig, write_pki
from tests.controlplane.processes import component_env, die_with_parent, free_ports, tail

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE / "controlplane" / "build.sh"
KWOK_CONFIG = HERE / "controlplane" / "kwok.yaml"

#: Use binaries from this directory instead of running build.sh.
BIN_DIR_ENV = "KUBESWARM_CONTROLPLANE_BIN"
#: Set to 1 to keep the working directory (certificates, kubeconfigs, logs) after stop().
KEEP_ENV = "KUBESWARM_CONTROLPLANE_KEEP"

BINARIES = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "metrics-server",
    # Built from ./controlplane/adapter; started only for the tests that ask for it.
    "metrics-adapter",
)

#: kwok hands out pod IPs from here; loopback, so a stray connection can only stay on this host.
POD_CIDR = "127.16.0.1/16"
NODE_ANNOTATION_SELECTOR = "kwok.x-k8s.io/node=fake"

#: Pod annotations read by the kwok usage configuration (quantities, e.g. "250m", "300Mi").
USAGE_CPU_ANNOTATION = "kwok.x-k8s.io/usage-cpu"
USAGE_MEMORY_ANNOTATION = "kwok.x-k8s.io/usage-memory"
#: Pod annotation (Go duration) for how long a Job's pod runs before it succeeds; default 2 s.
COMPLETE_DELAY_ANNOTATION = "pod-complete.stage.kwok.x-k8s.io/delay"

_PROBE_POD = "kubeswarm-controlplane-probe"
_PROBE_MEMORY = "64Mi"
_PROBE_MEMORY_BYTES = 64 * 1024 * 1024


class ControlPlaneError(RuntimeError):
    """The control plane could not be built or started."""


# --------------------------------------------------------------------------------------------
# Building / finding the binaries


def find_binaries(progress: Callable[[str], None] | None = None, timeout_s: float = 3600) -> Path:
    """Return the directory holding the control-plane binaries, building them if needed.

    `KUBESWARM_CONTROLPLANE_BIN` names a directory to use as is. Otherwise `build.sh` runs (it
    returns at once when the cache has the binaries); each line it prints goes to `progress`.
    """
    given = os.environ.get(BIN_DIR_ENV)
    if given:
        bin_dir = Path(given)
    else:
        if shutil.which("go") is None:
            raise ControlPlaneError(
                "the Go toolchain (go) is not on PATH: it is needed once to build the control "
                f"plane ({BUILD_SCRIPT}); install Go >= 1.25, or set {BIN_DIR_ENV}"
            )
        lines: list[str] = []
        with subprocess.Popen(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        ) as proc:
            assert proc.stdout is not None
            deadline = time.monotonic() + timeout_s
            for line in proc.stdout:
                lines.append(line.rstrip("\n"))
                if progress is not None:
                    progress(line.rstrip("\n"))
                if time.monotonic() > deadline:
                    proc.kill()
                    break
            rc = proc.wait()
        if rc != 0 or not lines:
            tail = "\n".join(lines[-30:])
            raise ControlPlaneError(f"{BUILD_SCRIPT} failed (exit {rc}):\n{tail}")
        bin_dir = Path(lines[-1].strip())
    missing = [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]
    if missing:
        raise ControlPlaneError(f"{bin_dir} lacks the binaries {', '.join(missing)}")
    return bin_dir


@dataclass
class _Process:
    name: str
    argv: list[str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    log_file: IO[bytes]

    def exited(self) -> int | None:
        return self.popen.poll()

    def failure(self, what: str) -> ControlPlaneError:
        rc = self.popen.poll()
        state = f"exited with code {rc}" if rc is not None else "is running"
        return ControlPlaneError(
            f"{self.name} {what} ({state}); last lines of {self.log_path}:\n{tail(self.log_path)}"
        )


# --------------------------------------------------------------------------------------------
# The control plane


@dataclass
class ControlPlane:
    """Start with `start()` (or `with ControlPlane() as cp:`), stop with `stop()`.

    After `start()`: `kubeconfig` is an admin kubeconfig file, `server` the API server URL.
    """

    nodes: int = 3
    node_cpu: str = "32"
    node_memory: str = "128Gi"
    node_pods: str = "110"
    start_timeout_s: float = 180.0
    bin_dir: Path | None = None
    progress: Callable[[str], None] | None = None
    workdir: Path = field(init=False)
    kubeconfig: Path = field(init=False)
    server: str = field(init=False)
    start_seconds: float = field(init=False, default=0.0)
    node_names: list[str] = field(init=False, default_factory=list)
    _procs: list[_Process] = field(init=False, default_factory=list)
    _bin_dir: Path | None = field(init=False, default=None)
    _pki: Pki | None = field(init=False, default=None)
    _adapter: MetricsAdapter | None = field(init=False, default=None)
    _https: Https | None = field(init=False, default=None)
    _started: bool = field(init=False, default=False)
    _t0: float = field(init=False, default_factory=time.monotonic)

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- public

    @property
    def pids(self) -> dict[str, int]:
        """PID of each component process started (running or not)."""
        return {p.name: p.popen.pid for p in self._procs}

    def log_path(self, component: str) -> Path:
        return self.workdir / "logs" / f"{component}.log"

    def start(self) -> None:
        if self._started:
            raise ControlPlaneError("this ControlPlane was already started")
        self._started = True
        t0 = self._t0 = time.monotonic()
        bin_dir = self.bin_dir or find_binaries(self.progress)
        self.workdir = Path(tempfile.mkdtemp(prefix="kubeswarm-controlplane-"))
        try:
            self._start(bin_dir, time.monotonic() + self.start_timeout_s)
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        self.start_seconds = time.monotonic() - t0
        self._say(f"control plane ready in {self.start_seconds:.1f}s at {self.server}")

    def stop(self, keep_workdir: bool = False) -> None:
        """Stop every component by PID (SIGTERM, then SIGKILL after a grace period)."""
        # Clients first, then the API server, then etcd.
        order = [
            [
                "metrics-adapter",
                "metrics-server",
                "kwok",
                "kube-scheduler",
                "kube-controller-manager",
            ],
            ["kube-apiserver"],
            ["etcd"],
        ]
        for group in order:
            procs = [p for p in self._procs if p.name in group and not p.log_file.closed]
            for p in procs:
                if p.popen.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        p.popen.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + 10
            for p in procs:
                try:
                    p.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        p.popen.kill()
                    p.popen.wait(timeout=10)
                p.log_file.close()
        keep = keep_workdir or os.environ.get(KEEP_ENV) == "1"
        workdir: Path | None = getattr(self, "workdir", None)
        if workdir is not None and workdir.exists():
            if keep:
                self._say(f"control plane files kept in {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)

    def start_metrics_adapter(self, timeout_s: float = 60.0) -> MetricsAdapter:
        """Start the custom/external metrics adapter and register its APIServices (once; it
        stops with the control plane). Returns where tests write metric values."""
        if self._adapter is not None:
            return self._adapter
        assert self._bin_dir is not None and self._pki is not None, "not started"
        t0 = time.monotonic()
        deadline = t0 + timeout_s
        port, write_port = free_ports(2)
        for path, body in aggregated_api_objects(
            "metrics-adapter", port, self._pki.ca_cert, METRICS_ADAPTER_APIS
        ):
            self._create(path, body, deadline)
        adapter = self._spawn(
            "metrics-adapter",
            metrics_adapter_argv(self._bin_dir, self.kubeconfig, port, write_port, self._pki),
        )
        everyone = [p for p in self._procs if not p.log_file.closed]
        for group, version in METRICS_ADAPTER_APIS:
            name = f"{version}.{group}"
            self._wait(
                f"APIService {name} Available",
                functools.partial(self._apiservice_available, name),
                deadline,
                everyone,
                blame=adapter,
            )
        self._adapter = MetricsAdapter(f"http://127.0.0.1:{write_port}")
        self._say(f"metrics adapter ready in {time.monotonic() - t0:.1f}s")
        return self._adapter

    def restart_apiserver(self, down_s: float = 3.0, timeout_s: float = 60.0) -> float:
        """Stops kube-apiserver (SIGTERM, by its PID), keeps it down ``down_s`` seconds and
        starts it again with the same flags; returns once /readyz answers. Every watch and
        connection of a client is cut, as in an upgrade or a crash of the API server."""
        old = next(p for p in self._procs if p.name == "kube-apiserver" and p.exited() is None)
        old.popen.send_signal(signal.SIGTERM)
        try:
            old.popen.wait(timeout=30)
        except subprocess.TimeoutExpired:
            old.popen.kill()
            old.popen.wait(timeout=10)
        old.log_file.close()
        stopped = time.monotonic()
        time.sleep(down_s)
        new = self._spawn("kube-apiserver", old.argv)

        def readyz() -> bool:
            status, _ = self.api("/readyz")
            return status == 200

        self._wait("kube-apiserver /readyz again", readyz, time.monotonic() + timeout_s, [new])
        return time.monotonic() - stopped

    def api(
        self, path: str, method: str = "GET", body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        """Call the API server as admin: (HTTP status, parsed JSON); status 0 if unreachable."""
        assert self._https is not None, "not started"
        return self._https.request(self.server + path, method, body)

    # ---------------------------------------------------------------- internals

    def _say(self, message: str) -> None:
        if self.progress is not None:
            elapsed = time.monotonic() - self._t0
            self.progress(f"[controlplane {elapsed:5.1f}s] {message}")

    def _spawn(self, name: str, argv: list[str]) -> _Process:
        log_path = self.log_path(name)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
        env = component_env()
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=env,
            start_new_session=True,
            preexec_fn=die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
        )
        proc = _Process(name, argv, log_path, popen, log_file)
        self._procs.append(proc)
        self._say(f"started {name} (pid {popen.pid}), log {log_path}")
        return proc

    def _wait(
        self,
        what: str,
        check: Callable[[], bool],
        deadline: float,
        watch: Sequence[_Process],
        *,
        blame: _Process | None = None,
        interval: float = 0.25,
    ) -> None:
        """Poll `check` until true; fail early if a watched process exits, or at the deadline."""
        while True:
            for p in watch:
                if p.exited() is not None:
                    raise p.failure(f"exited while waiting for {what}")
            if check():
                self._say(f"ready: {what}")
                return
            if time.monotonic() > deadline:
                if blame is not None:
                    raise blame.failure(f"not ready: timed out waiting for {what}")
                raise ControlPlaneError(f"timed out waiting for {what}")
            time.sleep(interval)

    def _start(self, bin_dir: Path, deadline: float) -> None:
        wd = self.workdir
        pki = self._pki = write_pki(wd / "pki")
        self._bin_dir = bin_dir
        (
            etcd_port,
            etcd_peer_port,
            api_port,
            kcm_port,
            sched_port,
            kwok_port,
            ms_port,
        ) = free_ports(7)
        self.server = f"https://127.0.0.1:{api_port}"
        admin_cert, admin_key = pki.clients["admin"]
        self._https = Https(pki.ca_cert, admin_cert, admin_key)
        self.kubeconfig = wd / "admin.kubeconfig"
        write_kubeconfig(
            self.kubeconfig,
            self.server,
            ca=pki.ca_cert,
            cert=admin_cert,
            key=admin_key,
            user="admin",
        )
        kubeconfigs: dict[str, Path] = {"admin": self.kubeconfig}
        for name in ("kube-controller-manager", "kube-scheduler"):
            cert, key = pki.clients[name]
            kubeconfigs[name] = wd / f"{name}.kubeconfig"
            write_kubeconfig(
                kubeconfigs[name], self.server, ca=pki.ca_cert, cert=cert, key=key, user=name
            )

        # etcd ------------------------------------------------------------------------------
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{etcd_peer_port}"
        etcd = self._spawn("etcd", etcd_argv(bin_dir, wd / "etcd", etcd_url, peer_url))

        self._wait("etcd /health", lambda: etcd_healthy(etcd_url), deadline, [etcd], blame=etcd)

        # kube-apiserver --------------------------------------------------------------------
        apiserver = self._spawn(
            "kube-apiserver",
            [
                *apiserver_argv(bin_dir, etcd_url, api_port, pki, SERVICE_CLUSTER_IP_RANGE),
                # 127.0.0.1 is not a valid endpoint address: do not publish the kubernetes
                # Service's endpoints (nothing in this cluster uses them).
                "--endpoint-reconciler-type=none",
            ],
        )

        def readyz() -> bool:
            status, _ = self.api("/readyz")
            return status == 200

        self._wait("kube-apiserver /readyz", readyz, deadline, [etcd, apiserver], blame=apiserver)

        # Objects the other components expect ----------------------------------------------
        self._create_metrics_apiservice(ms_port, pki.ca_cert, deadline)
        self._create_nodes(deadline)
        self._create_probe_pod(deadline)

        # Controllers, scheduler, kwok, metrics-server ---------------------------------------
        kcm = self._spawn(
            "kube-controller-manager",
            controller_manager_argv(
                bin_dir,
                kubeconfigs["kube-controller-manager"],
                kcm_port,
                pki,
                SERVICE_CLUSTER_IP_RANGE,
            ),
        )
        scheduler = self._spawn(
            "kube-scheduler",
            scheduler_argv(bin_dir, kubeconfigs["kube-scheduler"], sched_port, pki),
        )
        kwok = self._spawn(
            "kwok",
            [
                str(bin_dir / "kwok"),
                f"--kubeconfig={self.kubeconfig}",
                f"--config={KWOK_CONFIG}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={NODE_ANNOTATION_SELECTOR}",
                "--node-ip=127.0.0.1",
                f"--node-port={kwok_port}",
                f"--server-address=127.0.0.1:{kwok_port}",
                f"--tls-cert-file={pki.serving_cert}",
                f"--tls-private-key-file={pki.serving_key}",
                f"--cidr={POD_CIDR}",
                "--node-lease-duration-seconds=40",
            ],
        )
        metrics_server = self._spawn(
            "metrics-server",
            # kwok's kubelet endpoint: the node's InternalIP and daemonEndpoints port.
            metrics_server_argv(bin_dir, self.kubeconfig, ms_port, pki, kubelet_ca=None),
        )
        everyone = [etcd, apiserver, kcm, scheduler, kwok, metrics_server]
        https = self._https

        def healthz(port: int) -> Callable[[], bool]:
            def check() -> bool:
                status, _ = https.request(f"https://127.0.0.1:{port}/healthz", timeout=2)
                return status == 200

            return check

        self._wait(
            "kube-controller-manager /healthz", healthz(kcm_port), deadline, everyone, blame=kcm
        )
        self._wait(
            "kube-scheduler /healthz", healthz(sched_port), deadline, everyone, blame=scheduler
        )
        self._wait("kwok /healthz", healthz(kwok_port), deadline, everyone, blame=kwok)
        self._wait(
            "fake nodes Ready and untainted", self._nodes_ready, deadline, everyone, blame=kwok
        )
        self._wait(
            "metrics-server /healthz", healthz(ms_port), deadline, everyone, blame=metrics_server
        )
        self._wait(
            "APIService v1beta1.metrics.k8s.io Available",
            self._apiservice_available,
            deadline,
            everyone,
            blame=metrics_server,
        )
        self._wait_probe_pod_metrics(deadline, everyone, metrics_server)

    def _create(self, path: str, body: dict[str, Any], deadline: float) -> None:
        while True:
            status, resp = self.api(path, "POST", body)
            if status in (200, 201, 409):
                return
            if time.monotonic() > deadline:
                raise ControlPlaneError(f"POST {path} failed: HTTP {status}: {resp}")
            time.sleep(0.5)

    def _create_metrics_apiservice(self, port: int, ca: Path, deadline: float) -> None:
        for path, body in metrics_apiservice_objects(port, ca):
            self._create(path, body, deadline)

    def _create_nodes(self, deadline: float) -> None:
        capacity = {"cpu": self.node_cpu, "memory": self.node_memory, "pods": self.node_pods}
        self.node_names = [f"kwok-node-{i}" for i in range(self.nodes)]
        for name in self.node_names:
            self._create(
                "/api/v1/nodes",
                {
                    "apiVersion": "v1",
                    "kind": "Node",
                    "metadata": {
                        "name": name,
                        "annotations": {
                            "kwok.x-k8s.io/node": "fake",
                            "node.alpha.kubernetes.io/ttl": "0",
                            "metrics.k8s.io/resource-metrics-path": (
                                f"/metrics/nodes/{name}/metrics/resource"
                            ),
                        },
                        "labels": {
                            "kubernetes.io/hostname": name,
                            "kubernetes.io/os": "linux",
                            "kubernetes.io/arch": "amd64",
                            "type": "kwok",
                        },
                    },
                    "status": {"capacity": capacity, "allocatable": capacity},
                },
                deadline,
            )

    def _nodes_ready(self) -> bool:
        """All fake nodes Ready and schedulable (the not-ready taint is gone)."""
        status, body = self.api("/api/v1/nodes")
        if status != 200:
            return False
        ready = set()
        for node in body.get("items", []):
            conditions = node.get("status", {}).get("conditions") or []
            is_ready = any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
            )
            taints = node.get("spec", {}).get("taints") or []
            if is_ready and not any(t.get("effect") == "NoSchedule" for t in taints):
                ready.add(node["metadata"]["name"])
        return set(self.node_names) <= ready

    def _apiservice_available(self, name: str = "v1beta1.metrics.k8s.io") -> bool:
        status, body = self.api(f"/apis/apiregistration.k8s.io/v1/apiservices/{name}")
        if status != 200:
            return False
        return any(
            c.get("type") == "Available" and c.get("status") == "True"
            for c in body.get("status", {}).get("conditions") or []
        )

    def _create_probe_pod(self, deadline: float) -> None:
        """A pod to follow through scheduler, kwok and metrics-server during start()."""
        # Pods are refused until the namespace's default ServiceAccount exists; create it now
        # rather than wait for kube-controller-manager (which then finds it in place).
        self._create(
            "/api/v1/namespaces/kube-system/serviceaccounts",
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
            deadline,
        )
        self._create(
            "/api/v1/namespaces/kube-system/pods",
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": _PROBE_POD,
                    "annotations": {USAGE_MEMORY_ANNOTATION: _PROBE_MEMORY},
                },
                "spec": {
                    "automountServiceAccountToken": False,
                    "containers": [
                        {
                            "name": "probe",
                            "image": "registry.k8s.io/pause:3.10",
                            "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}},
                        }
                    ],
                },
            },
            deadline,
        )

    def _wait_probe_pod_metrics(
        self, deadline: float, watch: Sequence[_Process], blame: _Process
    ) -> None:
        """Wait until metrics.k8s.io reports the probe pod's simulated usage; delete the pod.

        kwok reports a new container's cumulative CPU as 0 at its first scrape, which
        metrics-server discards, and metrics-server needs two points: three scrapes in all.
        """
        path = f"/api/v1/namespaces/kube-system/pods/{_PROBE_POD}"

        def reported() -> bool:
            status, body = self.api(
                f"/apis/metrics.k8s.io/v1beta1/namespaces/kube-system/pods/{_PROBE_POD}"
            )
            if status != 200:
                return False
            containers = body.get("containers") or []
            return bool(containers) and (
                parse_quantity(containers[0]["usage"]["memory"]) == _PROBE_MEMORY_BYTES
            )

        self._wait(
            f"metrics.k8s.io to report pod kube-system/{_PROBE_POD} at {_PROBE_MEMORY}",
            reported,
            deadline,
            watch,
            blame=blame,
            interval=1.0,
        )
        self.api(f"{path}?gracePeriodSeconds=0", "DELETE")


@dataclass(frozen=True)
class Cluster:
    """The cluster under test (what the `cluster` fixture yields)."""

    kubeconfig: Path
    #: True for the local kwok-based control plane: pods run nowhere, Job pods succeed after a
    #: delay, usage comes from pod annotations (tests that rely on that skip on real clusters).
    simulated: bool
    control_plane: ControlPlane | None = None


@contextlib.contextmanager
def running_control_plane(**kwargs: Any) -> Iterator[ControlPlane]:
    """`with running_control_plane() as cp:` starts a control plane and always stops it."""
    cp = ControlPlane(**kwargs)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()
