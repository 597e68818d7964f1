"""Attacks by input that lies (issue 17, item 4), on the real Mosquitto, bridge, Kafka, worker and ClickHouse.

Each test publishes with a vendor's own issued credentials and an ordinary MQTT v5 client (or writes to
Kafka as the stack's admin, as a forged record would be), asserts the refusal with its reason, and asserts
that the legitimate traffic sent beside it kept flowing.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from ioc import topics
from ioc.clients import mqttstop
from ioc.events import DeadLetter, DeadLetterReason, IngestBatch
from sensors.bridge import Bridge
from tests.sensors import conftest as ingestion
from tests.sensors.conftest import dead_letters, ingested
from tests.streams.worker import Worker, reading

pytestmark = [pytest.mark.slow, pytest.mark.mqtt, pytest.mark.kafka]

# The ingestion tests' fixtures: a fresh vendor with issued credentials, in-process bridges, Kafka tails.
vendor = ingestion.vendor
run_bridge = ingestion.run_bridge
tail = ingestion.tail

UNIT = "25957"  # phường Đông Hòa, Dĩ An, Bình Dương
HANOI = (21.0285, 105.8542)
PHNOM_PENH = (11.5564, 104.9282)
THU_DAU_MOT = (10.98, 106.65)


def _client(mosquitto: dict[str, Any], vendor: tuple[str, str]) -> mqtt.Client:
    """An ordinary MQTT v5 client logged in with the vendor's issued credentials, connected."""
    login = ingestion.vendor_endpoint(mosquitto, vendor)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex[:10], protocol=mqtt.MQTTv5)
    client.username_pw_set(login.username, login.password.get_secret_value() if login.password else None)
    client.connect(login.host, login.port)
    client.loop_start()
    deadline = time.monotonic() + 15
    while not client.is_connected() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.is_connected(), "the vendor's client did not connect"
    return client


def _reading(name: str, device: str, seq: int, *, at: dt.datetime | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "vendor": name,
        "device": device,
        "unit": UNIT,
        "kind": "water",
        "seq": seq,
        "observed_at": (at or dt.datetime.now(dt.UTC)).isoformat(),
        "values": {"waterLevel": 0.5},
        **extra,
    }


def _publish(client: mqtt.Client, name: str, device: str, body: Any) -> None:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    client.publish(topics.mqtt_topic(UNIT, "water", name, device), payload, qos=1).wait_for_publish(10)


def _batch_items(messages: list[Any]) -> list[Any]:
    """Ingested items as the workers read them (the topic's own codec: no 256 KiB cap on a batch)."""
    batches = [topics.READINGS.decode(m.value()) for m in messages]
    return [item for batch in batches if isinstance(batch, IngestBatch) for item in batch.items]


def _until(read: Callable[[float], list[Any]], done: Callable[[list[Any]], bool], timeout: float = 60) -> list[Any]:
    got: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not done(got):
        got.extend(read(0.5))
    return got


@pytest.fixture
def client(mosquitto: dict[str, Any], vendor: tuple[str, str]) -> Iterator[mqtt.Client]:
    c = _client(mosquitto, vendor)
    yield c
    mqttstop.stop(c)


def test_readings_dated_2099_or_30_days_ago_are_refused_while_the_valid_one_beside_them_flows(
    vendor, client, run_bridge, tail
) -> None:
    name = vendor[0]
    readings, letters = tail(topics.READINGS.name), tail(topics.DEADLETTER.name)
    run_bridge()
    now = dt.datetime.now(dt.UTC)
    future = _reading(name, "wl-t", 1, at=dt.datetime(2099, 1, 1, tzinfo=dt.UTC))
    old = _reading(name, "wl-t", 2, at=now - dt.timedelta(days=30))
    valid = _reading(name, "wl-t", 3, at=now)
    _publish(client, name, "wl-t", [future, old, valid])  # one gateway batch, one device

    got = _until(lambda s: ingested(readings.poll(s)), lambda g: any(i.event.device == "wl-t" for i in g))
    assert [i.event.seq for i in got if i.event.vendor == name] == [3]
    mine = _until(
        lambda s: [d for d in dead_letters(letters.poll(s)) if d.vendor == name],
        lambda g: len(g) >= 2,
    )
    by_reason = {d.reason: d for d in mine}
    assert set(by_reason) == {DeadLetterReason.OBSERVED_IN_FUTURE, DeadLetterReason.OBSERVED_TOO_OLD}
    assert json.loads(by_reason[DeadLetterReason.OBSERVED_IN_FUTURE].payload)["seq"] == 1
    assert "2099-01-01" in by_reason[DeadLetterReason.OBSERVED_IN_FUTURE].detail
    assert json.loads(by_reason[DeadLetterReason.OBSERVED_TOO_OLD].payload)["seq"] == 2
    assert "30.0 days before now" in by_reason[DeadLetterReason.OBSERVED_TOO_OLD].detail


