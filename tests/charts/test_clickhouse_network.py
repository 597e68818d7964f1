"""The warehouse network-restricted in the chart: a NetworkPolicy in front of ClickHouse, and the site logins' networks.

Rendered with the real helm. The policy's selectors are judged the way Kubernetes judges them (matchLabels and
matchExpressions) against the pods that exist: every pod of the chart that holds ClickHouse credentials is
admitted from the release's namespace, the bridge (which holds none) is not; the site dashboards and dedicated
workers the operator really builds (`operators.manifests.site_children`) are admitted from a namespace with the
site label and not from one without; ClickHouse's ports are the values' ports. The site users' network
restriction travels from `clickhouse.siteReaderNetworks` to the operator's settings and into the users it makes.
The policy passes the API server's strict server-side validation in tests/charts/test_install.py.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from ioc.settings import OperatorSettings
from operators import manifests, sitedb
from tests.charts.conftest import Helm, find, one
from tests.operators.test_builders import SETTINGS, names, spec

pytestmark = pytest.mark.slow

CHI = ("clickhouseInstallation.enabled=true", "clickhouse.auth.existingSecret=ioc-clickhouse-admin")
EVERY_COMPONENT = (
    "gateway.enabled=true",
    "gateway.existingSecret=ioc-gateway",
    "reporting.enabled=true",
    "reporting.existingSecret=ioc-reporting",
)
SITES = {"ioc.platform/sites": "true", "kubernetes.io/metadata.name": "ioc-sites"}
"""A site namespace as labelled per the chart's values (plus the name label Kubernetes sets on every namespace)."""


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A LabelSelector's verdict on these labels, as the API server computes it."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


def _admitted(rule: dict[str, Any], pod: dict[str, str], namespace: dict[str, str], policy_namespace: str) -> bool:
    """Whether an ingress rule's `from` admits a pod with these labels, in a namespace with these labels."""
    for peer in rule.get("from", []):
        if "namespaceSelector" in peer:
            in_namespace = _selects(peer["namespaceSelector"], namespace)
        else:
            in_namespace = namespace.get("kubernetes.io/metadata.name") == policy_namespace
        if in_namespace and _selects(peer.get("podSelector", {}), pod):
            return True
    return False


