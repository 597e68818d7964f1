"""The platform installed on the local node: node, image, the stack's services for pods, Secrets, `helm install`.

`PlatformOnNode.up` brings what charts/ioc-platform needs on this machine's real node and installs it as a
platform engineer would; `down` takes it all away again. Neighbours: `node` (the cluster), `stack` (Mosquitto,
Kafka and ClickHouse, started after the node so they also listen on its IP, then published under the chart's
default Service names), `iocctl.image` (the image the chart names). Used by `ioc up --on-node`,
`python -m bench cluster` and the kube_node tests (tests/node/conftest.py, tests/node/test_chart.py).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from ioc import units
from iocctl import image as images
from iocctl.localstack.install import Installer, MissingPrerequisite
from iocctl.localstack.node import HOST_SERVICES, Node
from iocctl.localstack.stack import Stack
from operators import province

__all__ = [
    "CHART",
    "NAMESPACE",
    "RELEASE",
    "SITES_NAMESPACE",
    "HelmFailed",
    "OnNode",
    "PlatformOnNode",
    "SiteState",
    "apply_sites",
    "chart_values",
    "host_url",
    "site_secrets",
    "site_states",
]

RELEASE: Final = "ioc"
NAMESPACE: Final = "ioc-system"
CHART: Final = images.REPO_ROOT / "charts" / "ioc-platform"
SITES_NAMESPACE: Final = "ioc-sites"  # where `ioc up` applies the province's IOCSites too
KAFKA_CA: Final = "ioc-kafka-ca"  # the chart's kafka.caSecret: in the release's and each site's namespace
USERS_D_IN_POD: Final = "/var/lib/ioc/clickhouse-users.d"
RUN_AS: Final = 10001  # the image's user (values.yaml podSecurityContext), which writes the site users' files
# The stack services pods use, and the key each one's info has only when it also listens on the node IP.
_NODE_KEYS: Final = {"mosquitto": "node_tls_port", "kafka": "node_port", "clickhouse": "node_host"}


@dataclasses.dataclass(frozen=True)
class OnNode:
    """What a client of the installed platform needs: the cluster, the release, the stack's services."""

    kubeconfig: str
    kubectl_path: str
    helm_path: str
    namespace: str
    release: str
    services: dict[str, Any]  # the stack's infos (endpoints, credentials) of mosquitto, kafka, clickhouse
    image: str  # the chart's name for the loaded image
    values_file: str = ""  # `chart_values` for this stack, for `helm install -f` by hand

    @property
    def env(self) -> dict[str, str]:
        """The environment for kubectl and helm on this cluster."""
        return {**os.environ, "KUBECONFIG": self.kubeconfig}

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True, timeout: float = 300) -> str:
        return _run([self.kubectl_path, *args], self.env, stdin=stdin, check=check, timeout=timeout)

    def helm(self, *args: str, check: bool = True, timeout: float = 600) -> str:
        return _run([self.helm_path, *args], self.env, check=check, timeout=timeout)

    def describe_failure(self, namespace: str | None = None) -> str:
        """Pods, their states and the last log lines of those not Ready: what a failed install looks like."""
        ns = namespace or self.namespace
        out = [self.kubectl("-n", ns, "get", "pods,jobs", "-o", "wide", check=False)]
        pods = json.loads(self.kubectl("-n", ns, "get", "pods", "-o", "json", check=False) or "{}")
        for pod in pods.get("items", []):
            name = pod["metadata"]["name"]
            statuses = pod["status"].get("containerStatuses", [])
            if not all(s.get("ready") for s in statuses):
                out.append(f"--- {name}: {json.dumps([s.get('state') for s in statuses])[:600]}")
                out.append(self.kubectl("-n", ns, "logs", name, "--tail=15", "--all-containers", check=False))
        return "\n".join(out)


class HelmFailed(RuntimeError):
    """helm or kubectl exited non-zero; the message carries its output."""


