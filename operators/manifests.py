"""Pure builders of the Kubernetes objects a site or a vendor owns: data in, manifests (dicts) out.

The IOCSite handler applies what `site_children` returns with server-side apply; tests call these
functions directly. Every pod satisfies the "restricted" Pod Security Standard; every object carries the
standard labels and an owner reference to its custom resource.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from ioc import topics
from ioc.settings import OperatorSettings
from operators.models import IOCSiteSpec
from operators.names import SiteNames, VendorNames, labels, owner_reference

__all__ = [
    "DASHBOARD_PORT",
    "ISOLATED_TOPICS",
    "SIGN_IN_KEYS",
    "ChildRef",
    "KafkaLogin",
    "Login",
    "Manifest",
    "all_children",
    "credentials_secret",
    "dashboard_children",
    "isolated_topics",
    "kafka_secret",
    "obsolete_children",
    "site_children",
    "vendor_secret",
]

Manifest = dict[str, Any]

DASHBOARD_PORT: Final = 8501
"""Streamlit's port; its health endpoint is /_stcore/health."""
CONFIG_DIR: Final = "/etc/ioc/site"
KAFKA_CA_DIR: Final = "/etc/ioc/kafka-ca"
"""Where a dashboard pod mounts the brokers' CA (the chart's components use the same path)."""
ACCESS_LABEL: Final = "ioc.platform/dashboard-access"
"""Namespaces or pods with this label "true" may reach a non-public dashboard (e.g. the ingress controller)."""
RUN_AS: Final = 10001

ISOLATED_TOPICS: Final[tuple[topics.KafkaTopic, ...]] = (
    topics.READINGS,
    topics.CAMERA_EVENTS,
    topics.CITIZEN_REPORTS,
    topics.SERVICE_RECORDS,
    topics.INCIDENTS,
    topics.INCIDENT_COMMANDS,
    topics.AGGREGATES,
)
"""Registry topics earlier versions copied for an isolated site (`ioc.site-<unit>.<name>.v1`); now only deleted."""


@dataclasses.dataclass(frozen=True, slots=True)
class Login:
    """A ClickHouse login as handed to a site's pods."""

    host: str
    port: int
    http_port: int
    database: str
    user: str
    password: str


@dataclasses.dataclass(frozen=True, slots=True)
class KafkaLogin:
    """A site's Kafka principal as handed to its dashboard pods."""

    username: str
    password: str


@dataclasses.dataclass(frozen=True, slots=True)
class ChildRef:
    """Enough to find (and delete) a child object."""

    api_version: str
    kind: str
    namespace: str
    name: str


def isolated_topics(unit: str) -> list[topics.KafkaTopic]:
    """The per-site copies of the registry topics earlier versions made, to delete them with the site."""
    copies = []
    for original in ISOLATED_TOPICS:
        copies.append(dataclasses.replace(original, name=topics.site_topic(unit, original.short)))
    return copies


def _meta(names: SiteNames | VendorNames, name: str, component: str, kind: str, uid: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": names.namespace,
        "labels": labels(names, component),
        "ownerReferences": [owner_reference(kind, names.name, uid)],
    }


def _data(values: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in values.items()}


def credentials_secret(names: SiteNames, uid: str, login: Login) -> Manifest:
    """The site's read-only ClickHouse login, for its dashboard pods (and for people, with kubectl)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(names, names.credentials_secret, "credentials", "IOCSite", uid),
        "type": "Opaque",
        "data": _data(
            {
                "host": login.host,
                "port": str(login.port),
                "http_port": str(login.http_port),
                "database": login.database,
                "user": login.user,
                "password": login.password,
            }
        ),
    }


def kafka_secret(names: SiteNames, uid: str, username: str, password: str) -> Manifest:
    """The site's Kafka principal (`ioc-site-<unit>`: writes its own command topic only), for its dashboard pods."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(names, names.kafka_secret, "kafka-credentials", "IOCSite", uid),
        "type": "Opaque",
        "data": _data({"username": username, "password": password}),
    }


