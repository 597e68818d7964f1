"""Attacks on the broker's accounts (issue 17, item 2), on the real API server, operator and Mosquitto over TLS.

Each attack uses what the platform hands out — a vendor's Secret, a device's login, the bridge's login —
with an ordinary MQTT v5 client, and asserts the refusal with its reason (PUBACK/SUBACK 135 "Not
authorized", a CONNACK or TLS failure, the API server's message naming the field, a condition), then that
legitimate traffic kept flowing: a granted publish still reaches the bridge's share group, and the
broker's admin still logs in with its own password at the end.
"""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ioc import codecs, topics
from ioc.clients import dynsec, mqttstop
from ioc.events import SensorKind, SensorReading
from ioc.settings import MqttEndpoint
from iocctl.localstack.mosquitto import mqtt_login_ok, write_tls_files
from operators import broker
from sensors.sdk import ConnectRefused, VendorClient
from tests.operators import conftest as operator_fixtures
from tests.operators.conftest import (
    GROUP,
    VERSION,
    OperatorProcess,
    api_client,
    condition,
    custom_api,
    dump,
    kubectl,
    mqtt_admin,
    operator_env,
    ready,
    wait_for,
)

pytestmark = [pytest.mark.slow, pytest.mark.mqtt, pytest.mark.kube, pytest.mark.kafka, pytest.mark.clickhouse]

UNIT, OTHER_UNIT = "25957", "25951"  # phường Đông Hòa and phường Bình An, Dĩ An
RUN = uuid.uuid4().hex[:6]
VENDOR = f"aqua-{RUN}"
FOREIGN = f"squat-{RUN}"
DEVICES = ("wl-1", "wl-2")
BRIDGE_LOGIN = (f"ioc-bridge-{RUN}", uuid.uuid4().hex)
"""The bridge login the operator keeps, as the chart has it do (bridge.mqttAuth → IOC_OPERATOR_BRIDGE_*)."""
NOT_AUTHORIZED = 135

# The operator tests' fixtures: the generated CRDs on the real API server, a namespace of this module's own.
crds_installed = operator_fixtures.crds_installed
module_namespace = operator_fixtures.module_namespace


# --- clients -------------------------------------------------------------------------------------------------


class Probe:
    """An MQTT v5 client over TLS that records CONNACK, PUBACK and SUBACK reason codes."""

    def __init__(self, mosquitto: dict[str, Any], username: str, password: str, *, ca_file: str | None) -> None:
        self.acks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.messages: list[mqtt.MQTTMessage] = []
        self.connect_code: int | None = None
        connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sec-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        if ca_file is not None:
            self.client.tls_set(ca_certs=ca_file)

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            self.connect_code = reason.value
            connected.set()

        self.client.on_connect = on_connect
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc.value)
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self.subacks.__setitem__(mid, [r.value for r in rcs])
        self.client.on_message = lambda _c, _u, m: self.messages.append(m)
        port = mosquitto["tls_port"] if ca_file is not None else mosquitto["port"]
        self.client.connect(mosquitto["host"], port)
        self.client.loop_start()
        connected.wait(10)

    def publish(self, topic: str, payload: bytes = b'{"probe": 1}') -> int:
        info = self.client.publish(topic, payload, qos=1)
        wait_for(lambda: info.mid in self.acks, 10, f"PUBACK for {topic}")
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> int:
        _rc, mid = self.client.subscribe(topic, qos=1)
        wait_for(lambda: mid in self.subacks, 10, f"SUBACK for {topic}")
        return self.subacks[mid][0]

    def close(self) -> None:
        mqttstop.stop(self.client)


def _bridge(mosquitto: dict[str, Any]) -> Probe:
    return Probe(mosquitto, mosquitto["bridge_user"], mosquitto["bridge_password"], ca_file=mosquitto["ca_file"])


@pytest.fixture
def listener(mosquitto: dict[str, Any]) -> Iterator[Probe]:
    """The bridge's login in a share group of its own (over TLS): what legitimate traffic reaches."""
    probe = _bridge(mosquitto)
    assert probe.connect_code == 0
    assert probe.subscribe(topics.mqtt_shared_subscription(f"sec-{uuid.uuid4().hex[:8]}")) == 1  # granted QoS 1
    yield probe
    probe.close()


