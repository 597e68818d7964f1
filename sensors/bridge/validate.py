"""Deciding what one MQTT message is: an accepted observation with its unit path, or a refusal with a reason.

Pure: no broker, no Kafka; the caller passes "now". The bridge loop calls `Validator.check_message(topic,
payload, now)` for every message; whatever the bytes are, it returns `Accepted` or `Rejected` per event and
never raises (an exception while judging becomes `internal-error`), so one bad payload cannot stop the flow
(a property test and `python -m bench fuzz` try). Reasons are the stable dead-letter codes documented in
docs/vendors.md. On a 2025 deployment (`edition`) devices name their new commune-level unit, and the accepted
event carries the 2024 commune the rows are stamped with instead (`ioc.editions.row_unit`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Final

import msgspec

from ioc import codecs, editions, topics, units
from ioc.events import MEASURES, CameraEvent, DeadLetterReason, SensorReading
from ioc.units import UnitTree
from sensors.bridge import fiware
from sensors.bridge.geofence import ProvinceBounds

__all__ = ["MAX_BATCH_ITEMS", "Accepted", "Rejected", "Validator"]


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    event: SensorReading | CameraEvent
    topic: topics.MqttTopic
    path: str


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    reason: DeadLetterReason
    detail: str
    vendor: str | None = None
    device: str | None = None


_reading_codec: Final = codecs.codec_for(SensorReading)
_camera_codec: Final = codecs.codec_for(CameraEvent)
_generic: Final = msgspec.json.Decoder()
_raw_list: Final = msgspec.json.Decoder(list[msgspec.Raw])

MAX_BATCH_ITEMS: Final = 1000
"""Most events one MQTT message may carry (a gateway's batch for one device)."""


class Validator:
    """Checks messages against the contracts, the topic they came on, and the units tree."""

    def __init__(
        self,
        tree: UnitTree,
        *,
        max_bytes: int = codecs.MAX_PAYLOAD_BYTES,
        max_age: dt.timedelta = dt.timedelta(days=7),
        max_ahead: dt.timedelta = dt.timedelta(minutes=5),
        edition: units.Edition = editions.DEFAULT_EDITION,
    ) -> None:
        """`tree` is the one rows are stamped in (2024); `edition` the one devices publish under."""
        self._tree = tree
        self._edition = edition
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._max_ahead = max_ahead
        self._bounds = ProvinceBounds(tree)
        self._paths: dict[str, str] = {}

    def check(self, topic: str, payload: bytes | bytearray, now: dt.datetime | None = None) -> Accepted | Rejected:
        """The verdict on one message carrying one event, judged at `now` (UTC; the current time if None)."""
        try:
            return self._check(topic, payload, now or dt.datetime.now(dt.UTC))
        except Exception as exc:  # noqa: BLE001 - a payload must never stop the bridge
            return _internal_error(topic, exc)

    def check_message(
        self, topic: str, payload: bytes | bytearray, now: dt.datetime | None = None
    ) -> list[tuple[Accepted | Rejected, bytes]]:
        """Verdicts on a message carrying one event or a JSON array of a device's events, item by item.

        Gateways batch a device's readings into one message (paho's per-message cost, not ours, bounds
        the bridge's message rate), so an array is split and each item judged on its own: one bad reading
        is dead-lettered with its own bytes while the rest of its batch flows. Never raises.
        """
        data = bytes(payload)
        try:
            return self._check_message(topic, data, now or dt.datetime.now(dt.UTC))
        except Exception as exc:  # noqa: BLE001 - e.g. RecursionError from 100,000 nested arrays
            return [(_internal_error(topic, exc), data)]

    def _check_message(self, topic: str, data: bytes, now: dt.datetime) -> list[tuple[Accepted | Rejected, bytes]]:
        if len(data) > self._max_bytes or data.lstrip()[:1] != b"[":
            return [(self.check(topic, data, now), data)]
        try:
            items = _raw_list.decode(data)
        except msgspec.DecodeError as exc:
            return [(Rejected(DeadLetterReason.NOT_JSON, str(exc), *_topic_sender(topic)), data)]
        if not 1 <= len(items) <= MAX_BATCH_ITEMS:
            return [
                (
                    Rejected(DeadLetterReason.SCHEMA, f"a batch holds 1..{MAX_BATCH_ITEMS} events, not {len(items)}"),
                    data,
                )
            ]
        parts: list[tuple[Accepted | Rejected, bytes]] = []
        for raw in items:
            item = bytes(raw)
            parts.append((self.check(topic, item, now), item))
        return parts

    def _check(self, topic: str, payload: bytes | bytearray, now: dt.datetime) -> Accepted | Rejected:
        if len(payload) > self._max_bytes:
            return Rejected(
                DeadLetterReason.TOO_LARGE,
                f"payload is {len(payload)} bytes, the limit is {self._max_bytes}",
                *_topic_sender(topic),
            )
        try:
            where = topics.parse_mqtt_topic(topic)
        except topics.TopicError as exc:
            return Rejected(DeadLetterReason.BAD_TOPIC, str(exc))
        event = self._decode(where, payload)
        if isinstance(event, Rejected):
            return event
        mismatch = _disagreement(where, event)
        if mismatch:
            return Rejected(DeadLetterReason.TOPIC_MISMATCH, mismatch, where.vendor, where.device)
        placed = self._placed(event, where)
        if isinstance(placed, Rejected):
            return placed
        event, path = placed
        lie = self._untrue(event, now)
        if lie is not None:
            reason, detail = lie
            return Rejected(reason, detail, where.vendor, where.device)
        if isinstance(event, SensorReading):
            for name, value in event.values.items():
                measure = MEASURES[name]
                if not measure.low <= value <= measure.high:
                    return Rejected(
                        DeadLetterReason.IMPLAUSIBLE_VALUE,
                        f"{name}={value} {measure.unit} is outside the possible range {measure.low}..{measure.high}",
                        where.vendor,
                        where.device,
                    )
        return Accepted(event, where, path)

    def _placed(
        self, event: SensorReading | CameraEvent, where: topics.MqttTopic
    ) -> tuple[SensorReading | CameraEvent, str] | Rejected:
        """The event stamped with the unit its rows carry, and that unit's path; or why its unit is unknown.

        On a deployment of another edition than the rows' tree (2025) the device's code becomes the 2024
        commune the new unit absorbed (`ioc.editions.row_unit`).
        """
        if self._edition != self._tree.edition:
            code = editions.row_unit(event.unit, self._edition, event.lat, event.lon)
            if code is None:
                return Rejected(
                    DeadLetterReason.UNKNOWN_UNIT,
                    f"unit {event.unit} is not in the {self._edition} units tree "
                    "(nor a 2024 commune the reform mapping carries over)",
                    where.vendor,
                    where.device,
                )
            event = msgspec.structs.replace(event, unit=code)
        path = self._paths.get(event.unit)
        if path is None:
            if event.unit not in self._tree:
                return Rejected(
                    DeadLetterReason.UNKNOWN_UNIT,
                    f"unit {event.unit} is not in the units tree",
                    where.vendor,
                    where.device,
                )
            path = self._paths[event.unit] = self._tree.path(event.unit)
        return event, path

    def _untrue(self, event: SensorReading | CameraEvent, now: dt.datetime) -> tuple[DeadLetterReason, str] | None:
        """Why the event's time or place cannot be true, or None: a gauge's "current" level must not be
        pinned by a reading dated 2099, nor a commune's map show a sensor that reports from Hà Nội."""
        age = now - event.observed_at
        if age > self._max_age:
            return (
                DeadLetterReason.OBSERVED_TOO_OLD,
                f"observed_at {event.observed_at.isoformat()} is {_span(age)} before now; "
                f"the bridge accepts up to {_span(self._max_age)}",
            )
        if -age > self._max_ahead:
            return (
                DeadLetterReason.OBSERVED_IN_FUTURE,
                f"observed_at {event.observed_at.isoformat()} is {_span(-age)} after now; "
                f"the bridge accepts clocks up to {_span(self._max_ahead)} ahead",
            )
        if event.lat is not None and event.lon is not None:
            box = self._bounds.of(event.unit)
            if not box.contains(event.lat, event.lon):
                return (
                    DeadLetterReason.OUTSIDE_PROVINCE,
                    f"location ({event.lat}, {event.lon}) is outside province {box.province} of unit {event.unit} "
                    f"(lat {box.south}..{box.north}, lon {box.west}..{box.east})",
                )
        return None

    def _decode(self, where: topics.MqttTopic, payload: bytes | bytearray) -> SensorReading | CameraEvent | Rejected:
        codec = _camera_codec if where.kind == topics.CAMERA_KIND else _reading_codec
        try:
            return codec.decode(payload)
        except codecs.ContractError as exc:
            if exc.reason is not DeadLetterReason.SCHEMA or where.kind == topics.CAMERA_KIND:
                return Rejected(exc.reason, exc.message, where.vendor, where.device)
            first_error = exc
        # Not a platform reading: maybe a FIWARE Smart Data Models entity, which is normalised.
        try:
            document = _generic.decode(payload)
        except msgspec.ValidationError as exc:  # JSON, but e.g. a number no float holds (1e400)
            return Rejected(DeadLetterReason.SCHEMA, str(exc), where.vendor, where.device)
        except msgspec.DecodeError as exc:  # e.g. invalid UTF-8 in a string the typed decoder did not reach
            return Rejected(DeadLetterReason.NOT_JSON, str(exc), where.vendor, where.device)
        if not isinstance(document, dict) or not fiware.is_fiware(document):
            return Rejected(DeadLetterReason.SCHEMA, first_error.message, where.vendor, where.device)
        try:
            return fiware.normalise(document, where)
        except fiware.NotFiware as exc:
            return Rejected(DeadLetterReason.UNSUPPORTED_FORMAT, str(exc), where.vendor, where.device)
        except (ValueError, TypeError) as exc:
            return Rejected(DeadLetterReason.SCHEMA, f"FIWARE entity: {exc}", where.vendor, where.device)


def _topic_sender(topic: str) -> tuple[str | None, str | None]:
    """The vendor and device a well-formed topic names, for a refusal decided before (or without) reading the
    payload: the letter still reaches its vendor (their rejections through the citizen API) and its unit."""
    try:
        where = topics.parse_mqtt_topic(topic)
    except topics.TopicError:
        return None, None
    return where.vendor, where.device


def _internal_error(topic: str, exc: BaseException) -> Rejected:
    # Only the exception's type: its text or traceback may echo server internals or megabytes of input.
    detail = f"judging the message raised {type(exc).__name__}; it was set aside"
    return Rejected(DeadLetterReason.INTERNAL_ERROR, detail, *_topic_sender(topic))


def _span(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds} s"


def _disagreement(where: topics.MqttTopic, event: SensorReading | CameraEvent) -> str:
    problems = []
    if event.vendor != where.vendor:
        problems.append(f"vendor {event.vendor!r} ≠ topic's {where.vendor!r}")
    if event.device != where.device:
        problems.append(f"device {event.device!r} ≠ topic's {where.device!r}")
    if event.unit != where.unit:
        problems.append(f"unit {event.unit!r} ≠ topic's {where.unit!r}")
    if isinstance(event, SensorReading) and event.kind.value != where.kind:
        problems.append(f"kind {event.kind.value!r} ≠ topic's {where.kind!r}")
    if isinstance(event, CameraEvent) and where.kind != topics.CAMERA_KIND:
        problems.append(f"a camera event on a {where.kind!r} topic")
    return "; ".join(problems)
