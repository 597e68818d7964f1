"""The local Kubernetes control plane: etcd and a kube-apiserver on loopback (TLS, token users, RBAC).

`start_etcd` and `start_apiserver` launch each and wait until it answers; the apiserver also gets its own CA,
serving certificate and service-account key, and kubeconfigs for an admin and an unprivileged user.
"""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from iocctl.localstack import certs
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


def _make_certs(cert_dir: Path) -> dict[str, Path]:
    """A CA, a serving certificate for 127.0.0.1/localhost, and the service-account signing key."""
    ca = certs.authority("ioc-localstack-ca")
    key, cert = certs.issue(ca, "kube-apiserver", dns=("localhost", "kubernetes.default.svc"), ips=(HOST, "10.0.0.1"))
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    paths = {name: cert_dir / name for name in ("ca.crt", "apiserver.crt", "apiserver.key", "sa.key", "sa.pub")}
    certs.write_private(paths["ca.crt"], certs.cert_pem(ca.cert))
    certs.write_private(paths["apiserver.crt"], certs.cert_pem(cert))
    certs.write_private(paths["apiserver.key"], certs.key_pem(key))
    certs.write_private(paths["sa.key"], certs.key_pem(sa_key))
    certs.write_private(
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
    cert_paths = _make_certs(home / "certs")
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
            f"--tls-cert-file={cert_paths['apiserver.crt']}",
            f"--tls-private-key-file={cert_paths['apiserver.key']}",
            "--service-cluster-ip-range=10.0.0.0/24",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={cert_paths['sa.pub']}",
            f"--service-account-signing-key-file={cert_paths['sa.key']}",
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
        return http_get(f"{server}/readyz", token=admin_token, ca_file=str(cert_paths["ca.crt"]))[1].strip() == "ok"

    wait_until("kube-apiserver", ready, timeout=120, process=process, log_path=log, interval=0.5)
    kubeconfig, unprivileged = home / "kubeconfig", home / "kubeconfig-unprivileged"
    write_kubeconfig(kubeconfig, server, cert_paths["ca.crt"], "ioc-admin", admin_token)
    write_kubeconfig(unprivileged, server, cert_paths["ca.crt"], UNPRIVILEGED_USER, user_token)
    return {
        "pid": process.pid,
        **launched,
        "log": str(log),
        "host": HOST,
        "port": port,
        "server": server,
        "version": KUBERNETES_VERSION,
        "ca_file": str(cert_paths["ca.crt"]),
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
