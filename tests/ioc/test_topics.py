"""Topic layout and registry: one spelling, parsing that names the bad segment."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest

from ioc import codecs, topics
from ioc.events import DeadLetter, DeadLetterReason, Tick


def test_mqtt_topic_round_trip() -> None:
    topic = topics.mqtt_topic("25957", "water", "acme", "wl-01")
    assert topic == "ioc/v1/25957/water/acme/wl-01"
    assert topics.parse_mqtt_topic(topic) == topics.MqttTopic("25957", "water", "acme", "wl-01")
    assert str(topics.parse_mqtt_topic(topic)) == topic


@pytest.mark.parametrize(
    ("topic", "needle"),
    [
        ("ioc/v2/25957/water/acme/wl-01", "is not ioc/v1"),
        ("ioc/v1/25957/water/acme", "is not ioc/v1"),
        ("ioc/v1/DiAn/water/acme/wl-01", "unit segment"),
        ("ioc/v1/25957/weather/acme/wl-01", "kind segment"),
        ("ioc/v1/25957/water/ACME/wl-01", "vendor segment"),
        ("ioc/v1/25957/water/acme/+", "device segment"),
    ],
)
def test_bad_topics_name_the_segment(topic: str, needle: str) -> None:
    with pytest.raises(topics.TopicError, match=re.escape(needle)):
        topics.parse_mqtt_topic(topic)


def test_vendor_acl_pattern_pins_the_vendor_segment() -> None:
    assert topics.mqtt_vendor_pattern("acme") == "ioc/v1/+/+/acme/#"
    assert topics.mqtt_vendor_pattern("acme", "724", "camera") == "ioc/v1/724/camera/acme/#"
    assert topics.mqtt_shared_subscription() == "$share/ioc-bridge/ioc/v1/#"
    with pytest.raises(topics.TopicError):
        topics.mqtt_vendor_pattern("+")


def test_registry_names_are_versioned_and_unique() -> None:
    for name, topic in topics.KAFKA_TOPICS.items():
        assert name == topic.name
        assert re.fullmatch(r"ioc\.[a-z-]+\.v1", name)
        assert topic.partitions >= 1
    assert topics.DEADLETTER.name == "ioc.deadletter.v1"
    assert topics.SITE_CONFIG.config["cleanup.policy"] == "compact"
    assert topics.READINGS.config["cleanup.policy"] == "delete"
    assert [t.short for t in topics.KAFKA_TOPICS.values()][:2] == ["readings", "camera-events"]


def test_a_handle_decodes_and_encodes_its_value_type() -> None:
    at = dt.datetime(2025, 6, 1, 1, 0, tzinfo=dt.UTC)
    tick = topics.READINGS.decode(topics.READINGS.encode(Tick(at=at)))
    assert tick == Tick(at=at)
    letter = DeadLetter(
        source="mqtt:x", reason=DeadLetterReason.SCHEMA, detail="d", received_at=at, payload=b"{}", size=2
    )
    assert topics.DEADLETTER.decode(topics.DEADLETTER.encode(letter)) == letter
    assert topics.SITE_CONFIG.decode(b'{"unit": "724"}') == {"unit": "724"}
    with pytest.raises(codecs.ContractError) as refused:
        topics.INCIDENT_COMMANDS.decode(b'{"schema": "ioc.tick.v1", "at": "2025-06-01T01:00:00Z"}')
    assert refused.value.reason is DeadLetterReason.SCHEMA
    with pytest.raises(codecs.ContractError) as garbage:
        topics.INCIDENTS.decode(b"{")
    assert garbage.value.reason is DeadLetterReason.NOT_JSON


def test_a_site_copy_keeps_the_layout_under_its_own_name() -> None:
    copy = dataclasses.replace(topics.READINGS, name=topics.site_topic("724", topics.READINGS.short))
    assert copy.name == "ioc.site-724.readings.v1"
    assert copy.partitions == topics.READINGS.partitions
    assert isinstance(copy.decode(topics.READINGS.encode(Tick(at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC)))), Tick)


def test_site_topics() -> None:
    assert topics.site_topic("724", "readings") == "ioc.site-724.readings.v1"
    with pytest.raises(topics.TopicError):
        topics.site_topic("x", "readings")
