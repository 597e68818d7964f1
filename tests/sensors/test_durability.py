"""Durability at the edge, on the real broker: QoS 1 messages Mosquitto acknowledged survive its SIGKILL once saved,
which the strict setting (every-change, used here whatever the stack's default) does within the loop turn that
acknowledged them (the window left, and the default 2 s interval's, are measured by `python -m bench durability`);
the bridge's session, and what queued in it, survives a broker restart; the SDK's disk queue keeps what a gateway
accepted while the broker was away across the gateway's own SIGKILL. Each counts by device sequence."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ioc import codecs, topics
from ioc.clients import dynsec
from ioc.events import SensorKind, SensorReading
from iocctl.localstack import Stack
from iocctl.localstack.process import is_alive
from sensors.sdk import VendorClient
from tests.sensors.conftest import admin_endpoint, bridge_settings, ingested, vendor_endpoint

pytestmark = [pytest.mark.slow, pytest.mark.mqtt]

UNIT = "25957"


@pytest.fixture
def broker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Stack, dict[str, Any], tuple[str, str]]]:
    """A Mosquitto of this test's own (it is killed), saving every change unless parametrized, and a vendor on it."""
    stack = Stack(tmp_path / "own-broker", mqtt_persistence=getattr(request, "param", "every-change"))
    try:
        info = stack.up(["mosquitto"])["mosquitto"]
        vendor = (f"d{uuid.uuid4().hex[:8]}", uuid.uuid4().hex)
        with dynsec.DynsecAdmin(admin_endpoint(info)) as control:
            control.ensure_vendor(*vendor)
        yield stack, info, vendor
    finally:
        stack.down()


