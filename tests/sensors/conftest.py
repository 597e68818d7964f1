"""Fixtures for the ingestion tests: vendor credentials on the real broker, bridges, Kafka readers."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from ioc import codecs, kafka_access
from ioc.clients import dynsec
from ioc.events import DeadLetter, IngestBatch
from ioc.settings import BridgeSettings, KafkaEndpoint, MqttEndpoint
from sensors.bridge import Bridge


def admin_endpoint(mosquitto: dict[str, Any]) -> MqttEndpoint:
    return MqttEndpoint(
        host=mosquitto["host"],
        port=mosquitto["port"],
        username=mosquitto["admin_user"],
        password=mosquitto["admin_password"],
    )


@pytest.fixture
def vendor(mosquitto: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """A fresh vendor id with its issued password (removed afterwards)."""
    name, password = f"t{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with dynsec.DynsecAdmin(admin_endpoint(mosquitto)) as control:
        control.ensure_vendor(name, password)
    yield name, password
    with dynsec.DynsecAdmin(admin_endpoint(mosquitto)) as control:
        control.remove_vendor(name)


def vendor_endpoint(mosquitto: dict[str, Any], vendor: tuple[str, str], *, tls: bool = False) -> MqttEndpoint:
    """The vendor's login (`vendor.<id>`); over the TLS listener, trusting the stack's CA, when `tls`."""
    if tls:
        return MqttEndpoint(
            host=mosquitto["host"],
            port=mosquitto["tls_port"],
            username=dynsec.vendor_username(vendor[0]),
            password=vendor[1],
            tls_ca_file=mosquitto["ca_file"],
        )
    return MqttEndpoint(
        host=mosquitto["host"], port=mosquitto["port"], username=dynsec.vendor_username(vendor[0]), password=vendor[1]
    )


def bridge_settings(mosquitto: dict[str, Any], kafka: dict[str, Any], **overrides: Any) -> BridgeSettings:
    return BridgeSettings(
        mqtt=MqttEndpoint(
            host=mosquitto["host"],
            port=mosquitto["port"],
            username=mosquitto["bridge_user"],
            password=mosquitto["bridge_password"],
        ),
        kafka=KafkaEndpoint.from_service(kafka, kafka_access.BRIDGE),
        # Each test joins its own shared-subscription group, so other tests' bridges see nothing of it.
        share_group=f"g{uuid.uuid4().hex[:8]}",
        **overrides,
    )


@pytest.fixture
def run_bridge(mosquitto: dict[str, Any], kafka: dict[str, Any]) -> Iterator[Callable[..., Bridge]]:
    """Start an in-process bridge with the given settings overrides; stopped after the test."""
    started: list[tuple[Bridge, threading.Thread]] = []

    def start(**overrides: Any) -> Bridge:
        bridge = Bridge(bridge_settings(mosquitto, kafka, **overrides), replica=uuid.uuid4().hex[:8])
        thread = threading.Thread(target=bridge.run, daemon=True)
        thread.start()
        assert bridge.wait_connected(15), "bridge did not connect"
        time.sleep(0.3)  # the SUBACK follows the CONNACK
        started.append((bridge, thread))
        return bridge

    yield start
    for bridge, thread in started:
        bridge.stop()
        thread.join(30)


class KafkaTail:
    """Reads a topic from its current end, decoding the platform's envelopes."""

    def __init__(self, kafka: KafkaEndpoint, topic: str) -> None:
        self.consumer = Consumer(
            {**kafka.client_config(), "group.id": f"tail-{uuid.uuid4().hex}", "enable.auto.commit": False}
        )
        metadata = self.consumer.list_topics(topic, timeout=10).topics[topic]
        partitions = []
        for number in metadata.partitions:
            _low, high = self.consumer.get_watermark_offsets(TopicPartition(topic, number), timeout=10)
            partitions.append(TopicPartition(topic, number, high))
        self.consumer.assign(partitions)

    def poll(self, seconds: float) -> list[Any]:
        messages = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = self.consumer.poll(0.2)
            if message is not None and not message.error():
                messages.append(message)
        return messages

    def close(self) -> None:
        self.consumer.close()


def ingested(messages: list[Any]) -> list[Any]:
    return [item for m in messages for item in codecs.decode(m.value(), IngestBatch).items]


def dead_letters(messages: list[Any]) -> list[DeadLetter]:
    return [codecs.decode(m.value(), DeadLetter) for m in messages]


@pytest.fixture
def tail(kafka: dict[str, Any]) -> Iterator[Callable[[str], KafkaTail]]:
    opened: list[KafkaTail] = []

    def open_tail(topic: str) -> KafkaTail:
        reader = KafkaTail(KafkaEndpoint.from_service(kafka), topic)
        opened.append(reader)
        return reader

    yield open_tail
    for reader in opened:
        reader.close()