def _run(argv: list[str], env: Mapping[str, str], *, stdin: str | None = None, check: bool, timeout: float) -> str:
    done = subprocess.run(
        argv, input=stdin, capture_output=True, text=True, env=dict(env), timeout=timeout, check=False
    )
    if check and done.returncode != 0:
        tool = Path(argv[0]).name
        raise HelmFailed(f"{tool} {' '.join(argv[1:])} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def _merged(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        inner = merged.get(key)
        merged[key] = _merged(inner, value) if isinstance(inner, dict) and isinstance(value, Mapping) else value
    return merged


def chart_values(kafka: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """The chart's values for the local node: no registry, the stack's Kafka protocol, the Secrets `up` made.

    `extra` is merged in depth (`operator={"enabled": False}` keeps the operator's key Secret).
    """
    values = {
        "image": {"pullPolicy": "Never"},  # loaded into containerd by the node; there is no registry
        # As the local stack runs Kafka: SASL_SSL with IOC_STACK_KAFKA_AUTH (the chart's default), else PLAINTEXT.
        # One broker in the local stack: one copy of each topic (the chart's default, 3 and 2, needs three brokers).
        "kafka": {
            "securityProtocol": kafka.get("security_protocol", "PLAINTEXT"),
            "replicationFactor": 1,
            "minInsyncReplicas": 1,
        },
        "mqtt": {"auth": {"existingSecret": "ioc-mqtt-admin"}},
        "clickhouse": {"auth": {"existingSecret": "ioc-clickhouse"}},
        # The chart keeps a key Secret it generated on uninstall (losing it rotates every issued password): bring one.
        "operator": {"secretKey": {"existingSecret": "ioc-operator-key"}},
    }
    return _merged(values, extra)


def _secret(name: str, namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": data,
    }


def _secrets(services: Mapping[str, Any], namespace: str, operator_key: str) -> list[dict[str, Any]]:
    """The Secrets the chart takes its credentials from (values.yaml: *.existingSecret, mqtt.tls.caSecret)."""
    mqtt, clickhouse, kafka = services["mosquitto"], services["clickhouse"], services["kafka"]
    objects = [
        _secret("ioc-mqtt-admin", namespace, {"username": mqtt["admin_user"], "password": mqtt["admin_password"]}),
        _secret("ioc-bridge-mqtt", namespace, {"username": mqtt["bridge_user"], "password": mqtt["bridge_password"]}),
        _secret("ioc-mqtt-ca", namespace, {"ca.crt": Path(mqtt["ca_file"]).read_text(encoding="utf-8")}),
        _secret("ioc-clickhouse", namespace, {"user": clickhouse["user"], "password": clickhouse["password"]}),
        _secret("ioc-operator-key", namespace, {"secret-key": operator_key}),
    ]
    if kafka.get("security_protocol") == "SASL_SSL":  # IOC_STACK_KAFKA_AUTH: each component's own principal
        objects.append(_secret(KAFKA_CA, namespace, {"ca.crt": Path(kafka["ca_file"]).read_text(encoding="utf-8")}))
        # The chart reads a principal's password from the Secret named after it (kafka.userSecrets empty).
        objects += [_secret(name, namespace, {"password": secret}) for name, secret in kafka["principals"].items()]
    return objects


class PlatformOnNode:
    """charts/ioc-platform on the node under `<root>/node`, against the local stack rooted at `root`.

    The same layout as `ioc node up` and `ioc stack up` with `--dir root`: `ioc stack status --dir root` shows
    the services, `ioc simulate --stack root` publishes to them.
    """

    def __init__(
        self,
        root: Path,
        installer: Installer,
        *,
        namespace: str = NAMESPACE,
        release: str = RELEASE,
        chart: Path = CHART,
        say: Callable[[str], None] = lambda _message: None,
    ) -> None:
        self.root = root
        self.node = Node(root, installer)
        self.stack = Stack(root, installer)
        self.helm_path = installer.helm()
        self.namespace = namespace
        self.release = release
        self.chart = chart
        self.say = say
        self.installed = False

    def up(self, *, install: bool = True, values: Mapping[str, Any] | None = None, timeout_s: int = 360) -> OnNode:
        """Node, image, services for pods, Secrets; then (`install`) `helm install --wait` with `chart_values`.

        `values` are merged over `chart_values` in depth. Raises HelmFailed with the pods' states and
        logs when the release does not become Ready within `timeout_s`.
        """
        if os.geteuid() != 0:  # before minutes of image building: buildah and the node both need it
            raise MissingPrerequisite("the platform on the node needs root (buildah, namespaces, bridges, iptables)")
        started = time.monotonic()
        image = images.build(cache_dir=self.node.installer.cache_dir)
        self.node.up()
        self.node.load_image(image.archive, tags=[image.chart_tag])
        self.say(f"node Ready with image {image.chart_tag} in {time.monotonic() - started:.0f} s")
        # Services started before the node listen on loopback only: start those afresh (fresh data and ports).
        running = self.stack.running()
        stale = [name for name, key in _NODE_KEYS.items() if name in running and key not in running[name]]
        if stale:
            self.say(f"restarting {', '.join(stale)}: started before the node, they do not listen on its IP")
            self.stack.down(stale)
        services = self.stack.up(list(_NODE_KEYS))
        mqtt, kafka, clickhouse = services["mosquitto"], services["kafka"], services["clickhouse"]
        self.node.publish_host_service(*HOST_SERVICES["mosquitto"], 8883, mqtt["node_tls_port"])
        self.node.publish_host_service(*HOST_SERVICES["kafka"], 9093, kafka["node_port"])
        self.node.publish_host_service(
            *HOST_SERVICES["clickhouse"], 9000, clickhouse["port"], more=[(8123, clickhouse["http_port"])]
        )
        info = self.node.info()
        on_node = OnNode(
            kubeconfig=info["kubeconfig"],
            kubectl_path=info["kubectl"],
            helm_path=str(self.helm_path),
            namespace=self.namespace,
            release=self.release,
            services={name: services[name] for name in _NODE_KEYS},
            image=image.chart_tag,
            values_file=str(self.values_file(kafka, values)),
        )
        on_node.kubectl("create", "namespace", self.namespace, check=False)  # present after an earlier `up`
        # A stable key for this stack's life, like `ioc up`'s operator: the stack's ClickHouse password.
        secrets = _secrets(on_node.services, self.namespace, operator_key=clickhouse["password"])
        on_node.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": secrets}))
        site_secrets(on_node, SITES_NAMESPACE)
        self.say(f"Mosquitto, Kafka and ClickHouse published to pods; Secrets in {self.namespace}, {SITES_NAMESPACE}")
        if install:
            self.install(on_node, values=values, timeout_s=timeout_s)
        return on_node

    def attach(self) -> OnNode:
        """The `OnNode` of a node and services already up (`ioc node prepare` earlier), starting nothing."""
        services = self.stack.running()
        missing = [name for name, key in _NODE_KEYS.items() if key not in services.get(name, {})]
        if not self.node.running() or missing:
            raise HelmFailed(
                f"the node or the stack's services for pods ({', '.join(missing) or 'all there'}) are not running "
                f"under {self.root}: start them with `ioc node prepare`"
            )
        info = self.node.info()
        return OnNode(
            kubeconfig=info["kubeconfig"],
            kubectl_path=info["kubectl"],
            helm_path=str(self.helm_path),
            namespace=self.namespace,
            release=self.release,
            services={name: services[name] for name in _NODE_KEYS},
            image="",
            values_file=str(self.root / "values.json"),
        )

    def values_file(self, kafka: Mapping[str, Any], values: Mapping[str, Any] | None = None) -> Path:
        path = self.root / "values.json"  # JSON is YAML
        path.write_text(json.dumps(chart_values(kafka, **(values or {}))), encoding="utf-8")
        return path

    def install(self, on_node: OnNode, *, values: Mapping[str, Any] | None = None, timeout_s: int = 360) -> None:
        """`helm upgrade --install --wait`: the release Ready (an already installed one is upgraded)."""
        started = time.monotonic()
        values_file = self.values_file(on_node.services["kafka"], values)
        try:
            on_node.helm(
                "upgrade", "--install", self.release, str(self.chart), "-n", self.namespace,
                "-f", str(values_file), "--wait", f"--timeout={timeout_s}s",
                timeout=timeout_s + 60,
            )  # fmt: skip
        except HelmFailed as failed:
            raise HelmFailed(f"{failed}\n{on_node.describe_failure()}") from None
        if chart_values(on_node.services["kafka"], **(values or {}))["operator"].get("enabled", True):
            self.operator_writes_users_d(on_node)
        self.installed = True
        self.say(f"helm install {self.release} -n {self.namespace}: Ready in {time.monotonic() - started:.0f} s")

    def operator_writes_users_d(self, on_node: OnNode) -> None:
        """Give the chart's operator the stack's ClickHouse users.d, and wait for it to roll out.

        ClickHouse 18.16 has no SQL users: a site's read-only login is a file in the server's users.d, which the
        operator writes (IOC_OPERATOR_CLICKHOUSE_USERS_D). The chart has no value for a volume (a current server,
        its target, takes SQL users), so the local node's operator gets a hostPath onto this machine's directory,
        owned by the image's user. Without it every site with its own login stays Warehouse False
        (NoUsersDirectory) and its dashboard never gets a login.
        """
        users_d = Path(on_node.services["clickhouse"]["users_d"])
        for path in (users_d, *users_d.iterdir()):
            os.chown(path, RUN_AS, RUN_AS)
        deployment = on_node.kubectl(
            "-n", on_node.namespace, "get", "deployments", "-l",
            f"app.kubernetes.io/instance={on_node.release},app.kubernetes.io/component=operator", "-o", "name",
        ).strip()  # fmt: skip
        if not deployment:
            raise HelmFailed(f"no operator Deployment of release {on_node.release} in {on_node.namespace}")
        volume = {"name": "clickhouse-users-d", "hostPath": {"path": str(users_d), "type": "Directory"}}
        container = {
            "name": "operator",
            "env": [{"name": "IOC_OPERATOR_CLICKHOUSE_USERS_D", "value": USERS_D_IN_POD}],
            "volumeMounts": [{"name": "clickhouse-users-d", "mountPath": USERS_D_IN_POD}],
        }
        patch = {"spec": {"template": {"spec": {"volumes": [volume], "containers": [container]}}}}
        on_node.kubectl("-n", on_node.namespace, "patch", deployment, "--type=strategic", "-p", json.dumps(patch))
        on_node.kubectl("-n", on_node.namespace, "rollout", "status", deployment, "--timeout=180s", timeout=200)

    def down(self) -> list[str]:
        """Stop the node (its pods with it) and the stack's services; returns what was running."""
        try:
            stopped = self.node.down()
        finally:
            stopped_services = self.stack.down()
        self.installed = False
        return [*stopped, *stopped_services]


# --- the province's sites on the node ------------------------------------------------------------------------


def site_secrets(on_node: OnNode, namespace: str) -> None:
    """The namespace for sites, with what their pods mount from it: the brokers' CA when Kafka authenticates."""
    items: list[dict[str, Any]] = [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}]
    kafka = on_node.services["kafka"]
    if kafka.get("security_protocol") == "SASL_SSL":
        items.append(_secret(KAFKA_CA, namespace, {"ca.crt": Path(kafka["ca_file"]).read_text(encoding="utf-8")}))
    on_node.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))


