"""A three-node local Kafka (`ioc stack up --kafka-brokers 3`): the registry's topics get three copies and
min.insync.replicas 2, and records produced with acks=all survive SIGKILL of one node, then of the active
controller: every acknowledged record is read back and writes go on through each fault."""

from __future__ import annotations

import itertools
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, ConfigResource

from ioc import topics
from ioc.clients import kafka_admin
from ioc.settings import KafkaEndpoint
from iocctl.localstack import Installer, Stack
from iocctl.localstack.stack import default_cache_dir

pytestmark = [pytest.mark.slow, pytest.mark.kafka]

TOPIC = topics.READINGS


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Stack, dict[str, Any]]]:
    root = tmp_path_factory.mktemp("kafka3")
    stack = Stack(root, Installer(default_cache_dir()))
    try:
        up = subprocess.run(
            [
                sys.executable,
                "-m",
                "iocctl",
                "stack",
                "up",
                "--dir",
                str(root),
                "--service",
                "kafka",
                "--kafka-brokers",
                "3",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        yield stack, stack.running()["kafka"]
    finally:
        stack.down()


class _Writer:
    """Produces numbered records with acks=all until stopped; remembers what the brokers acknowledged, and when."""

    def __init__(self, endpoint: KafkaEndpoint) -> None:
        self.producer = Producer(
            {**endpoint.client_config(), "acks": "all", "enable.idempotence": True, "linger.ms": 5}
        )
        self.acked: dict[int, float] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _report(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.errors.append(str(error))
        else:
            self.acked[int(message.value() or b"-1")] = time.monotonic()

    def _run(self) -> None:
        seq = 0
        while not self._stop.is_set():
            key = f"vendor/device-{seq % 16}".encode()
            self.producer.produce(TOPIC.name, key=key, value=str(seq).encode(), on_delivery=self._report)
            self.producer.poll(0.002)
            seq += 1
        self.producer.flush(60)

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(90)

    def acked_after(self, moment: float, at_least: int, timeout: float = 30.0) -> int:
        """Wait until `at_least` records acknowledged after `moment`; how many there were."""
        deadline = time.monotonic() + timeout
        while True:
            count = sum(1 for at in list(self.acked.values()) if at > moment)
            if count >= at_least or time.monotonic() > deadline:
                return count
            time.sleep(0.1)

    def longest_pause(self) -> float:
        times = sorted(self.acked.values())
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def _read_all(endpoint: KafkaEndpoint) -> set[int]:
    consumer = Consumer({**endpoint.client_config(), "group.id": "test-cluster-reader", "enable.auto.commit": False})
    try:
        metadata = consumer.list_topics(TOPIC.name, timeout=10).topics[TOPIC.name]
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(TOPIC.name, p), timeout=10)[1] for p in metadata.partitions
        }
        consumer.assign([TopicPartition(TOPIC.name, p, 0) for p in ends])
        seen: set[int] = set()
        positions = dict.fromkeys(ends, 0)
        deadline = time.monotonic() + 60
        while any(positions[p] < ends[p] for p in ends) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                if message.error() is None:
                    seen.add(int(message.value() or b"-1"))
                    positions[message.partition()] = (message.offset() or 0) + 1
        return seen
    finally:
        consumer.close()


def _in_sync(endpoint: KafkaEndpoint) -> int:
    """The fewest in-sync replicas of any partition of the topic."""
    admin = AdminClient(endpoint.client_config())
    partitions = admin.list_topics(TOPIC.name, timeout=10).topics[TOPIC.name].partitions.values()
    return min(len(p.isrs) for p in partitions)


def test_registry_topics_have_three_copies_and_two_in_sync(cluster: tuple[Stack, dict[str, Any]]) -> None:
    _stack, info = cluster
    endpoint = KafkaEndpoint.from_service(info)
    assert len(info["brokers"]) == 3 and kafka_admin.broker_count(endpoint) == 3
    admin = AdminClient(endpoint.client_config())
    metadata = admin.list_topics(timeout=10).topics
    for topic in topics.KAFKA_TOPICS.values():
        assert {len(p.replicas) for p in metadata[topic.name].partitions.values()} == {3}, topic.name
    resources = [ConfigResource(ConfigResource.Type.TOPIC, t) for t in topics.KAFKA_TOPICS]
    for resource, future in admin.describe_configs(resources).items():
        assert future.result(timeout=10)["min.insync.replicas"].value == "2", resource


def test_acknowledged_records_survive_a_node_then_the_controller_killed(
    cluster: tuple[Stack, dict[str, Any]], record_property: Any
) -> None:
    stack, info = cluster
    endpoint = KafkaEndpoint.from_service(info)
    with _Writer(endpoint) as writer:
        assert writer.acked_after(0, 500) >= 500, writer.errors[:3]
        controller = stack.kafka_controller()
        other = next(int(b["node_id"]) for b in info["brokers"] if int(b["node_id"]) != controller)
        killed = time.monotonic()
        stack.kill_broker(other)
        assert writer.acked_after(killed, 2000) >= 2000, f"writes stopped with node {other} killed: {writer.errors[:3]}"
        print(f"node {other} killed: 2000 acks after it in {time.monotonic() - killed:.1f} s")
        stack.restart_broker(other)
        print(f"node {other} back in {time.monotonic() - killed:.1f} s after its kill")
        deadline = time.monotonic() + 60
        while _in_sync(endpoint) < 3:  # node back in every ISR, so the next fault leaves two copies everywhere
            assert time.monotonic() < deadline, "node did not rejoin the in-sync replicas within 60 s"
            time.sleep(0.5)
        controller = stack.kafka_controller()
        killed = time.monotonic()
        stack.kill_broker(controller)
        assert writer.acked_after(killed, 2000) >= 2000, (
            f"writes stopped with the controller killed: {writer.errors[:3]}"
        )
        print(f"controller {controller} killed: 2000 acks after it in {time.monotonic() - killed:.1f} s")
        assert stack.kafka_controller() != controller, "no new controller was elected"
    assert writer.errors == []
    stored = _read_all(endpoint)
    lost = set(writer.acked) - stored
    assert not lost, f"{len(lost)} acknowledged records lost, e.g. {sorted(lost)[:10]}"
    record_property("acknowledged", len(writer.acked))
    record_property("longest_pause_s", round(writer.longest_pause(), 2))
    print(f"acknowledged {len(writer.acked)}, all read back; longest pause between acks {writer.longest_pause():.2f} s")
    stack.restart_broker(controller)
    assert kafka_admin.broker_count(endpoint) == 3