def _arrived(listener: Probe, topic: str, payload: bytes) -> bool:
    wait_for(lambda: any(m.topic == topic and m.payload == payload for m in listener.messages), 10, f"{topic}")
    return True


def _payload() -> bytes:
    return json.dumps({"probe": uuid.uuid4().hex}).encode()


# --- the operator and what it issues -------------------------------------------------------------------------


def _vendor(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SensorVendor",
        "metadata": {"name": name},
        "spec": {"units": [UNIT], "kinds": ["water"], **spec},
    }


def _secret(kube: dict[str, Any], namespace: str, name: str) -> dict[str, str]:
    core = kubernetes.client.CoreV1Api(api_client(kube["kubeconfig"]))
    data = core.read_namespaced_secret(name, namespace).data
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


@pytest.fixture(scope="module")
def operator(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    kafka: dict[str, Any],
    mosquitto: dict[str, Any],
    module_namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """The operator as in a pod: its admin session to the broker goes over TLS, trusting the stack's CA."""
    env = operator_env(
        kube,
        clickhouse,
        kafka,
        mosquitto,
        namespace=module_namespace,
        IOC_OPERATOR_MQTT__PORT=str(mosquitto["tls_port"]),
        IOC_OPERATOR_MQTT__TLS_CA_FILE=mosquitto["ca_file"],
        IOC_OPERATOR_BRIDGE_USERNAME=BRIDGE_LOGIN[0],
        IOC_OPERATOR_BRIDGE_PASSWORD=BRIDGE_LOGIN[1],
    )
    process = OperatorProcess(env, tmp_path_factory.mktemp("operator") / "operator.log").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def issued(
    kube: dict[str, Any], module_namespace: str, operator: OperatorProcess, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """A legitimate vendor with per-device logins, Ready; its Secret as a vendor would read it."""
    ns = module_namespace
    manifest = _vendor(VENDOR, perDeviceCredentials=True, devices=list(DEVICES))
    custom_api(kube).create_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", manifest)
    wait_for(lambda: ready(kube, ns, VENDOR, "sensorvendors"), 60, f"the vendor Ready\n{operator.text()[-3000:]}")
    secret = _secret(kube, ns, f"{VENDOR}-mqtt")
    ca = tmp_path_factory.mktemp("vendor-ca") / "ca.crt"
    ca.write_text(secret["ca.crt"], encoding="utf-8")
    return {**secret, "ca_file": str(ca)}


# --- reserved names ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["admin", "bridge", "ioc-bridge", "ioc-site-74", "system-x"])
def test_a_vendor_named_after_a_platform_account_is_refused_by_the_api_server(
    crds_installed: dict[str, Any], module_namespace: str, mosquitto: dict[str, Any], name: str
) -> None:
    done = kubectl(
        crds_installed, "apply", "-n", module_namespace, "-f", "-", stdin=json.dumps(_vendor(name)), check=False
    )
    assert done.returncode != 0, done.stdout
    assert f"metadata.name: {name} " in done.stderr and "reserved for" in done.stderr, done.stderr
    # The same refusal through the Python client, with the status the API server gives a bad field.
    with pytest.raises(kubernetes.client.ApiException) as refused:
        custom_api(crds_installed).create_namespaced_custom_object(
            GROUP, VERSION, module_namespace, "sensorvendors", _vendor(name)
        )
    assert refused.value.status == 422 and "metadata.name" in refused.value.body
    # Nothing reached the broker: the platform's own accounts keep their passwords.
    assert mqtt_login_ok(mosquitto["host"], mosquitto["port"], "admin", mosquitto["admin_password"])
    assert mqtt_login_ok(
        mosquitto["host"],
        mosquitto["tls_port"],
        mosquitto["bridge_user"],
        mosquitto["bridge_password"],
        ca_file=mosquitto["ca_file"],
    )


def test_issued_usernames_live_in_the_tenant_namespace(issued: dict[str, Any]) -> None:
    assert issued["username"] == f"vendor.{VENDOR}" and issued["tls"] == "true"
    assert {issued[f"device.{d}.username"] for d in DEVICES} == {f"vendor.{VENDOR}.{d}" for d in DEVICES}
    # Whatever a vendor is called, `vendor.<id>` is not a platform account.
    for account in ("admin", "ioc-bridge"):
        assert not dynsec.is_tenant(account)


# --- a vendor's own login ------------------------------------------------------------------------------------


def test_a_vendor_cannot_publish_or_subscribe_outside_its_grants(
    mosquitto: dict[str, Any], issued: dict[str, Any], listener: Probe
) -> None:
    probe = Probe(mosquitto, issued["username"], issued["password"], ca_file=issued["ca_file"])
    try:
        assert probe.connect_code == 0
        own = topics.mqtt_topic(UNIT, "water", VENDOR, "wl-9")
        payload = _payload()
        assert probe.publish(own, payload) in (0, 16)
        refused = {
            "another unit": topics.mqtt_topic(OTHER_UNIT, "water", VENDOR, "wl-9"),
            "another kind": topics.mqtt_topic(UNIT, "air", VENDOR, "aq-9"),
            "another vendor": topics.mqtt_topic(UNIT, "water", "someone", "wl-9"),
            "the admin API": dynsec.CONTROL_TOPIC,
        }
        for what, topic in refused.items():
            assert probe.publish(topic, _payload()) == NOT_AUTHORIZED, what
        for topic in (
            f"{topics.MQTT_PREFIX}/#",  # others' readings
            topics.mqtt_vendor_pattern("someone"),
            topics.mqtt_shared_subscription("steal"),
            dynsec.RESPONSE_TOPIC,  # the admin's answers
            "$CONTROL/#",
        ):
            assert probe.subscribe(topic) == NOT_AUTHORIZED, topic
        # The granted publish reached the bridge's group; none of the refused ones did.
        assert _arrived(listener, own, payload)
        assert {m.topic for m in listener.messages} == {own}
    finally:
        probe.close()


def test_a_device_login_cannot_publish_as_its_sibling(
    mosquitto: dict[str, Any], issued: dict[str, Any], listener: Probe
) -> None:
    first, second = DEVICES
    probe = Probe(
        mosquitto, issued[f"device.{first}.username"], issued[f"device.{first}.password"], ca_file=issued["ca_file"]
    )
    sibling = Probe(
        mosquitto, issued[f"device.{second}.username"], issued[f"device.{second}.password"], ca_file=issued["ca_file"]
    )
    try:
        assert probe.connect_code == 0 and sibling.connect_code == 0
        own, payload = topics.mqtt_topic(UNIT, "water", VENDOR, first), _payload()
        assert probe.publish(own, payload) in (0, 16)
        assert probe.publish(topics.mqtt_topic(UNIT, "water", VENDOR, second)) == NOT_AUTHORIZED
        assert probe.publish(topics.mqtt_topic(OTHER_UNIT, "water", VENDOR, first)) == NOT_AUTHORIZED
        assert probe.publish(topics.mqtt_topic(UNIT, "air", VENDOR, first)) == NOT_AUTHORIZED
        # The sibling's own login still publishes for it.
        theirs, their_payload = topics.mqtt_topic(UNIT, "water", VENDOR, second), _payload()
        assert sibling.publish(theirs, their_payload) in (0, 16)
        assert _arrived(listener, own, payload) and _arrived(listener, theirs, their_payload)
        assert {m.topic for m in listener.messages} == {own, theirs}
    finally:
        probe.close()
        sibling.close()


# --- the bridge's login --------------------------------------------------------------------------------------


def test_the_bridge_login_cannot_publish_readings_nor_administer(
    mosquitto: dict[str, Any], issued: dict[str, Any], listener: Probe
) -> None:
    bridge = _bridge(mosquitto)
    try:
        assert bridge.connect_code == 0
        forged = topics.mqtt_topic(UNIT, "water", VENDOR, "wl-1")
        assert bridge.publish(forged) == NOT_AUTHORIZED
        create = {"commands": [{"command": "createClient", "username": f"evil-{RUN}", "password": "x"}]}
        assert bridge.publish(dynsec.CONTROL_TOPIC, json.dumps(create).encode()) == NOT_AUTHORIZED
        assert bridge.subscribe(f"{topics.MQTT_PREFIX}/#") == NOT_AUTHORIZED  # only through a share group
        assert bridge.subscribe("$CONTROL/#") == NOT_AUTHORIZED
        assert bridge.subscribe("#") == NOT_AUTHORIZED
        with dynsec.DynsecAdmin(mqtt_admin(mosquitto)) as admin:
            assert f"evil-{RUN}" not in admin.list_clients()
        # What the bridge is for still works: the vendor's reading reaches its share group.
        vendor = Probe(mosquitto, issued["username"], issued["password"], ca_file=issued["ca_file"])
        try:
            topic, payload = topics.mqtt_topic(UNIT, "water", VENDOR, "wl-7"), _payload()
            assert vendor.publish(topic, payload) in (0, 16)
            assert _arrived(listener, topic, payload)
        finally:
            vendor.close()
        assert forged not in {m.topic for m in listener.messages}
    finally:
        bridge.close()


def test_the_operator_gives_the_bridge_its_own_least_privilege_login(
    mosquitto: dict[str, Any], issued: dict[str, Any]
) -> None:
    with dynsec.DynsecAdmin(mqtt_admin(mosquitto)) as admin:
        record = admin.get_client(BRIDGE_LOGIN[0])
        # A bridge login named like the admin or a tenant is refused before anything is touched.
        for name in ("admin", dynsec.vendor_username(VENDOR)):
            with pytest.raises(dynsec.ForeignClient, match="cannot be the bridge's login"):
                broker.ensure_bridge(admin, name, "stolen")
    assert mqtt_login_ok(mosquitto["host"], mosquitto["port"], "admin", mosquitto["admin_password"])
    assert mqtt_login_ok(
        mosquitto["host"], int(issued["port"]), issued["username"], issued["password"], ca_file=issued["ca_file"]
    )
    assert record is not None and [r["rolename"] for r in record["roles"]] == [dynsec.BRIDGE_ROLE]
    assert record.get("textdescription") == dynsec.PLATFORM_MARK
    bridge = Probe(mosquitto, *BRIDGE_LOGIN, ca_file=mosquitto["ca_file"])
    try:
        assert bridge.connect_code == 0
        assert bridge.publish(topics.mqtt_topic(UNIT, "water", VENDOR, "wl-1")) == NOT_AUTHORIZED
        assert bridge.publish(dynsec.CONTROL_TOPIC) == NOT_AUTHORIZED
        assert bridge.subscribe(f"{topics.MQTT_PREFIX}/#") == NOT_AUTHORIZED
        assert bridge.subscribe(topics.mqtt_shared_subscription(f"own-{RUN}")) == 1
    finally:
        bridge.close()


# --- TLS -----------------------------------------------------------------------------------------------------


def test_plaintext_and_untrusted_certificates_are_refused_on_the_tls_listener(
    mosquitto: dict[str, Any], issued: dict[str, Any], tmp_path: Path
) -> None:
    host, port, user, password = mosquitto["host"], mosquitto["tls_port"], issued["username"], issued["password"]
    assert not mqtt_login_ok(host, port, user, password)  # plaintext MQTT on the TLS port
    # A client trusting another CA refuses the broker's certificate (checked with ssl itself: paho 2.1 leaves
    # the socket of a failed handshake unclosed, a ResourceWarning this suite turns into an error).
    stranger_ca, _cert, _key = write_tls_files(tmp_path / "stranger")
    stranger = ssl.create_default_context(cafile=str(stranger_ca))
    with socket.create_connection((host, port), timeout=5) as raw, pytest.raises(ssl.SSLCertVerificationError):
        stranger.wrap_socket(raw, server_hostname=host)
    with pytest.raises(ConnectRefused):
        VendorClient(MqttEndpoint(host=host, port=port, username=user, password=password), VENDOR).connect(timeout=5)
    assert mqtt_login_ok(host, port, user, password, ca_file=issued["ca_file"])
    # The certificate names the broker: a TLS handshake with hostname checking succeeds against it.
    context = ssl.create_default_context(cafile=issued["ca_file"])
    with context.wrap_socket(socket.create_connection((host, port), timeout=5), server_hostname=host) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3")


def test_the_sdk_publishes_over_tls_with_the_issued_secret(
    mosquitto: dict[str, Any], issued: dict[str, Any], listener: Probe
) -> None:
    endpoint = MqttEndpoint(
        host=mosquitto["host"],
        port=int(issued["port"]),
        username=issued["username"],
        password=issued["password"],
        tls_ca_file=issued["ca_file"],
    )
    assert int(issued["port"]) == mosquitto["tls_port"]  # the Secret points vendors at the TLS listener
    with VendorClient(endpoint, VENDOR) as client:
        sent = client.device("wl-3", UNIT, SensorKind.WATER).reading({"waterLevel": 1.25})
        client.flush()
    topic = topics.mqtt_topic(UNIT, "water", VENDOR, "wl-3")
    wait_for(lambda: any(m.topic == topic for m in listener.messages), 10, "the SDK's reading")
    got = next(m for m in listener.messages if m.topic == topic)
    assert codecs.decode(got.payload, SensorReading) == sent


# --- the operator leaves alone what it did not create --------------------------------------------------------


def test_the_operator_never_touches_a_client_it_did_not_create(
    kube: dict[str, Any], mosquitto: dict[str, Any], module_namespace: str, operator: OperatorProcess
) -> None:
    ns, username, password = module_namespace, dynsec.vendor_username(FOREIGN), uuid.uuid4().hex
    with dynsec.DynsecAdmin(mqtt_admin(mosquitto)) as admin:
        admin.execute("createClient", username=username, password=password)  # by hand: no platform mark
    try:
        custom_api(kube).create_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", _vendor(FOREIGN))

        def refused() -> dict[str, Any] | None:
            obj = dict(custom_api(kube).get_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", FOREIGN))
            acl = condition(obj, "Acl")
            return obj if acl.get("reason") == "ForeignClient" else None

        obj = wait_for(refused, 60, f"the ForeignClient condition\n{operator.text()[-2000:]}")
        acl = condition(obj, "Acl")
        assert acl["status"] == "False" and "was not created by the operator" in acl["message"], dump(obj)
        assert obj["status"]["phase"] == "Degraded"
        # Its password and (empty) roles are as they were.
        assert mqtt_login_ok(mosquitto["host"], mosquitto["port"], username, password)
        with dynsec.DynsecAdmin(mqtt_admin(mosquitto)) as admin:
            assert admin.get_client(username)["roles"] == []  # type: ignore[index]
        # Deleting the vendor does not delete someone else's client either.
        custom_api(kube).delete_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", FOREIGN)

        def gone() -> bool:
            try:
                custom_api(kube).get_namespaced_custom_object(GROUP, VERSION, ns, "sensorvendors", FOREIGN)
            except kubernetes.client.ApiException as exc:
                return exc.status == 404
            return False

        wait_for(gone, 60, "the vendor deleted")
        assert mqtt_login_ok(mosquitto["host"], mosquitto["port"], username, password)
    finally:
        with dynsec.DynsecAdmin(mqtt_admin(mosquitto)) as admin:
            admin.delete_client(username)


def test_the_admin_password_still_works_after_all_of_it(mosquitto: dict[str, Any], issued: dict[str, Any]) -> None:
    time.sleep(0.1)
    assert mqtt_login_ok(mosquitto["host"], mosquitto["port"], "admin", mosquitto["admin_password"])
    with dynsec.DynsecAdmin(mqtt_admin(mosquitto)) as admin:
        clients = admin.list_clients()
        bridge = admin.get_client(mosquitto["bridge_user"])
    assert "admin" in clients and bridge is not None
    assert [r["rolename"] for r in bridge["roles"]] == [dynsec.BRIDGE_ROLE]
    assert not any(dynsec.is_tenant(c) for c in ("admin", mosquitto["bridge_user"]))
    assert {f"vendor.{VENDOR}", *(f"vendor.{VENDOR}.{d}" for d in DEVICES)} <= set(clients)