def apply_sites(on_node: OnNode, *, edition: units.Edition = "2024", namespace: str = SITES_NAMESPACE) -> int:
    """`kubectl apply` of the edition's whole tree of IOCSites (`ioc sites render`); returns how many.

    With an authenticating Kafka the sites' dashboards mount the brokers' CA from the Secret ioc-kafka-ca (the
    chart's kafka.caSecret) of their own namespace: it is created there first, as a platform engineer would.
    """
    site_secrets(on_node, namespace)
    manifests = province.render(edition, namespace)
    on_node.kubectl("apply", "--server-side", "-f", "-", stdin=manifests)
    return sum(1 for line in manifests.splitlines() if line == "kind: IOCSite")


@dataclasses.dataclass(frozen=True)
class SiteState:
    """One IOCSite as its status tells it, with its dashboard's address as reachable from this machine."""

    name: str
    unit: str
    level: str
    phase: str
    generation_ready: bool  # phase Ready for the current generation
    dashboard_url: str  # as the status says (in-cluster), "" when none
    host_url: str  # the same through the Service's ClusterIP (kube-proxy routes it from the host), "" when none


def _cluster_ips(on_node: OnNode, namespace: str) -> dict[str, str]:
    services = json.loads(on_node.kubectl("-n", namespace, "get", "services", "-o", "json"))["items"]
    return {
        f"{svc['metadata']['name']}.{svc['metadata']['namespace']}": svc["spec"].get("clusterIP", "")
        for svc in services
    }


