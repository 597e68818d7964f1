"""The vendor SDK against the real broker: credentials, ACL refusals, batches, and the offline queue."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ioc import codecs, topics
from ioc.clients import dynsec
from ioc.events import CameraEventType, SensorKind, SensorReading
from ioc.settings import MqttEndpoint
from iocctl.localstack import Stack
from sensors.sdk import ConnectRefused, InvalidEvent, OfflineQueueFull, PublishRefused, VendorClient
from tests.sensors.conftest import admin_endpoint, vendor_endpoint


class Listener:
    """A bridge-credential subscriber that records what arrives."""

    def __init__(self, info: dict[str, Any], *, client_id: str | None = None, persistent: bool = False) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or uuid.uuid4().hex[:10], protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(info["bridge_user"], info["bridge_password"])
        self.client.on_message = lambda _c, _u, m: self.messages.append(m)
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        # The bridge's login may only join a share group; a group of its own sees every message.
        group = f"listen-{uuid.uuid4().hex[:8]}"
        self.client.on_connect = lambda c, *_a: c.subscribe(topics.mqtt_shared_subscription(group), qos=1)
        properties = None
        if persistent:
            properties = Properties(PacketTypes.CONNECT)
            properties.SessionExpiryInterval = 3600
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(info["host"], info["port"], clean_start=not persistent, properties=properties)
        self.client.loop_start()
        assert subscribed.wait(5)

    def wait_for(self, count: int, timeout: float = 15) -> list[mqtt.MQTTMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.messages

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_wrong_password_is_refused(mosquitto: dict[str, Any], vendor: tuple[str, str]) -> None:
    with pytest.raises(ConnectRefused, match="refused"):
        VendorClient(vendor_endpoint(mosquitto, (vendor[0], "wrong")), vendor[0]).connect(timeout=5)


def test_device_readings_batches_and_camera_events_arrive_numbered(
    mosquitto: dict[str, Any], vendor: tuple[str, str]
) -> None:
    listener = Listener(mosquitto)
    try:
        with VendorClient(vendor_endpoint(mosquitto, vendor), vendor[0]) as client:
            gauge = client.device("wl-1", "25957", SensorKind.WATER, start_seq=100)
            first = gauge.reading({"waterLevel": 1.2})
            batch = gauge.readings([({"waterLevel": 1.3}, dt.datetime.now(dt.UTC)) for _ in range(3)])
            camera = client.device("cam-1", "25747", topics.CAMERA_KIND)
            event = camera.camera_event(CameraEventType.RED_LIGHT, confidence=0.9, plate="61A-123.45")
            client.flush()
        got = listener.wait_for(3)
    finally:
        listener.close()
    assert first.seq == 100 and [r.seq for r in batch] == [101, 102, 103]
    by_topic = {m.topic: m.payload for m in got}
    assert codecs.decode(by_topic[topics.mqtt_topic("25747", "camera", vendor[0], "cam-1")], type(event)) == event
    single, array = [m.payload for m in got if m.topic.endswith("/wl-1")]
    assert codecs.decode(single, SensorReading) == first
    assert array.startswith(b"[") and array.count(b'"seq"') == 3


def test_invalid_events_are_refused_before_sending(mosquitto: dict[str, Any], vendor: tuple[str, str]) -> None:
    client = VendorClient(vendor_endpoint(mosquitto, vendor), vendor[0])
    with pytest.raises(InvalidEvent, match="pm1"):
        client.device("aq", "25957", SensorKind.AIR).reading({"pm1": 3.0})
    with pytest.raises(InvalidEvent, match="plate"):
        client.device("cam", "25747", "camera").camera_event("red_light", confidence=0.9)
    with pytest.raises(InvalidEvent, match="camera"):
        client.device("cam", "25747", "camera").reading({"waterLevel": 1.0})
    other = SensorReading(
        vendor="someone-else",
        device="d",
        unit="25957",
        kind=SensorKind.AIR,
        seq=0,
        observed_at=dt.datetime.now(dt.UTC),
        values={"pm25": 1.0},
    )
    with pytest.raises(InvalidEvent, match="not this client's vendor"):
        client.publish(other)
    with pytest.raises(ValueError, match="unit segment"):
        client.device("aq", "Di An", SensorKind.AIR)


def test_publishing_outside_the_granted_units_is_refused_by_the_broker(mosquitto: dict[str, Any]) -> None:
    name, password = f"t{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with dynsec.DynsecAdmin(admin_endpoint(mosquitto)) as control:
        control.ensure_vendor(name, password, units=["25957"], kinds=["water"])
    try:
        with VendorClient(vendor_endpoint(mosquitto, (name, password)), name) as client:
            client.device("wl", "25957", SensorKind.WATER).reading({"waterLevel": 0.5})
            client.flush()  # granted: no error
            client.device("wl", "25951", SensorKind.WATER).reading({"waterLevel": 0.5})
            with pytest.raises(PublishRefused) as refused:
                client.flush()
            assert refused.value.refused == [(topics.mqtt_topic("25951", "water", name, "wl"), 135)]
    finally:
        with dynsec.DynsecAdmin(admin_endpoint(mosquitto)) as control:
            control.remove_vendor(name)


def test_offline_queue_is_bounded_and_delivered_after_a_broker_restart(tmp_path: Path) -> None:
    stack = Stack(tmp_path / "own-broker")
    try:
        info = stack.up(["mosquitto"])["mosquitto"]
        name, password = "offline-vendor", uuid.uuid4().hex
        admin = MqttEndpoint(host=info["host"], port=info["port"], username="admin", password=info["admin_password"])
        with dynsec.DynsecAdmin(admin) as control:
            control.ensure_vendor(name, password)
        listener = Listener(info, client_id="persistent-listener", persistent=True)
        endpoint = MqttEndpoint(
            host=info["host"], port=info["port"], username=dynsec.vendor_username(name), password=password
        )
        client = VendorClient(endpoint, name, max_queued=50)
        client.connect()
        device = client.device("wl", "25957", SensorKind.WATER)
        stack.stop_service("mosquitto")
        deadline = time.monotonic() + 10
        while client.connected and time.monotonic() < deadline:
            time.sleep(0.05)
        for _ in range(50):
            device.reading({"waterLevel": 0.9})
        with pytest.raises(OfflineQueueFull):
            device.reading({"waterLevel": 0.9})
        assert device.next_seq == 50  # the refused reading took no sequence number: no false gap
        stack.resume_service("mosquitto")
        client.flush(timeout=60)
        client.close()
        got = listener.wait_for(50, timeout=30)
        listener.close()
        seqs = sorted(codecs.decode(m.payload, SensorReading).seq for m in got)
        assert seqs == list(range(50))
    finally:
        stack.down()


def test_the_vendor_example_runs(mosquitto: dict[str, Any], vendor: tuple[str, str]) -> None:
    listener = Listener(mosquitto)
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "sensors.sdk.example",
                "--host",
                mosquitto["host"],
                "--port",
                str(mosquitto["tls_port"]),
                "--ca-file",
                mosquitto["ca_file"],
                "--vendor",
                vendor[0],
                "--password",
                vendor[1],
                "--count",
                "5",
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "sent 11 readings and 1 camera event" in done.stdout
        assert len(listener.wait_for(7)) == 7  # 5 single readings, one batch, one camera event
    finally:
        listener.close()
    wrong = subprocess.run(
        [
            sys.executable,
            "-m",
            "sensors.sdk.example",
            "--host",
            mosquitto["host"],
            "--port",
            str(mosquitto["port"]),
            "--vendor",
            vendor[0],
            "--password",
            "wrong",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 2 and "cannot connect" in wrong.stderr
