"""The one module of the operator that talks to the Kubernetes API (besides Kopf's own watching and patching).

Children are written with server-side apply under one field manager, so every write is idempotent and
a drifted field returns to what the operator declares; the response tells whether the object had to be
created (a deleted child being repaired). Kinds are looked up in a small table rather than by discovery:
the operator only ever touches these. Errors come back as `KubeError` with the API server's own words.
"""

from __future__ import annotations

import dataclasses
import json
import urllib.parse
from collections.abc import Iterable
from typing import Any, Final

import kubernetes
from kubernetes.client.exceptions import ApiException

from ioc.settings import KubeEndpoint

__all__ = ["FIELD_MANAGER", "Connection", "Kube", "KubeError", "resource_path"]

FIELD_MANAGER: Final = "ioc-operator"

Manifest = dict[str, Any]

# kind -> (plural, namespaced); apiVersion comes with each manifest.
_KINDS: Final[dict[str, tuple[str, bool]]] = {
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "Service": ("services", True),
    "ServiceAccount": ("serviceaccounts", True),
    "Namespace": ("namespaces", False),
    "Event": ("events", True),
    "Deployment": ("deployments", True),
    "NetworkPolicy": ("networkpolicies", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "ClusterRole": ("clusterroles", False),
    "ClusterRoleBinding": ("clusterrolebindings", False),
    "CustomResourceDefinition": ("customresourcedefinitions", False),
    "IOCSite": ("iocsites", True),
    "SensorVendor": ("sensorvendors", True),
    "ReferenceModel": ("referencemodels", False),
}


class KubeError(RuntimeError):
    """The API server refused a request; `status` is the HTTP status (0 when it could not be reached)."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        super().__init__(message)

    @property
    def permanent(self) -> bool:
        """Whether retrying the same request cannot help (invalid, forbidden); conflicts and 5xx can."""
        return self.status in (400, 401, 403, 404, 405, 415, 422)


@dataclasses.dataclass(frozen=True, slots=True)
class Connection:
    """How this process reaches the API server, for Kopf's login."""

    server: str
    ca_file: str | None
    token: str | None
    cert_file: str | None
    key_file: str | None
    insecure: bool


def resource_path(api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
    """The REST path of a kind (a collection, or one object when `name` is given)."""
    try:
        plural, namespaced = _KINDS[kind]
    except KeyError:
        raise KubeError(0, f"the operator does not handle kind {kind!r}") from None
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    scoped = namespaced and namespace is not None
    path = f"{base}/namespaces/{namespace}/{plural}" if scoped else f"{base}/{plural}"
    return path if name is None else f"{path}/{name}"


class Kube:
    """A thread-safe connection to the API server, from a kubeconfig or the pod's service account."""

    def __init__(self, endpoint: KubeEndpoint, *, pool_size: int = 16) -> None:
        configuration = kubernetes.client.Configuration()
        if endpoint.kubeconfig is not None:
            kubernetes.config.load_kube_config(  # type: ignore[no-untyped-call]  # untyped in the package
                config_file=str(endpoint.kubeconfig),
                context=endpoint.context,
                client_configuration=configuration,
                persist_config=False,
            )
        else:
            kubernetes.config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        # Handlers run in a thread pool: one connection each, not a queue behind urllib3's default of 4.
        configuration.connection_pool_maxsize = pool_size
        self._configuration = configuration
        self._api = kubernetes.client.ApiClient(configuration)

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]

    def connection(self) -> Connection:
        config = self._configuration
        authorization = (config.api_key or {}).get("authorization") or (config.api_key or {}).get("BearerToken")
        # The client writes "Bearer <token>" from a kubeconfig but "bearer <token>" in a pod (in-cluster
        # configuration): the scheme is case-insensitive, and a token sent as "Bearer bearer …" is refused (401).
        value = (authorization or "").strip()
        scheme, _, rest = value.partition(" ")
        token = (rest.strip() if scheme.lower() == "bearer" else value) or None
        return Connection(
            server=config.host,
            ca_file=config.ssl_ca_cert,
            token=token,
            cert_file=config.cert_file,
            key_file=config.key_file,
            insecure=not config.verify_ssl,
        )

    # --- raw requests -------------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Iterable[tuple[str, str]] = (),
        content_type: str | None = None,
        timeout: float = 30.0,
    ) -> tuple[int, Any]:
        """One API call; returns (HTTP status, parsed JSON body) or raises KubeError."""
        headers = {"Accept": "application/json"}
        if content_type is not None:
            headers["Content-Type"] = content_type
        elif body is not None:
            headers["Content-Type"] = "application/json"
        serialized = self._api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self._api.call_api(*serialized, _request_timeout=timeout)
            response.read()  # type: ignore[no-untyped-call]
        except ApiException as exc:
            raise KubeError(exc.status or 0, _message(exc.status or 0, exc.body, exc.reason)) from None
        except Exception as exc:  # urllib3 connection errors and the like: worth retrying
            raise KubeError(0, f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        status = int(response.status)
        data = response.data or b""
        if not 200 <= status < 300:
            raise KubeError(status, _message(status, data, response.reason))
        return status, json.loads(data) if data else None

    # --- objects ------------------------------------------------------------------------------------------

    def apply(self, manifest: Manifest, *, force: bool = True) -> bool:
        """Server-side apply `manifest`; returns True when the object did not exist and was created."""
        meta = manifest["metadata"]
        path = resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"), meta["name"])
        status, _ = self.request(
            "PATCH",
            path,
            body=manifest,
            query=[("fieldManager", FIELD_MANAGER), ("force", "true" if force else "false")],
            content_type="application/apply-patch+yaml",
        )
        return status == 201

    def create(self, manifest: Manifest) -> bool:
        """Create `manifest`; returns False when it already exists (left as it is)."""
        meta = manifest["metadata"]
        path = resource_path(manifest["apiVersion"], manifest["kind"], meta.get("namespace"))
        try:
            self.request("POST", path, body=manifest, query=[("fieldManager", FIELD_MANAGER)])
        except KubeError as exc:
            if exc.status == 409:
                return False
            raise
        return True

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> Manifest | None:
        try:
            _, body = self.request("GET", resource_path(api_version, kind, namespace, name))
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise
        return dict(body)

    def list(
        self, api_version: str, kind: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[Manifest]:
        query = [("labelSelector", label_selector)] if label_selector else []
        _, body = self.request("GET", resource_path(api_version, kind, namespace), query=query)
        return list(body.get("items", []))

    def delete(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> bool:
        """Delete an object (its dependents in the background); returns False when it was already gone."""
        try:
            self.request(
                "DELETE",
                resource_path(api_version, kind, namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
        except KubeError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def served(self, group_version: str) -> set[str]:
        """Resources (plurals) the API server serves for a group/version; empty when it serves none yet."""
        try:
            _, body = self.request("GET", f"/apis/{urllib.parse.quote(group_version)}")
        except KubeError as exc:
            if exc.status == 404:
                return set()
            raise
        return {r["name"] for r in body.get("resources", []) if "/" not in r["name"]}


def _message(status: int, body: Any, reason: str | None) -> str:
    if isinstance(body, bytes | bytearray):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if isinstance(body, str) and body else None
    except ValueError:
        parsed = None
    if isinstance(parsed, dict) and parsed.get("message"):
        return f"{status} {parsed.get('reason', reason or '')}: {parsed['message']}"
    return f"{status} {reason or ''}: {str(body)[:500]}"
