"""The operator's API connection hands Kopf the bare service-account token, from a pod and from a kubeconfig.

In a pod the Kubernetes client stores the token as "bearer <token>" (lower case); the operator stripped only
"Bearer ", so Kopf sent "Bearer bearer <token>" and every request of the chart's operator was refused (401),
found on the local node (tests/node/test_sites.py). The client's own in-cluster loader runs here on files
laid out as a pod has them.
"""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes
import pytest

from ioc.settings import KubeEndpoint
from operators.kube import Kube

TOKEN = "eyJhbGciOiJSUzI1NiJ9.c2VydmljZWFjY291bnQ.c2lnbmF0dXJl"


def test_in_a_pod_the_token_is_passed_without_its_scheme(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "token").write_text(TOKEN, encoding="utf-8")
    (tmp_path / "ca.crt").write_text("not read until a request is made\n", encoding="utf-8")
    loader = kubernetes.config.incluster_config.InClusterConfigLoader(
        token_filename=str(tmp_path / "token"),
        cert_filename=str(tmp_path / "ca.crt"),
        environ={"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"},
    )
    monkeypatch.setattr(
        kubernetes.config,
        "load_incluster_config",
        loader.load_and_set,
    )
    connection = Kube(KubeEndpoint()).connection()
    assert connection.token == TOKEN
    assert connection.server == "https://10.0.0.1:443"


def test_from_a_kubeconfig_the_token_is_passed_without_its_scheme(tmp_path: Path) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443", "insecure-skip-tls-verify": True}}],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config), encoding="utf-8")
    assert Kube(KubeEndpoint(kubeconfig=path)).connection().token == TOKEN
