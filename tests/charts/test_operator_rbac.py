"""The chart's broker and operator security settings: namespaced RBAC, the operator's key, the bridge's login, TLS.

Rendered with the real helm: watching a list of namespaces gives the operator a Role there (operators.rbac's
NAMESPACED_RULES) and a ClusterRole with the cluster-scoped rules only; the operator's key is an existing Secret
by default (no generated one, no lookup), generated only when asked, and neither is refused with what to set;
the bridge never falls back to the admin's login; MQTT TLS is on by default.
"""

from __future__ import annotations

from typing import Any

import pytest

from ioc.settings import OperatorSettings
from operators import rbac, runtime
from tests.charts.conftest import CHART, Helm, container, find, one

pytestmark = pytest.mark.slow

WATCHED = ("ioc-sites", "ioc-hcmc")


def _env(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container(obj)["env"]}


def _secret_of(env: dict[str, Any]) -> str:
    return str(env["valueFrom"]["secretKeyRef"]["name"])


def test_watching_namespaces_gives_a_role_in_each_and_no_namespaced_cluster_rights(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    sets = [f"operator.watchNamespaces[{i}]={ns}" for i, ns in enumerate(WATCHED)]
    objects = helm.template(*sets)
    cluster_role = one(objects, "ClusterRole", "operator")
    assert cluster_role["rules"] == rbac.CLUSTER_SCOPED_RULES
    roles = {r["metadata"]["namespace"]: r for r in find(objects, "Role", "operator")}
    assert set(roles) == set(WATCHED)
    account = one(objects, "ServiceAccount", "operator")["metadata"]["name"]
    for namespace, role in roles.items():
        assert role["rules"] == rbac.NAMESPACED_RULES
        (binding,) = [b for b in find(objects, "RoleBinding", "operator") if b["metadata"]["namespace"] == namespace]
        ref = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role["metadata"]["name"]}
        assert binding["roleRef"] == ref
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account, "namespace": "ioc-system"}]
    # The operator watches exactly those namespaces (the settings read the same environment).
    env = _env(one(objects, "Deployment", "operator"))
    monkeypatch.setenv("IOC_OPERATOR_NAMESPACES", env["IOC_OPERATOR_NAMESPACES"]["value"])
    assert runtime.watched_namespaces(OperatorSettings()) == WATCHED


def test_watching_every_namespace_keeps_one_cluster_role(rendered: list[dict[str, Any]]) -> None:
    assert one(rendered, "ClusterRole", "operator")["rules"] == rbac.CLUSTER_ROLE_RULES
    assert not find(rendered, "Role", "operator") and not find(rendered, "RoleBinding", "operator")


def test_an_existing_key_secret_means_no_generated_secret(helm: Helm) -> None:
    objects = helm.template("operator.secretKey.existingSecret=sealed-operator-key")
    assert not find(objects, "Secret", "operator")
    env = _env(one(objects, "Deployment", "operator"))
    assert _secret_of(env["IOC_OPERATOR_SECRET_KEY"]) == "sealed-operator-key"


def test_by_default_the_key_is_an_existing_secret_and_nothing_is_generated(rendered: list[dict[str, Any]]) -> None:
    """The GitOps path is the default: a Secret the platform engineer creates, no Secret rendered, no lookup."""
    assert not find(rendered, "Secret", "operator")
    env = _env(one(rendered, "Deployment", "operator"))
    assert env["IOC_OPERATOR_SECRET_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "ioc-operator-key",
        "key": "secret-key",
    }


def test_without_an_existing_secret_or_generate_the_chart_refuses_with_what_to_set(helm: Helm) -> None:
    neither = helm.run("template", "ioc", str(CHART), "--set", "operator.secretKey.existingSecret=", check=False)
    assert neither.returncode != 0
    assert "operator.secretKey: set existingSecret to a Secret holding the operator's key" in neither.stderr
    assert "or set generate=true" in neither.stderr
    both = helm.run("template", "ioc", str(CHART), "--set", "operator.secretKey.generate=true", check=False)
    assert both.returncode != 0
    assert "existingSecret (ioc-operator-key) and generate=true are exclusive" in both.stderr
    # Without the operator there is no key to ask for.
    helm.run("template", "ioc", str(CHART), "--set", "operator.enabled=false,operator.secretKey.existingSecret=")


def test_the_bridge_never_uses_the_admins_login(helm: Helm) -> None:
    objects = helm.template("mqtt.auth.existingSecret=mqtt-admin", "bridge.mqttAuth.existingSecret=bridge-login")
    bridge = _env(one(objects, "StatefulSet", "bridge"))
    assert _secret_of(bridge["IOC_BRIDGE_MQTT__USERNAME"]) == "bridge-login"
    assert _secret_of(bridge["IOC_BRIDGE_MQTT__PASSWORD"]) == "bridge-login"
    operator = _env(one(objects, "Deployment", "operator"))
    assert _secret_of(operator["IOC_OPERATOR_MQTT__PASSWORD"]) == "mqtt-admin"
    assert _secret_of(operator["IOC_OPERATOR_BRIDGE_PASSWORD"]) == "bridge-login"  # it creates that login
    refused = helm.run("template", "ioc", str(CHART), "--set", "bridge.mqttAuth.existingSecret=", check=False)
    assert refused.returncode != 0 and "the bridge never uses the admin's login" in refused.stderr


def test_mqtt_tls_is_on_by_default(rendered: list[dict[str, Any]]) -> None:
    for kind, component in (("Deployment", "operator"), ("StatefulSet", "bridge")):
        obj = one(rendered, kind, component)
        env = _env(obj)
        prefix = "IOC_OPERATOR_" if component == "operator" else "IOC_BRIDGE_"
        assert env[f"{prefix}MQTT__PORT"]["value"] == "8883"
        assert env[f"{prefix}MQTT__TLS_CA_FILE"]["value"] == "/etc/ioc/mqtt-ca/ca.crt"
        volumes = {v["name"]: v for v in obj["spec"]["template"]["spec"]["volumes"]}
        assert volumes["mqtt-ca"]["secret"]["secretName"] == "ioc-mqtt-ca"
