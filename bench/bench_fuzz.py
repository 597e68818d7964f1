"""Fuzzing the edges at volume: hostile MQTT payloads through the bridge, hostile HTTP through the citizen API
and the portal webhook, with valid traffic flowing beside them (issue 17, item 7; not a timed test).

Everything is real and on this machine: a local Mosquitto, Kafka and ClickHouse (own stack, or
IOC_BENCH_STACK=DIR to reuse one started with `ioc stack up --dir DIR`).

- MQTT, in process: a `Bridge` connected to the real broker and Kafka is handed FUZZ_MQTT (100,000) generated
  payloads through its message handler exactly as paho's network thread calls it (`on_message(client,
  userdata, MQTTMessage)`); every 20th message is a valid reading from one of 50 calm devices, whose
  latency is measured from the hand-over to the batch being readable in Kafka.
- MQTT, over the broker: FUZZ_MQTT_BROKER (10,000) payloads from the same generator published by a vendor
  with its issued credentials to a bridge subscribed as usual, with valid readings beside them.
- HTTP: FUZZ_HTTP (10,000) hostile requests, split between the citizen API (`python -m dashboards.api`,
  uvicorn, as bench_api runs it) and the portal connector (`python -m sensors.gateways`, uvicorn), with a
  valid read (API) or a validly signed dossier batch (portal) every 10th request.

Figures: crashes (an exception escaping the bridge's handler, a dead bridge thread, an HTTP 5xx or a
dropped connection, a server process that died; goal 0), refusals by reason (bridge dead-letter codes,
HTTP statuses), and valid traffic's p50/p99 during the run. The generator is seeded (FUZZ_SEED, 17).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import httpx
import paho.mqtt.client as mqtt
from confluent_kafka import Consumer, TopicPartition
from paho.mqtt.enums import CallbackAPIVersion

from ioc import kafka_access, signing, topics
from ioc.clients import clickhouse, dynsec
from ioc.events import IngestBatch
from ioc.settings import BridgeSettings, ClickHouseEndpoint, KafkaEndpoint, MqttEndpoint
from iocctl.localstack import Stack
from sensors.bridge import Bridge
from streams.warehouse import migrate
from tests.api import seed
from tests.api.server import free_port
from tests.gateways.test_portal_logic import body_of
from tests.reporting.samples import snapshot

ROOT = Path(__file__).parents[1]
SEED = int(os.environ.get("FUZZ_SEED", "17"))
MQTT_IN_PROCESS = int(os.environ.get("FUZZ_MQTT", "100000"))
MQTT_BROKER = int(os.environ.get("FUZZ_MQTT_BROKER", "10000"))
HTTP_REQUESTS = int(os.environ.get("FUZZ_HTTP", "10000"))
VALID_EVERY = 20
BROKER_RATE = float(os.environ.get("FUZZ_BROKER_RATE", "250"))
"""Messages per second the vendor publishes in the over-the-broker run."""
UNITS = ("25957", "25747", "25987", "26008")
KINDS = {"water": {"waterLevel": (0.0, 3.0)}, "air": {"pm25": (0.0, 300.0)}, "noise": {"LAeq": (30.0, 90.0)}}
OUT_OF_PROVINCE = ((21.0285, 105.8542), (11.5564, 104.9282), (16.0544, 108.2022), (-33.87, 151.21), (0.0, 0.0))
API_KEY = "fuzz-key"
PORTAL_SECRET = "fuzz-portal-secret"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


# --- hostile MQTT payloads ------------------------------------------------------------------------------------


class Hostile:
    """A seeded generator of (topic, payload) pairs a hostile or broken vendor could publish."""

    def __init__(self, rng: random.Random, vendor: str) -> None:
        self.rng = rng
        self.vendor = vendor
        self.makers: list[Callable[[], tuple[str, bytes]]] = [
            self.wrong_types,
            self.huge_numbers,
            self.non_finite,
            self.deep_nesting,
            self.huge_strings,
            self.bad_utf8,
            self.wrong_vendor_or_device,
            self.bad_times,
            self.out_of_province,
            self.fiware_junk,
            self.random_bytes,
            self.bad_batches,
            self.bad_topics,
            self.mutated_valid,
        ]
        self.counts: Counter[str] = Counter()

    def next(self) -> tuple[str, bytes]:
        maker = self.rng.choice(self.makers)
        self.counts[maker.__name__] += 1
        return maker()

    # building blocks

    def device(self) -> str:
        return f"fz-{self.rng.randrange(200)}"

    def topic(self, kind: str = "water", device: str | None = None, unit: str | None = None) -> str:
        return topics.mqtt_topic(unit or self.rng.choice(UNITS), kind, self.vendor, device or self.device())

    def reading(self, **changes: Any) -> dict[str, Any]:
        kind = changes.get("kind", "water")
        measure, (low, high) = next(iter(KINDS[kind if isinstance(kind, str) and kind in KINDS else "water"].items()))
        body: dict[str, Any] = {
            "vendor": self.vendor,
            "device": changes.pop("device", self.device()),
            "unit": changes.pop("unit", self.rng.choice(UNITS)),
            "kind": changes.pop("kind", kind),
            "seq": self.rng.randrange(1_000_000),
            "observed_at": dt.datetime.now(dt.UTC).isoformat(),
            "values": {measure: round(self.rng.uniform(low, high), 3)},
        }
        body.update(changes)
        return body

    def on_own_topic(self, body: dict[str, Any]) -> tuple[str, bytes]:
        kind, device, unit = body.get("kind"), body.get("device"), body.get("unit")
        try:
            topic = topics.mqtt_topic(str(unit), str(kind), self.vendor, str(device))
        except Exception:  # noqa: BLE001 - an id the topic grammar refuses: publish on a plausible one
            topic = self.topic()
        return topic, json.dumps(body, allow_nan=True).encode()

    # categories

    def wrong_types(self) -> tuple[str, bytes]:
        field = self.rng.choice(["seq", "observed_at", "values", "unit", "device", "kind", "lat", "vendor"])
        junk = self.rng.choice([None, True, "x", -1, 2**70, [], {}, [1, 2], {"a": "b"}, 1.5, "2026-13-45"])
        return self.on_own_topic(self.reading(**{field: junk}))

    def with_token(self, field: str, token: str, **changes: Any) -> tuple[str, bytes]:
        """A reading whose `field` (a top-level key, or "value" for its measurement) is the raw JSON `token`."""
        body = self.reading(**changes)
        if field == "value":
            body["values"] = {"waterLevel": "__TOKEN__"}
        else:
            body[field] = "__TOKEN__"
        return self.topic(), json.dumps(body).replace('"__TOKEN__"', token).encode()

    def huge_numbers(self) -> tuple[str, bytes]:
        number = self.rng.choice(
            ["1e400", "-1e400", "1" + "0" * 400, "1e308", "-1e308", "4.9e-324", "18446744073709551616", "-0"]
        )
        return self.with_token(self.rng.choice(["seq", "value", "lat", "lon"]), number)

    def non_finite(self) -> tuple[str, bytes]:
        token = self.rng.choice(["NaN", "Infinity", "-Infinity", "nan", "inf", "1e999"])
        return self.with_token(self.rng.choice(["value", "lat", "seq"]), token)

    def deep_nesting(self) -> tuple[str, bytes]:
        depth = self.rng.choice([50, 500, 5_000, 50_000, 120_000])
        opener, closer = self.rng.choice([(b"[", b"]"), (b'{"a":', b"}")])
        core = opener * depth + b"1" + closer * depth
        if self.rng.random() < 0.5:  # nested inside a reading's values
            core = json.dumps(self.reading()).replace('"values": {', '"values": {"deep": ', 1).encode()
            core = core.replace(b'"deep": ', b'"deep": ' + b"[" * depth + b"1" + b"]" * depth + b", ", 1)
        return self.topic(), core

    def huge_strings(self) -> tuple[str, bytes]:
        size = self.rng.choice([300, 5_000, 100_000, 300_000])
        field = self.rng.choice(["device", "unit", "vendor", "observed_at", "kind"])
        return self.topic(), json.dumps(self.reading(**{field: "x" * size})).encode()

    def bad_utf8(self) -> tuple[str, bytes]:
        body = json.dumps(self.reading()).encode()
        junk = self.rng.choice([b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x00"])
        where = self.rng.randrange(len(body))
        return self.topic(), body[:where] + junk + body[where:]

    def wrong_vendor_or_device(self) -> tuple[str, bytes]:
        body = self.reading()
        choice = self.rng.randrange(3)
        if choice == 0:
            body["vendor"] = "admin"
        elif choice == 1:
            body["device"] = "someone-else"
        else:
            body["unit"] = self.rng.choice([u for u in UNITS if u != body["unit"]])
        return self.topic(device=self.device()), json.dumps(body).encode()

    def bad_times(self) -> tuple[str, bytes]:
        now = dt.datetime.now(dt.UTC)
        at = self.rng.choice(
            [
                dt.datetime(2099, 1, 1, tzinfo=dt.UTC),
                now + dt.timedelta(minutes=6),
                now - dt.timedelta(days=8),
                dt.datetime(1970, 1, 1, tzinfo=dt.UTC),
                dt.datetime(1, 1, 1, tzinfo=dt.UTC),
                dt.datetime(9999, 12, 31, tzinfo=dt.UTC),
            ]
        )
        text = self.rng.choice([at.isoformat(), at.replace(tzinfo=None).isoformat(), "2026-02-30T00:00:00Z"])
        return self.on_own_topic(self.reading(observed_at=text))

    def out_of_province(self) -> tuple[str, bytes]:
        lat, lon = self.rng.choice(OUT_OF_PROVINCE)
        return self.on_own_topic(self.reading(lat=lat, lon=lon))

    def fiware_junk(self) -> tuple[str, bytes]:
        rng = self.rng
        entity: dict[str, Any] = {
            "id": rng.choice(["urn:ngsi-ld:AirQualityObserved:x", 5, None]),
            "type": rng.choice(["AirQualityObserved", "WaterObserved", "Weather", 7]),
            "@context": rng.choice([None, "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld", [1]]),
            "dateObserved": rng.choice(
                [
                    dt.datetime.now(dt.UTC).isoformat(),
                    {"@type": "DateTime", "@value": rng.choice(["2099-01-01T00:00:00Z", 3, None])},
                    {"value": "not a time"},
                    "2026-01-01T00:00:00",
                ]
            ),
            rng.choice(["pm25", "pm2_5", "height", "no2"]): rng.choice(
                [5.0, "5", {"value": 1e308, "unitCode": "GP"}, {"value": 3, "unitCode": "XYZ"}, [1], True]
            ),
            "location": rng.choice(
                [
                    {"type": "Point", "coordinates": [105.85, 21.03]},
                    {"type": "Point", "coordinates": ["a", "b"]},
                    {"type": "Point", "coordinates": [[1], [2]]},
                    {"value": {"type": "Point", "coordinates": [106.65, 10.98, 5]}},
                    "here",
                ]
            ),
        }
        kind = "air" if entity["type"] == "AirQualityObserved" else "water"
        return self.topic(kind), json.dumps(entity).encode()

    def random_bytes(self) -> tuple[str, bytes]:
        return self.topic(), self.rng.randbytes(self.rng.choice([0, 1, 16, 512, 4096]))

    def bad_batches(self) -> tuple[str, bytes]:
        device = self.device()
        size = self.rng.choice([0, 3, 1001])
        items = [self.reading(device=device) for _ in range(min(size, 3))] * (size // 3 if size > 3 else 1)
        if size == 0:
            items = []
        elif items:
            items[0] = {"seq": "x"}
        return self.topic(device=device), json.dumps(items).encode()

    def bad_topics(self) -> tuple[str, bytes]:
        topic = self.rng.choice(
            [
                "ioc/v1/25957/water",
                f"ioc/v1/25957/water/{self.vendor}/{'d' * 300}",
                "ioc/v2/25957/water/x/y",
                f"ioc/v1/../water/{self.vendor}/x",
                "ioc/v1/25957/lava/x/y",
                "\u0000",
                f"ioc/v1/25957/water/{self.vendor}/\udcff",  # not UTF-8 once encoded (surrogatepass)
            ]
        )
        return topic, json.dumps(self.reading()).encode()

    def mutated_valid(self) -> tuple[str, bytes]:
        topic, body = self.on_own_topic(self.reading())
        data = bytearray(body)
        for _ in range(self.rng.randrange(1, 6)):
            data[self.rng.randrange(len(data))] = self.rng.randrange(256)
        return topic, bytes(data)


def _valid(vendor: str, device: str, seq: int) -> tuple[str, bytes]:
    body = {
        "vendor": vendor,
        "device": device,
        "unit": "25957",
        "kind": "water",
        "seq": seq,
        "observed_at": dt.datetime.now(dt.UTC).isoformat(),
        "values": {"waterLevel": 0.5},
        "lat": 10.9,
        "lon": 106.77,
    }
    return topics.mqtt_topic("25957", "water", vendor, device), json.dumps(body).encode()


class _ValidWatch:
    """Reads the readings topic from its end and times the valid readings the run sent."""

    def __init__(self, kafka: KafkaEndpoint, vendor: str) -> None:
        self.vendor = vendor
        self.sent: dict[tuple[str, int], float] = {}
        self.latencies: list[float] = []
        self.consumer = Consumer({**kafka.client_config(), "group.id": f"fuzz-{uuid.uuid4().hex[:8]}"})
        name = topics.READINGS.name
        parts = self.consumer.list_topics(name, timeout=10).topics[name].partitions
        self.consumer.assign(
            [TopicPartition(name, p, self.consumer.get_watermark_offsets(TopicPartition(name, p))[1]) for p in parts]
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            message = self.consumer.poll(0.2)
            if message is None or message.error():
                continue
            arrived = time.perf_counter()
            batch = topics.READINGS.decode(message.value() or b"")
            for item in batch.items if isinstance(batch, IngestBatch) else []:
                sent = self.sent.pop((item.event.device, item.event.seq), None)
                if sent is not None and item.event.vendor == self.vendor:
                    self.latencies.append(arrived - sent)

    def finish(self, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while self.sent and time.monotonic() < deadline:
            time.sleep(0.2)
        self._stop.set()
        self._thread.join(5)
        self.consumer.close()
        return len(self.sent)


def _bridge(info: dict[str, Any], vendor: str, **changes: Any) -> tuple[Bridge, threading.Thread]:
    mosquitto = info["mosquitto"]
    settings = BridgeSettings(
        mqtt=MqttEndpoint(
            host=mosquitto["host"],
            port=mosquitto["port"],
            username=mosquitto["bridge_user"],
            password=mosquitto["bridge_password"],
        ),
        kafka=_kafka(info, kafka_access.BRIDGE),
        share_group=f"fuzz-{vendor}",
        replica=f"fuzz-{uuid.uuid4().hex[:6]}",
        max_inflight=5000,
        **changes,
    )
    bridge = Bridge(settings)
    thread = threading.Thread(target=bridge.run, name="bridge", daemon=True)
    thread.start()
    if not bridge.wait_connected(30):
        raise RuntimeError("the bridge did not connect to the broker")
    return bridge, thread


def _kafka(info: dict[str, Any], principal: str | None = None) -> KafkaEndpoint:
    """The stack's Kafka as `principal` (a stack without Kafka identity has one PLAINTEXT endpoint for all)."""
    return KafkaEndpoint.from_service(info["kafka"], principal)


