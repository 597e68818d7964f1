"""The operator's own RBAC: the ClusterRole rules its ServiceAccount needs, as data the chart renders.

Least privilege, each rule for a reason: Kopf watches and patches the three custom resources (finalizer,
progress annotations, status); children are written with server-side apply, which needs `create` and
`patch` but never `get`, and removed with `delete`; Secrets are written but never read (passwords are
derived, operators.credentials); ConfigMaps may be read because a site's Role grants its pods `get`
and `watch` on their own ConfigMap, and RBAC only lets the operator grant what it holds; owner references
with blockOwnerDeletion need `update` on the owners' finalizers where that admission plugin is on.
tests/operators/test_rbac.py runs the whole lifecycle with exactly these rules and checks what is denied.
"""

from __future__ import annotations

from typing import Any, Final

from operators.models import GROUP

__all__ = ["CLUSTER_ROLE_RULES", "cluster_role", "cluster_role_binding"]

_WRITE: Final = ["create", "patch", "delete"]

CLUSTER_ROLE_RULES: Final[list[dict[str, list[str]]]] = [
    {"apiGroups": [GROUP], "resources": ["iocsites", "sensorvendors"], "verbs": ["list", "watch", "patch"]},
    # The default model is created at startup when missing; an existing one is never overwritten.
    {"apiGroups": [GROUP], "resources": ["referencemodels"], "verbs": ["list", "watch", "patch", "create"]},
    {
        "apiGroups": [GROUP],
        "resources": ["iocsites/status", "sensorvendors/status", "referencemodels/status"],
        "verbs": ["patch"],
    },
    {"apiGroups": [GROUP], "resources": ["iocsites/finalizers", "sensorvendors/finalizers"], "verbs": ["update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch", *_WRITE]},
    {"apiGroups": [""], "resources": ["secrets", "services", "serviceaccounts"], "verbs": _WRITE},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": _WRITE},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _WRITE},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": _WRITE},
]
"""The rules of the operator's ClusterRole (bind it to the operator's ServiceAccount)."""


def cluster_role(name: str = "ioc-operator") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/part-of": "ioc-platform", "app.kubernetes.io/component": "operator"},
        },
        "rules": [{k: list(v) for k, v in rule.items()} for rule in CLUSTER_ROLE_RULES],
    }


def cluster_role_binding(service_account: str, namespace: str, role: str = "ioc-operator") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role, "labels": {"app.kubernetes.io/part-of": "ioc-platform"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
    }
