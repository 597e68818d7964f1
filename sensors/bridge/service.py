"""The MQTT→Kafka bridge loop: take, check, batch, produce, and acknowledge only what Kafka has.

Messages arrive on paho's network thread through a shared subscription with manual acknowledgement. Each
is checked (`validate.Validator`), rate-limited per device, and either added to a per-partition batch for
its data topic or produced to the dead-letter topic with its reason and original bytes. A flusher thread
produces due batches and serves Kafka's delivery reports; an MQTT message is acknowledged only in the
delivery report of the Kafka message that carries it. Killed at any point, the bridge loses nothing:
unacknowledged messages stay in its persistent MQTT session and are delivered again when it reconnects.
Backpressure is the MQTT v5 receive maximum: the broker sends no more than `max_inflight` unacknowledged
messages, so a slow Kafka pauses intake instead of filling memory.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, Final

import paho.mqtt.client as mqtt
from confluent_kafka import KafkaError, Message, Producer
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ioc import codecs, topics
from ioc.events import DEAD_LETTER_PAYLOAD_BYTES, DeadLetter, DeadLetterReason, IngestBatch, Ingested
from ioc.settings import BridgeSettings
from ioc.units import UnitTree, load_tree
from sensors.bridge.batcher import Batch, Batcher
from sensors.bridge.ratelimit import TokenBuckets
from sensors.bridge.validate import Accepted, Rejected, Validator

__all__ = ["Bridge", "BridgeStats"]

log = logging.getLogger(__name__)

SESSION_EXPIRY_S: Final = 7 * 24 * 3600


@dataclasses.dataclass
class BridgeStats:
    """Counters since start; read them for progress lines and tests."""

    received: int = 0
    accepted: int = 0
    rejected: Counter[str] = dataclasses.field(default_factory=Counter)
    batches: int = 0
    acked: int = 0
    delivery_errors: int = 0

    def line(self) -> str:
        rejected = ", ".join(f"{k}={v}" for k, v in sorted(self.rejected.items())) or "none"
        return (
            f"received={self.received} accepted={self.accepted} batches={self.batches} acked={self.acked} "
            f"rejected: {rejected}"
        )


class Bridge:
    """One bridge replica. `run()` blocks until `stop()`; both are safe to call from other threads."""

    def __init__(
        self,
        settings: BridgeSettings,
        *,
        tree: UnitTree | None = None,
        replica: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        batch_items: int = 500,
    ) -> None:
        self.settings = settings
        self.stats = BridgeStats()
        self._clock = clock
        self._validator = Validator(tree or load_tree("2024"))
        self._limits = TokenBuckets(settings.device_rate_per_s, settings.device_burst)
        self._batcher: Batcher[Ingested] = Batcher(max_items=batch_items, linger_s=settings.linger_ms / 1000)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._intake_closed = threading.Event()
        self._stopped = threading.Event()
        self._connected = threading.Event()
        self._partitions: dict[str, int] = {}
        self._parts_left: dict[int, int] = {}
        self._retry: list[Batch[Ingested]] = []
        replica = replica or settings.replica or socket.gethostname()
        self.client_id = f"{settings.client_id}-{replica}"
        self._producer = Producer(
            {
                "bootstrap.servers": settings.kafka.bootstrap,
                "client.id": self.client_id,
                "enable.idempotence": True,
                "acks": "all",
                # The bridge batches readings itself; the producer only coalesces those batches briefly.
                "linger.ms": min(settings.linger_ms, 5),
                "compression.type": "lz4",
                "queue.buffering.max.messages": 200_000,
                "message.timeout.ms": 120_000,
                # librdkafka's own log lines go through logging, not straight to stderr.
                "logger": logging.getLogger("sensors.bridge.kafka"),
            }
        )
        self._mqtt = self._make_client()

    # --- MQTT side -------------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=True,
        )
        endpoint = self.settings.mqtt
        if endpoint.username is not None:
            password = endpoint.password.get_secret_value() if endpoint.password else None
            client.username_pw_set(endpoint.username, password)
        if endpoint.tls_ca_file is not None:
            client.tls_set(ca_certs=str(endpoint.tls_ca_file))
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the bridge: %s", reason)
            return
        client.subscribe(topics.mqtt_shared_subscription(self.settings.share_group), qos=1)
        self._connected.set()
        log.info("bridge %s connected; subscribed to %s", self.client_id, topics.mqtt_shared_subscription())

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("bridge lost the broker (%s); paho reconnects", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        if self._intake_closed.is_set():
            return  # not acknowledged: stays in the session for the next start
        self.stats.received += 1
        parts = self._validator.check_message(message.topic, message.payload)
        mid = message.mid
        if mid:
            # Acknowledged once every part (batched readings, dead letters) is in Kafka.
            with self._lock:
                self._parts_left[mid] = len(parts)
        now = self._clock()
        received_at = dt.datetime.now(dt.UTC)
        for first_verdict, item_bytes in parts:
            verdict = first_verdict
            if isinstance(verdict, Accepted):
                key = topics.device_key(verdict.topic.vendor, verdict.topic.device)
                if not self._limits.allow(key, now):
                    verdict = Rejected(
                        DeadLetterReason.RATE_LIMITED,
                        f"device exceeds {self.settings.device_rate_per_s}/s (burst {self.settings.device_burst})",
                        verdict.topic.vendor,
                        verdict.topic.device,
                    )
            if isinstance(verdict, Rejected):
                self.stats.rejected[verdict.reason] += 1
                self._dead_letter(message.topic, item_bytes, verdict, mid)
                continue
            self.stats.accepted += 1
            target = topics.CAMERA_EVENTS.name if verdict.topic.kind == topics.CAMERA_KIND else topics.READINGS.name
            partition = topics.partition_for(key, self._partition_count(target))
            item = Ingested(event=verdict.event, path=verdict.path, received_at=received_at)
            with self._lock:
                full = self._batcher.add(target, partition, item, mid or None, now)
            if full is not None:
                self._produce(full)

    # --- Kafka side ------------------------------------------------------------------------------------

    def _partition_count(self, topic: str) -> int:
        count = self._partitions.get(topic)
        if count is None:
            metadata = self._producer.list_topics(topic, timeout=10)
            described = metadata.topics.get(topic)
            if described is None or described.error is not None or not described.partitions:
                raise RuntimeError(f"Kafka topic {topic} does not exist; create it from the registry (ioc.topics)")
            count = self._partitions[topic] = len(described.partitions)
        return count

    def _send(
        self, topic: str, value: bytes, on_delivery: Callable[[KafkaError | None, Message], None], **kw: Any
    ) -> None:
        while True:
            try:
                self._producer.produce(topic, value=value, on_delivery=on_delivery, **kw)
                return
            except BufferError:
                # The producer's queue is full: Kafka is slow. Blocking here blocks paho's thread, which stops
                # reading from the broker: backpressure rather than unbounded memory.
                self._producer.poll(0.05)

    def _produce(self, batch: Batch[Ingested]) -> None:
        first = batch.items[0].event
        value = codecs.encode(IngestBatch(items=batch.items))

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                self.stats.delivery_errors += 1
                log.warning("batch to %s[%d] not delivered (%s); retrying", batch.topic, batch.partition, error)
                with self._lock:
                    self._retry.append(batch)
                return
            self.stats.batches += 1
            self._ack(batch.acks)

        self._send(
            batch.topic,
            value,
            delivered,
            key=topics.device_key(first.vendor, first.device),
            partition=batch.partition,
        )

    def _dead_letter(self, source: str, payload: bytes | bytearray, verdict: Rejected, mid: int) -> None:
        record = DeadLetter(
            source=f"mqtt:{source}"[:500],
            reason=verdict.reason,
            detail=verdict.detail[:2000],
            received_at=dt.datetime.now(dt.UTC),
            payload=bytes(payload[:DEAD_LETTER_PAYLOAD_BYTES]),
            size=len(payload),
            vendor=verdict.vendor,
            device=verdict.device,
        )

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                self.stats.delivery_errors += 1
                log.warning("dead letter not delivered (%s); it stays unacknowledged in MQTT", error)
                return
            self._ack([mid] if mid else [])

        key = topics.device_key(verdict.vendor, verdict.device) if verdict.vendor and verdict.device else source
        value = topics.DEADLETTER.encode(record)
        self._send(topics.DEADLETTER.name, value, delivered, key=key[:200], headers={"reason": verdict.reason.value})

    def _ack(self, mids: list[int]) -> None:
        """One part of each of these MQTT messages is in Kafka; acknowledge the messages now complete."""
        complete = []
        with self._lock:
            for mid in mids:
                left = self._parts_left.get(mid, 1) - 1
                if left <= 0:
                    self._parts_left.pop(mid, None)
                    complete.append(mid)
                else:
                    self._parts_left[mid] = left
        for mid in complete:
            self._mqtt.ack(mid, 1)
        self.stats.acked += len(complete)

    # --- lifecycle --------------------------------------------------------------------------------------

    def run(self, *, progress_every_s: float = 0.0) -> None:
        """Connect, bridge until `stop()`, then flush and acknowledge what Kafka has and disconnect."""
        endpoint = self.settings.mqtt
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]  # paho ships no hints here
        properties.SessionExpiryInterval = SESSION_EXPIRY_S
        properties.ReceiveMaximum = min(self.settings.max_inflight, 65535)
        for topic in (topics.READINGS, topics.CAMERA_EVENTS, topics.DEADLETTER):
            self._partition_count(topic.name)  # fail fast, with a clear message, on a missing topic
        self._mqtt.connect(
            endpoint.host, endpoint.port, keepalive=endpoint.keepalive_s, clean_start=False, properties=properties
        )
        self._mqtt.loop_start()
        tick = max(self.settings.linger_ms / 2000, 0.002)
        last_progress = self._clock()
        try:
            while not self._stopping.is_set():
                self._flush_due()
                self._producer.poll(tick)
                if progress_every_s and self._clock() - last_progress >= progress_every_s:
                    last_progress = self._clock()
                    log.info("bridge %s", self.stats.line())
            # Leave the shared group first, so the broker assigns us nothing more, then finish what arrived.
            if self._connected.is_set():
                self._mqtt.unsubscribe(topics.mqtt_shared_subscription(self.settings.share_group))
                grace_until = self._clock() + 0.5
                while self._clock() < grace_until:
                    self._flush_due()
                    self._producer.poll(tick)
        finally:
            self._intake_closed.set()
            self._shutdown()

    def _flush_due(self) -> None:
        with self._lock:
            due = self._batcher.due(self._clock())
            retry, self._retry = self._retry, []
        for batch in retry + due:
            self._produce(batch)

    def _shutdown(self) -> None:
        with self._lock:
            remaining = self._batcher.drain() + self._retry
            self._retry = []
        for batch in remaining:
            self._produce(batch)
        left = self._producer.flush(30)
        if left:
            log.warning("%d Kafka messages undelivered at shutdown; their MQTT messages stay unacknowledged", left)
        time.sleep(0.1)  # let paho's thread send the last PUBACKs
        self._mqtt.disconnect()
        self._mqtt.loop_stop()
        self._stopped.set()
        log.info("bridge %s stopped: %s", self.client_id, self.stats.line())

    def stop(self) -> None:
        self._stopping.set()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def wait_stopped(self, timeout: float) -> bool:
        return self._stopped.wait(timeout)
