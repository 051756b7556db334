"""The command lines of a test control plane's components, and the objects that register an
aggregated API served from this host. The cluster tier (kwok's fake nodes) and the real-node
tier (a real kubelet) run the same components with these."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.controlplane.pki import Pki

HPA_SYNC_PERIOD = "5s"
METRIC_RESOLUTION = "10s"


def etcd_argv(bin_dir: Path, data_dir: Path, client_url: str, peer_url: str) -> list[str]:
    return [
        str(bin_dir / "etcd"),
        "--name=default",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=default={peer_url}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync=true",  # test data only: no durability needed
        "--log-level=warn",
    ]


def apiserver_argv(
    bin_dir: Path, etcd_url: str, port: int | str, pki: Pki, service_cidr: str
) -> list[str]:
    return [
        str(bin_dir / "kube-apiserver"),
        f"--etcd-servers={etcd_url}",
        "--bind-address=127.0.0.1",
        "--advertise-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.apiserver_cert}",
        f"--tls-private-key-file={pki.apiserver_key}",
        f"--client-ca-file={pki.ca_cert}",
        "--authorization-mode=Node,RBAC",
        # PodSecurity is in the default set; named so that a change of defaults shows.
        "--enable-admission-plugins=NodeRestriction,PodSecurity",
        # Privileged containers are allowed by the API server: Pod Security decides.
        "--allow-privileged=true",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-cluster-ip-range={service_cidr}",
        # The aggregation layer (metrics.k8s.io is served by metrics-server).
        f"--requestheader-client-ca-file={pki.front_proxy_ca_cert}",
        "--requestheader-allowed-names=front-proxy-client",
        "--requestheader-username-headers=X-Remote-User",
        "--requestheader-group-headers=X-Remote-Group",
        "--requestheader-extra-headers-prefix=X-Remote-Extra-",
        f"--proxy-client-cert-file={pki.front_proxy_client_cert}",
        f"--proxy-client-key-file={pki.front_proxy_client_key}",
        "--profiling=false",
        "--v=1",
    ]


def _component_argv(binary: Path, kubeconfig: Path, port: int, pki: Pki) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        "--leader-elect=false",
        "--v=1",
    ]


def controller_manager_argv(
    bin_dir: Path, kubeconfig: Path, port: int, pki: Pki, service_cidr: str
) -> list[str]:
    return [
        *_component_argv(bin_dir / "kube-controller-manager", kubeconfig, port, pki),
        "--controllers=*",
        "--use-service-account-credentials=true",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--root-ca-file={pki.ca_cert}",
        f"--cluster-signing-cert-file={pki.ca_cert}",
        f"--cluster-signing-key-file={pki.ca_key}",
        f"--service-cluster-ip-range={service_cidr}",
        # Faster HPA reaction for tests (default 15s); all other HPA defaults kept.
        f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}",
    ]


def scheduler_argv(bin_dir: Path, kubeconfig: Path, port: int, pki: Pki) -> list[str]:
    return _component_argv(bin_dir / "kube-scheduler", kubeconfig, port, pki)


def metrics_server_argv(
    bin_dir: Path, kubeconfig: Path, port: int, pki: Pki, kubelet_ca: Path | None
) -> list[str]:
    """metrics-server on 127.0.0.1:``port``, scraping each node at its InternalIP and its
    status port; ``kubelet_ca`` verifies a real kubelet, None trusts kwok's fake endpoint."""
    return [
        str(bin_dir / "metrics-server"),
        *(
            f"--{flag}={kubeconfig}"
            for flag in ("kubeconfig", "authentication-kubeconfig", "authorization-kubeconfig")
        ),
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        "--kubelet-preferred-address-types=InternalIP",
        "--kubelet-use-node-status-port",
        "--kubelet-insecure-tls"
        if kubelet_ca is None
        else f"--kubelet-certificate-authority={kubelet_ca}",
        f"--metric-resolution={METRIC_RESOLUTION}",
        "--kubelet-request-timeout=5s",  # must be below the resolution
    ]


def metrics_apiservice_objects(port: int, ca: Path) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) that serve metrics.k8s.io from metrics-server on this host."""
    return aggregated_api_objects("metrics-server", port, ca, [("metrics.k8s.io", "v1beta1")])


#: What the metrics adapter (controlplane/adapter) serves: External metrics, and custom
#: (Object and Pods) metrics in both versions the HPA controller's client may prefer.
METRICS_ADAPTER_APIS = (
    ("external.metrics.k8s.io", "v1beta1"),
    ("custom.metrics.k8s.io", "v1beta1"),
    ("custom.metrics.k8s.io", "v1beta2"),
)


def metrics_adapter_argv(
    bin_dir: Path, kubeconfig: Path, port: int, write_port: int, pki: Pki
) -> list[str]:
    """The custom/external metrics adapter on 127.0.0.1:``port`` (the aggregated API) and
    127.0.0.1:``write_port`` (plain HTTP, where tests write metric values)."""
    return [
        str(bin_dir / "metrics-adapter"),
        *(
            f"--{flag}={kubeconfig}"
            for flag in (
                "lister-kubeconfig",
                "authentication-kubeconfig",
                "authorization-kubeconfig",
            )
        ),
        "--bind-address=127.0.0.1",
        f"--secure-port={port}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--write-address=127.0.0.1:{write_port}",
        "--v=1",
    ]


def aggregated_api_objects(
    service: str, port: int, ca: Path, group_versions: Sequence[tuple[str, str]]
) -> list[tuple[str, dict[str, Any]]]:
    """(collection path, object) that serve API groups from a server on this host, as kwokctl
    wires metrics-server: an ExternalName Service to localhost, and one APIService per group
    version pointing at that Service and the port the server listens on (its certificate is
    checked against the Service's DNS name with ``ca``)."""
    ca_bundle = base64.b64encode(ca.read_bytes()).decode()
    objects: list[tuple[str, dict[str, Any]]] = [
        (
            "/api/v1/namespaces/kube-system/services",
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service, "namespace": "kube-system"},
                "spec": {"type": "ExternalName", "externalName": "localhost"},
            },
        )
    ]
    for group, version in group_versions:
        body = {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": f"{version}.{group}"},
            "spec": {
                "group": group,
                "version": version,
                "groupPriorityMinimum": 100,
                "versionPriority": 100 + int(version == "v1beta2"),
                "caBundle": ca_bundle,
                "service": {"name": service, "namespace": "kube-system", "port": port},
            },
        }
        objects.append(("/apis/apiregistration.k8s.io/v1/apiservices", body))
    return objects