def host_url(url: str, cluster_ips: Mapping[str, str]) -> str:
    """http://<service>.<namespace>.svc[.cluster.local][:port]/path -> http://<ClusterIP>[:port]/path, or ""."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removesuffix(".cluster.local").removesuffix(".svc")
    ip = cluster_ips.get(host, "")
    if not ip or ip == "None":
        return ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{ip}{port}{parts.path or '/'}" + (f"?{parts.query}" if parts.query else "")


def site_states(on_node: OnNode, namespace: str = SITES_NAMESPACE) -> list[SiteState]:
    """Every IOCSite of `namespace` as its status reports it (whatever serves its dashboard: the status says)."""
    sites = json.loads(on_node.kubectl("-n", namespace, "get", "iocsites", "-o", "json"))["items"]
    ips = _cluster_ips(on_node, namespace)
    states = []
    for site in sites:
        meta, status = site["metadata"], site.get("status") or {}
        url = status.get("dashboardUrl") or ""
        states.append(
            SiteState(
                name=meta["name"],
                unit=site["spec"]["unit"],
                level=meta.get("labels", {}).get("ioc.platform/level", ""),
                phase=status.get("phase") or "Pending",
                generation_ready=status.get("phase") == "Ready"
                and status.get("observedGeneration") == meta.get("generation"),
                dashboard_url=url,
                host_url=host_url(url, ips) if url else "",
            )
        )
    return states
