"""Smoke tests against each real service of the local stack, through the clients the platform uses."""

from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from typing import Any

import clickhouse_driver
import kubernetes
import paho.mqtt.client as mqtt
import pytest
from clickhouse_driver.errors import ServerException
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient
from paho.mqtt.enums import CallbackAPIVersion

from ioc import topics
from ioc.clients import dynsec
from ioc.settings import KafkaEndpoint, MqttEndpoint
from iocctl.localstack.mosquitto import mqtt_login_ok

# --- MQTT --------------------------------------------------------------------------------------------------


def _admin(info: dict[str, Any]) -> MqttEndpoint:
    return MqttEndpoint(
        host=info["host"], port=info["port"], username=info["admin_user"], password=info["admin_password"]
    )


class _Client:
    """A small MQTT v5 test client that records messages and PUBACK reason codes."""

    def __init__(self, info: dict[str, Any], username: str, password: str) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.acks: dict[int, int] = {}
        self.got = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.client.on_message = lambda _c, _u, m: (self.messages.append(m), self.got.set())
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc.value)
        connected = threading.Event()
        self.client.on_connect = lambda *_a: connected.set()
        self.client.connect(info["host"], info["port"])
        self.client.loop_start()
        assert connected.wait(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_mqtt_refuses_anonymous_and_wrong_passwords(mosquitto: dict[str, Any]) -> None:
    assert mqtt_login_ok(mosquitto["host"], mosquitto["port"], "admin", mosquitto["admin_password"])
    assert not mqtt_login_ok(mosquitto["host"], mosquitto["port"], None, None)
    assert not mqtt_login_ok(mosquitto["host"], mosquitto["port"], "admin", "wrong")


def test_mqtt_vendor_publishes_its_own_topics_only(mosquitto: dict[str, Any]) -> None:
    vendor, password = f"v{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    with dynsec.DynsecAdmin(_admin(mosquitto)) as control:
        username = control.ensure_vendor(vendor, password)
        assert username in control.list_clients()
    reader = _Client(mosquitto, mosquitto["bridge_user"], mosquitto["bridge_password"])
    device = _Client(mosquitto, username, password)
    try:
        reader.client.subscribe(topics.mqtt_shared_subscription("smoke"), qos=1)
        time.sleep(0.3)
        own = topics.mqtt_topic("25957", "water", vendor, "wl-01")
        info = device.client.publish(own, b'{"hello": 1}', qos=1)
        info.wait_for_publish(5)
        assert reader.got.wait(5)
        assert reader.messages[0].topic == own
        foreign = topics.mqtt_topic("25957", "water", "someone-else", "wl-01")
        denied = device.client.publish(foreign, b"{}", qos=1)
        denied.wait_for_publish(5)
        time.sleep(0.2)
        assert device.acks[denied.mid] == 135  # MQTT v5 "Not authorized"
        assert [m.topic for m in reader.messages] == [own]
    finally:
        reader.close()
        device.close()
    with dynsec.DynsecAdmin(_admin(mosquitto)) as control:
        control.remove_vendor(vendor)
        assert username not in control.list_clients()
    assert not mqtt_login_ok(mosquitto["host"], mosquitto["port"], username, password)


# --- Kafka -------------------------------------------------------------------------------------------------


def test_kafka_registry_topics_exist_with_their_partitions(kafka: dict[str, Any]) -> None:
    metadata = AdminClient(KafkaEndpoint.from_service(kafka).client_config()).list_topics(timeout=10)
    for name, topic in topics.KAFKA_TOPICS.items():
        assert name in metadata.topics, name
        assert len(metadata.topics[name].partitions) == topic.partitions


def test_kafka_produce_and_consume_with_a_group(kafka: dict[str, Any]) -> None:
    topic = topics.DEADLETTER.name
    marker = uuid.uuid4().hex
    producer = Producer(
        {**KafkaEndpoint.from_service(kafka).client_config(), "enable.idempotence": True, "acks": "all"}
    )
    for i in range(50):
        producer.produce(topic, key=f"k{i % 5}", value=f"{marker}:{i}".encode())
    assert producer.flush(15) == 0
    consumer = Consumer(
        {
            **KafkaEndpoint.from_service(kafka).client_config(),
            "group.id": f"smoke-{marker}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    seen: set[int] = set()
    deadline = time.monotonic() + 30
    try:
        while len(seen) < 50 and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            text = message.value().decode()
            if text.startswith(marker):
                seen.add(int(text.split(":")[1]))
        consumer.commit(asynchronous=False)
        committed = consumer.committed(consumer.assignment(), timeout=10)
    finally:
        consumer.close()
    assert seen == set(range(50))
    assert any(tp.offset > 0 for tp in committed)


def test_kafka_refuses_unregistered_topics(kafka: dict[str, Any]) -> None:
    producer = Producer({**KafkaEndpoint.from_service(kafka).client_config(), "message.timeout.ms": 3000})
    errors: list[Any] = []
    producer.produce("ioc.not-registered.v1", value=b"x", on_delivery=lambda err, _m: errors.append(err))
    producer.flush(10)
    assert errors and errors[0] is not None


# --- ClickHouse --------------------------------------------------------------------------------------------


def test_clickhouse_insert_and_select(clickhouse: dict[str, Any], request: pytest.FixtureRequest) -> None:
    client = clickhouse_driver.Client(
        host=clickhouse["host"],
        port=clickhouse["port"],
        user=clickhouse["user"],
        password=clickhouse["password"],
    )
    request.addfinalizer(client.disconnect)
    client.execute("CREATE DATABASE IF NOT EXISTS smoke")
    client.execute("DROP TABLE IF EXISTS smoke.readings")
    client.execute(
        "CREATE TABLE smoke.readings (device String, seq UInt64, value Float64)"
        " ENGINE = ReplacingMergeTree() ORDER BY (device, seq)"
    )
    rows = [("d1", i, float(i)) for i in range(1000)] + [("d1", 5, 5.0)]
    client.execute("INSERT INTO smoke.readings (device, seq, value) VALUES", rows)
    assert client.execute("SELECT count(), sum(value) FROM smoke.readings FINAL") == [(1000, float(sum(range(1000))))]
    assert clickhouse["version"].startswith(("18.", "2"))


def test_clickhouse_refuses_a_wrong_password(clickhouse: dict[str, Any]) -> None:
    client = clickhouse_driver.Client(
        host=clickhouse["host"], port=clickhouse["port"], user="default", password="wrong"
    )
    try:
        with pytest.raises(ServerException, match=r"(?i)password"):
            client.execute("SELECT 1")
    finally:
        client.disconnect()


# --- Kubernetes --------------------------------------------------------------------------------------------

_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "smokes.smoke.ioc.platform"},
    "spec": {
        "group": "smoke.ioc.platform",
        "scope": "Namespaced",
        "names": {"plural": "smokes", "singular": "smoke", "kind": "Smoke"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "required": ["unit"],
                                "properties": {"unit": {"type": "string", "pattern": "^[0-9]{2,5}$"}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def _kubectl(kube: dict[str, Any], *args: str, stdin: str | None = None, kubeconfig: str | None = None) -> str:
    done = subprocess.run(
        [kube["kubectl"], f"--kubeconfig={kubeconfig or kube['kubeconfig']}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _api(kubeconfig: str) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=kubeconfig)


def test_kube_crd_applied_with_kubectl_and_read_with_the_client(kube: dict[str, Any]) -> None:
    _kubectl(kube, "apply", "-f", "-", stdin=json.dumps(_CRD))
    _kubectl(kube, "wait", "--for=condition=Established", "crd/smokes.smoke.ioc.platform", "--timeout=30s")
    resource = {
        "apiVersion": "smoke.ioc.platform/v1",
        "kind": "Smoke",
        "metadata": {"name": "di-an"},
        "spec": {"unit": "724"},
    }
    _kubectl(kube, "apply", "-n", "default", "-f", "-", stdin=json.dumps(resource))
    custom = kubernetes.client.CustomObjectsApi(_api(kube["kubeconfig"]))
    read = custom.get_namespaced_custom_object("smoke.ioc.platform", "v1", "default", "smokes", "di-an")
    assert read["spec"] == {"unit": "724"}
    # The API server itself validates against the schema.
    bad = {**resource, "metadata": {"name": "bad"}, "spec": {"unit": "Di An"}}
    with pytest.raises(kubernetes.client.ApiException) as info:
        custom.create_namespaced_custom_object("smoke.ioc.platform", "v1", "default", "smokes", bad)
    assert info.value.status == 422 and "spec.unit" in info.value.body


def test_kube_unprivileged_identity_is_denied_until_granted(kube: dict[str, Any]) -> None:
    user = kube["unprivileged_user"]
    core = kubernetes.client.CoreV1Api(_api(kube["unprivileged_kubeconfig"]))
    with pytest.raises(kubernetes.client.ApiException) as info:
        core.list_namespaced_config_map("default")
    assert info.value.status == 403
    admin = kubernetes.client.RbacAuthorizationV1Api(_api(kube["kubeconfig"]))
    admin.create_namespaced_role(
        "default",
        {
            "metadata": {"name": "smoke-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}],
        },
    )
    admin.create_namespaced_role_binding(
        "default",
        {
            "metadata": {"name": "smoke-reader"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "smoke-reader"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
        },
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                core.list_namespaced_config_map("default")
                break
            except kubernetes.client.ApiException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        # Still only what was granted: no writes, no other namespaces' secrets.
        with pytest.raises(kubernetes.client.ApiException) as denied:
            core.create_namespaced_config_map("default", {"metadata": {"name": "nope"}})
        assert denied.value.status == 403
        with pytest.raises(kubernetes.client.ApiException):
            core.list_namespaced_secret("kube-system")
    finally:
        admin.delete_namespaced_role_binding("smoke-reader", "default")
        admin.delete_namespaced_role("smoke-reader", "default")
