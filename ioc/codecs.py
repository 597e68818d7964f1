"""Encoding and validating events as JSON bytes: the one way any component turns events into bytes.

Decoders are built once per type and reused (building one per message would cost more than the decode
itself). A payload that does not fit its contract raises `ContractError` whose `reason` is a stable,
machine-readable code for dead-letter records and whose message names the offending field.
"""

from __future__ import annotations

from typing import Any, Final, Generic, TypeVar

import msgspec

from ioc.events import DeadLetterReason

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "Codec",
    "ContractError",
    "codec_for",
    "decode",
    "encode",
    "encode_json",
    "to_builtins",
]

T = TypeVar("T")

MAX_PAYLOAD_BYTES: Final = 256 * 1024
"""Largest message accepted anywhere (bytes): one event is under 2 KiB; a gateway's batch of a few hundred
readings for one device fits."""


class ContractError(ValueError):
    """A payload that is not a valid event: `reason` is a dead-letter code, the message says why."""

    def __init__(self, reason: DeadLetterReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


_encoder: Final = msgspec.json.Encoder()


class Codec(Generic[T]):
    """JSON codec for one event type, with validation on decode."""

    __slots__ = ("_decoder", "max_bytes", "type")

    def __init__(self, type_: type[T], *, max_bytes: int | None = MAX_PAYLOAD_BYTES) -> None:
        self.type = type_
        self.max_bytes = max_bytes
        self._decoder = msgspec.json.Decoder(type_)

    def encode(self, event: T) -> bytes:
        return _encoder.encode(event)

    def decode(self, data: bytes | bytearray | memoryview | str) -> T:
        if self.max_bytes is not None and len(data) > self.max_bytes:
            raise ContractError(
                DeadLetterReason.TOO_LARGE, f"payload is {len(data)} bytes, the limit is {self.max_bytes}"
            )
        try:
            return self._decoder.decode(data)
        except msgspec.ValidationError as exc:
            raise ContractError(DeadLetterReason.SCHEMA, str(exc)) from None
        except msgspec.DecodeError as exc:
            raise ContractError(DeadLetterReason.NOT_JSON, str(exc)) from None


_codecs: dict[type[Any], Codec[Any]] = {}


def codec_for(type_: type[T]) -> Codec[T]:
    """The shared codec for `type_`."""
    codec = _codecs.get(type_)
    if codec is None:
        codec = _codecs[type_] = Codec(type_)
    return codec


def encode(event: msgspec.Struct) -> bytes:
    """Encode any event or envelope to JSON bytes (with its `schema` tag)."""
    return _encoder.encode(event)


def encode_json(value: Any) -> bytes:
    """Encode plain data (dicts, lists, datetimes) as JSON bytes with the same encoder."""
    return _encoder.encode(value)


def decode(data: bytes | bytearray | memoryview | str, type_: type[T]) -> T:
    """Decode and validate `data` as `type_`, raising `ContractError`."""
    return codec_for(type_).decode(data)


def to_builtins(event: msgspec.Struct) -> dict[str, Any]:
    """The event as JSON-compatible builtins (for SQL rows, APIs and tests)."""
    result: dict[str, Any] = msgspec.to_builtins(event)
    return result
