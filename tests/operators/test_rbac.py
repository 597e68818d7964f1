"""The operator's ServiceAccount RBAC (the chart's ClusterRole, `operators.rbac`) is enough, and no more.

Enough: the operator runs cluster-wide with a TokenRequest token of a ServiceAccount bound to exactly
that ClusterRole, and a whole lifecycle (provision, change, repair, block and delete, vendor) goes
through without a single refusal. No more: the API server's own SubjectAccessReview denies that identity
everything outside the role that an operator could be tempted to hold (reading Secrets, pods, exec,
binding roles, touching CRDs or namespaces).
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

DISTRICT, COMMUNE = "720", "25777"


@pytest.fixture(scope="module")
def identity(crds_installed: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A ServiceAccount bound to the operator's ClusterRole, and a kubeconfig with a token requested for it."""
    kube = crds_installed
    suffix = uuid.uuid4().hex[:5]
    namespace, account, role = f"ioc-system-{suffix}", "ioc-operator", f"ioc-operator-{suffix}"
    client = api_client(kube["kubeconfig"])
    core, authz = kubernetes.client.CoreV1Api(client), kubernetes.client.RbacAuthorizationV1Api(client)
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_service_account(namespace, {"metadata": {"name": account}})
    authz.create_cluster_role(rbac.cluster_role(role))
    authz.create_cluster_role_binding(rbac.cluster_role_binding(account, namespace, role))
    token = core.create_namespaced_service_account_token(
        account, namespace, {"spec": {"audiences": [], "expirationSeconds": 3600}}
    ).status.token
    kubeconfig = tmp_path_factory.mktemp("sa") / "kubeconfig"
    ca = base64.b64encode(Path(kube["ca_file"]).read_bytes()).decode()
    kubeconfig.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "local", "cluster": {"server": kube["server"], "certificate-authority-data": ca}}
                ],
                "users": [{"name": account, "user": {"token": token}}],
                "contexts": [{"name": "operator", "context": {"cluster": "local", "user": account}}],
                "current-context": "operator",
            }
        ),
        encoding="utf-8",
    )
    yield {
        "namespace": namespace,
        "user": f"system:serviceaccount:{namespace}:{account}",
        "kubeconfig": str(kubeconfig),
    }
    authz.delete_cluster_role_binding(role)
    authz.delete_cluster_role(role)


def _allowed(
    kube: dict[str, Any], user: str, verb: str, resource: str, group: str = "", namespace: str = "x", sub: str = ""
) -> bool:
    review = kubernetes.client.AuthorizationV1Api(api_client(kube["kubeconfig"])).create_subject_access_review(
        {
            "spec": {
                "user": user,
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "resourceAttributes": {
                    "verb": verb,
                    "resource": resource,
                    "group": group,
                    "namespace": namespace,
                    "subresource": sub,
                },
            }
        }
    )
    return bool(review.status.allowed)


@pytest.mark.parametrize(
    ("verb", "resource", "group", "sub"),
    [
        ("get", "secrets", "", ""),
        ("list", "secrets", "", ""),
        ("watch", "secrets", "", ""),
        ("create", "pods", "", ""),
        ("create", "pods", "", "exec"),
        ("list", "configmaps", "", ""),
        ("delete", "namespaces", "", ""),
        ("update", "iocsites", GROUP, ""),
        ("delete", "iocsites", GROUP, ""),
        ("delete", "referencemodels", GROUP, ""),
        ("create", "customresourcedefinitions", "apiextensions.k8s.io", ""),
        ("create", "clusterrolebindings", "rbac.authorization.k8s.io", ""),
        ("bind", "clusterroles", "rbac.authorization.k8s.io", ""),
        ("escalate", "roles", "rbac.authorization.k8s.io", ""),
        ("get", "deployments", "apps", ""),
        ("patch", "deployments", "apps", "scale"),
    ],
)
def test_denied_beyond_the_role(
    crds_installed: dict[str, Any], identity: dict[str, str], verb: str, resource: str, group: str, sub: str
) -> None:
    assert not _allowed(crds_installed, identity["user"], verb, resource, group, sub=sub)


def test_granted_what_the_role_lists(crds_installed: dict[str, Any], identity: dict[str, str]) -> None:
    for rule in rbac.CLUSTER_ROLE_RULES:
        for resource in rule["resources"]:
            name, _, sub = resource.partition("/")
            for verb in rule["verbs"]:
                assert _allowed(crds_installed, identity["user"], verb, name, rule["apiGroups"][0], sub=sub), (
                    verb,
                    resource,
                )


def test_the_role_is_enough_for_the_whole_lifecycle(
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
    # Cluster-wide, as the chart runs it: the role is a ClusterRole for that reason.
    env = operator_env(kube, clickhouse, kafka, mosquitto, namespace=None, kubeconfig=identity["kubeconfig"])
    operator = OperatorProcess(env, tmp_path / "operator.log").start()
    api = custom_api(kube)
    try:
        kubectl(kube, "apply", "-n", ns, "-f", "-", stdin=json.dumps(site("dau-tieng", DISTRICT, "district")))
        kubectl(
            kube,
            "apply",
            "-n",
            ns,
            "-f",
            "-",
            stdin=json.dumps(site("dau-tieng-tt", COMMUNE, "commune", ("dau-tieng", "district"))),
        )
        vendor = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SensorVendor",
            "metadata": {"name": f"rbac-{uuid.uuid4().hex[:5]}"},
            "spec": {"units": [DISTRICT], "kinds": ["air"]},
        }
        api.create_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", vendor)
        for name in ("dau-tieng", "dau-tieng-tt"):
            wait_for(lambda name=name: ready(kube, ns, name), 60, f"{name} Ready\n{operator.text()[-3000:]}")
        wait_for(lambda: ready(kube, ns, vendor["metadata"]["name"], "sensorvendors"), 60, "the vendor Ready")
        api.patch_namespaced_custom_object(
            GROUP, VERSION, ns, "iocsites", "dau-tieng", {"spec": {"workers": {"isolated": True}}}
        )
        wait_for(lambda: ready(kube, ns, "dau-tieng"), 30, "the change handled")
        core = kubernetes.client.CoreV1Api(api_client(kube["kubeconfig"]))
        core.delete_namespaced_config_map("dau-tieng-tt-config", ns)
        wait_for(lambda: core.read_namespaced_config_map("dau-tieng-tt-config", ns), 20, "the repair")
        api.patch_namespaced_custom_object(
            GROUP, VERSION, ns, "iocsites", "dau-tieng", {"spec": {"workers": {"isolated": False}}}
        )
        wait_for(lambda: ready(kube, ns, "dau-tieng"), 30, "the change handled")
        for plural, name in (
            ("iocsites", "dau-tieng"),
            ("iocsites", "dau-tieng-tt"),
            ("sensorvendors", vendor["metadata"]["name"]),
        ):
            api.delete_namespaced_custom_object(GROUP, VERSION, ns, plural, name)

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
