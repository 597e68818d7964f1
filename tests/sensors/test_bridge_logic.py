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
from sensors.bridge.geofence import ProvinceBounds
from sensors.bridge.ratelimit import TokenBuckets
from sensors.bridge.summary import Summariser

TOPIC = topics.mqtt_topic("25957", "water", "acme", "wl-01")
validator = Validator(load_tree("2024"))
NOW = dt.datetime(2025, 6, 1, 9, 0, tzinfo=dt.UTC)
"""Every verdict here is judged at this time, just after the fixtures' observation times."""


def check(topic: str, payload: bytes) -> Accepted | Rejected:
    return validator.check(topic, payload, NOW)


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
    verdict = check(TOPIC, reading())
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
    verdict = check(topic, payload)
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
    verdict = check(topics.mqtt_topic("25747", "camera", "vcam", "cam-1"), json.dumps(event).encode())
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
    verdict = check(AIR_TOPIC, json.dumps(entity).encode())
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
    verdict = check(AIR_TOPIC, json.dumps(key_values).encode())
    assert isinstance(verdict, Accepted)
    assert verdict.event.values == {"pm10": 80.0}  # type: ignore[union-attr]
    weather = {"id": "w", "type": "WeatherObserved", "dateObserved": "2025-06-01T08:00:00Z", "temperature": 30}
    rejected = check(AIR_TOPIC, json.dumps(weather).encode())
    assert isinstance(rejected, Rejected)
    assert rejected.reason == "unsupported-format"
    no_time = {"id": "aq", "type": "AirQualityObserved", "pm25": 3}
    assert check(AIR_TOPIC, json.dumps(no_time).encode()).reason == "unsupported-format"  # type: ignore[union-attr]


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
    verdict = check(topic, payload)
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
    verdict = check(TOPIC, reading(**overrides))
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
    assert batcher.add("t", 0, 1, 11, 0.0) == []
    assert batcher.add("t", 1, 2, 12, 0.0) == []
    assert batcher.add("t", 0, 3, None, 0.01) == []
    (closed,) = batcher.add("t", 0, 4, 14, 0.02)
    assert (closed.items, closed.acks) == ([1, 3, 4], [11, 14])
    assert batcher.due(0.03) == []
    (old,) = batcher.due(0.06)
    assert (old.partition, old.items) == (1, [2])
    batcher.add("t", 2, 5, 15, 1.0)
    assert batcher.pending_items == 1
    assert [b.items for b in batcher.drain()] == [[5]]


# --- input that lies: times, places, payloads that make the judge raise -----------------------------------


@pytest.mark.parametrize(
    ("observed_at", "reason"),
    [
        ("2099-01-01T00:00:00Z", "observed-in-future"),
        ((NOW + dt.timedelta(minutes=6)).isoformat(), "observed-in-future"),
        ((NOW - dt.timedelta(days=30)).isoformat(), "observed-too-old"),
        ((NOW - dt.timedelta(days=7, seconds=1)).isoformat(), "observed-too-old"),
    ],
)
def test_times_outside_the_window_are_refused_with_their_reason(observed_at: str, reason: str) -> None:
    verdict = check(TOPIC, reading(observed_at=observed_at))
    assert isinstance(verdict, Rejected)
    assert (verdict.reason, verdict.device) == (reason, "wl-01")
    assert observed_at[:10] in verdict.detail


@pytest.mark.parametrize("observed_at", [NOW + dt.timedelta(minutes=4), NOW - dt.timedelta(days=6, hours=23), NOW])
def test_times_inside_the_window_pass(observed_at: dt.datetime) -> None:
    assert isinstance(check(TOPIC, reading(observed_at=observed_at.isoformat())), Accepted)


@pytest.mark.parametrize(
    ("lat", "lon", "accepted"),
    [
        (10.98, 106.65, True),  # Thủ Dầu Một
        (11.5, 106.95, True),  # the published extent's north-east corner (10°52′..11°30′ N, 106°20′..106°58′ E)
        (10.867, 106.334, True),  # its south-west corner
        (21.0285, 105.8542, False),  # Hà Nội
        (10.7769, 106.7009, False),  # Hồ Chí Minh City's centre (District 1)
        (11.5564, 104.9282, False),  # Phnom Penh
        (13.7563, 100.5018, False),  # Bangkok
        (-33.8688, 151.2093, False),  # Sydney
    ],
)
def test_places_outside_the_units_province_are_refused(lat: float, lon: float, accepted: bool) -> None:
    verdict = check(TOPIC, reading(lat=lat, lon=lon))
    if accepted:
        assert isinstance(verdict, Accepted)
    else:
        assert isinstance(verdict, Rejected)
        assert verdict.reason == "outside-province"
        assert "province 74" in verdict.detail


