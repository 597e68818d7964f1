"""The bridge's pure parts: message checks, FIWARE normalisation, per-device rate limits, batching."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ioc import codecs, topics
from ioc.events import CameraEvent, DeadLetterReason, SensorKind, SensorReading
from ioc.units import load_tree
from sensors.bridge import Accepted, Rejected, Validator
from sensors.bridge.batcher import Batcher
from sensors.bridge.ratelimit import TokenBuckets

TOPIC = topics.mqtt_topic("25957", "water", "acme", "wl-01")
validator = Validator(load_tree("2024"))


def reading(**overrides: Any) -> bytes:
    base: dict[str, Any] = {
        "vendor": "acme",
        "device": "wl-01",
        "unit": "25957",
        "kind": "water",
        "seq": 1,
        "observed_at": "2025-06-01T08:00:00+07:00",
        "values": {"waterLevel": 0.8},
    }
    base.update(overrides)
    return json.dumps(base).encode()


def test_valid_reading_is_accepted_with_its_unit_path() -> None:
    verdict = validator.check(TOPIC, reading())
    assert isinstance(verdict, Accepted)
    assert verdict.path == "74/724/25957"
    assert isinstance(verdict.event, SensorReading)
    assert verdict.event.values == {"waterLevel": 0.8}


@pytest.mark.parametrize(
    ("topic", "payload", "reason", "needle"),
    [
        (TOPIC, b"x" * (codecs.MAX_PAYLOAD_BYTES + 1), "too-large", "limit"),
        (TOPIC, b"{oops", "not-json", "malformed"),
        (TOPIC, reading(seq="one"), "schema", "$.seq"),
        ("ioc/v1/25957/water/acme", reading(), "bad-topic", "is not ioc/v1"),
        ("sensors/25957/water/acme/wl-01", reading(), "bad-topic", "is not ioc/v1"),
        (TOPIC, reading(vendor="other"), "topic-mismatch", "vendor 'other'"),
        (TOPIC, reading(device="wl-02"), "topic-mismatch", "device 'wl-02'"),
        (TOPIC, reading(unit="25951"), "topic-mismatch", "unit '25951'"),
        (topics.mqtt_topic("99999", "water", "acme", "wl-01"), reading(unit="99999"), "unknown-unit", "99999"),
        (TOPIC, reading(values={"waterLevel": 250.0}), "implausible-value", "waterLevel=250.0"),
        (topics.mqtt_topic("25957", "air", "acme", "wl-01"), reading(), "topic-mismatch", "kind 'water'"),
        (topics.mqtt_topic("25957", "camera", "acme", "wl-01"), reading(), "schema", "unknown field"),
    ],
)
def test_refusals_carry_a_reason_and_detail(topic: str, payload: bytes, reason: str, needle: str) -> None:
    verdict = validator.check(topic, payload)
    assert isinstance(verdict, Rejected), verdict
    assert verdict.reason == reason
    assert verdict.reason in set(DeadLetterReason)
    assert needle in verdict.detail


def test_camera_event_is_accepted_on_a_camera_topic() -> None:
    event = {
        "vendor": "vcam",
        "device": "cam-1",
        "unit": "25747",
        "seq": 3,
        "observed_at": "2025-06-01T08:00:00Z",
        "event_type": "red_light",
        "confidence": 0.93,
        "plate": "61A-123.45",
    }
    verdict = validator.check(topics.mqtt_topic("25747", "camera", "vcam", "cam-1"), json.dumps(event).encode())
    assert isinstance(verdict, Accepted)
    assert isinstance(verdict.event, CameraEvent)
    assert verdict.path == "74/718/25747"


# --- FIWARE Smart Data Models ---------------------------------------------------------------------------

AIR_TOPIC = topics.mqtt_topic("25987", "air", "fiware-co", "aq-7")


def test_ngsi_ld_normalized_air_quality_is_normalised() -> None:
    entity = {
        "id": "urn:ngsi-ld:AirQualityObserved:aq-7",
        "type": "AirQualityObserved",
        "@context": ["https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"],
        "dateObserved": {"type": "Property", "value": {"@type": "DateTime", "@value": "2025-06-01T01:00:00Z"}},
        "pm25": {"type": "Property", "value": 41.5, "unitCode": "GQ"},
        "co": {"type": "Property", "value": 1.2, "unitCode": "GP"},
        "relativeHumidity": {"type": "Property", "value": 0.71},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.71, 10.91]}},
    }
    verdict = validator.check(AIR_TOPIC, json.dumps(entity).encode())
    assert isinstance(verdict, Accepted), verdict
    event = verdict.event
    assert isinstance(event, SensorReading)
    assert event.kind is SensorKind.AIR
    assert event.values == pytest.approx({"pm25": 41.5, "co": 1200.0, "relativeHumidity": 71.0})
    assert (event.lat, event.lon) == (10.91, 106.71)
    assert event.observed_at == dt.datetime(2025, 6, 1, 1, tzinfo=dt.UTC)
    assert event.seq == int(event.observed_at.timestamp() * 1000)
    assert (event.vendor, event.device, event.unit) == ("fiware-co", "aq-7", "25987")


def test_ngsi_key_values_and_unsupported_types() -> None:
    key_values = {"id": "aq-7", "type": "AirQualityObserved", "dateObserved": "2025-06-01T08:00:00+07:00", "pm10": 80}
    verdict = validator.check(AIR_TOPIC, json.dumps(key_values).encode())
    assert isinstance(verdict, Accepted)
    assert verdict.event.values == {"pm10": 80.0}  # type: ignore[union-attr]
    weather = {"id": "w", "type": "WeatherObserved", "dateObserved": "2025-06-01T08:00:00Z", "temperature": 30}
    rejected = validator.check(AIR_TOPIC, json.dumps(weather).encode())
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "unsupported-format"
    no_time = {"id": "aq", "type": "AirQualityObserved", "pm25": 3}
    assert validator.check(AIR_TOPIC, json.dumps(no_time).encode()).reason == "unsupported-format"  # type: ignore[union-attr]


# --- never crashes ----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(
    topic=st.one_of(st.text(max_size=60), st.sampled_from([TOPIC, AIR_TOPIC, "ioc/v1/25747/camera/vcam/c1"])),
    payload=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
)
def test_any_bytes_on_any_topic_get_a_verdict_never_an_exception(topic: str, payload: bytes) -> None:
    verdict = validator.check(topic, payload)
    assert isinstance(verdict, Accepted | Rejected)
    if isinstance(verdict, Rejected):
        assert verdict.reason in set(DeadLetterReason)


@settings(max_examples=200, deadline=None)
@given(
    overrides=st.dictionaries(
        st.sampled_from(["vendor", "device", "unit", "kind", "seq", "observed_at", "values", "lat", "lon"]),
        json_values,
        max_size=3,
    )
)
def test_mutated_readings_get_a_verdict(overrides: dict[str, Any]) -> None:
    verdict = validator.check(TOPIC, reading(**overrides))
    assert isinstance(verdict, Accepted | Rejected)


# --- rate limits and batches ------------------------------------------------------------------------------


def test_token_bucket_allows_the_rate_and_burst_then_refuses() -> None:
    buckets = TokenBuckets(rate=10, burst=5)
    assert all(buckets.allow("flood", 0.0) for _ in range(5))
    assert not buckets.allow("flood", 0.0)
    assert buckets.allow("calm", 0.0)  # other devices are unaffected
    assert buckets.allow("flood", 0.1)  # one token back after 1/rate seconds
    assert not buckets.allow("flood", 0.1)
    allowed = sum(buckets.allow("flood", 1.0 + i / 1000) for i in range(1000))  # 1000/s for one second
    assert 10 <= allowed <= 16
    with pytest.raises(ValueError, match="rate"):
        TokenBuckets(rate=0, burst=1)


def test_idle_buckets_are_forgotten() -> None:
    buckets = TokenBuckets(rate=1, burst=1, idle_s=10)
    for i in range(100):
        buckets.allow(f"d{i}", 0.0)
    buckets.allow("late", 100.0)
    assert len(buckets) == 1


def test_batcher_closes_full_and_old_batches_in_order() -> None:
    batcher: Batcher[int] = Batcher(max_items=3, linger_s=0.05)
    assert batcher.add("t", 0, 1, 11, 0.0) is None
    assert batcher.add("t", 1, 2, 12, 0.0) is None
    full = batcher.add("t", 0, 3, None, 0.01)
    assert full is None
    closed = batcher.add("t", 0, 4, 14, 0.02)
    assert closed is not None
    assert (closed.items, closed.acks) == ([1, 3, 4], [11, 14])
    assert batcher.due(0.03) == []
    (old,) = batcher.due(0.06)
    assert (old.partition, old.items) == (1, [2])
    batcher.add("t", 2, 5, 15, 1.0)
    assert batcher.pending_items == 1
    assert [b.items for b in batcher.drain()] == [[5]]