def vendor_secret(
    names: VendorNames,
    uid: str,
    host: str,
    port: int,
    password: str,
    *,
    username: str,
    devices: Mapping[str, tuple[str, str]] | None = None,
    ca: str | None = None,
    api_token: str | None = None,
) -> Manifest:
    """A vendor's MQTT login (`username` is in the tenants' namespace, `vendor.<id>`), plus one per device.

    Each device that has its own login adds `device.<id>.username` and `device.<id>.password`; when the
    broker speaks TLS, `ca.crt` is the CA to trust and `tls` is "true"; `api-token` reads the vendor's own
    rejections from the citizen API (ioc.vendortoken), when the operator has a token key.
    """
    data = {"host": host, "port": str(port), "username": username, "password": password}
    if ca is not None:
        data |= {"tls": "true", "ca.crt": ca}
    if api_token is not None:
        data["api-token"] = api_token
    for device, (device_user, device_password) in sorted((devices or {}).items()):
        data[f"device.{device}.username"] = device_user
        data[f"device.{device}.password"] = device_password
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _meta(names, names.credentials_secret, "vendor-credentials", "SensorVendor", uid),
        "type": "Opaque",
        "data": _data(data),
    }


def _restricted_pod() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _restricted_container() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _secret_env(prefix: str, secret: str, keys: dict[str, str]) -> list[dict[str, Any]]:
    return [
        {"name": f"{prefix}{var}", "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}
        for var, key in keys.items()
    ]


def _volumes(names: SiteNames) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    volumes: list[dict[str, Any]] = [
        {"name": "site-config", "configMap": {"name": names.config_map}},
        {"name": "tmp", "emptyDir": {}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "site-config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - the pod's own emptyDir, with a read-only root
    ]
    return volumes, mounts


SIGN_IN_KEYS: Final = {
    "OIDC_CLIENT_ID": "client_id",
    "OIDC_CLIENT_SECRET": "client_secret",
    "OIDC_METADATA_URL": "server_metadata_url",
    "COOKIE_SECRET": "cookie_secret",
}
"""IOC_DASHBOARD_<variable> from each key of the Secret `spec.dashboard.signIn.secretRef` names."""


def _sign_in_env(spec: IOCSiteSpec) -> list[dict[str, Any]]:
    """Sign-in from the referenced OIDC client Secret; without one, every visitor an anonymous read-only viewer.

    The dashboard listens on every address of the pod, which `ioc dashboard` refuses without sign-in unless
    visitors are declared anonymous viewers: never operators, so nobody acts on incidents without signing in.
    """
    sign_in = spec.dashboard.sign_in
    if sign_in is None:
        return [{"name": "IOC_DASHBOARD_ANONYMOUS_VIEWER", "value": "true"}]
    # Not optional: a Secret without a key keeps the pod from starting (CreateContainerConfigError, in its events)
    # rather than serving without sign-in or with a cookie secret each replica invents.
    env = _secret_env("IOC_DASHBOARD_", sign_in.secret_ref.name, SIGN_IN_KEYS)
    if sign_in.redirect_uri is not None:
        env.append({"name": "IOC_DASHBOARD_OIDC_REDIRECT_URI", "value": sign_in.redirect_uri})
    if sign_in.scope is not None:
        env.append({"name": "IOC_DASHBOARD_OIDC_SCOPE", "value": sign_in.scope})
    return env


def _kafka_env(names: SiteNames, settings: OperatorSettings, principal: str | None) -> list[dict[str, Any]]:
    """The dashboard's Kafka endpoint: the operator's brokers and protocol, as the site's own principal.

    With authentication the username and password come from the site's `<site>-kafka` Secret; the CA, when
    the brokers speak TLS and `dashboard_kafka_ca_secret` names one, is mounted at KAFKA_CA_DIR.
    """
    kafka = settings.kafka
    env: list[dict[str, Any]] = [
        {"name": "IOC_DASHBOARD_KAFKA__BOOTSTRAP", "value": kafka.bootstrap},
        {"name": "IOC_DASHBOARD_KAFKA__SECURITY_PROTOCOL", "value": kafka.security_protocol},
    ]
    if kafka.uses_sasl and principal is not None:
        env.append({"name": "IOC_DASHBOARD_KAFKA__SASL_MECHANISM", "value": kafka.sasl_mechanism})
        env += _secret_env(
            "IOC_DASHBOARD_KAFKA__", names.kafka_secret, {"USERNAME": "username", "PASSWORD": "password"}
        )
    if kafka.uses_tls and settings.dashboard_kafka_ca_secret is not None:
        env.append({"name": "IOC_DASHBOARD_KAFKA__CA_FILE", "value": f"{KAFKA_CA_DIR}/ca.crt"})
    return env


def _kafka_ca_volume(settings: OperatorSettings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not (settings.kafka.uses_tls and settings.dashboard_kafka_ca_secret is not None):
        return [], []
    volume = {
        "name": "kafka-ca",
        "secret": {"secretName": settings.dashboard_kafka_ca_secret, "items": [{"key": "ca.crt", "path": "ca.crt"}]},
    }
    return [volume], [{"name": "kafka-ca", "mountPath": KAFKA_CA_DIR, "readOnly": True}]


def _dashboard(
    names: SiteNames,
    uid: str,
    spec: IOCSiteSpec,
    settings: OperatorSettings,
    *,
    rollout: str,
    modules: list[str],
    kafka_principal: str | None,
) -> Manifest:
    selector = {k: v for k, v in labels(names, "dashboard").items() if k != "app.kubernetes.io/managed-by"}
    volumes, mounts = _volumes(names)
    ca_volumes, ca_mounts = _kafka_ca_volume(settings)
    volumes, mounts = volumes + ca_volumes, mounts + ca_mounts
    env = [
        {"name": "HOME", "value": "/tmp"},  # noqa: S108 - Streamlit writes under $HOME; the root is read-only
        {"name": "IOC_DASHBOARD_SITE_UNIT", "value": spec.unit},
        {"name": "IOC_DASHBOARD_EDITION", "value": spec.edition},
        {"name": "IOC_DASHBOARD_PUBLIC_ENABLED", "value": "true" if spec.dashboard.public else "false"},
        {"name": "IOC_DASHBOARD_LANGUAGE", "value": spec.dashboard.language},
        {"name": "IOC_DASHBOARD_MODULES", "value": json.dumps(modules)},
        # The site's effective configuration, as the ConfigMap holds it: its roster is offered for assignment.
        {"name": "IOC_DASHBOARD_SITE_CONFIG", "value": f"{CONFIG_DIR}/site.json"},
        # Streamlit listens on every address of the pod (the default is loopback, for laptops).
        {"name": "IOC_DASHBOARD_ADDRESS", "value": "0.0.0.0"},  # noqa: S104 - inside the pod, behind its NetworkPolicy
        {"name": "IOC_DASHBOARD_PORT", "value": str(DASHBOARD_PORT)},
        *_kafka_env(names, settings, kafka_principal),
        *_secret_env(
            "IOC_DASHBOARD_CLICKHOUSE__",
            names.credentials_secret,
            {
                "HOST": "host",
                "PORT": "port",
                "HTTP_PORT": "http_port",
                "DATABASE": "database",
                "USER": "user",
                "PASSWORD": "password",
            },
        ),
        *_sign_in_env(spec),
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(names, names.dashboard, "dashboard", "IOCSite", uid),
        "spec": {
            "replicas": spec.dashboard.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {
                    "labels": labels(names, "dashboard"),
                    # A new configuration or credential rolls the pods: both are read at start.
                    "annotations": {"ioc.platform/rollout": rollout},
                },
                "spec": {
                    "serviceAccountName": names.service_account,
                    "securityContext": _restricted_pod(),
                    "containers": [
                        {
                            "name": "dashboard",
                            "image": settings.image,
                            "command": ["ioc", "dashboard", "--site", spec.unit],
                            "ports": [{"name": "http", "containerPort": DASHBOARD_PORT, "protocol": "TCP"}],
                            "env": env,
                            "volumeMounts": mounts,
                            "readinessProbe": {
                                "httpGet": {"path": "/_stcore/health", "port": "http"},
                                "periodSeconds": 10,
                            },
                            "securityContext": _restricted_container(),
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def _worker(names: SiteNames, uid: str, spec: IOCSiteSpec, settings: OperatorSettings, rollout: str) -> Manifest:
    selector = {k: v for k, v in labels(names, "worker").items() if k != "app.kubernetes.io/managed-by"}
    volumes, mounts = _volumes(names)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(names, names.worker, "worker", "IOCSite", uid),
        "spec": {
            "replicas": spec.workers.replicas,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": labels(names, "worker"), "annotations": {"ioc.platform/rollout": rollout}},
                "spec": {
                    "serviceAccountName": names.service_account,
                    "securityContext": _restricted_pod(),
                    "containers": [
                        {
                            "name": "worker",
                            "image": settings.image,
                            "command": ["python", "-m", "streams", "worker"],
                            "env": [
                                {"name": "HOME", "value": "/tmp"},  # noqa: S108 - see the dashboard
                                # Its own consumer group: the shared pool never reads the site's topics.
                                {"name": "IOC_STREAMS_APP_ID", "value": f"ioc-streams-site-{names.suffix}"},
                                # Only this site's readings; the shared pool skips them (streams/siteconfig.py).
                                {"name": "IOC_STREAMS_SITE", "value": names.config_key},
                                # The warehouse database the shared pool writes, whatever the chart names it.
                                {"name": "IOC_STREAMS_DATABASE", "value": settings.clickhouse.database},
                                {"name": "IOC_STREAMS_DATA_DIR", "value": "/tmp/streams"},  # noqa: S108
                                {"name": "IOC_STREAMS_KAFKA__BOOTSTRAP", "value": settings.kafka.bootstrap},
                                # Its changelog topics get the cluster's replication, as the shared pool's do.
                                *(
                                    {"name": f"IOC_STREAMS_KAFKA__{name}", "value": str(value)}
                                    for name, value in (
                                        ("REPLICATION_FACTOR", settings.kafka.replication_factor),
                                        ("MIN_INSYNC_REPLICAS", settings.kafka.min_insync_replicas),
                                    )
                                ),
                                {"name": "IOC_STREAMS_CLICKHOUSE__HOST", "value": settings.clickhouse.host},
                                {"name": "IOC_STREAMS_CLICKHOUSE__PORT", "value": str(settings.clickhouse.port)},
                            ],
                            "envFrom": [{"secretRef": {"name": settings.worker_env_secret, "optional": True}}],
                            "volumeMounts": mounts,
                            "securityContext": _restricted_container(),
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def _kafka_ports(bootstrap: str) -> list[int]:
    ports = set()
    for server in bootstrap.split(","):
        _, _, port = server.strip().rpartition(":")
        if port.isdigit():
            ports.add(int(port))
    return sorted(ports)


def _network_policy(names: SiteNames, uid: str, spec: IOCSiteSpec, settings: OperatorSettings) -> Manifest:
    ingress: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": DASHBOARD_PORT}]}
    if not spec.dashboard.public:
        ingress["from"] = [
            {"namespaceSelector": {"matchLabels": {ACCESS_LABEL: "true"}}},
            {"podSelector": {"matchLabels": {ACCESS_LABEL: "true"}}},
        ]
    tcp = [settings.clickhouse.port, settings.clickhouse.http_port, *_kafka_ports(settings.kafka.bootstrap)]
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _meta(names, names.service_account, "network-policy", "IOCSite", uid),
        "spec": {
            "podSelector": {"matchLabels": {"ioc.platform/site": names.name}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [ingress],
            "egress": [
                {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
                {"ports": [{"protocol": "TCP", "port": p} for p in sorted(set(tcp))]},
            ],
        },
    }


def site_children(
    names: SiteNames,
    uid: str,
    spec: IOCSiteSpec,
    *,
    config_text: str,
    login: Login | None,
    settings: OperatorSettings,
    modules: list[str],
    kafka: KafkaLogin | None = None,
) -> list[Manifest]:
    """Every Kubernetes object the site owns, in the order they should be applied; `modules` are those it runs.

    `login` is the site's ClickHouse login for its own dashboard; None for a site served by an ancestor's
    dashboard, which then has no dashboard, Service or credentials of its own (`dashboard_children` lists
    them). `kafka` is the site's own principal when the brokers authenticate (its Secret is made and the
    dashboard commands as it); None on a broker without authentication.
    """
    kafka_password = kafka.password if kafka is not None else ""
    login_password = login.password if login is not None else ""
    rollout = hashlib.sha256(f"{config_text}\0{login_password}\0{kafka_password}".encode()).hexdigest()[:16]
    children: list[Manifest] = [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(names, names.service_account, "site", "IOCSite", uid),
            "automountServiceAccountToken": True,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(names, names.service_account, "site", "IOCSite", uid),
            # Only its own configuration, to notice changes without a restart; nothing else in the cluster.
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [names.config_map],
                    "verbs": ["get", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(names, names.service_account, "site", "IOCSite", uid),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": names.service_account},
            "subjects": [{"kind": "ServiceAccount", "name": names.service_account, "namespace": names.namespace}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(names, names.config_map, "config", "IOCSite", uid),
            "data": {"site.json": config_text},
        },
    ]
    if login is not None:
        children += [
            credentials_secret(names, uid, login),
            *([kafka_secret(names, uid, kafka.username, kafka.password)] if kafka is not None else []),
            _dashboard(
                names,
                uid,
                spec,
                settings,
                rollout=rollout,
                modules=modules,
                kafka_principal=kafka.username if kafka is not None else None,
            ),
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": _meta(names, names.dashboard, "dashboard", "IOCSite", uid),
                "spec": {
                    "type": "ClusterIP",
                    "selector": {"ioc.platform/site": names.name, "app.kubernetes.io/component": "dashboard"},
                    "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}],
                },
            },
        ]
    children.append(_network_policy(names, uid, spec, settings))
    if spec.workers.isolated:
        children.append(_worker(names, uid, spec, settings, rollout))
    return children


def obsolete_children(
    names: SiteNames, spec: IOCSiteSpec, *, kafka: bool = True, dashboard: bool = True
) -> list[ChildRef]:
    """Children a previous spec or setting needed and these do not: the dedicated worker of a formerly isolated
    site; the Kafka Secret when the brokers no longer authenticate (`kafka` False); the dashboard's objects of
    a site now served by an ancestor's dashboard (`dashboard` False)."""
    refs = []
    if not spec.workers.isolated:
        refs.append(ChildRef("apps/v1", "Deployment", names.namespace, names.worker))
    if not dashboard:
        refs += dashboard_children(names)
    elif not kafka:
        refs.append(ChildRef("v1", "Secret", names.namespace, names.kafka_secret))
    return refs


def dashboard_children(names: SiteNames) -> list[ChildRef]:
    """What only a site with its own dashboard has: the Deployment, its Service and its two credentials Secrets."""
    return [
        ChildRef("apps/v1", "Deployment", names.namespace, names.dashboard),
        ChildRef("v1", "Service", names.namespace, names.dashboard),
        ChildRef("v1", "Secret", names.namespace, names.credentials_secret),
        ChildRef("v1", "Secret", names.namespace, names.kafka_secret),
    ]


def all_children(names: SiteNames) -> list[ChildRef]:
    """Every child a site can have, for deleting them (a real cluster's garbage collector does it too)."""
    pairs = [
        ("apps/v1", "Deployment", names.worker),
        ("apps/v1", "Deployment", names.dashboard),
        ("v1", "Service", names.dashboard),
        ("networking.k8s.io/v1", "NetworkPolicy", names.service_account),
        ("v1", "Secret", names.credentials_secret),
        ("v1", "Secret", names.kafka_secret),
        ("v1", "ConfigMap", names.config_map),
        ("rbac.authorization.k8s.io/v1", "RoleBinding", names.service_account),
        ("rbac.authorization.k8s.io/v1", "Role", names.service_account),
        ("v1", "ServiceAccount", names.service_account),
    ]
    return [ChildRef(api, kind, names.namespace, name) for api, kind, name in pairs]
