"""Certificates and kubeconfigs of a test control plane (all on 127.0.0.1)."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The Service range of both tiers; the API server's certificate names its first address.
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
#: DNS names of the components' shared serving certificate, for the Services the aggregator
#: checks it against (metrics-server and the custom/external metrics adapter).
AGGREGATED_SERVICE_NAMES = ("metrics-server", "metrics-adapter")


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its private key."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def issue(
    common_name: str,
    *,
    issuer: KeyPair | None = None,
    organizations: Sequence[str] = (),
    is_ca: bool = False,
    client: bool = False,
    server: bool = False,
    dns_names: Sequence[str] = (),
    ips: Sequence[str] = (),
) -> KeyPair:
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    subject = x509.Name(attrs)
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=not is_ca,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=is_ca,
                crl_sign=is_ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    usages = []
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if usages:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    names: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    signer = issuer.key if issuer else key
    return KeyPair(builder.sign(signer, hashes.SHA256()), key)


@dataclass(frozen=True)
class Pki:
    """Paths of the files written by `write_pki`."""

    ca_cert: Path
    ca_key: Path
    front_proxy_ca_cert: Path
    front_proxy_client_cert: Path
    front_proxy_client_key: Path
    apiserver_cert: Path
    apiserver_key: Path
    serving_cert: Path
    serving_key: Path
    sa_key: Path
    sa_pub: Path
    clients: dict[str, tuple[Path, Path]]


def write_pki(pki_dir: Path) -> Pki:
    """Write a CA, the front-proxy CA and client, serving certificates, service-account keys
    and the admin, controller-manager and scheduler client certificates into `pki_dir`."""
    pki_dir.mkdir(parents=True, exist_ok=True)

    def write(name: str, data: bytes, private: bool = False) -> Path:
        path = pki_dir / name
        path.write_bytes(data)
        if private:
            path.chmod(0o600)
        return path

    ca = issue("kubeswarm-test-ca", is_ca=True)
    front_proxy_ca = issue("kubeswarm-test-front-proxy-ca", is_ca=True)
    front_proxy_client = issue("front-proxy-client", issuer=front_proxy_ca, client=True)
    apiserver = issue(
        "kube-apiserver",
        issuer=ca,
        server=True,
        dns_names=[
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ],
        ips=["127.0.0.1", str(next(ipaddress.ip_network(SERVICE_CLUSTER_IP_RANGE).hosts()))],
    )
    # One serving certificate for the other components' HTTPS ports (all on 127.0.0.1). The
    # aggregator checks metrics-server's certificate against the Service's DNS name.
    serving = issue(
        "kubeswarm-test-components",
        issuer=ca,
        server=True,
        dns_names=[
            "localhost",
            *(f"{name}.kube-system.svc" for name in AGGREGATED_SERVICE_NAMES),
            *(f"{name}.kube-system.svc.cluster.local" for name in AGGREGATED_SERVICE_NAMES),
        ],
        ips=["127.0.0.1"],
    )
    sa_key = ec.generate_private_key(ec.SECP256R1())
    # Client identities: the bootstrap RBAC policy grants each what it needs.
    client_subjects = {
        "admin": ("kubeswarm-admin", ["system:masters"]),
        "kube-controller-manager": ("system:kube-controller-manager", []),
        "kube-scheduler": ("system:kube-scheduler", []),
    }
    clients: dict[str, tuple[Path, Path]] = {}
    for name, (cn, orgs) in client_subjects.items():
        pair = issue(cn, issuer=ca, organizations=orgs, client=True)
        clients[name] = (
            write(f"{name}.crt", pair.cert_pem),
            write(f"{name}.key", pair.key_pem, private=True),
        )
    return Pki(
        ca_cert=write("ca.crt", ca.cert_pem),
        ca_key=write("ca.key", ca.key_pem, private=True),
        front_proxy_ca_cert=write("front-proxy-ca.crt", front_proxy_ca.cert_pem),
        front_proxy_client_cert=write("front-proxy-client.crt", front_proxy_client.cert_pem),
        front_proxy_client_key=write(
            "front-proxy-client.key", front_proxy_client.key_pem, private=True
        ),
        apiserver_cert=write("apiserver.crt", apiserver.cert_pem),
        apiserver_key=write("apiserver.key", apiserver.key_pem, private=True),
        serving_cert=write("serving.crt", serving.cert_pem),
        serving_key=write("serving.key", serving.key_pem, private=True),
        sa_key=write(
            "sa.key",
            sa_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            private=True,
        ),
        sa_pub=write(
            "sa.pub",
            sa_key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
        ),
        clients=clients,
    )


def load_ca(pki: Pki) -> KeyPair:
    """The CA written by `write_pki`, to issue more certificates with (e.g. a kubelet's)."""
    key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return KeyPair(x509.load_pem_x509_certificate(pki.ca_cert.read_bytes()), key)


def write_pair(pki_dir: Path, name: str, pair: KeyPair) -> tuple[Path, Path]:
    """Write NAME.crt and NAME.key (private) into `pki_dir`; return their paths."""
    cert, key = pki_dir / f"{name}.crt", pki_dir / f"{name}.key"
    cert.write_bytes(pair.cert_pem)
    key.write_bytes(pair.key_pem)
    key.chmod(0o600)
    return cert, key


def write_kubeconfig(
    path: Path, server: str, *, ca: Path, cert: Path, key: Path, user: str
) -> None:
    """Write a self-contained kubeconfig (JSON is valid YAML)."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "kubeswarm-test",
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert), "client-key-data": b64(key)},
            }
        ],
        "contexts": [
            {"name": "kubeswarm-test", "context": {"cluster": "kubeswarm-test", "user": user}}
        ],
        "current-context": "kubeswarm-test",
    }
    path.write_text(json.dumps(config, indent=2))
    path.chmod(0o600)
