"""The bridge on the real broker and Kafka: valid traffic flows, bad input is dead-lettered with its
reason, nothing is lost across a SIGKILL, and a flooding device is cut off without slowing the others."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from ioc import topics
from ioc.events import SensorKind
from sensors.sdk import VendorClient
from tests.sensors.conftest import bridge_settings, dead_letters, ingested, vendor_endpoint

READINGS = topics.READINGS.name
DEADLETTER = topics.DEADLETTER.name


def _raw_client(mosquitto: dict[str, Any], vendor: tuple[str, str]) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex[:10], protocol=mqtt.MQTTv5)
    login = vendor_endpoint(mosquitto, vendor)  # the issued username is `vendor.<id>`
    client.username_pw_set(login.username, login.password.get_secret_value() if login.password else None)
    client.connect(login.host, login.port)
    client.loop_start()
    # A QoS 1 publish before the CONNACK is refused ("not currently connected"): wait for it.
    deadline = time.monotonic() + 15
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.is_connected(), "the vendor's client did not connect"
    return client


def _reading(vendor: str, device: str, unit: str, seq: int, **values: float) -> dict[str, Any]:
    return {
        "vendor": vendor,
        "device": device,
        "unit": unit,
        "kind": "water",
        "seq": seq,
        "observed_at": dt.datetime.now(dt.UTC).isoformat(),
        "values": values or {"waterLevel": 0.5},
    }


def _collect(reader: Any, done: Any, timeout: float = 60) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done(got):
        got.extend(reader.poll(0.5))
    return got


def test_valid_readings_flow_and_bad_input_is_dead_lettered(mosquitto, kafka, vendor, run_bridge, tail) -> None:
    name = vendor[0]
    readings, letters = tail(READINGS), tail(DEADLETTER)
    bridge = run_bridge()
    with VendorClient(vendor_endpoint(mosquitto, vendor), name) as client:
        devices = [client.device(f"wl-{i}", "25957", SensorKind.WATER) for i in range(5)]
        for _ in range(10):
            for device in devices:
                device.reading({"waterLevel": 0.7})
        client.flush()
    raw = _raw_client(mosquitto, vendor)
    own = topics.mqtt_topic("25957", "water", name, "wl-x")
    sent = {
        "too-large": (own, b"[" + b" " * (300 * 1024) + b"]"),
        "not-json": (own, b"\x00garbage"),
        "schema": (own, json.dumps({**_reading(name, "wl-x", "25957", 1), "seq": "one"}).encode()),
        "topic-mismatch": (own, json.dumps(_reading(name, "wl-spoofed", "25957", 1)).encode()),
        "unknown-unit": (
            topics.mqtt_topic("99999", "water", name, "wl-x"),
            json.dumps(_reading(name, "wl-x", "99999", 1)).encode(),
        ),
        "implausible-value": (own, json.dumps(_reading(name, "wl-x", "25957", 2, waterLevel=99.0)).encode()),
    }
    for topic, payload in sent.values():
        raw.publish(topic, payload, qos=1).wait_for_publish(5)
    # A gateway batch with one bad item: the good ones flow, the bad one is dead-lettered alone.
    batch = [_reading(name, "wl-b", "25957", s) for s in range(3)] + [_reading(name, "wl-b", "25957", 3, pm25=1.0)]
    raw.publish(topics.mqtt_topic("25957", "water", name, "wl-b"), json.dumps(batch).encode(), qos=1).wait_for_publish(
        5
    )
    # A FIWARE Smart Data Models vendor on an air topic is normalised, not refused.
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:aq",
        "type": "AirQualityObserved",
        "dateObserved": dt.datetime.now(dt.UTC).isoformat(),
        "pm25": 33.0,
    }
    raw.publish(
        topics.mqtt_topic("25987", "air", name, "aq-fiware"), json.dumps(entity).encode(), qos=1
    ).wait_for_publish(5)
    raw.disconnect()
    raw.loop_stop()

    def mine(items: list[Any]) -> list[Any]:
        return [i for i in items if i.event.vendor == name]

    got = mine(ingested(_collect(readings, lambda m: len(mine(ingested(m))) >= 54)))
    assert {
        (i.event.device, i.event.seq) for i in got if i.event.device.startswith("wl-") and i.event.device != "wl-b"
    } == {(f"wl-{d}", s) for d in range(5) for s in range(10)}
    assert sorted(i.event.seq for i in got if i.event.device == "wl-b") == [0, 1, 2]
    assert {i.path for i in got if i.event.unit == "25957"} == {"74/724/25957"}
    fiware = [i for i in got if i.event.device == "aq-fiware"]
    assert len(fiware) == 1 and fiware[0].event.values == {"pm25": 33.0} and fiware[0].path == "74/725/25987"

    refused = [d for d in dead_letters(_collect(letters, lambda m: len(m) >= 7)) if d.vendor in (name, None)]
    reasons = defaultdict(list)
    for letter in refused:
        reasons[letter.reason].append(letter)
    for reason, (_topic, payload) in sent.items():
        assert reason in reasons, (reason, sorted(reasons))
        if reason != "too-large":
            assert any(letter.payload == payload for letter in reasons[reason]), reason
    assert any(b'"pm25"' in letter.payload for letter in reasons["schema"])  # the bad batch item, on its own
    assert "wl-spoofed" in reasons["topic-mismatch"][0].detail
    # The SDK's messages (QoS 1, no properties) came through the client's lean path, not paho's MQTTMessage.
    assert bridge._mqtt.lean_publishes >= 50


def test_nothing_is_lost_when_the_bridge_is_killed_under_load(mosquitto, kafka, vendor, tail, tmp_path: Path) -> None:
    name = vendor[0]
    readings = tail(READINGS)
    settings = bridge_settings(mosquitto, kafka, replica=f"kill-{uuid.uuid4().hex[:6]}")
    env = {
        **os.environ,
        "IOC_BRIDGE_MQTT__HOST": settings.mqtt.host,
        "IOC_BRIDGE_MQTT__PORT": str(settings.mqtt.port),
        "IOC_BRIDGE_MQTT__USERNAME": settings.mqtt.username or "",
        "IOC_BRIDGE_MQTT__PASSWORD": settings.mqtt.password.get_secret_value() if settings.mqtt.password else "",
        **settings.kafka.environment("IOC_BRIDGE_KAFKA__"),
        "IOC_BRIDGE_SHARE_GROUP": settings.share_group,
        "IOC_BRIDGE_REPLICA": settings.replica or "",
        # This test pushes 200 readings/s per device; rate limits are the flooding test's business.
        "IOC_BRIDGE_DEVICE_RATE_PER_S": "100000",
        "IOC_BRIDGE_DEVICE_BURST": "100000",
    }

    def start_bridge(log_name: str) -> subprocess.Popen[bytes]:
        with (tmp_path / log_name).open("wb") as log:
            return subprocess.Popen(
                [sys.executable, "-m", "sensors.bridge"], env=env, stdout=log, stderr=subprocess.STDOUT
            )

    first = start_bridge("bridge-1.log")
    # Published before the bridge's shared subscription exists, a message has no subscriber and is dropped
    # by the broker: wait for the subscription, not a fixed time (startup varies with a loaded machine).
    deadline = time.monotonic() + 60
    while b"connected; subscribed" not in (tmp_path / "bridge-1.log").read_bytes():
        assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "bridge-1.log").read_text()
        time.sleep(0.1)
    time.sleep(0.5)  # the SUBACK follows the log line
    devices, per_device, batch = 20, 400, 10
    published = threading.Event()

    def publish() -> None:
        with VendorClient(vendor_endpoint(mosquitto, vendor), name, max_queued=100_000) as client:
            handles = [client.device(f"d{i:02}", "25966", SensorKind.WATER) for i in range(devices)]
            for _ in range(per_device // batch):
                for handle in handles:
                    handle.readings([({"waterLevel": 0.4}, dt.datetime.now(dt.UTC)) for _ in range(batch)])
                time.sleep(0.05)
            client.flush(60)
        published.set()

    publisher = threading.Thread(target=publish)
    publisher.start()
    time.sleep(1.0)
    first.send_signal(signal.SIGKILL)  # mid-batch, mid-delivery: no chance to flush or acknowledge
    first.wait(10)
    time.sleep(0.5)
    second = start_bridge("bridge-2.log")
    try:
        publisher.join(120)
        assert published.is_set()
        wanted = devices * per_device
        seen: dict[str, list[int]] = defaultdict(list)

        def complete(_messages: list[Any]) -> bool:
            for item in ingested(_messages[complete.read :]):  # type: ignore[attr-defined]
                if item.event.vendor == name:
                    seen[item.event.device].append(item.event.seq)
            complete.read = len(_messages)  # type: ignore[attr-defined]
            return sum(len(set(s)) for s in seen.values()) >= wanted

        complete.read = 0  # type: ignore[attr-defined]
        _collect(readings, complete, timeout=90)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
    assert second.returncode == 0, (tmp_path / "bridge-2.log").read_text()
    for index in range(devices):
        got = seen[f"d{index:02}"]
        assert sorted(set(got)) == list(range(per_device)), f"gaps for d{index:02}"
        # Each device's readings keep their order within what one bridge run delivered.
    duplicates = sum(len(s) - len(set(s)) for s in seen.values())
    print(f"delivered {wanted} readings after a SIGKILL with {duplicates} duplicates (collapsed downstream)")


def test_a_flooding_device_is_rate_limited_while_others_keep_their_latency(
    mosquitto, kafka, vendor, run_bridge, tail
) -> None:
    name = vendor[0]
    readings, letters = tail(READINGS), tail(DEADLETTER)
    run_bridge(device_rate_per_s=50, device_burst=50, deadletter_summary_s=1.0)
    stop = threading.Event()

    def flood() -> None:
        with VendorClient(vendor_endpoint(mosquitto, vendor), name, max_queued=100_000) as client:
            device = client.device("flooder", "25747", SensorKind.WATER)
            while not stop.is_set():
                device.readings([({"waterLevel": 0.3}, dt.datetime.now(dt.UTC)) for _ in range(20)])
                time.sleep(0.002)
            client.flush(60)

    flooder = threading.Thread(target=flood)
    flooder.start()
    started = time.monotonic()
    with VendorClient(vendor_endpoint(mosquitto, vendor), name) as client:
        calm = [client.device(f"calm-{i}", "25747", SensorKind.WATER) for i in range(10)]
        for _ in range(15):
            for device in calm:
                device.reading({"waterLevel": 0.3})
            time.sleep(0.2)
        client.flush()
    stop.set()
    flooder.join(60)
    duration = time.monotonic() - started
    got = [i for i in ingested(_collect(readings, lambda m: False, timeout=5)) if i.event.vendor == name]
    calm_items = [i for i in got if i.event.device.startswith("calm-")]
    assert len(calm_items) == 150
    latencies = sorted((i.received_at - i.event.observed_at).total_seconds() for i in calm_items)
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    assert p99 < 1.0, f"calm devices' p99 latency {p99:.3f}s (median {statistics.median(latencies):.3f}s)"
    flooded = [i for i in got if i.event.device == "flooder"]
    assert len(flooded) <= 50 + 50 * (duration + 2)
    limited = [d for d in dead_letters(letters.poll(3)) if d.device == "flooder" and d.reason == "rate-limited"]
    # Summarised, not stored one by one: a letter per second or so, whose counts add up to the refusals.
    assert sum(d.count for d in limited) > len(flooded)
    assert len(limited) <= 2 * (duration + 3)