def test_the_province_box_comes_from_the_units_data() -> None:
    box = ProvinceBounds(load_tree("2024")).of("25957")
    assert (box.province, box.south, box.north, box.west, box.east) == ("74", 10.7935, 11.548, 106.2933, 107.0112)
    assert ProvinceBounds(load_tree("2025")).of(next(iter(load_tree("2025").subtree("79")))).province == "79"


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 100_000 + b"]" * 100_000,  # nesting deeper than the decoder's recursion limit
        b'{"id":"x","type":"AirQualityObserved","dateObserved":"2025-06-01T08:00:00Z","pm25":1' + b"0" * 400 + b"}",
        b'{"id":"x","type":"AirQualityObserved","dateObserved":"2025-06-01T08:00:00Z","pm25":5,'
        b'"location":{"type":"Point","coordinates":[1' + b"0" * 400 + b",2]}}",
    ],
)
def test_a_payload_that_makes_the_judge_raise_is_an_internal_error_naming_only_the_exception_type(
    payload: bytes,
) -> None:
    ((verdict, original),) = validator.check_message(AIR_TOPIC, payload, NOW)
    assert isinstance(verdict, Rejected)
    assert verdict.reason == "internal-error"
    assert verdict.detail.startswith("judging the message raised ")
    assert "Traceback" not in verdict.detail and "/" not in verdict.detail
    assert (verdict.vendor, original) == ("fiware-co", payload)


def test_rate_limit_memory_is_bounded_least_recently_seen_first() -> None:
    buckets = TokenBuckets(rate=1, burst=1, max_keys=100)
    for i in range(10_000):
        buckets.allow(f"invented-{i}", 0.0)
    assert len(buckets) == 100
    assert buckets.allow("invented-9999", 0.0) is False  # the most recent keep their state


def test_batches_close_before_they_pass_the_byte_cap() -> None:
    batcher: Batcher[int] = Batcher(max_items=1000, linger_s=1, max_bytes=1000)
    assert batcher.add("t", 0, 1, 1, 0.0, size=600) == []
    (first,) = batcher.add("t", 0, 2, 2, 0.0, size=600)  # would be 1,200 bytes: the first closes alone
    assert (first.items, first.size) == ([1], 600)
    (huge,) = batcher.add("t", 1, 3, 3, 0.0, size=5000)  # larger than the cap on its own: closes at once
    assert huge.items == [3]


def test_a_flood_of_refusals_is_summarised_per_device_and_reason() -> None:
    summaries = Summariser(10.0, max_keys=3)
    key = ("acme", "wl-01", "rate-limited")
    admitted = [summaries.admit(key, i / 1000, f"#{i}") for i in range(10_000)]  # 10,000 in 10 s
    assert admitted.count(True) == 1
    assert summaries.due(9.0) == []
    (summary,) = summaries.due(10.0)
    assert (summary.key, summary.count, summary.sample) == (key, 9_999, "#9999")
    for i in range(10):  # more keys than it holds: the oldest is summarised early, memory stays at 3
        summaries.admit(("acme", f"d{i}", "schema"), 20.0, "x")
        summaries.admit(("acme", f"d{i}", "schema"), 20.0, "x")
    assert len(summaries) == 3
    assert sum(s.count for s in summaries.due(20.0)) == 7


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b'{"vendor": "acme", "values": {"waterLevel": 1e400}}', "schema"),  # JSON, but no float holds it
        (b'{"vendor": "acme", "device": "\xff\xfe", "values": {}}', "not-json"),  # not UTF-8
    ],
)
def test_what_the_fiware_fallback_cannot_decode_is_refused_with_a_reason(payload: bytes, reason: str) -> None:
    verdict = check(TOPIC, payload)
    assert isinstance(verdict, Rejected)
    assert verdict.reason == reason
