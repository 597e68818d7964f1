"""Topic layout and registry: one spelling, parsing that names the bad segment."""

from __future__ import annotations

import re

import pytest

from ioc import topics


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
    assert topics.kafka_topic("deadletter").name == "ioc.deadletter.v1"
    assert topics.kafka_topic("site-config").config["cleanup.policy"] == "compact"
    assert topics.kafka_topic("readings").config["cleanup.policy"] == "delete"
    with pytest.raises(KeyError, match="known"):
        topics.kafka_topic("reading")


def test_site_topics() -> None:
    assert topics.site_topic("724", "readings") == "ioc.site-724.readings.v1"
    with pytest.raises(topics.TopicError):
        topics.site_topic("x", "readings")
