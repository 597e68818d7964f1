"""Deciding what one portal message is: accepted dossier snapshots, or refusals with a dead-letter reason. Pure.

The one-stop portal sends one `ServiceRecord` (a JSON object) or a batch (a JSON array); each item is
judged on its own, as the MQTT bridge judges a gateway's batch, so one bad snapshot is dead-lettered
with its own bytes while the rest flow. A snapshot must fit the contract and be about a unit this
connector serves (the site's subtree of the 2024 tree). Whatever the bytes, `judge` returns verdicts and
never raises. Reasons are dead-letter codes (`ioc.events.DeadLetterReason`: `not-json`, `schema`,
`too-large`, `unknown-unit`).
"""

from __future__ import annotations

import dataclasses
from typing import Final

import msgspec

from ioc import codecs
from ioc.events import DeadLetterReason, ServiceRecord
from ioc.scope import Scope

__all__ = ["Accepted", "Rejected", "judge"]

_records: Final = codecs.codec_for(ServiceRecord)
_raw_list: Final = msgspec.json.Decoder(list[msgspec.Raw])
_any: Final = msgspec.json.Decoder()


@dataclasses.dataclass(frozen=True, slots=True)
class Accepted:
    record: ServiceRecord
    raw: bytes


@dataclasses.dataclass(frozen=True, slots=True)
class Rejected:
    reason: DeadLetterReason
    detail: str
    raw: bytes
    dossier_id: str | None = None


def _dossier_id(raw: bytes) -> str | None:
    try:
        value = _any.decode(raw)
    except msgspec.DecodeError:
        return None
    found = value.get("dossier_id") if isinstance(value, dict) else None
    return found[:128] if isinstance(found, str) else None


def _one(raw: bytes, scope: Scope) -> Accepted | Rejected:
    try:
        record = _records.decode(raw)
    except codecs.ContractError as exc:
        return Rejected(exc.reason, exc.message, raw, _dossier_id(raw))
    if not scope.contains(record.unit):
        return Rejected(
            DeadLetterReason.UNKNOWN_UNIT,
            f"unit {record.unit!r} is not a unit this connector serves (site {scope.unit}, {scope.edition} tree)",
            raw,
            record.dossier_id,
        )
    return Accepted(record, raw)


def judge(body: bytes, scope: Scope, *, max_batch: int) -> list[Accepted | Rejected]:
    """Verdicts on a body holding one snapshot (an object) or a batch (an array), item by item."""
    stripped = body.lstrip()
    if not stripped.startswith(b"["):
        try:
            return [_one(body, scope)]
        except Exception as exc:  # noqa: BLE001 - a payload must never stop the connector; keep the reason
            return [Rejected(DeadLetterReason.SCHEMA, f"{type(exc).__name__}: {exc}", body)]
    try:
        items = _raw_list.decode(body)
    except msgspec.DecodeError as exc:
        return [Rejected(DeadLetterReason.NOT_JSON, str(exc), body)]
    except RecursionError:  # arrays nested deeper than the decoder goes (python -m bench fuzz found it)
        return [Rejected(DeadLetterReason.NOT_JSON, "the JSON is nested too deeply", body)]
    if not items:
        return [Rejected(DeadLetterReason.SCHEMA, "the batch is empty: send at least one dossier snapshot", body)]
    if len(items) > max_batch:
        return [
            Rejected(DeadLetterReason.TOO_LARGE, f"the batch has {len(items)} snapshots; at most {max_batch}", body)
        ]
    verdicts: list[Accepted | Rejected] = []
    for item in items:
        raw = bytes(item)
        try:
            verdicts.append(_one(raw, scope))
        except Exception as exc:  # noqa: BLE001 - see above
            verdicts.append(Rejected(DeadLetterReason.SCHEMA, f"{type(exc).__name__}: {exc}", raw))
    return verdicts