def _mqtt_in_process(info: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    vendor = f"fz{uuid.uuid4().hex[:6]}"
    # Limits as a deployment would set them for one busy vendor; hostile traffic still exceeds them.
    bridge, thread = _bridge(info, vendor, device_rate_per_s=200, device_burst=400)
    watch = _ValidWatch(_kafka(info), vendor)
    hostile = Hostile(rng, vendor)
    escaped: Counter[str] = Counter()
    started = time.perf_counter()
    seq = 0
    try:
        for index in range(MQTT_IN_PROCESS):
            if index % VALID_EVERY == 0:
                device = f"calm-{(index // VALID_EVERY) % 50}"
                topic, payload = _valid(vendor, device, seq)
                watch.sent[(device, seq)] = time.perf_counter()
                seq += 1
            else:
                topic, payload = hostile.next()
            message = mqtt.MQTTMessage(mid=0, topic=topic.encode("utf-8", "surrogatepass"))
            message.payload = payload
            try:
                bridge._on_message(cast(mqtt.Client, None), None, message)  # exactly what paho's thread calls
            except BaseException as exc:  # noqa: BLE001 - what escapes is the figure
                escaped[type(exc).__name__] += 1
        handed_s = time.perf_counter() - started
        missing = watch.finish()
        alive = thread.is_alive()
    finally:
        bridge.stop()
        thread.join(60)
    rejected = dict(sorted(bridge.stats.rejected.items()))
    return {
        "mqtt_messages": MQTT_IN_PROCESS,
        "mqtt_valid_sent": seq,
        "mqtt_valid_missing": missing,
        "mqtt_messages_per_s": round(MQTT_IN_PROCESS / handed_s, 1),
        "mqtt_crashes": sum(escaped.values()) + bridge.stats.handler_errors + (0 if alive else 1),
        "mqtt_bridge_alive_throughout": alive,
        "mqtt_escaped": dict(escaped),
        "mqtt_handler_errors": bridge.stats.handler_errors,
        "mqtt_accepted": bridge.stats.accepted,
        "mqtt_rejected_by_reason": rejected,
        "mqtt_dead_letters_summarised": bridge.stats.summarised,
        "mqtt_valid_p50_ms": round(_percentile(watch.latencies, 0.50) * 1000, 1),
        "mqtt_valid_p99_ms": round(_percentile(watch.latencies, 0.99) * 1000, 1),
        "mqtt_generated_by_category": dict(sorted(hostile.counts.items())),
    }


def _mqtt_over_broker(info: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    mosquitto = info["mosquitto"]
    vendor, password = f"fb{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = MqttEndpoint(
        host=mosquitto["host"],
        port=mosquitto["port"],
        username=mosquitto.get("admin_user", "admin"),
        password=mosquitto["admin_password"],
    )
    with dynsec.DynsecAdmin(admin) as control:
        control.ensure_vendor(vendor, password)
    bridge, thread = _bridge(info, vendor, device_rate_per_s=200, device_burst=400)
    watch = _ValidWatch(_kafka(info), vendor)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"fuzz-{vendor}", protocol=mqtt.MQTTv5)
    client.max_queued_messages_set(0)
    client.max_inflight_messages_set(200)
    client.username_pw_set(dynsec.vendor_username(vendor), password)
    client.reconnect_delay_set(min_delay=1, max_delay=2)
    disconnects = Counter[str]()

    def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        disconnects[str(reason)] += 1  # the broker closing on a protocol violation is a refusal too

    client.on_disconnect = on_disconnect

    def connected(timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not client.is_connected() and time.monotonic() < deadline:
            time.sleep(0.02)
        return client.is_connected()

    client.connect(mosquitto["host"], mosquitto["port"])
    client.loop_start()
    if not connected(15):
        raise RuntimeError("the fuzzing vendor could not connect to the broker")
    hostile = Hostile(rng, vendor)
    refused_by_broker = protocol_violations = 0
    seq = 0
    infos = []
    started = time.perf_counter()
    try:
        for index in range(MQTT_BROKER):
            if index % VALID_EVERY == 0:
                device = f"calm-{(index // VALID_EVERY) % 20}"
                topic, payload = _valid(vendor, device, seq)
                watch.sent[(device, seq)] = time.perf_counter()
                seq += 1
            else:
                topic, payload = hostile.next()
            if "\x00" in topic:
                # Mosquitto closes the connection on it ("Malformed packet"), and paho re-sends the in-flight
                # message on reconnect, closing it again: the broker's own refusal, counted here, not sent.
                protocol_violations += 1
                continue
            if not connected(10):
                raise RuntimeError("the broker did not take the fuzzing vendor back within 10 s")
            try:
                infos.append(client.publish(topic, payload, qos=1))
            except (ValueError, UnicodeError):  # a topic paho itself refuses to send (wildcards, too long)
                refused_by_broker += 1
            # Paced at BROKER_RATE: hostile traffic the bridge keeps up with, so the valid readings' latency is
            # the bridge's, not a queue's (a faster flood only queues: intake is paced by max_inflight).
            lag = started + index / BROKER_RATE - time.perf_counter()
            if lag > 0:
                time.sleep(lag)
        # Publishes in flight when the broker closed the connection are gone (a clean start): wait for the rest
        # together, then count what never got its PUBACK.
        deadline = time.monotonic() + 30
        for info_ in infos:
            left = deadline - time.monotonic()
            if info_.rc == mqtt.MQTT_ERR_SUCCESS and left > 0 and not info_.is_published():
                with contextlib.suppress(RuntimeError, ValueError):
                    info_.wait_for_publish(min(left, 1.0))
        unconfirmed = sum(1 for info_ in infos if not info_.is_published())
        sent_s = time.perf_counter() - started
        missing = watch.finish(60)
        received = bridge.stats.received
    finally:
        client.disconnect()
        client.loop_stop()
        alive = thread.is_alive()
        bridge.stop()
        thread.join(60)
        with dynsec.DynsecAdmin(admin) as control:
            control.remove_vendor(vendor)
    return {
        "broker_messages": MQTT_BROKER,
        "broker_messages_per_s": round(MQTT_BROKER / sent_s, 1),
        "broker_bridge_received": received,
        "broker_refused_by_paho": refused_by_broker,
        "broker_nul_topics_not_sent": protocol_violations,
        "broker_publishes_unconfirmed": unconfirmed,
        "broker_disconnected_the_vendor": dict(disconnects),
        "broker_bridge_alive_throughout": alive,
        "broker_crashes": bridge.stats.handler_errors + (0 if alive else 1),
        "broker_rejected_by_reason": dict(sorted(bridge.stats.rejected.items())),
        "broker_valid_sent": seq,
        "broker_valid_missing": missing,
        "broker_valid_p50_ms": round(_percentile(watch.latencies, 0.50) * 1000, 1),
        "broker_valid_p99_ms": round(_percentile(watch.latencies, 0.99) * 1000, 1),
    }


# --- hostile HTTP -----------------------------------------------------------------------------------------------


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def _api_requests(
    rng: random.Random,
) -> Callable[[int], tuple[str, str, dict[str, str], bytes | dict[str, str] | None, bool]]:
    reads = (
        "/open-data/v1/air-quality",
        "/open-data/v1/flood-warnings",
        "/open311/v2/services.json",
        f"/open311/v2/requests/{seed.REPORT_ID}.json",
    )

    def make(index: int) -> tuple[str, str, dict[str, str], bytes | dict[str, str] | None, bool]:
        if index % 10 == 0:
            return "GET", reads[index % len(reads)], {}, None, True
        choice = rng.randrange(12)
        if choice == 0:
            return (
                "POST",
                "/open311/v2/requests.json",
                {"Content-Type": "application/json"},
                _nested(rng.choice([100, 10_000, 60_000])).encode(),
                False,
            )
        if choice == 1:
            return (
                "POST",
                "/open311/v2/requests.json",
                {"Content-Type": "application/json"},
                b'{"a":' * 5000 + b"1" + b"}" * 5000,
                False,
            )
        if choice == 2:
            return (
                "POST",
                "/open311/v2/requests.json",
                {},
                {
                    "api_key": API_KEY,
                    "service_code": "waste",
                    "description": "x" * rng.choice([10, 5000, 70_000]),
                    "attribute[unit]": "25957",
                },
                False,
            )
        if choice == 3:
            return (
                "POST",
                "/open311/v2/requests.json",
                {},
                {"api_key": rng.choice(["", "wrong", API_KEY * 100]), "service_code": "waste", "description": "d"},
                False,
            )
        if choice == 4:
            return (
                "POST",
                "/open311/v2/requests.json",
                {},
                {
                    "api_key": API_KEY,
                    "service_code": rng.choice(["", "../etc", "\u0000", "x" * 500]),
                    "description": "d",
                    "lat": rng.choice(["NaN", "1e400", "91", "abc"]),
                    "long": "106",
                },
                False,
            )
        if choice == 5:
            return (
                "POST",
                "/open311/v2/requests.json",
                {"Content-Type": "application/x-www-form-urlencoded"},
                rng.randbytes(rng.choice([10, 1000, 100_000])),
                False,
            )
        if choice == 6:
            path = rng.choice(
                [
                    "/open-data/v1/air-quality?unit=",
                    "/open-data/v1/air-quality?unit=../../",
                    "/open311/v2/requests/",
                    "/ngsi-ld/v1/entities?type=",
                ]
            )
            return "GET", path + rng.choice(["'", "%00", "x" * 3000, "%ff%fe", "1 OR 1=1", "{{7*7}}"]), {}, None, False
        if choice == 7:
            return (
                "GET",
                f"/open-data/v1/air-quality?unit={rng.randrange(10**12)}&cachebust={uuid.uuid4().hex}",
                {},
                None,
                False,
            )
        if choice == 8:
            return (
                "POST",
                "/open311/v2/requests.json",
                {"Content-Type": "application/json"},
                json.dumps(
                    {"api_key": API_KEY, "service_code": 5, "description": [1], "attribute": {"unit": {"a": 1}}}
                ).encode(),
                False,
            )
        if choice == 9:
            return (
                "GET",
                "/open311/v2/requests.json?" + "&".join(f"k{i}=v" for i in range(rng.choice([10, 2000]))),
                {},
                None,
                False,
            )
        if choice == 10:
            return "PUT", rng.choice(["/open311/v2/requests.json", "/open-data/v1/cameras"]), {}, b"x", False
        return (
            "POST",
            "/open311/v2/requests.json",
            {"Content-Type": "application/json", "Idempotency-Key": "x" * rng.choice([10, 5000])},
            b"\xff\xfe\x00",
            False,
        )

    return make


def _portal_requests(
    rng: random.Random,
) -> Callable[[int], tuple[str, str, dict[str, str], bytes | dict[str, str] | None, bool]]:
    path = "/portal/v1/dossier-events"

    def signed(body: bytes) -> dict[str, str]:
        return {
            signing.SIGNATURE_HEADER: signing.sign_webhook(PORTAL_SECRET, body, int(time.time())),
            "Content-Type": "application/json",
        }

    run = uuid.uuid4().hex[:6]

    def dossier(index: int) -> dict[str, Any]:
        received = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
        return json.loads(body_of(snapshot(f"FUZZ-{run}-{index}", 1, received=received)))  # type: ignore[no-any-return]

    def make(index: int) -> tuple[str, str, dict[str, str], bytes | dict[str, str] | None, bool]:
        if index % 10 == 0:
            body = json.dumps([dossier(index)]).encode()
            return "POST", path, signed(body), body, True
        choice = rng.randrange(9)
        if choice == 0:
            body = _nested(rng.choice([100, 10_000, 100_000])).encode()
            return "POST", path, signed(body), body, False
        if choice == 1:
            body = json.dumps([dossier(index)]).encode()
            return (
                "POST",
                path,
                {signing.SIGNATURE_HEADER: rng.choice(["", "t=1,v1=00", "garbage", "t=9999999999,v1=" + "a" * 64])},
                body,
                False,
            )
        if choice == 2:
            body = json.dumps([dossier(index)] * rng.choice([2, 2000])).encode()
            return "POST", path, signed(body), body, False
        if choice == 3:
            body = rng.randbytes(rng.choice([0, 100, 10_000]))
            return "POST", path, signed(body), body, False
        if choice == 4:
            junk = dossier(index)
            junk[rng.choice(list(junk))] = rng.choice([None, 1e308, "x" * 5000, [], {"a": 1}, -1])
            body = json.dumps([junk]).encode()
            return "POST", path, signed(body), body, False
        if choice == 5:
            junk = dossier(index)
            junk["unit"] = rng.choice(["99999", "26734", "../74", ""])  # outside the site, unknown, hostile
            body = json.dumps(junk).encode()
            return "POST", path, signed(body), body, False
        if choice == 6:
            body = b"x" * (1024 * 1024 + 10)
            return "POST", path, signed(body), body, False
        if choice == 7:
            body = json.dumps({"a": float("nan")}).encode()
            return "POST", path, signed(body), body, False
        body = json.dumps([dossier(index)]).encode()
        stale = signing.sign_webhook(PORTAL_SECRET, body, int(time.time()) - 86400)
        return "POST", path, {signing.SIGNATURE_HEADER: stale}, body, False

    return make


async def _http_load(base: str, total: int, make: Callable[[int], Any], *, concurrency: int = 32) -> dict[str, Any]:
    statuses: Counter[str] = Counter()
    valid_latencies: list[float] = []
    valid_failed = 0
    crashes: Counter[str] = Counter()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(total):
        queue.put_nowait(index)
    async with aiohttp.ClientSession(base, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def worker() -> None:
            nonlocal valid_failed
            while not queue.empty():
                index = queue.get_nowait()
                method, path, headers, body, valid = make(index)
                started = time.perf_counter()
                try:
                    kwargs: dict[str, Any] = {"headers": headers}
                    if body is not None:
                        kwargs["data"] = body
                    async with session.request(method, path, **kwargs) as answer:
                        await answer.read()
                        status = answer.status
                except Exception as exc:  # noqa: BLE001 - a dropped connection is a figure
                    crashes[type(exc).__name__] += 1
                    statuses["connection-error"] += 1
                    if valid:
                        valid_failed += 1
                    continue
                elapsed = time.perf_counter() - started
                statuses[str(status)] += 1
                if status >= 500:
                    crashes[f"http-{status}"] += 1
                if valid:
                    if status < 400:
                        valid_latencies.append(elapsed)
                    else:
                        valid_failed += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return {
        "requests": total,
        "by_status": dict(sorted(statuses.items())),
        "crashes": sum(crashes.values()),
        "crash_kinds": dict(crashes),
        "valid": len(valid_latencies) + valid_failed,
        "valid_failed": valid_failed,
        "valid_p50_ms": round(_percentile(valid_latencies, 0.50) * 1000, 1),
        "valid_p99_ms": round(_percentile(valid_latencies, 0.99) * 1000, 1),
    }


def _serve(module: str, env: dict[str, str], port: int, log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("wb")
    server = subprocess.Popen([sys.executable, "-m", module], env=env, cwd=ROOT, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or server.poll() is not None:
            server.kill()
            raise RuntimeError(f"{module} did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.5)


def _http(info: dict[str, Any], root: Path, rng: random.Random) -> dict[str, Any]:
    ch = info["clickhouse"]
    database = f"fuzz_{uuid.uuid4().hex[:8]}"
    admin_endpoint = ClickHouseEndpoint(
        host=ch["host"], port=ch["port"], http_port=ch["http_port"], user=ch["user"], password=ch["password"]
    )
    with clickhouse.connect(admin_endpoint) as admin:
        migrate(admin, database)
        seed.seed(admin, database)
    api_port, portal_port = free_port(), free_port()
    api_env = {
        **os.environ,
        **_kafka(info).environment("IOC_API_KAFKA__"),
        "IOC_API_PORT": str(api_port),
        "IOC_API_SITE_UNIT": "74",
        "IOC_API_PUBLIC_ENABLED": "true",
        "IOC_API_CLICKHOUSE__HOST": ch["host"],
        "IOC_API_CLICKHOUSE__PORT": str(ch["port"]),
        "IOC_API_CLICKHOUSE__USER": ch["user"],
        "IOC_API_CLICKHOUSE__PASSWORD": ch["password"],
        "IOC_API_CLICKHOUSE__DATABASE": database,
        "IOC_API_CLIENTS": json.dumps({"fuzz": {"key": API_KEY, "rate_per_s": 100000, "burst": 100000}}),
        # Every request comes from 127.0.0.1: the per-address limit would answer most with 429 before the
        # handlers see them. Lifted here so the hostile bodies reach the code they attack.
        "IOC_API_ADDRESS_RATE_PER_S": "100000",
        "IOC_API_ADDRESS_BURST": "100000",
        "IOC_API_IDEMPOTENCY_DB": str(root / "api-ledger.sqlite3"),
        "IOC_API_LOG_LEVEL": "WARNING",
    }
    portal_env = {
        **os.environ,
        **_kafka(info).environment("IOC_PORTAL_KAFKA__"),
        "IOC_PORTAL_PORT": str(portal_port),
        "IOC_PORTAL_SITE_UNIT": "74",
        "IOC_PORTAL_WEBHOOK_SECRETS": json.dumps([PORTAL_SECRET]),
        "IOC_PORTAL_STATE_DB": str(root / "portal.sqlite3"),
        "IOC_PORTAL_LOG_LEVEL": "WARNING",
    }
    api = _serve("dashboards.api", api_env, api_port, root / "api.log")
    portal = _serve("sensors.gateways", portal_env, portal_port, root / "portal.log")
    try:
        api_share = HTTP_REQUESTS * 6 // 10
        figures_api = asyncio.run(_http_load(f"http://127.0.0.1:{api_port}", api_share, _api_requests(rng)))
        figures_portal = asyncio.run(
            _http_load(f"http://127.0.0.1:{portal_port}", HTTP_REQUESTS - api_share, _portal_requests(rng))
        )
        figures_api["server_alive"] = api.poll() is None
        figures_portal["server_alive"] = portal.poll() is None
        tracebacks = {
            name: (root / f"{name}.log").read_text(errors="replace").count("Traceback") for name in ("api", "portal")
        }
    finally:
        for server in (api, portal):
            server.terminate()
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                server.kill()
        with clickhouse.connect(admin_endpoint) as admin:
            admin.command(f"DROP DATABASE IF EXISTS {database}")
    out: dict[str, Any] = {}
    for prefix, figures in (("api", figures_api), ("portal", figures_portal)):
        for key, value in figures.items():
            out[f"{prefix}_{key}"] = value
        out[f"{prefix}_tracebacks_logged"] = tracebacks[prefix]
    return out


def run() -> dict[str, Any]:
    reuse = os.environ.get("IOC_BENCH_STACK")
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="ioc-bench-fuzz-") as root:
        stack = Stack(Path(reuse or root))
        try:
            info = stack.up(["mosquitto", "kafka", "clickhouse"])
            figures: dict[str, Any] = {"seed": SEED}
            for part in (_mqtt_in_process, _mqtt_over_broker):
                figures.update(part(info, rng))
                print(json.dumps(figures), file=sys.stderr, flush=True)  # progress: each part as it ends
            figures.update(_http(info, Path(root), rng))
            figures["crashes_total"] = (
                figures["mqtt_crashes"]
                + figures["broker_crashes"]
                + figures["api_crashes"]
                + figures["portal_crashes"]
                + (0 if figures["api_server_alive"] else 1)
                + (0 if figures["portal_server_alive"] else 1)
            )
            return figures
        finally:
            if not reuse:
                stack.down()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
