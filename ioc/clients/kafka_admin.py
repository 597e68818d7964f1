"""Creating Kafka topics from the registry in `ioc.topics`, idempotently.

Faust does not create its source topics, and the broker runs with auto-creation off, so whatever starts
first (the local stack, the chart's hook, the operator for a site's own topics) calls `ensure_topics`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # re-exported from cimpl

from ioc.topics import KAFKA_TOPICS, KafkaTopic

__all__ = ["delete_topics", "ensure_topics", "list_topics", "wait_for_leaders"]


def _admin(bootstrap: str) -> AdminClient:
    config: dict[str, object] = {
        "bootstrap.servers": bootstrap,
        "socket.timeout.ms": 10000,
        "logger": logging.getLogger("ioc.clients.kafka_admin"),  # librdkafka's log lines go through logging
    }
    return AdminClient(config)  # type: ignore[arg-type]  # the stubs do not know the `logger` key


def list_topics(bootstrap: str, timeout: float = 10.0) -> set[str]:
    metadata = _admin(bootstrap).list_topics(timeout=timeout)
    return {name for name in metadata.topics if not name.startswith("__")}


def ensure_topics(
    bootstrap: str,
    wanted: Iterable[KafkaTopic] | None = None,
    *,
    replication: int = 1,
    timeout: float = 30.0,
) -> list[str]:
    """Create every topic in `wanted` (default: the whole registry) that does not exist; returns those created."""
    admin = _admin(bootstrap)
    topics = list(KAFKA_TOPICS.values() if wanted is None else wanted)
    existing = set(admin.list_topics(timeout=timeout).topics)
    missing = [t for t in topics if t.name not in existing]
    if not missing:
        return []
    futures = admin.create_topics(
        [
            NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication, config=t.config)
            for t in missing
        ],
        request_timeout=timeout,
    )
    created = []
    for name, future in futures.items():
        try:
            future.result(timeout=timeout)
            created.append(name)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
    return sorted(created)


def wait_for_leaders(bootstrap: str, names: Iterable[str] | None = None, *, timeout: float = 60.0) -> None:
    """Block until every partition of the named topics (default: the registry) has a leader.

    Freshly created topics answer metadata before their leaders are elected; producing or reading offsets
    in that window fails with NOT_LEADER_FOR_PARTITION.
    """
    wanted = set(KAFKA_TOPICS if names is None else names)
    admin = _admin(bootstrap)
    deadline = time.monotonic() + timeout
    while True:
        topics = admin.list_topics(timeout=timeout).topics
        waiting = sorted(
            name
            for name in wanted
            if name not in topics
            or topics[name].error is not None
            or any(p.leader < 0 or p.error is not None for p in topics[name].partitions.values())
        )
        if not waiting and _offsets_answer(bootstrap, {n: len(topics[n].partitions) for n in wanted}):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"Kafka topics without partition leaders after {timeout} s: {', '.join(waiting)}")
        time.sleep(0.2)


def _offsets_answer(bootstrap: str, partitions: dict[str, int]) -> bool:
    # Leaders in metadata are not yet leaders that serve: ask each for its offsets, as consumers will.
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "ioc-kafka-admin-probe"})
    try:
        for name, count in partitions.items():
            for number in range(count):
                consumer.get_watermark_offsets(TopicPartition(name, number), timeout=5)
    except KafkaException:
        return False
    finally:
        consumer.close()
    return True


def delete_topics(bootstrap: str, names: Iterable[str], *, timeout: float = 30.0) -> None:
    names = list(names)
    if not names:
        return
    for future in _admin(bootstrap).delete_topics(names, request_timeout=timeout).values():
        try:
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
