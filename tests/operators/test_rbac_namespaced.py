"""The operator watching a list of namespaces holds rights there only: a Role per namespace, a small ClusterRole.

What the chart renders with `operator.watchNamespaces`: a Role with `operators.rbac.NAMESPACED_RULES` and
its RoleBinding in each watched namespace, and a ClusterRole with only `CLUSTER_SCOPED_RULES` (the
ReferenceModels). On the real API server, with a TokenRequest token of that ServiceAccount, a site and a
vendor in the watched namespace go through their lifecycle without a refusal, and the API server's own
SubjectAccessReview denies the same identity every namespaced right in a namespace it does not watch.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import pytest

from operators import rbac
from tests.operators.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    api_client,
    custom_api,
    kubectl,
    operator_env,
    ready,
    site,
    wait_for,
)

DISTRICT = "722"  # huyện Bàu Bàng


@pytest.fixture(scope="module")
def identity(
    crds_installed: dict[str, Any], module_namespace: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """A ServiceAccount with a Role in the watched namespace and the cluster-scoped ClusterRole; its kubeconfig."""
    kube = crds_installed
    suffix = uuid.uuid4().hex[:5]
    home, account, name = f"ioc-system-{suffix}", "ioc-operator", f"ioc-operator-{suffix}"
    client = api_client(kube["kubeconfig"])
    core, authz = kubernetes.client.CoreV1Api(client), kubernetes.client.RbacAuthorizationV1Api(client)
    core.create_namespace({"metadata": {"name": home}})
    core.create_namespaced_service_account(home, {"metadata": {"name": account}})
    authz.create_cluster_role(rbac.cluster_role(name, namespaced=True))
    authz.create_cluster_role_binding(rbac.cluster_role_binding(account, home, name))
    authz.create_namespaced_role(module_namespace, rbac.role(name, module_namespace))
    authz.create_namespaced_role_binding(module_namespace, rbac.role_binding(account, home, module_namespace, name))
    token = core.create_namespaced_service_account_token(
        account, home, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    kubeconfig = tmp_path_factory.mktemp("sa-ns") / "kubeconfig"
    ca = base64.b64encode(Path(kube["ca_file"]).read_bytes()).decode()
    cluster = {"server": kube["server"], "certificate-authority-data": ca}
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "local", "cluster": cluster}],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "operator", "context": {"cluster": "local", "user": account}}],
                "current-context": "operator",
            }
        ),
        encoding="utf-8",
    )
    yield {"home": home, "user": f"system:serviceaccount:{home}:{account}", "kubeconfig": str(kubeconfig)}
    authz.delete_cluster_role_binding(name)
    authz.delete_cluster_role(name)


def _allowed(kube: dict[str, Any], user: str, verb: str, resource: str, group: str, namespace: str | None) -> bool:
    attributes = {"verb": verb, "resource": resource.partition("/")[0], "group": group}
    attributes["subresource"] = resource.partition("/")[2]
    if namespace is not None:
        attributes["namespace"] = namespace
    review = kubernetes.client.AuthorizationV1Api(api_client(kube["kubeconfig"])).create_subject_access_review(
        {
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": attributes,
            }
        }
    )
    return bool(review.status.allowed)


def test_namespaced_rights_stop_at_the_watched_namespaces(
    crds_installed: dict[str, Any], identity: dict[str, str], module_namespace: str
) -> None:
    user = identity["user"]
    for rule in rbac.NAMESPACED_RULES:
        group = rule["apiGroups"][0]
        for resource in rule["resources"]:
            for verb in rule["verbs"]:
                assert _allowed(crds_installed, user, verb, resource, group, module_namespace), (verb, resource)
                assert not _allowed(crds_installed, user, verb, resource, group, "kube-system"), (verb, resource)
                assert not _allowed(crds_installed, user, verb, resource, group, None), ("cluster-wide", verb, resource)
    for rule in rbac.CLUSTER_SCOPED_RULES:
        for resource in rule["resources"]:
            for verb in rule["verbs"]:
                assert _allowed(crds_installed, user, verb, resource, rule["apiGroups"][0], None), (verb, resource)
    assert not _allowed(crds_installed, user, "get", "secrets", "", module_namespace)  # passwords are derived


def test_the_roles_are_enough_for_a_site_and_a_vendor(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    kafka: dict[str, Any],
    mosquitto: dict[str, Any],
    warehouse_tables: str,
    identity: dict[str, str],
    module_namespace: str,
    tmp_path: Path,
) -> None:
    ns = module_namespace
    env = operator_env(
        kube,
        clickhouse,
        kafka,
        mosquitto,
        namespace=None,
        kubeconfig=identity["kubeconfig"],
        IOC_OPERATOR_NAMESPACES=json.dumps([ns]),
    )
    operator = OperatorProcess(env, tmp_path / "operator.log").start()
    api = custom_api(kube)
    vendor = f"rbacns-{uuid.uuid4().hex[:5]}"
    try:
        kubectl(kube, "apply", "-n", ns, "-f", "-", stdin=json.dumps(site("bau-bang", DISTRICT, "district")))
        manifest = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SensorVendor",
            "metadata": {"name": vendor},
            "spec": {"units": [DISTRICT], "kinds": ["air"]},
        }
        api.create_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", manifest)
        wait_for(lambda: ready(kube, ns, "bau-bang"), 60, f"the site Ready\n{operator.text()[-3000:]}")
        wait_for(lambda: ready(kube, ns, vendor, "sensorvendors"), 60, "the vendor Ready")
        api.delete_namespaced_custom_object(GROUP, VERSION, ns, "iocsites", "bau-bang")
        api.delete_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", vendor)

        def all_gone() -> bool:
            left = api.list_namespaced_custom_object(GROUP, VERSION, ns, "iocsites")["items"]
            left += api.list_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors")["items"]
            return not left

        wait_for(all_gone, 60, "every object deleted")
    finally:
        operator.stop()
    log = operator.text()
    refusals = [line for line in log.splitlines() if "orbidden" in line]
    assert not refusals, "\n".join(refusals[:20])
    assert "Handler 'provision' succeeded" in log and "Handler 'cleanup' succeeded" in log
