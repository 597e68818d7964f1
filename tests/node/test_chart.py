"""`helm install` of charts/ioc-platform on the real local node: every workload runs as a pod (issue 12).

The local stack's Mosquitto, Kafka and ClickHouse are started after the node is up, so each also listens on
the node IP (Mosquitto's TLS listener with the node IP and its Service name in the certificate, Kafka a
listener advertised as the node IP, ClickHouse a second listen_host); the node publishes them under
the chart's default names (mosquitto.mosquitto, kafka-bootstrap.kafka, clickhouse.clickhouse). The release gets
the credentials Secrets the chart expects, and Kafka's protocol as the stack runs it (SASL_SSL with a Secret per
principal under IOC_STACK_KAFKA_AUTH, else PLAINTEXT). Then:
install (operator, bridge, stream workers, citizen API Ready; the migrations Job Completed), `helm test`,
`helm upgrade`, `helm uninstall` — after which nothing of the release is left in the cluster.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iocctl import image as images
from iocctl.localstack.install import Installer
from iocctl.localstack.node import HOST_SERVICES, Node
from iocctl.localstack.stack import Stack, default_cache_dir

pytestmark = [
    pytest.mark.kube_node,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="a node needs root (namespaces, bridges, iptables, mounts)"),
    pytest.mark.timeout(1800),
]

RELEASE = "ioc"
NAMESPACE = "ioc-system"
CHART = Path(__file__).resolve().parents[2] / "charts" / "ioc-platform"
INSTANCE = f"app.kubernetes.io/instance={RELEASE}"


class Cluster:
    def __init__(self, node: Node, helm: Path, stack: dict[str, Any]) -> None:
        self.node = node
        self.helm_path = helm
        self.stack = stack

    def helm(self, *args: str, timeout: float = 600) -> str:
        env = {**os.environ, "KUBECONFIG": self.node.info()["kubeconfig"]}
        done = subprocess.run(
            [str(self.helm_path), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def describe_failure(self) -> str:
        """Pods, their states and the last log lines of those not Ready: what a failed install looks like."""
        out = [self.node.kubectl("-n", NAMESPACE, "get", "pods,jobs", "-o", "wide", check=False)]
        pods = json.loads(self.node.kubectl("-n", NAMESPACE, "get", "pods", "-o", "json", check=False) or "{}")
        for pod in pods.get("items", []):
            name = pod["metadata"]["name"]
            statuses = pod["status"].get("containerStatuses", [])
            if not all(s.get("ready") for s in statuses):
                out.append(f"--- {name}: {json.dumps([s.get('state') for s in statuses])[:600]}")
                out.append(
                    self.node.kubectl("-n", NAMESPACE, "logs", name, "--tail=15", "--all-containers", check=False)
                )
        return "\n".join(out)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    installer = Installer(default_cache_dir())
    platform_image = images.build(cache_dir=default_cache_dir())
    helm = installer.helm()
    root = tmp_path_factory.mktemp("chart-stack")
    node = Node(root, installer)
    stack = Stack(root / "stack", installer)
    try:
        node.up()
        node.load_image(platform_image.archive, tags=[platform_image.chart_tag])
        # After the node: each service then listens on the node IP too.
        services = stack.up(["mosquitto", "kafka", "clickhouse"])
        node.publish_host_service(*HOST_SERVICES["mosquitto"], 8883, services["mosquitto"]["node_tls_port"])
        node.publish_host_service(*HOST_SERVICES["kafka"], 9093, services["kafka"]["node_port"])
        clickhouse = services["clickhouse"]
        node.publish_host_service(
            *HOST_SERVICES["clickhouse"], 9000, clickhouse["port"], more=[(8123, clickhouse["http_port"])]
        )
        _secrets(node, services)
        yield Cluster(node, helm, services)
    finally:
        try:
            node.down()
        finally:
            stack.down()


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "stringData": data,
    }


def _secrets(node: Node, services: dict[str, Any]) -> None:
    """The Secrets the chart takes its credentials from (values.yaml: *.existingSecret, mqtt.tls.caSecret)."""
    mqtt, clickhouse, kafka = services["mosquitto"], services["clickhouse"], services["kafka"]
    node.kubectl("create", "namespace", NAMESPACE)
    objects = [
        _secret("ioc-mqtt-admin", {"username": mqtt["admin_user"], "password": mqtt["admin_password"]}),
        _secret("ioc-bridge-mqtt", {"username": mqtt["bridge_user"], "password": mqtt["bridge_password"]}),
        _secret("ioc-mqtt-ca", {"ca.crt": Path(mqtt["ca_file"]).read_text(encoding="utf-8")}),
        _secret("ioc-clickhouse", {"user": clickhouse["user"], "password": clickhouse["password"]}),
        _secret("ioc-operator-key", {"secret-key": os.urandom(32).hex()}),
    ]
    if kafka.get("security_protocol") == "SASL_SSL":  # IOC_STACK_KAFKA_AUTH: each component's own principal
        objects.append(_secret("ioc-kafka-ca", {"ca.crt": Path(kafka["ca_file"]).read_text(encoding="utf-8")}))
        # The chart reads a principal's password from the Secret named after it (kafka.userSecrets empty).
        objects += [_secret(name, {"password": secret}) for name, secret in kafka["principals"].items()]
    node.kubectl("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))


def _values(tmp_path: Path, kafka: dict[str, Any], **extra: Any) -> Path:
    values = {
        "image": {"pullPolicy": "Never"},  # loaded into containerd by the node; there is no registry
        # As the local stack runs Kafka: SASL_SSL with IOC_STACK_KAFKA_AUTH (the chart's default), else PLAINTEXT.
        "kafka": {"securityProtocol": kafka.get("security_protocol", "PLAINTEXT")},
        "mqtt": {"auth": {"existingSecret": "ioc-mqtt-admin"}},
        "clickhouse": {"auth": {"existingSecret": "ioc-clickhouse"}},
        "operator": {"secretKey": {"existingSecret": "ioc-operator-key"}},
        **extra,
    }
    path = tmp_path / "values.json"  # JSON is YAML
    path.write_text(json.dumps(values), encoding="utf-8")
    return path


def _release_objects(node: Node) -> list[str]:
    kinds = "all,configmaps,secrets,serviceaccounts,roles,rolebindings,jobs,referencemodels"
    names = node.kubectl("-n", NAMESPACE, "get", kinds, "-l", INSTANCE, "-o", "name", check=False).split()
    names += node.kubectl("get", "clusterroles,clusterrolebindings", "-l", INSTANCE, "-o", "name").split()
    return names


def _job_completions(node: Node) -> int:
    """How many times a Job of the release completed (the migrations hook's Job is deleted once it succeeded)."""
    events = json.loads(
        node.kubectl("-n", NAMESPACE, "get", "events", "--field-selector", "reason=Completed", "-o", "json")
    )["items"]
    return sum(
        1 for e in events if e["involvedObject"]["kind"] == "Job" and "migrations" in e["involvedObject"]["name"]
    )


def _wait_all_ready(cluster: Cluster, within: float = 240) -> dict[str, str]:
    """Every pod of the release Ready (or Succeeded for the Job's); returns pod name -> component."""
    deadline = time.monotonic() + within
    while True:
        pods = json.loads(cluster.node.kubectl("-n", NAMESPACE, "get", "pods", "-l", INSTANCE, "-o", "json"))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = {
            p["metadata"]["name"]: p["metadata"]["labels"].get("app.kubernetes.io/component", "")
            for p in live
            if p["status"].get("phase") == "Succeeded"
            or any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        }
        if live and len(ready) == len(live):
            return ready
        assert time.monotonic() < deadline, cluster.describe_failure()
        time.sleep(1)


def test_helm_install_test_upgrade_uninstall(cluster: Cluster, tmp_path: Path) -> None:
    node = cluster.node
    started = time.monotonic()
    try:
        cluster.helm(
            "install",
            RELEASE,
            str(CHART),
            "-n",
            NAMESPACE,
            "-f",
            str(_values(tmp_path, cluster.stack["kafka"])),
            "--wait",
            "--timeout=6m",
        )
    except AssertionError as failed:
        raise AssertionError(f"{failed}\n{cluster.describe_failure()}") from None
    ready = _wait_all_ready(cluster)
    components = set(ready.values())
    assert {"operator", "bridge", "streams"} <= components, ready
    # The migrations Job is a pre-install hook (deleted once it succeeded): it ran as a pod on the node and
    # completed before the rest started; its events outlive it.
    assert _job_completions(node) == 1
    pods = json.loads(node.kubectl("-n", NAMESPACE, "get", "pods", "-o", "json"))["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {"ioc-node"}
    print(f"install: {time.monotonic() - started:.0f} s; pods {sorted(ready)}")

    # `helm test`: its pod reads the warehouse's migration status with the release's credentials (and is deleted
    # once it passed, so no --logs: a failed one stays for `kubectl logs`).
    out = cluster.helm("test", RELEASE, "-n", NAMESPACE, "--timeout=3m")
    assert "Succeeded" in out, out

    # `helm upgrade` with changed values rolls the pods and everything is Ready again (migrations run again).
    cluster.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "-f",
        str(_values(tmp_path, cluster.stack["kafka"], logLevel="DEBUG", bridge={"replicas": 1})),
        "--wait",
        "--timeout=6m",
    )
    ready = _wait_all_ready(cluster)
    assert sum(1 for c in ready.values() if c == "bridge") == 1, ready
    assert _job_completions(node) == 2  # the pre-upgrade migrations ran again
    status = json.loads(cluster.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json"))
    assert status["info"]["status"] == "deployed" and status["version"] == 2

    # `helm uninstall` leaves nothing of the release: no pods, workloads, hooks' Jobs, RBAC, test pods.
    cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout=3m")
    deadline = time.monotonic() + 90
    while left := _release_objects(node):
        assert time.monotonic() < deadline, f"left behind by helm uninstall: {left}"
        time.sleep(1)
    assert not node.kubectl("-n", NAMESPACE, "get", "pods", "-o", "name").split()