def test_a_reading_located_in_hanoi_or_abroad_is_refused_for_a_binh_duong_commune(
    vendor, client, run_bridge, tail
) -> None:
    name = vendor[0]
    readings, letters = tail(topics.READINGS.name), tail(topics.DEADLETTER.name)
    run_bridge()
    places = {"wl-hanoi": HANOI, "wl-phnompenh": PHNOM_PENH, "wl-tdm": THU_DAU_MOT}
    for device, (lat, lon) in places.items():
        _publish(client, name, device, _reading(name, device, 1, lat=lat, lon=lon))

    got = _until(lambda s: ingested(readings.poll(s)), lambda g: any(i.event.device == "wl-tdm" for i in g))
    assert {i.event.device for i in got if i.event.vendor == name} == {"wl-tdm"}
    mine = _until(
        lambda s: [d for d in dead_letters(letters.poll(s)) if d.vendor == name],
        lambda g: len(g) >= 2,
    )
    assert {(d.device, d.reason) for d in mine} == {
        ("wl-hanoi", DeadLetterReason.OUTSIDE_PROVINCE),
        ("wl-phnompenh", DeadLetterReason.OUTSIDE_PROVINCE),
    }
    assert all("outside province 74" in d.detail for d in mine)


def test_payloads_that_make_the_judge_raise_are_dead_lettered_and_the_bridge_keeps_serving(
    vendor, client, run_bridge, tail
) -> None:
    name = vendor[0]
    readings, letters = tail(topics.READINGS.name), tail(topics.DEADLETTER.name)
    bridge = run_bridge()
    deep = b"[" * 100_000 + b"]" * 100_000  # 200 KB of nesting: the JSON decoder raises RecursionError
    huge = json.dumps(
        {"id": "urn:x", "type": "WaterObserved", "dateObserved": dt.datetime.now(dt.UTC).isoformat(), "height": 0}
    ).replace('"height": 0', '"height": 1' + "0" * 400)  # FIWARE: float() of it raises OverflowError
    _publish(client, name, "wl-deep", deep)
    _publish(client, name, "wl-huge", huge.encode())
    _publish(client, name, "wl-after", _reading(name, "wl-after", 1))  # sent after both, on the same connection

    got = _until(lambda s: ingested(readings.poll(s)), lambda g: any(i.event.device == "wl-after" for i in g))
    assert [i.event.device for i in got if i.event.vendor == name] == ["wl-after"]
    mine: list[DeadLetter] = _until(
        lambda s: [d for d in dead_letters(letters.poll(s)) if d.vendor == name],
        lambda g: len(g) >= 2,
    )
    assert {(d.device, d.reason) for d in mine} == {
        ("wl-deep", DeadLetterReason.INTERNAL_ERROR),
        ("wl-huge", DeadLetterReason.INTERNAL_ERROR),
    }
    details = {d.device: d.detail for d in mine}
    assert details["wl-deep"] == "judging the message raised RecursionError; it was set aside"
    assert details["wl-huge"] == "judging the message raised OverflowError; it was set aside"
    assert next(d for d in mine if d.device == "wl-deep").size == len(deep)
    # Still serving: the network thread is alive and a new message still flows.
    assert bridge.stats.handler_errors == 0
    _publish(client, name, "wl-after", _reading(name, "wl-after", 2))
    later = _until(lambda s: ingested(readings.poll(s)), lambda g: any(i.event.seq == 2 for i in g))
    assert any(i.event.device == "wl-after" and i.event.seq == 2 for i in later)


