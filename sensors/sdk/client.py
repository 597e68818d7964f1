"""The vendor SDK: what a device or camera gateway embeds to publish contract events to the platform.

A `VendorClient` is one MQTT v5 connection (over TLS when the endpoint names the platform's CA file, as it
must outside a developer's loopback) with the credentials the platform issued to a vendor or device; it
publishes `SensorReading`s and `CameraEvent`s with QoS 1 on the topic the platform expects, numbers each
device's messages, keeps a bounded queue while the broker is unreachable, reconnects with backoff, and
reports problems as typed exceptions. `Device` handles build the events so a vendor only supplies values.

The queue is in memory unless `disk_queue` names a file (`outbox.DiskOutbox`): then every accepted event is on
disk before `publish` returns and stays there until the broker acknowledges it, with each device's next
sequence number, so a gateway restarted while the broker is away sends all it accepted and numbers on.

    login = MqttEndpoint(host=..., port=8883, username="vendor.acme", password=..., tls_ca_file="ca.crt")
    client = VendorClient(login, vendor="acme")
    client.connect()
    station = client.device("aq-01", unit="25957", kind=SensorKind.AIR)
    station.reading({"pm25": 35.2, "pm10": 60.1})
    client.flush()

    # A gateway that must not lose what it accepted across its own restarts:
    client = VendorClient(login, vendor="acme", disk_queue=Path("/var/lib/gateway/outbox.sqlite3"))
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Final, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.reasoncodes import ReasonCode

from ioc import codecs, topics
from ioc.clients import mqttstop
from ioc.events import CameraEvent, CameraEventType, SensorKind, SensorReading
from ioc.settings import MqttEndpoint
from sensors.sdk.outbox import DiskOutbox

__all__ = [
    "ConnectRefused",
    "Device",
    "InvalidEvent",
    "OfflineQueueFull",
    "PublishRefused",
    "SdkError",
    "VendorClient",
]

NOT_AUTHORIZED: Final = 135
NO_MATCHING_SUBSCRIBERS: Final = 16
"""PUBACK reason: the broker took the message and routed it to nobody (MQTT v5 3.4.2.1)."""


class SdkError(Exception):
    """Base of every error the SDK raises."""


class ConnectRefused(SdkError):
    """The broker refused the connection (bad credentials, not authorised) or could not be reached."""


class PublishRefused(SdkError):
    """The broker refused one or more publishes (MQTT v5 PUBACK reason ≥ 128); `refused` lists them."""

    def __init__(self, refused: list[tuple[str, int]]) -> None:
        self.refused = refused
        listed = "; ".join(f"{topic}: reason {code}" for topic, code in refused[:5])
        super().__init__(f"{len(refused)} publish(es) refused by the broker: {listed}")


class OfflineQueueFull(SdkError):
    """The client is offline and its bounded queue is full; the event was not queued."""


class InvalidEvent(SdkError):
    """The event does not fit the contract or does not belong to this vendor."""


@dataclasses.dataclass
class _Pending:
    topic: str
    done: threading.Event = dataclasses.field(default_factory=threading.Event)
    reason: int = 0
    number: int = 0  # its number in the disk queue (0: none)
    payload: bytes = b""  # kept to send it again if the broker routes it to nobody


class VendorClient:
    """One vendor connection. Thread-safe for publishing; use as a context manager or call close()."""

    def __init__(
        self,
        endpoint: MqttEndpoint,
        vendor: str,
        *,
        client_id: str | None = None,
        max_queued: int = 10_000,
        max_inflight: int = 1000,
        reconnect_max_s: int = 60,
        disk_queue: Path | None = None,
        disk_sync: Literal["full", "normal"] = "full",
        resend_unrouted_s: float | None = None,
    ) -> None:
        """`max_queued`: messages accepted and not yet acknowledged before `publish` raises OfflineQueueFull.

        `disk_queue`: keep them in this SQLite file instead of memory (created when missing; one client at a time),
        so they survive the gateway's restart; `disk_sync` "full" also survives a power cut (an fsync per event),
        "normal" only the process's death. None: in memory, lost with the process.

        `resend_unrouted_s`: a message the broker took but routed to nobody (PUBACK reason 16: the platform's bridge
        not subscribed, as just after a restart of Mosquitto 2.0.11, which forgets persistent sessions' shared
        subscriptions until they subscribe again) is sent again after this many seconds, until it is taken;
        0 counts reason 16 as delivered. Unset: 1 s with a disk queue (a gateway that asked to lose nothing), else 0.
        """
        topics.mqtt_vendor_pattern(vendor)  # validates the vendor id
        self.vendor = vendor
        self._endpoint = endpoint
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"{vendor}-{uuid.uuid4().hex[:10]}",
            protocol=mqtt.MQTTv5,
        )
        if endpoint.username is not None:
            password = endpoint.password.get_secret_value() if endpoint.password else None
            self._client.username_pw_set(endpoint.username, password)
        if endpoint.tls_ca_file is not None:
            self._client.tls_set(ca_certs=str(endpoint.tls_ca_file))
        # Bounded: beyond this many unacknowledged messages, publish() raises OfflineQueueFull. With a disk queue,
        # the disk holds them and paho only the `max_inflight` being sent (`_feed`).
        self._client.max_queued_messages_set(0 if disk_queue is not None else max_queued)
        # Enough unacknowledged QoS 1 messages in flight that a busy gateway is never window-bound.
        self._client.max_inflight_messages_set(max_inflight)
        self._client.reconnect_delay_set(min_delay=1, max_delay=reconnect_max_s)
        self._client.on_connect = self._on_connect
        self._client.on_publish = self._on_publish
        self._connected = threading.Event()
        self._connect_result: ReasonCode | None = None
        self._lock = threading.Lock()
        self._pending: dict[int, _Pending] = {}
        self._early: dict[int, int] = {}
        self._max_queued = max_queued
        self._refused: list[tuple[str, int]] = []
        self._started = False
        # The disk queue: what is stored, what paho has of it (by number), the last number handed to paho.
        self._outbox = DiskOutbox(disk_queue, sync=disk_sync) if disk_queue is not None else None
        self._window = max_inflight
        self._stored = self._outbox.waiting() if self._outbox is not None else 0
        self._newest = self._outbox.newest() if self._outbox is not None else 0
        self._handed = 0
        self._acked: list[int] = []
        self._disk_changed = threading.Condition(self._lock)
        self._feeder: threading.Thread | None = None
        self._resend_after = resend_unrouted_s if resend_unrouted_s is not None else (1.0 if disk_queue else 0.0)
        self._unrouted: list[_Pending] = []
        self._resend_timer: threading.Timer | None = None

    # paho callbacks (network thread)
    def _on_connect(self, _c: mqtt.Client, _u: object, _f: object, reason: ReasonCode, _p: object) -> None:
        self._connect_result = reason
        if not reason.is_failure:
            self._connected.set()
        else:
            self._connected.clear()

    def _on_publish(self, _c: mqtt.Client, _u: object, mid: int, reason: ReasonCode, _p: object) -> None:
        # paho calls this holding its own outgoing-message lock: never hold ours around paho calls.
        with self._lock:
            pending = self._pending.pop(mid, None)
            if pending is None:  # acknowledged before publish() registered it
                self._early[mid] = reason.value
                return
            self._settle(pending, reason.value)

    def _settle(self, pending: _Pending, reason: int) -> None:
        if reason == NO_MATCHING_SUBSCRIBERS and self._resend_after > 0 and self._started:
            self._unrouted.append(pending)  # not delivered: sent again by `_resend`, still counted by flush()
            if self._resend_timer is None:
                self._resend_timer = threading.Timer(self._resend_after, self._resend)
                self._resend_timer.daemon = True
                self._resend_timer.start()
            return
        pending.reason = reason
        if reason >= 128:
            self._refused.append((pending.topic, reason))
        if pending.number:  # acknowledged or refused for good: off the disk (the feeder deletes it)
            self._acked.append(pending.number)
            self._disk_changed.notify_all()
        pending.done.set()

    def _resend(self) -> None:
        with self._lock:
            again, self._unrouted, self._resend_timer = self._unrouted, [], None
            if not self._started:
                return
        for pending in again:
            self._register(self._client.publish(pending.topic, pending.payload, qos=1).mid, pending)

    def _register(self, mid: int, pending: _Pending) -> None:
        """Wait for `mid`'s PUBACK for `pending` (or settle it now if the PUBACK came first)."""
        with self._lock:
            early = self._early.pop(mid, None)
            if early is None:
                self._pending[mid] = pending
            else:
                self._settle(pending, early)

    def connect(self, timeout: float = 10.0) -> None:
        """Connect and wait for the broker's answer; raises ConnectRefused."""
        try:
            self._client.connect(self._endpoint.host, self._endpoint.port, keepalive=self._endpoint.keepalive_s)
        except OSError as exc:
            raise ConnectRefused(f"cannot reach {self._endpoint.host}:{self._endpoint.port}: {exc}") from None
        self._run()
        if not self._connected.wait(timeout):
            reason = self._connect_result
            self.close(flush_timeout=0)
            if reason is not None and reason.is_failure:
                raise ConnectRefused(f"the broker refused vendor {self.vendor!r}: {reason}")
            raise ConnectRefused(f"no answer from {self._endpoint.host}:{self._endpoint.port} within {timeout} s")

    def start(self) -> None:
        """Connect in the background and return at once, for a gateway that starts while the broker is away.

        Events are queued (on disk with `disk_queue`) and sent once the broker answers; paho keeps retrying with
        backoff. A refused login shows only as `connected` staying False: use `connect` to be told why.
        """
        self._client.connect_async(self._endpoint.host, self._endpoint.port, keepalive=self._endpoint.keepalive_s)
        self._run()

    def _run(self) -> None:
        self._client.loop_start()
        self._started = True
        if self._outbox is not None and self._feeder is None:
            self._feeder = threading.Thread(target=self._feed_loop, name="sdk-disk-queue", daemon=True)
            self._feeder.start()

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def publish(self, event: SensorReading | CameraEvent) -> int:
        """Queue `event` for delivery with QoS 1 on its topic; returns the MQTT message id (with a disk queue:
        the event's number in it)."""
        return self._publish(self._topic(event), codecs.encode(event), (event.vendor, event.device, event.seq + 1))

    def publish_batch(self, batch: Sequence[SensorReading | CameraEvent]) -> int:
        """Queue several events of ONE device as one message (a JSON array); returns the message id.

        Batching is how a gateway sends high-rate data cheaply: the bridge judges each item on its own.
        """
        if not batch:
            raise InvalidEvent("an empty batch")
        topic = self._topic(batch[0])
        for event in batch[1:]:
            if self._topic(event) != topic:
                raise InvalidEvent(f"a batch holds one device's events; {event.device!r} is not {batch[0].device!r}")
        payload = codecs.encode_json(list(batch))
        if len(payload) > codecs.MAX_PAYLOAD_BYTES:
            raise InvalidEvent(f"batch is {len(payload)} bytes; the limit is {codecs.MAX_PAYLOAD_BYTES}")
        return self._publish(topic, payload, (batch[0].vendor, batch[0].device, max(e.seq for e in batch) + 1))

    def _topic(self, event: SensorReading | CameraEvent) -> str:
        if event.vendor != self.vendor:
            raise InvalidEvent(f"event vendor {event.vendor!r} is not this client's vendor {self.vendor!r}")
        kind = topics.CAMERA_KIND if isinstance(event, CameraEvent) else event.kind.value
        return topics.mqtt_topic(event.unit, kind, event.vendor, event.device)

    def _publish(self, topic: str, payload: bytes, device: tuple[str, str, int]) -> int:
        if self._outbox is not None:
            with self._lock:
                if self._stored >= self._max_queued:
                    raise OfflineQueueFull(f"disk queue full ({self._max_queued} messages) at {self._outbox.path}")
                self._stored += 1
            try:
                number = self._outbox.add(topic, payload, device=device)
            except BaseException:
                with self._lock:
                    self._stored -= 1
                raise
            with self._lock:
                self._newest = max(self._newest, number)
                self._disk_changed.notify_all()
            return number
        info = self._client.publish(topic, payload, qos=1)
        if info.rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE:
            raise OfflineQueueFull(f"offline queue full ({self._max_queued} messages)")
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise SdkError(f"publish failed: {mqtt.error_string(info.rc)}")
        # Offline (NO_CONN) QoS 1 messages stay queued in paho and are sent on reconnection.
        self._register(info.mid, _Pending(topic, payload=payload))
        return info.mid

    def _feed_loop(self) -> None:
        """With a disk queue: hand stored messages to paho, oldest first, `max_inflight` at a time, and delete the
        acknowledged ones (in batches: one transaction per wake-up, not one per acknowledgement)."""
        outbox = self._outbox
        assert outbox is not None
        while True:
            with self._lock:
                room = self._window - len(self._pending)
                while not self._acked and (room <= 0 or self._handed >= self._newest) and self._started:
                    self._disk_changed.wait(0.5)
                    room = self._window - len(self._pending)
                if not self._started:
                    return
                acked, self._acked = self._acked, []
            if acked:
                outbox.remove(acked)
                with self._lock:
                    self._stored -= len(acked)
                    self._disk_changed.notify_all()
            if room > 0:
                for number, topic, payload in outbox.after(self._handed, room):
                    self._hand(number, topic, payload)

    def _hand(self, number: int, topic: str, payload: bytes) -> None:
        info = self._client.publish(topic, payload, qos=1)  # offline: paho keeps it and sends it on reconnection
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise SdkError(f"publish failed: {mqtt.error_string(info.rc)}")
        with self._lock:
            self._handed = number
        self._register(info.mid, _Pending(topic, number=number, payload=payload))

    @property
    def unacknowledged(self) -> int:
        with self._lock:
            return self._stored if self._outbox is not None else len(self._pending) + len(self._unrouted)

    def flush(self, timeout: float = 30.0) -> None:
        """Wait until every queued message is acknowledged; raise PublishRefused for any the broker refused."""
        if self._outbox is not None:
            with self._lock:
                if not self._disk_changed.wait_for(lambda: self._stored == 0, timeout):
                    raise SdkError(f"{self._stored} message(s) not acknowledged within {timeout} s")
        with self._lock:
            waiting = [*self._pending.values(), *self._unrouted]
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=timeout)
        for pending in waiting:
            left = (deadline - dt.datetime.now(dt.UTC)).total_seconds()
            if left <= 0 or not pending.done.wait(left):
                raise SdkError(f"{self.unacknowledged} message(s) not acknowledged within {timeout} s")
        with self._lock:
            refused, self._refused = self._refused, []
        if refused:
            raise PublishRefused(refused)

    def close(self, flush_timeout: float = 10.0) -> None:
        if self._started and flush_timeout > 0 and self.connected:
            try:
                self.flush(flush_timeout)
            finally:
                self._stop()
        else:
            self._stop()

    def _stop(self) -> None:
        if not self._started:
            self._client.disconnect()
        else:
            mqttstop.stop(self._client)
            with self._lock:
                self._started = False
                self._disk_changed.notify_all()
                if self._resend_timer is not None:
                    self._resend_timer.cancel()
                    self._resend_timer = None
        if self._feeder is not None:
            self._feeder.join(10)
            self._feeder = None
        if self._outbox is not None:
            self._outbox.close()

    def __enter__(self) -> VendorClient:
        if not self._started:
            self.connect()
        return self

    def __exit__(self, *_exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def device(self, device_id: str, unit: str, kind: SensorKind | str, *, start_seq: int | None = None) -> Device:
        """A handle that builds and publishes this device's events with consecutive sequence numbers.

        Numbering starts at `start_seq`; unset, where the disk queue says the device stopped, else 0.
        """
        if start_seq is None:
            known = self._outbox.next_seq(self.vendor, device_id) if self._outbox is not None else None
            start_seq = known or 0
        return Device(self, device_id, unit, kind, start_seq)


class Device:
    """One device of a vendor: numbers its messages and fills in vendor, device, unit and time."""

    def __init__(self, client: VendorClient, device_id: str, unit: str, kind: SensorKind | str, start_seq: int) -> None:
        topics.mqtt_topic(unit, str(kind), client.vendor, device_id)  # validates every segment now
        self.client = client
        self.device_id = device_id
        self.unit = unit
        self.kind = kind
        self.next_seq = start_seq
        self._lock = threading.Lock()

    def reading(
        self,
        values: dict[str, float],
        *,
        observed_at: dt.datetime | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> SensorReading:
        """Build, validate and publish one reading; returns it."""
        # The number is taken only once the broker queue took the message: a refused publish leaves no gap.
        with self._lock:
            event = self._build_reading(values, observed_at, lat, lon, self.next_seq)
            self.client.publish(event)
            self.next_seq += 1
        return event

    def readings(self, samples: Sequence[tuple[dict[str, float], dt.datetime]]) -> list[SensorReading]:
        """Build several readings (values, observed_at) and publish them as one batch message."""
        with self._lock:
            built = [
                self._build_reading(values, observed_at, None, None, self.next_seq + i)
                for i, (values, observed_at) in enumerate(samples)
            ]
            self.client.publish_batch(built)
            self.next_seq += len(built)
        return built

    def _build_reading(
        self, values: dict[str, float], observed_at: dt.datetime | None, lat: float | None, lon: float | None, seq: int
    ) -> SensorReading:
        if self.kind == topics.CAMERA_KIND:
            raise InvalidEvent(f"device {self.device_id} is a camera: use camera_event()")
        try:
            event = SensorReading(
                vendor=self.client.vendor,
                device=self.device_id,
                unit=self.unit,
                kind=SensorKind(self.kind),
                seq=seq,
                observed_at=observed_at or dt.datetime.now(dt.UTC),
                values=values,
                lat=lat,
                lon=lon,
            )
            # Round-trip through the codec so range and pattern constraints are checked before sending.
            return codecs.decode(codecs.encode(event), SensorReading)
        except (ValueError, codecs.ContractError) as exc:
            raise InvalidEvent(str(exc)) from None

    def camera_event(
        self,
        event_type: CameraEventType | str,
        *,
        confidence: float,
        observed_at: dt.datetime | None = None,
        plate: str | None = None,
        speed_kmh: float | None = None,
        speed_limit_kmh: float | None = None,
        object_count: int | None = None,
        lat: float | None = None,
        lon: float | None = None,
        image_url: str | None = None,
        snapshot: str | None = None,
    ) -> CameraEvent:
        """Build, validate and publish one camera detection; returns it.

        `snapshot` is the key of the detection's image in the platform's snapshot store (SHA-256 hex of its
        bytes, then .jpg or .png); `image_url`, where the vendor itself serves it."""
        with self._lock:
            try:
                event = CameraEvent(
                    vendor=self.client.vendor,
                    device=self.device_id,
                    unit=self.unit,
                    seq=self.next_seq,
                    observed_at=observed_at or dt.datetime.now(dt.UTC),
                    event_type=CameraEventType(event_type),
                    confidence=confidence,
                    plate=plate,
                    speed_kmh=speed_kmh,
                    speed_limit_kmh=speed_limit_kmh,
                    object_count=object_count,
                    lat=lat,
                    lon=lon,
                    image_url=image_url,
                    snapshot=snapshot,
                )
                event = codecs.decode(codecs.encode(event), CameraEvent)
            except (ValueError, codecs.ContractError) as exc:
                raise InvalidEvent(str(exc)) from None
            self.client.publish(event)
            self.next_seq += 1
        return event
