"""Sites' commands in: each site's command topic relayed to `ioc.incident-commands.v1`, site from the topic.

Only a site's principal may write `ioc.site-<unit>.incident-commands.v1` (ioc.kafka_access), so the topic says
which site commands; `ioc.kafka_access.judge_site_command` refuses a body naming another site, and refusals
are dead-lettered. Accepted commands go to their episode's partition of the shared topic, where the
incidents agent meets them with their incident's state (its co-partitioning stays as it was). Offsets are
committed only after Kafka has every relayed command and dead letter: at least once, and commands are
idempotent by `command_id`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any, Final

from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from ioc import kafka_access, topics
from ioc.events import DeadLetter, DeadLetterReason
from ioc.settings import StreamsSettings

__all__ = ["SiteCommandRelay"]

log = logging.getLogger(__name__)

_BATCH: Final = 500
# New sites' topics are found by the subscription's metadata refresh: at most this late (ms).
_REFRESH_MS: Final = 5000


class SiteCommandRelay:
    """A consumer of every site's command topic (its group under the workers' app id) and an idempotent producer."""

    def __init__(self, settings: StreamsSettings) -> None:
        kafka = settings.kafka.client_config()
        self._consumer = Consumer(
            {
                **kafka,
                "group.id": f"{settings.app_id}-site-commands",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "topic.metadata.refresh.interval.ms": _REFRESH_MS,
                "logger": logging.getLogger("streams.kafka"),
            }
        )
        self._producer = Producer(
            {**kafka, "enable.idempotence": True, "acks": "all", "logger": logging.getLogger("streams.kafka")}
        )
        self.relayed = 0
        self.refused = 0

    def run(self, stop: threading.Event) -> None:
        """Relay until `stop` is set; then close both clients."""
        self._consumer.subscribe([kafka_access.SITE_COMMAND_TOPICS])
        try:
            while not stop.is_set():
                batch = [m for m in self._consumer.consume(_BATCH, 0.5) if not m.error()]
                if batch:
                    self._relay(batch)
        finally:
            self._consumer.close()
            self._producer.flush(10)

    def _relay(self, batch: list[Message]) -> None:
        failed: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: Any) -> None:
            if error is not None:
                failed.append(error)

        for message in batch:
            topic, value = message.topic() or "", message.value() or b""
            verdict = kafka_access.judge_site_command(topic, value)
            if verdict.command is not None:
                command = verdict.command
                partition = topics.incident_partition(command.incident_id, topics.INCIDENT_COMMANDS.partitions)
                self._producer.produce(
                    topics.INCIDENT_COMMANDS.name,
                    topics.INCIDENT_COMMANDS.encode(command),
                    command.incident_id.encode(),
                    partition=partition,
                    on_delivery=delivered,
                )
                self.relayed += 1
                continue
            self.refused += 1
            source = f"{topic}[{message.partition()}]@{message.offset()}"
            log.warning("site command refused (%s): %s; %s", verdict.reason, verdict.detail, source)
            letter = DeadLetter(
                source=source,
                reason=verdict.reason or DeadLetterReason.INTERNAL_ERROR,  # a refusal always has its reason
                detail=verdict.detail[:2000],
                received_at=dt.datetime.now(dt.UTC),
                payload=value[: 64 * 1024],
                size=len(value),
            )
            self._producer.produce(
                topics.DEADLETTER.name,
                topics.DEADLETTER.encode(letter),
                topic.encode(),
                partition=topics.partition_for(topic, topics.DEADLETTER.partitions),
                on_delivery=delivered,
            )
        remaining = self._producer.flush(30)
        if remaining or failed:
            # Nothing is committed: the batch is read again from its first offsets (commands are idempotent).
            log.error("site commands not relayed (%d undelivered, errors %s); reading them again", remaining, failed)
            firsts: dict[tuple[str, int], int] = {}
            for message in batch:
                key = (message.topic() or "", message.partition() or 0)
                firsts[key] = min(firsts.get(key, message.offset() or 0), message.offset() or 0)
            for (topic, partition), offset in firsts.items():
                self._consumer.seek(TopicPartition(topic, partition, offset))
            return
        self._consumer.commit(asynchronous=False)