def _sigkill(pid: int) -> None:
    """SIGKILL a process and wait until it is gone (the kill is asynchronous; a resume must not see it alive)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} survived SIGKILL"
        time.sleep(0.05)


def _saved(info: dict[str, Any]) -> None:
    """Return once the broker has saved everything it acknowledged so far; fail after 5 s.

    Mosquitto 2.0 answers PUBACK first and saves at the end of that loop turn (every-change) or at its next 2 s tick
    (interval; docs/durability.md), so a test that kills it the instant its client saw the PUBACK races the save. A
    new persistent session after the last PUBACK is one more change: the file written after it holds every earlier
    one. Saved every 60 s instead (every-minute, the former setting), nothing is written within 5 s and this fails.
    """
    database = Path(info["config"]).parent / "data" / "mosquitto.db"
    since = time.time_ns()
    time.sleep(0.02)  # file times come from a coarser clock than time_ns
    Session(info, f"marker-{uuid.uuid4().hex[:6]}", f"m{uuid.uuid4().hex[:6]}").close()
    deadline = time.monotonic() + 5
    while not (database.exists() and database.stat().st_mtime_ns > since):
        assert time.monotonic() < deadline, "the broker did not save its state within 5 s of a change"
        time.sleep(0.01)


class Session:
    """A persistent MQTT session (the bridge's login, its own share group) that counts readings by sequence."""

    def __init__(self, info: dict[str, Any], client_id: str, group: str) -> None:
        self.seqs: list[int] = []
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(info["bridge_user"], info["bridge_password"])
        self.client.on_message = lambda _c, _u, m: self.seqs.append(codecs.decode(m.payload, SensorReading).seq)
        self.client.on_subscribe = lambda *_a: self.subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(topics.mqtt_shared_subscription(group), qos=1)
        self.client.reconnect_delay_set(1, 2)
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = 3600
        self.client.connect(info["host"], info["port"], clean_start=False, properties=properties)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the session did not subscribe"

    def wait_for(self, count: int, timeout: float) -> set[int]:
        deadline = time.monotonic() + timeout
        while len(set(self.seqs)) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        return set(self.seqs)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# The strict mode, and the stack's default (saved every 2 s: `_saved` waits for the next save).
@pytest.mark.parametrize("broker", ["every-change", "interval"], indirect=True)
def test_messages_the_broker_acknowledged_and_saved_survive_its_sigkill(
    broker: tuple[Stack, dict[str, Any], tuple[str, str]],
) -> None:
    stack, info, vendor = broker
    group, client_id = f"g{uuid.uuid4().hex[:6]}", f"durable-{uuid.uuid4().hex[:6]}"
    Session(info, client_id, group).close()  # the session and its subscription, then offline: messages queue
    count = 300
    with VendorClient(vendor_endpoint(info, vendor, tls=True), vendor[0]) as client:
        device = client.device("wl-1", UNIT, SensorKind.WATER)
        for _ in range(count):
            device.reading({"waterLevel": 0.7})
        client.flush(30)  # every one acknowledged (PUBACK) by the broker
    _saved(info)
    _sigkill(int(info["pid"]))  # no shutdown save
    info = stack.resume_service("mosquitto")
    session = Session(info, client_id, group)
    try:
        got = session.wait_for(count, timeout=30)
    finally:
        session.close()
    assert got == set(range(count)), f"lost {sorted(set(range(count)) - got)[:10]}... of {count} acknowledged"


def test_the_bridge_session_survives_a_broker_restart(
    broker: tuple[Stack, dict[str, Any], tuple[str, str]], kafka: dict[str, Any], tail: Any, tmp_path: Path
) -> None:
    stack, info, vendor = broker
    readings = tail(topics.READINGS.name)
    settings = bridge_settings(info, kafka, replica=f"restart-{uuid.uuid4().hex[:6]}")
    env = {
        **os.environ,
        "IOC_BRIDGE_MQTT__HOST": settings.mqtt.host,
        "IOC_BRIDGE_MQTT__PORT": str(settings.mqtt.port),
        "IOC_BRIDGE_MQTT__USERNAME": settings.mqtt.username or "",
        "IOC_BRIDGE_MQTT__PASSWORD": settings.mqtt.password.get_secret_value() if settings.mqtt.password else "",
        **settings.kafka.environment("IOC_BRIDGE_KAFKA__"),
        "IOC_BRIDGE_SHARE_GROUP": settings.share_group,
        "IOC_BRIDGE_REPLICA": settings.replica or "",
        # 200 readings of one device at once: the per-device rate limit is the flooding test's business.
        "IOC_BRIDGE_DEVICE_RATE_PER_S": "100000",
        "IOC_BRIDGE_DEVICE_BURST": "100000",
    }

    def start_bridge(name: str) -> subprocess.Popen[bytes]:
        log = tmp_path / name
        with log.open("wb") as out:
            process = subprocess.Popen([sys.executable, "-m", "sensors.bridge"], env=env, stdout=out, stderr=out)
        deadline = time.monotonic() + 60
        while b"connected; subscribed" not in log.read_bytes():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(0.5)  # the SUBACK follows the log line
        return process

    first = start_bridge("bridge-1.log")
    first.send_signal(signal.SIGKILL)  # its session stays on the broker, subscribed
    first.wait(10)
    count = 200
    with VendorClient(vendor_endpoint(info, vendor, tls=True), vendor[0]) as client:
        device = client.device("wl-2", UNIT, SensorKind.WATER)
        for _ in range(count):
            device.reading({"waterLevel": 0.8})
        client.flush(30)  # queued in the bridge's session while it is away
    _saved(info)
    _sigkill(int(info["pid"]))
    info = stack.resume_service("mosquitto")
    second = start_bridge("bridge-2.log")
    seqs: set[int] = set()

    def collect(wanted: int) -> None:
        deadline = time.monotonic() + 60
        while len(seqs) < wanted and time.monotonic() < deadline:
            seqs.update(i.event.seq for i in ingested(readings.poll(0.5)) if i.event.vendor == vendor[0])

    try:
        collect(count)
        assert seqs == set(range(count)), f"the bridge got {len(seqs)} of {count} published while it was away"
        # Now the broker dies under the running bridge: it reconnects to its restored session by itself, and
        # what is published meanwhile (before it is back) waits there.
        _saved(info)
        _sigkill(int(info["pid"]))
        info = stack.resume_service("mosquitto")
        # Mosquitto 2.0.11 restores the bridge's session without its shared subscription: until the bridge has
        # subscribed again the broker routes messages to nobody (PUBACK reason 16), and the SDK sends them again.
        login = vendor_endpoint(info, vendor, tls=True)
        with VendorClient(login, vendor[0], resend_unrouted_s=0.5) as client:
            device = client.device("wl-2", UNIT, SensorKind.WATER, start_seq=count)
            for _ in range(count):
                device.reading({"waterLevel": 0.8})
            client.flush(30)
        collect(2 * count)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert second.returncode == 0, (tmp_path / "bridge-2.log").read_text()
    assert seqs == set(range(2 * count)), f"after the broker's restart under the bridge: {len(seqs)} of {2 * count}"


_GATEWAY = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from ioc.events import SensorKind
    from ioc.settings import MqttEndpoint
    from sensors.sdk import VendorClient
    host, port, user, password, ca, vendor, queue, count, then = sys.argv[1:10]
    login = MqttEndpoint(host=host, port=int(port), username=user, password=password, tls_ca_file=ca)
    client = VendorClient(login, vendor, disk_queue=Path(queue))
    client.start()  # the broker may be away: accept into the disk queue and send when it answers
    device = client.device("gw-1", "25957", SensorKind.WATER)  # numbering resumes from the disk queue
    for _ in range(int(count)):
        device.reading({"waterLevel": 0.5})
    print(f"accepted up to {device.next_seq}", flush=True)
    if then == "deliver":
        client.flush(90)
        client.close()
        print("delivered", flush=True)
    else:
        import time
        time.sleep(600)  # killed here
    """
)


def test_the_sdk_disk_queue_keeps_what_a_killed_gateway_accepted(
    broker: tuple[Stack, dict[str, Any], tuple[str, str]], tmp_path: Path
) -> None:
    stack, info, vendor = broker
    login = vendor_endpoint(info, vendor, tls=True)
    args = [login.host, str(login.port), login.username, vendor[1], str(login.tls_ca_file), vendor[0]]
    queue = tmp_path / "gateway" / "outbox.sqlite3"
    session = Session(info, f"count-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:6]}")
    try:
        stack.stop_service("mosquitto")
        first = subprocess.Popen(
            [sys.executable, "-c", _GATEWAY, *args, str(queue), "300", "hold"], stdout=subprocess.PIPE, text=True
        )
        assert first.stdout is not None
        assert first.stdout.readline().strip() == "accepted up to 300"
        first.send_signal(signal.SIGKILL)  # the gateway dies with 300 accepted, none delivered
        first.wait(10)
        first.stdout.close()
        second = subprocess.Popen(
            [sys.executable, "-c", _GATEWAY, *args, str(queue), "200", "deliver"], stdout=subprocess.PIPE, text=True
        )
        assert second.stdout is not None
        assert second.stdout.readline().strip() == "accepted up to 500"  # numbering went on where it stopped
        info = stack.resume_service("mosquitto")
        out, _ = second.communicate(timeout=120)
        assert second.returncode == 0 and "delivered" in out, out
        got = session.wait_for(500, timeout=30)
    finally:
        session.close()
    assert got == set(range(500)), f"lost {sorted(set(range(500)) - got)[:10]}... of 500 accepted"
