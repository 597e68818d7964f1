"""Producing to Kafka from asyncio HTTP handlers: `await send(...)` returns once the broker has the message.

The citizen API and the one-stop portal connector answer a request only after Kafka acknowledged what
it carried (acks=all, idempotent producer), so a 2xx always means "stored"; anything else tells the
caller to retry, and the retry is made harmless by ids and versions downstream. confluent-kafka's
delivery reports arrive on a polling thread; this module hands each one back to the waiting coroutine.
Partitions follow `ioc.topics.partition_for`, counted from the topic's live metadata.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from typing import Any, Final, Protocol

from confluent_kafka import KafkaError, Message, Producer

from ioc import topics
from ioc.settings import KafkaEndpoint

__all__ = ["AsyncProducer", "DeliveryError", "EventSink"]

log = logging.getLogger(__name__)

_POLL_S: Final = 0.05


class DeliveryError(RuntimeError):
    """Kafka did not take a message (unreachable, topic missing, timed out): the caller should answer 503."""


class EventSink(Protocol):
    """Where an HTTP service's events go: Kafka in production (`AsyncProducer`), a list in unit tests."""

    async def send(self, topic: str, key: str, value: bytes, *, headers: Mapping[str, str] | None = None) -> None:
        """Return once the event is stored; raise `DeliveryError` otherwise."""

    def partitions(self, topic: str) -> int:
        """How many partitions `topic` has; raise `DeliveryError` if it cannot tell."""

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued, then let go."""


def _settle(future: asyncio.Future[None], error: KafkaError | None) -> None:
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(DeliveryError(f"Kafka refused the message: {error.str()}"))


class AsyncProducer:
    """One idempotent producer per process, shared by every request; `close()` flushes what is queued."""

    def __init__(
        self, kafka: KafkaEndpoint | str, *, client_id: str, timeout_s: float = 10.0, linger_ms: int = 5
    ) -> None:
        self.timeout_s = timeout_s
        endpoint = KafkaEndpoint(bootstrap=kafka) if isinstance(kafka, str) else kafka
        config: dict[str, Any] = {
            # Who we are on Kafka (the component's principal, over TLS) comes from the endpoint.
            **endpoint.client_config(),
            "client.id": client_id,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": linger_ms,
            # A request waits at most this long for its message; then the client hears 503 and retries.
            "message.timeout.ms": max(int(timeout_s * 1000), 1000),
            "socket.timeout.ms": max(int(timeout_s * 1000), 1000),
            "logger": logging.getLogger("ioc.clients.delivery.kafka"),
        }
        self._producer = Producer(config)
        self._partitions: dict[str, int] = {}
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=f"{client_id}-kafka-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(_POLL_S)

    def partitions(self, topic: str) -> int:
        """How many partitions `topic` has (asked once, then remembered); raises DeliveryError if missing."""
        count = self._partitions.get(topic)
        if count is None:
            try:
                metadata = self._producer.list_topics(topic, timeout=self.timeout_s)
            except Exception as exc:
                raise DeliveryError(f"cannot read Kafka metadata for {topic}: {exc}") from exc
            described = metadata.topics.get(topic)
            if described is None or described.error is not None or not described.partitions:
                raise DeliveryError(f"Kafka topic {topic} does not exist: create it from the registry (ioc.topics)")
            count = self._partitions[topic] = len(described.partitions)
        return count

    async def send(self, topic: str, key: str, value: bytes, *, headers: Mapping[str, str] | None = None) -> None:
        """Produce `value` under `key` to its partition of `topic`; return when Kafka acknowledged it."""
        partition = topics.partition_for(key, await asyncio.to_thread(self.partitions, topic))
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()

        def delivered(error: KafkaError | None, _message: Message) -> None:
            loop.call_soon_threadsafe(_settle, future, error)

        try:
            self._producer.produce(
                topic,
                key=key.encode("utf-8"),
                value=value,
                partition=partition,
                on_delivery=delivered,
                headers=dict(headers or {}),
            )
        except BufferError as exc:
            raise DeliveryError(f"the Kafka producer's queue is full ({exc}); retry shortly") from exc
        except Exception as exc:
            raise DeliveryError(f"cannot queue the message for Kafka: {exc}") from exc
        try:
            # librdkafka times the message out itself (message.timeout.ms); this bound is a safety net.
            await asyncio.wait_for(future, self.timeout_s + 5)
        except TimeoutError as exc:
            raise DeliveryError(f"Kafka did not acknowledge within {self.timeout_s + 5:.0f} s") from exc

    def close(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to `timeout_s`), then stop polling."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            log.warning("%d messages not delivered to Kafka at shutdown", remaining)
        self._closed.set()
        self._poller.join(timeout=2)
