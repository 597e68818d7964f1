"""Sealing a site's report and putting it in the outbox topic `ioc.reports-outbox.v1`, keyed by report id."""

from __future__ import annotations

import logging
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from ioc import topics
from ioc.clients import kafka_admin
from ioc.settings import KafkaEndpoint
from ioc.upward import SignedReport, UpwardReport, seal

__all__ = ["Outbox", "OutboxError"]

log = logging.getLogger(__name__)


class OutboxError(RuntimeError):
    """Kafka did not take the envelope; the message says why."""


class Outbox:
    """Puts sealed reports in the outbox topic.

    The outbox decouples building from delivery: a report is signed once, then waits in Kafka (durable, replicated)
    until the pusher (streams.reporting.pusher) has delivered it to the parent, however long the parent is down and
    however often either side restarts. `publish` returns only once Kafka has the envelope (idempotent producer,
    acks=all).
    """

    def __init__(
        self, kafka: KafkaEndpoint | str, *, client_id: str = "ioc-reporting", timeout_s: float = 30.0
    ) -> None:
        self._timeout_s = timeout_s
        config: dict[str, Any] = {
            **kafka_admin.client_config(kafka),  # the reporting principal, over TLS
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": int(timeout_s * 1000),
            "logger": logging.getLogger("streams.reporting.kafka"),
        }
        self._producer = Producer(config)
        self._partitions: int | None = None

    def _partition_count(self) -> int:
        if self._partitions is None:
            metadata = self._producer.list_topics(topics.REPORTS_OUTBOX.name, timeout=self._timeout_s)
            described = metadata.topics.get(topics.REPORTS_OUTBOX.name)
            if described is None or described.error is not None or not described.partitions:
                raise OutboxError(
                    f"Kafka topic {topics.REPORTS_OUTBOX.name} does not exist: create it from the registry (ioc.topics)"
                )
            self._partitions = len(described.partitions)
        return self._partitions

    def publish(self, envelope: SignedReport) -> None:
        """Produce the envelope and wait until Kafka acknowledged it."""
        errors: list[KafkaError] = []

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                errors.append(error)

        self._producer.produce(
            topics.REPORTS_OUTBOX.name,
            key=envelope.report_id.encode(),
            value=topics.REPORTS_OUTBOX.encode(envelope),
            partition=topics.partition_for(envelope.report_id, self._partition_count()),
            headers={"idempotency-key": envelope.idempotency_key},
            on_delivery=delivered,
        )
        left = self._producer.flush(self._timeout_s)
        if left or errors:
            raise OutboxError(
                f"report {envelope.report_id} not in the outbox: {errors[0].str() if errors else 'timed out'}"
            )
        log.info("report %s (revision %s) is in the outbox", envelope.report_id, envelope.idempotency_key)

    def seal_and_publish(self, report: UpwardReport, private_key_b64: str, key_id: str) -> SignedReport:
        """Sign `report` with the site's key and publish it; returns the envelope."""
        envelope = seal(report, private_key_b64, key_id)
        self.publish(envelope)
        return envelope

    def close(self) -> None:
        self._producer.flush(self._timeout_s)
