"""The MQTT→Kafka bridge loop: take, check, batch, produce, and acknowledge only what Kafka has.

Messages arrive on paho's network thread through a shared subscription with manual acknowledgement. Each
is checked (`validate.Validator`), rate-limited per device and per vendor, and either added to a
per-partition batch for its data topic (capped by count and bytes) or produced to the dead-letter topic
with its reason and original bytes; a flood's refusals are summarised per device and reason
(`summary.Summariser`). Nothing a message holds can raise out of the handler: an exception becomes an
`internal-error` dead letter, and a batch Kafka refuses is retried, split, or dead-lettered. A flusher thread
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
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from ioc import codecs, topics
from ioc.events import DEAD_LETTER_PAYLOAD_BYTES, DeadLetter, DeadLetterReason, IngestBatch, Ingested
from ioc.settings import BridgeSettings
from ioc.units import UnitTree, load_tree
from sensors.bridge.batcher import Batch, Batcher
from sensors.bridge.mqttclient import BufferedClient
from sensors.bridge.ratelimit import TokenBuckets
from sensors.bridge.summary import Summariser, Summary
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
    summarised: int = 0  # refusals counted into a summary instead of stored one by one
    handler_errors: int = 0  # exceptions caught in the message handler (each became a dead letter)

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
        self._validator = Validator(
            tree or load_tree("2024"),
            max_age=dt.timedelta(seconds=settings.max_age_s),
            max_ahead=dt.timedelta(seconds=settings.max_ahead_s),
            edition=settings.edition,
        )
        self._limits = TokenBuckets(
            settings.device_rate_per_s, settings.device_burst, max_keys=settings.rate_limit_keys
        )
        self._vendor_limits = TokenBuckets(
            settings.vendor_rate_per_s, settings.vendor_burst, max_keys=settings.rate_limit_keys
        )
        self._summaries = Summariser(settings.deadletter_summary_s, max_keys=settings.deadletter_summary_keys)
        self._batcher: Batcher[Ingested] = Batcher(
            max_items=batch_items, linger_s=settings.linger_ms / 1000, max_bytes=settings.batch_max_bytes
        )
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
                **settings.kafka.client_config(),  # the bridge's own principal, over TLS
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

    def _make_client(self) -> BufferedClient:
        client = BufferedClient(
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
        client.on_publish_received = self._take
        client.on_subscribe = self._on_subscribe
        return client

    def _on_connect(self, client: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused the bridge: %s", reason)
            return
        client.subscribe(topics.mqtt_shared_subscription(self.settings.share_group), qos=1)
        self._connected.set()
        log.info("bridge %s connected; subscribed to %s", self.client_id, topics.mqtt_shared_subscription())

    def _on_subscribe(self, _c: mqtt.Client, _u: object, _mid: int, codes: list[ReasonCode], _p: object) -> None:
        # A login without the ioc-bridge role (e.g. a vendor's) is refused the share group: say so, loudly.
        for code in codes:
            if code.is_failure:
                log.error("the broker refused the bridge's subscription (%s): is its login in role ioc-bridge?", code)

    def _on_disconnect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            log.warning("bridge lost the broker (%s); paho reconnects", reason)

    def _on_message(self, _c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        """paho's callback, for what the client's lean path leaves to paho (properties, QoS 0 or 2)."""
        self._take(message._topic, message.payload, message.mid)  # paho keeps the received bytes only in _topic

    def _take(self, raw_topic: bytes, payload: bytes | bytearray, mid: int) -> None:
        """A message from the network thread: judge it and hand each part on. Never raises: an exception
        escaping here would end paho's network thread, and with it the bridge's intake."""
        if self._intake_closed.is_set():
            return  # not acknowledged: stays in the session for the next start
        self.stats.received += 1
        # The broker checks that topics are UTF-8, but this thread must not depend on it: keep what can be read.
        topic = raw_topic.decode("utf-8", "replace")
        try:
            self.handle(topic, payload, mid)
        except Exception as exc:  # the last line of defence of the network thread
            self.stats.handler_errors += 1
            log.exception("the bridge's handler raised on a message on %s; it is dead-lettered", topic[:200])
            self._set_aside(topic, payload, mid, exc)

    def handle(self, topic: str, payload: bytes | bytearray, mid: int) -> None:
        """The message path for one MQTT message (`mid` 0: QoS 0, nothing to acknowledge)."""
        now = self._clock()
        received_at = dt.datetime.now(dt.UTC)
        parts = self._validator.check_message(topic, payload, received_at)
        if mid:
            # Acknowledged once every part (batched readings, dead letters) is in Kafka.
            with self._lock:
                self._parts_left[mid] = len(parts)
        for verdict, item_bytes in parts:
            try:
                self._route(
                    topic, first_verdict=verdict, item_bytes=item_bytes, mid=mid, now=now, received_at=received_at
                )
            except Exception as exc:  # one part's failure must not strand its siblings
                self.stats.handler_errors += 1
                log.exception("routing a part of a message on %s raised; it is dead-lettered", topic[:200])
                self._set_aside(topic, item_bytes, mid, exc, parts=1)

    def _route(
        self,
        topic: str,
        *,
        first_verdict: Accepted | Rejected,
        item_bytes: bytes,
        mid: int,
        now: float,
        received_at: dt.datetime,
    ) -> None:
        verdict = first_verdict
        if isinstance(verdict, Accepted):
            vendor, device = verdict.topic.vendor, verdict.topic.device
            key = topics.device_key(vendor, device)
            if not self._limits.allow(key, now):
                verdict = Rejected(
                    DeadLetterReason.RATE_LIMITED,
                    f"device exceeds {self.settings.device_rate_per_s}/s (burst {self.settings.device_burst})",
                    vendor,
                    device,
                )
            elif not self._vendor_limits.allow(vendor, now):
                verdict = Rejected(
                    DeadLetterReason.RATE_LIMITED,
                    f"vendor {vendor} exceeds {self.settings.vendor_rate_per_s}/s over all its devices "
                    f"(burst {self.settings.vendor_burst})",
                    vendor,
                    device,
                )
        if isinstance(verdict, Rejected):
            self.stats.rejected[verdict.reason] += 1
            summary_key = (verdict.vendor or topic[:200], verdict.device or "", verdict.reason.value)
            with self._lock:
                admitted = self._summaries.admit(summary_key, now, verdict.detail, topic[:500])
            if admitted:
                self._dead_letter(topic, item_bytes, verdict, mid)
            else:
                self.stats.summarised += 1
                self._ack([mid] if mid else [])  # counted in the next summary, not stored
            return
        self.stats.accepted += 1
        target = topics.CAMERA_EVENTS.name if verdict.topic.kind == topics.CAMERA_KIND else topics.READINGS.name
        partition = topics.partition_for(key, self._partition_count(target))
        item = Ingested(event=verdict.event, path=verdict.path, received_at=received_at)
        with self._lock:
            closed = self._batcher.add(target, partition, item, mid or None, now, size=len(item_bytes))
        for full in closed:
            self._produce(full)

    def _set_aside(
        self, topic: str, payload: bytes | bytearray, mid: int, exc: BaseException, *, parts: int | None = None
    ) -> None:
        """Dead-letter what raised as `internal-error` (its exception type only, never the traceback's text)."""
        verdict = Rejected(DeadLetterReason.INTERNAL_ERROR, f"handling the message raised {type(exc).__name__}")
        if mid and parts is None:
            with self._lock:
                self._parts_left[mid] = 1
        try:
            self._dead_letter(topic, payload, verdict, mid)
        except Exception:  # Kafka refused even that: leave it unacknowledged for redelivery
            log.exception("could not dead-letter a message on %s; it stays unacknowledged", topic[:200])

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
                self._refused(batch, error)
                return
            self.stats.batches += 1
            self._ack(batch.acks)

        try:
            self._send(
                batch.topic,
                value,
                delivered,
                key=topics.device_key(first.vendor, first.device),
                partition=batch.partition,
            )
        except KafkaException as exc:  # refused before sending, e.g. larger than message.max.bytes
            self._refused(batch, exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None)

    def _refused(self, batch: Batch[Ingested], error: KafkaError | None) -> None:
        """Kafka refused a batch: retry it, split it (too large), or dead-letter its events.

        A transient error (broker away, timeout, leader moving) is retried for as long as it lasts: the batch's
        MQTT messages stay unacknowledged, so intake pauses at `max_inflight` rather than losing anything. An
        error that retrying cannot cure is retried `produce_attempts` times, then each event is dead-lettered
        (`undeliverable`) and the messages are acknowledged once every letter is in Kafka.
        """
        self.stats.delivery_errors += 1
        batch.attempts += 1
        too_large = error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE
        if too_large and len(batch.items) > 1:
            half = len(batch.items) // 2
            log.warning("batch to %s[%d] refused (%s); split in two", batch.topic, batch.partition, error)
            # A message is acknowledged once all its parts are in Kafka, counted one per item: the second half
            # carries every ack, so none is counted before both halves are delivered.
            head = Batch(batch.topic, batch.partition, batch.opened_at, batch.items[:half], [], batch.size // 2)
            tail = Batch(batch.topic, batch.partition, batch.opened_at, batch.items[half:], batch.acks, batch.size // 2)
            with self._lock:
                self._retry.extend([head, tail])
            return
        transient = error is not None and (error.retriable() or error.code() == KafkaError._MSG_TIMED_OUT)
        if transient or batch.attempts < self.settings.produce_attempts:
            log.warning(
                "batch to %s[%d] not delivered (%s); retry %d", batch.topic, batch.partition, error, batch.attempts
            )
            with self._lock:
                self._retry.append(batch)
            return
        log.error("batch of %d to %s refused for good (%s); dead-lettered", len(batch.items), batch.topic, error)
        letters_left = [len(batch.items)]

        def letter_delivered() -> None:
            letters_left[0] -= 1
            if letters_left[0] == 0:
                self._ack(batch.acks)

        for item in batch.items:
            event = item.event
            verdict = Rejected(
                DeadLetterReason.UNDELIVERABLE,
                f"Kafka refused it {batch.attempts} times: {error.name() if error else 'unknown error'}",
                event.vendor,
                event.device,
            )
            self._dead_letter(f"kafka:{batch.topic}", codecs.encode(event), verdict, 0, then=letter_delivered)

    def _dead_letter(
        self,
        source: str,
        payload: bytes | bytearray,
        verdict: Rejected,
        mid: int,
        *,
        count: int = 1,
        then: Callable[[], None] | None = None,
    ) -> None:
        """Produce a dead letter; once Kafka has it, acknowledge `mid` (0: none) and call `then`."""
        record = DeadLetter(
            source=(source if source.startswith("kafka:") else f"mqtt:{source}")[:500],
            reason=verdict.reason,
            detail=verdict.detail[:2000],
            received_at=dt.datetime.now(dt.UTC),
            payload=bytes(payload[:DEAD_LETTER_PAYLOAD_BYTES]),
            size=len(payload),
            vendor=verdict.vendor,
            device=verdict.device,
            count=count,
        )

        def delivered(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                self.stats.delivery_errors += 1
                log.warning("dead letter not delivered (%s); it stays unacknowledged in MQTT", error)
                return
            self._ack([mid] if mid else [])
            if then is not None:
                then()

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
        self._mqtt.ack_many(complete)
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
            now = self._clock()
            due = self._batcher.due(now)
            retry, self._retry = self._retry, []
            summaries = self._summaries.due(now)
        for batch in retry + due:
            self._produce(batch)
        self._summarise(summaries)

    def _summarise(self, summaries: list[Summary]) -> None:
        for summary in summaries:
            who, device, reason = summary.key
            vendor_known = bool(device)
            verdict = Rejected(
                DeadLetterReason(reason),
                f"{summary.count} more refusals like the one before, in {self.settings.deadletter_summary_s:g} s; "
                f"the last: {summary.sample}",
                who if vendor_known else None,
                device or None,
            )
            try:
                self._dead_letter(summary.topic or who, b"", verdict, 0, count=summary.count)
            except Exception:  # a lost summary loses a count, never a reading
                log.exception("could not send a summary of %d refusals", summary.count)

    def _shutdown(self) -> None:
        with self._lock:
            remaining = self._batcher.drain() + self._retry
            self._retry = []
            summaries = self._summaries.drain()
        for batch in remaining:
            self._produce(batch)
        self._summarise(summaries)
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