def test_ten_thousand_refusals_from_one_device_give_a_bounded_number_of_dead_letters_with_counts(
    vendor, client, run_bridge, tail
) -> None:
    name = vendor[0]
    readings, letters = tail(topics.READINGS.name), tail(topics.DEADLETTER.name)
    bridge = run_bridge(deadletter_summary_s=2.0)
    topic = topics.mqtt_topic(UNIT, "water", name, "wl-flood")
    future = dt.datetime(2099, 1, 1, tzinfo=dt.UTC)
    started = time.monotonic()
    sent = []
    for seq in range(10_000):
        sent.append(client.publish(topic, json.dumps(_reading(name, "wl-flood", seq, at=future)).encode(), qos=1))
        if seq % 1000 == 999:
            _publish(client, name, "wl-calm", _reading(name, "wl-calm", seq // 1000))  # valid, between floods
    for info in sent:
        info.wait_for_publish(60)
    duration = time.monotonic() - started

    mine: list[DeadLetter] = _until(
        lambda s: [d for d in dead_letters(letters.poll(s)) if d.device == "wl-flood"],
        lambda g: sum(d.count for d in g) >= 10_000,
        timeout=90,
    )
    assert sum(d.count for d in mine) == 10_000
    assert {d.reason for d in mine} == {DeadLetterReason.OBSERVED_IN_FUTURE}
    # One letter in full (with its bytes) per 2-second interval, plus that interval's summary.
    assert len(mine) <= 2 * (duration / 2.0 + 2), (len(mine), duration)
    assert sum(1 for d in mine if d.count > 1) >= 1
    assert bridge.stats.summarised >= 10_000 - len(mine)
    calm = _until(
        lambda s: [i for i in ingested(readings.poll(s)) if i.event.device == "wl-calm"], lambda g: len(g) >= 10
    )
    assert sorted(i.event.seq for i in calm) == list(range(10))


@pytest.fixture
def worker(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(kafka, clickhouse, tmp_path)
    w.start()
    try:
        w.wait_live()
        yield w
    finally:
        w.close()


def test_a_device_restarting_at_sequence_zero_keeps_both_readings_and_a_replay_is_stored_once(
    vendor, client, run_bridge, worker
) -> None:
    name = vendor[0]
    run_bridge()
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    first_life = [_reading(name, "wl-boot", s, at=now - dt.timedelta(minutes=10 - s)) for s in range(3)]
    after_reboot = [_reading(name, "wl-boot", s, at=now - dt.timedelta(minutes=2 - s)) for s in range(2)]
    _publish(client, name, "wl-boot", first_life)
    _publish(client, name, "wl-boot", after_reboot)  # the sequence starts again at 0
    _publish(client, name, "wl-boot", first_life[:1])  # a replay of the very first reading
    worker.tick(dt.datetime.now(dt.UTC))
    sql = (
        f"SELECT seq, observed_at FROM {worker.database}.readings FINAL "
        "WHERE vendor = %(v)s AND device = 'wl-boot' ORDER BY observed_at"
    )
    stored = worker.wait_for(sql, lambda rows: len(rows) >= 5, v=name)
    time.sleep(2)
    worker.tick(dt.datetime.now(dt.UTC))
    stored = worker.query(sql, v=name)
    assert [r["seq"] for r in stored] == [0, 1, 2, 0, 1]  # five readings, the replay stored once


def test_a_garbage_record_on_the_readings_topic_is_dead_lettered_by_the_worker_and_the_next_is_stored(
    kafka, worker, tail
) -> None:
    letters = tail(topics.DEADLETTER.name)
    device = f"wl-{uuid.uuid4().hex[:6]}"
    key = topics.device_key("acme-hydro", device)
    partition = topics.partition_for(key, topics.READINGS.partitions)
    garbage = b"\x00\xffnot a batch {" + uuid.uuid4().hex.encode()
    worker.send(topics.READINGS, key, garbage, partition)  # forged straight onto the topic
    worker.readings([reading("acme-hydro", device, UNIT, 1, {"waterLevel": 0.4}, dt.datetime.now(dt.UTC))])
    worker.tick(dt.datetime.now(dt.UTC))

    rows = worker.wait_for(
        f"SELECT seq FROM {worker.database}.readings FINAL WHERE device = %(d)s",
        lambda r: len(r) >= 1,
        d=device,
    )
    assert [r["seq"] for r in rows] == [1]
    mine = _until(
        lambda s: [d for d in dead_letters(letters.poll(s)) if d.payload == garbage],
        lambda g: len(g) >= 1,
    )
    (letter,) = mine
    assert letter.reason == DeadLetterReason.UNDECODABLE
    assert letter.source.startswith(f"kafka:{topics.READINGS.name}[{partition}]@")
    assert "Traceback" not in letter.detail
    assert worker.process is not None and worker.process.poll() is None, worker.log()


def test_a_batch_kafka_refuses_as_too_large_is_split_and_delivered_never_fatal(
    mosquitto, kafka, vendor, client, tail
) -> None:
    name = vendor[0]
    readings = tail(topics.READINGS.name)
    # A misconfigured cap (8 MiB, over the producer's 1 MiB message.max.bytes) makes Kafka refuse the batch.
    settings = ingestion.bridge_settings(
        mosquitto,
        kafka,
        batch_max_bytes=8 * 1024 * 1024,
        linger_ms=2000,
        device_rate_per_s=100_000,  # this test is about Kafka, not about rate limits
        device_burst=100_000,
    )
    bridge = Bridge(settings, replica=uuid.uuid4().hex[:8], batch_items=100_000)
    thread = threading.Thread(target=bridge.run, daemon=True)
    thread.start()
    try:
        assert bridge.wait_connected(15)
        time.sleep(0.3)
        device = "wl-big-" + "x" * 100  # a long device id: each event is ~0.6 KB once encoded
        items = [_reading(name, device, s) for s in range(6000)]  # ~2 MB encoded, in one batch
        for start in range(0, len(items), 500):
            _publish(client, name, device, items[start : start + 500])
        got = _until(
            lambda s: [i for i in _batch_items(readings.poll(s)) if i.event.vendor == name],
            lambda g: len({i.event.seq for i in g}) >= 6000,
            timeout=90,
        )
        assert {i.event.seq for i in got} == set(range(6000))
        assert bridge.stats.delivery_errors >= 1  # refused at least once, then split
        assert thread.is_alive()
    finally:
        bridge.stop()
        thread.join(30)
