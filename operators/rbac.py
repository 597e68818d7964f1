"""The operator's own RBAC: the rules its ServiceAccount needs, as data the chart renders.

Watching every namespace, it gets one ClusterRole with all of them (`CLUSTER_ROLE_RULES`). Watching a list
of namespaces, it gets a Role with `NAMESPACED_RULES` in each of them and a ClusterRole with only
`CLUSTER_SCOPED_RULES` (the cluster-scoped ReferenceModel), so it holds nothing in any other namespace.

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

__all__ = [
    "CLUSTER_ROLE_RULES",
    "CLUSTER_SCOPED_RULES",
    "NAMESPACED_RULES",
    "cluster_role",
    "cluster_role_binding",
    "role",
    "role_binding",
]

_WRITE: Final = ["create", "patch", "delete"]

CLUSTER_SCOPED_RULES: Final[list[dict[str, list[str]]]] = [
    # The default model is created at startup when missing; an existing one is never overwritten.
    {"apiGroups": [GROUP], "resources": ["referencemodels"], "verbs": ["list", "watch", "patch", "create"]},
    {"apiGroups": [GROUP], "resources": ["referencemodels/status"], "verbs": ["patch"]},
]
"""What the operator needs outside any namespace: the ReferenceModels (cluster-scoped)."""

NAMESPACED_RULES: Final[list[dict[str, list[str]]]] = [
    {"apiGroups": [GROUP], "resources": ["iocsites", "sensorvendors"], "verbs": ["list", "watch", "patch"]},
    {"apiGroups": [GROUP], "resources": ["iocsites/status", "sensorvendors/status"], "verbs": ["patch"]},
    {"apiGroups": [GROUP], "resources": ["iocsites/finalizers", "sensorvendors/finalizers"], "verbs": ["update"]},
    {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "watch", *_WRITE]},
    {"apiGroups": [""], "resources": ["secrets", "services", "serviceaccounts"], "verbs": _WRITE},
    {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": _WRITE},
    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": _WRITE},
    {"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"], "verbs": _WRITE},
]
"""What the operator needs in each namespace it watches (a Role there, or part of the ClusterRole)."""

CLUSTER_ROLE_RULES: Final[list[dict[str, list[str]]]] = [*NAMESPACED_RULES, *CLUSTER_SCOPED_RULES]
"""The rules of the operator's ClusterRole when it watches every namespace."""

_LABELS: Final = {"app.kubernetes.io/part-of": "ioc-platform", "app.kubernetes.io/component": "operator"}


def _copy(rules: list[dict[str, list[str]]]) -> list[dict[str, list[str]]]:
    return [{k: list(v) for k, v in rule.items()} for rule in rules]


def role(name: str, namespace: str) -> dict[str, Any]:
    """The operator's Role in one namespace it watches."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(_LABELS)},
        "rules": _copy(NAMESPACED_RULES),
    }


def role_binding(service_account: str, account_namespace: str, namespace: str, role: str) -> dict[str, Any]:
    """Binds the operator's ServiceAccount (in `account_namespace`) to its Role in `namespace`."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": role, "namespace": namespace, "labels": dict(_LABELS)},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": account_namespace}],
    }


def cluster_role(name: str = "ioc-operator", *, namespaced: bool = False) -> dict[str, Any]:
    """The ClusterRole: every rule, or (`namespaced`) only the cluster-scoped ones beside per-namespace Roles."""
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": dict(_LABELS)},
        "rules": _copy(CLUSTER_SCOPED_RULES if namespaced else CLUSTER_ROLE_RULES),
    }


def cluster_role_binding(service_account: str, namespace: str, role: str = "ioc-operator") -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": role, "labels": {"app.kubernetes.io/part-of": "ioc-platform"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "name": service_account, "namespace": namespace}],
    }