def _pod_templates(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(object, pod template) of every workload and pod rendered."""
    found = []
    for obj in objects:
        if obj["kind"] == "Pod":
            found.append((obj, obj))
        elif obj["kind"] in ("Deployment", "StatefulSet", "Job"):
            found.append((obj, obj["spec"]["template"]))
    return found


def _uses_clickhouse(pod: dict[str, Any], host: str) -> bool:
    """Whether the pod is given ClickHouse's address (in its environment or on its command line)."""
    return host in json.dumps(pod["spec"]["containers"])


def _rules(policy: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the rule among ClickHouse's own pods, the rule on ClickHouse's ports)."""
    ingress = policy["spec"]["ingress"]
    assert len(ingress) == 2, ingress
    own, ported = (r for r in ingress if "ports" not in r), (r for r in ingress if "ports" in r)
    return next(own), next(ported)


def test_the_installations_pods_admit_only_the_platforms_clickhouse_users_on_their_ports(helm: Helm) -> None:
    objects = helm.template(*CHI, *EVERY_COMPONENT, "clickhouse.port=9440", "clickhouse.httpPort=8443")
    policy = one(objects, "NetworkPolicy", "clickhouse")
    installation = one(objects, "ClickHouseInstallation", "clickhouse")
    assert policy["metadata"]["namespace"] == "ioc-system"
    chi_pods = {"clickhouse.altinity.com/chi": installation["metadata"]["name"]}
    assert policy["spec"]["podSelector"] == {"matchLabels": chi_pods}
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    own, ported = _rules(policy)
    assert ported["ports"] == [{"protocol": "TCP", "port": 9440}, {"protocol": "TCP", "port": 8443}]
    # ClickHouse's replicas reach each other on any port; nothing else reaches them without a port rule.
    assert own["from"] == [{"podSelector": {"matchLabels": chi_pods}}]

    release_ns = {"kubernetes.io/metadata.name": "ioc-system"}
    host = f"clickhouse-{installation['metadata']['name']}.ioc-system.svc"
    users, others = set(), set()
    for obj, pod in _pod_templates(objects):
        component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
        uses = _uses_clickhouse(pod, host)
        (users if uses else others).add(component)
        admitted = _admitted(ported, pod["metadata"]["labels"], release_ns, "ioc-system")
        assert admitted == uses, f"{component}: admitted={admitted}"
        # The same pod elsewhere (another release's namespace) is not admitted.
        elsewhere = {"kubernetes.io/metadata.name": "default"}
        assert not _admitted(ported, pod["metadata"]["labels"], elsewhere, "ioc-system"), component
    assert users == {"operator", "streams", "api", "reporting", "migrations", "test"}
    assert {"bridge", "gateway"} <= others


@pytest.mark.parametrize("isolated", [False, True])
def test_site_dashboards_and_workers_are_admitted_from_labelled_site_namespaces_only(
    helm: Helm, isolated: bool
) -> None:
    _own, ported = _rules(one(helm.template(*CHI), "NetworkPolicy", "clickhouse"))
    login = manifests.Login("ch", 9000, 8123, "ioc_site_25942", "ioc_site_25942", "pw")
    children = manifests.site_children(
        names(),
        "uid-1",
        spec(workers={"isolated": isolated}),
        config_text="{}",
        login=login,
        settings=SETTINGS,
        modules=["environment"],
    )
    pods = [c["spec"]["template"]["metadata"]["labels"] for c in children if c["kind"] == "Deployment"]
    assert len(pods) == (2 if isolated else 1)  # the dashboard, and the dedicated worker when isolated
    for labels in pods:
        assert _admitted(ported, labels, SITES, "ioc-system"), labels
        assert not _admitted(ported, labels, {"kubernetes.io/metadata.name": "tenant-x"}, "ioc-system"), labels
    # Any other pod of a site namespace (a tenant's, a site's with the labels of another component) is not.
    assert not _admitted(ported, {"app": "shell"}, SITES, "ioc-system")
    assert not _admitted(ported, {**pods[0], "app.kubernetes.io/component": "debug"}, SITES, "ioc-system")
    # The namespaces are chosen by the values' labels (a label given is added to the default one).
    custom = one(
        helm.template(*CHI, "clickhouse.networkPolicy.siteNamespaceLabels.tier=ioc-site"), "NetworkPolicy", "clickhouse"
    )
    assert _admitted(_rules(custom)[1], pods[0], {**SITES, "tier": "ioc-site"}, "ioc-system")
    assert not _admitted(_rules(custom)[1], pods[0], SITES, "ioc-system")


def test_an_external_in_cluster_clickhouse_gets_the_policy_in_its_namespace(helm: Helm) -> None:
    assert not find(helm.template(), "NetworkPolicy"), "no ClickHouse pods to select without the installation"
    assert not find(helm.template("clickhouse.networkPolicy.namespace=clickhouse"), "NetworkPolicy")
    objects = helm.template(
        "clickhouse.networkPolicy.namespace=clickhouse", "clickhouse.networkPolicy.podSelector.app=clickhouse"
    )
    policy = one(objects, "NetworkPolicy", "clickhouse")
    assert policy["metadata"]["namespace"] == "clickhouse"
    assert policy["spec"]["podSelector"] == {"matchLabels": {"app": "clickhouse"}}
    _own, ported = _rules(policy)
    operator = one(objects, "Deployment", "operator")["spec"]["template"]["metadata"]["labels"]
    # From the release's namespace (named by its label), not from the policy's own.
    assert _admitted(ported, operator, {"kubernetes.io/metadata.name": "ioc-system"}, "clickhouse")
    assert not _admitted(ported, operator, {"kubernetes.io/metadata.name": "clickhouse"}, "clickhouse")
    assert not find(helm.template(*CHI, "clickhouse.networkPolicy.enabled=false"), "NetworkPolicy")
    # Removing the site label would leave an empty selector, which admits every namespace: refused.
    refused = helm.run(
        "template",
        "ioc",
        "charts/ioc-platform",
        "--set",
        "clickhouse.networkPolicy.siteNamespaceLabels.ioc\\.platform/sites=null",
        check=False,
    )
    assert refused.returncode != 0 and "siteNamespaceLabels': minProperties" in refused.stderr


def test_the_site_logins_networks_reach_the_users_the_operator_makes(
    helm: Helm, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        e["name"]: e
        for e in one(helm.template(), "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert "IOC_OPERATOR_SITE_READER__NETWORKS" not in env  # unset: the settings' default
    objects = helm.template("clickhouse.siteReaderNetworks={10.244.0.0/16,fd00:10:244::/64}")
    env = {
        e["name"]: e for e in one(objects, "Deployment", "operator")["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    for name in [k for k in os.environ if k.startswith("IOC_OPERATOR_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("IOC_OPERATOR_SITE_READER__NETWORKS", env["IOC_OPERATOR_SITE_READER__NETWORKS"]["value"])
    limits = OperatorSettings().site_reader
    assert limits.networks == ("10.244.0.0/16", "fd00:10:244::/64")
    site = names()
    assert "<networks><ip>10.244.0.0/16</ip><ip>fd00:10:244::/64</ip></networks>" in sitedb.users_d_xml(
        site, "pw", limits
    )
    create_user = next(sql for sql, _ in sitedb.user_sql(site, "pw", limits) if sql.startswith("CREATE USER"))
    assert "HOST IP '10.244.0.0/16', IP 'fd00:10:244::/64'" in create_user
