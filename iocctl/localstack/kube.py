"""The local Kubernetes control plane: etcd and a kube-apiserver on loopback (TLS, token users, RBAC).

`start_etcd` and `start_apiserver` launch each and wait until it answers; the apiserver also gets its own CA,
serving certificate and service-account key, and kubeconfigs for an admin and an unprivileged user.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import json
import secrets
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from iocctl.localstack.common import HOST, ServiceInfo, http_get, launch
from iocctl.localstack.install import KUBERNETES_VERSION, Installer
from iocctl.localstack.process import free_port, wait_until

__all__ = [
    "UNPRIVILEGED_USER",
    "apiserver_ready",
    "etcd_ready",
    "start_apiserver",
    "start_etcd",
    "write_kubeconfig",
]

UNPRIVILEGED_USER: Final = "ioc-unprivileged"


def start_etcd(root: Path, installer: Installer) -> ServiceInfo:
    etcd = installer.etcd()
    home = root / "etcd"
    home.mkdir(parents=True, exist_ok=True)
    port, peer_port = free_port(), free_port()
    log = home / "etcd.log"
    process, launched = launch(
        "etcd",
        [
            etcd,
            "--name=ioc",
            f"--data-dir={home / 'data'}",
            f"--listen-client-urls=http://{HOST}:{port}",
            f"--advertise-client-urls=http://{HOST}:{port}",
            f"--listen-peer-urls=http://{HOST}:{peer_port}",
            f"--initial-advertise-peer-urls=http://{HOST}:{peer_port}",
            f"--initial-cluster=ioc=http://{HOST}:{peer_port}",
            "--unsafe-no-fsync",
            "--log-level=warn",
            "--quota-backend-bytes=4294967296",
        ],
        log,
    )

    def ready() -> bool:
        return '"health":"true"' in http_get(f"http://{HOST}:{port}/health")[1].replace(" ", "")

    wait_until("etcd", ready, timeout=30, process=process, log_path=log)
    return {
        "pid": process.pid,
        **launched,
        "log": str(log),
        "host": HOST,
        "port": port,
        "endpoint": f"http://{HOST}:{port}",
    }


def _write_pem(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    path.chmod(0o600)


def _make_certs(cert_dir: Path) -> dict[str, Path]:
    """A CA, a serving certificate for 127.0.0.1/localhost, and the service-account signing key."""
    cert_dir.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ioc-localstack-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.IPAddress(ipaddress.ip_address(HOST)),
                    x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths = {name: cert_dir / name for name in ("ca.crt", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub")}
    nopass = serialization.NoEncryption()
    _write_pem(paths["ca.crt"], ca_cert.public_bytes(serialization.Encoding.PEM))
    _write_pem(paths["apiserver.crt"], cert.public_bytes(serialization.Encoding.PEM))
    _write_pem(
        paths["apiserver.key"],
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, nopass),
    )
    _write_pem(
        paths["sa.key"],
        sa_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, nopass),
    )
    _write_pem(
        paths["sa.pub"],
        sa_key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    return paths


def write_kubeconfig(path: Path, server: str, ca_file: Path, user: str, token: str) -> None:
    """A kubeconfig for one token identity (YAML is a superset of JSON, so JSON is written)."""
    ca_data = base64.b64encode(ca_file.read_bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "ioc-local", "cluster": {"server": server, "certificate-authority-data": ca_data}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {
                "name": f"{user}@ioc-local",
                "context": {"cluster": "ioc-local", "user": user, "namespace": "default"},
            }
        ],
        "current-context": f"{user}@ioc-local",
        "preferences": {},
    }
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    path.chmod(0o600)


def start_apiserver(root: Path, installer: Installer, etcd: ServiceInfo) -> ServiceInfo:
    apiserver, kubectl = installer.kubernetes()
    home = root / "kube-apiserver"
    home.mkdir(parents=True, exist_ok=True)
    certs = _make_certs(home / "certs")
    port = free_port()
    admin_token, user_token = secrets.token_hex(24), secrets.token_hex(24)
    tokens = home / "tokens.csv"
    tokens.write_text(
        f'{admin_token},ioc-admin,ioc-admin,"system:masters"\n{user_token},{UNPRIVILEGED_USER},{UNPRIVILEGED_USER}\n',
        encoding="utf-8",
    )
    tokens.chmod(0o600)
    log = home / "kube-apiserver.log"
    process, launched = launch(
        "kube-apiserver",
        [
            apiserver,
            f"--etcd-servers={etcd['endpoint']}",
            f"--bind-address={HOST}",
            f"--advertise-address={HOST}",
            f"--secure-port={port}",
            f"--cert-dir={home / 'certs'}",
            f"--tls-cert-file={certs['apiserver.crt']}",
            f"--tls-private-key-file={certs['apiserver.key']}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={certs['sa.pub']}",
            f"--service-account-signing-key-file={certs['sa.key']}",
            "--authorization-mode=RBAC",
            f"--token-auth-file={tokens}",
            "--disable-admission-plugins=ServiceAccount",
            "--allow-privileged=true",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            "--v=1",
        ],
        log,
    )
    server = f"https://{HOST}:{port}"

    def ready() -> bool:
        return http_get(f"{server}/readyz", token=admin_token, ca_file=str(certs["ca.crt"]))[1].strip() == "ok"

    wait_until("kube-apiserver", ready, timeout=120, process=process, log_path=log, interval=0.5)
    kubeconfig, unprivileged = home / "kubeconfig", home / "kubeconfig-unprivileged"
    write_kubeconfig(kubeconfig, server, certs["ca.crt"], "ioc-admin", admin_token)
    write_kubeconfig(unprivileged, server, certs["ca.crt"], UNPRIVILEGED_USER, user_token)
    return {
        "pid": process.pid,
        **launched,
        "log": str(log),
        "host": HOST,
        "port": port,
        "server": server,
        "version": KUBERNETES_VERSION,
        "ca_file": str(certs["ca.crt"]),
        "admin_token": admin_token,
        "kubeconfig": str(kubeconfig),
        "unprivileged_user": UNPRIVILEGED_USER,
        "unprivileged_token": user_token,
        "unprivileged_kubeconfig": str(unprivileged),
        "kubectl": str(kubectl),
    }


def etcd_ready(info: ServiceInfo) -> bool:
    """Whether etcd reports itself healthy."""
    return "true" in http_get(f"{info['endpoint']}/health")[1]


def apiserver_ready(info: ServiceInfo) -> bool:
    """Whether the apiserver's /readyz says ok to its admin."""
    return http_get(f"{info['server']}/readyz", token=info["admin_token"], ca_file=info["ca_file"])[1].strip() == "ok"
