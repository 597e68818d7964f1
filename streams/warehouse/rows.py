"""Row builders: pure functions turning contract objects into the warehouse's row dicts, one per table."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ioc import topics
from ioc.aqi import AqiResult
from ioc.events import (
    MEASURES,
    CameraEvent,
    CitizenReport,
    DeadLetter,
    Incident,
    IncidentCommand,
    IncidentState,
    Ingested,
    SensorReading,
    ServiceRecord,
)
from ioc.units import Level

__all__ = [
    "AQI_MEASURE",
    "DELIVERY_STATUSES",
    "HISTORY_ACTIONS",
    "PERIOD_KINDS",
    "TABLES",
    "WINDOWS",
    "Row",
    "aggregate_row",
    "aqi_row",
    "camera_row",
    "deadletter_row",
    "delivery_row",
    "device_status_row",
    "dossier_row",
    "history_row",
    "incident_row",
    "indicator_rows",
    "reading_rows",
    "refusal_row",
    "report_row",
]

Row = dict[str, Any]
"""A row whose keys are exactly its table's columns in docs/warehouse.md, in order, so `RowSink.write(table, rows)`
(streams/warehouse/sink.py) inserts it as it is. The Faust agents build them; nothing here does I/O. Conventions
the tables rely on:

- Times are aware UTC, cut to the second: columns are `DateTime('UTC')`, so a row equals what a reader gets back
  and two copies of one event are byte-identical duplicates that collapse.
- Absent optional text is `''` (the columns are not Nullable); absent numbers and coordinates are None.
- Flags are 0/1 (`UInt8`); enums are their string values.
- Every row about a place carries `unit` and its `path`, and the path must end with the unit's code: scoping by
  path (`path = P OR startsWith(path, 'P/')`) is only as right as that pairing.
"""

TABLES: Final[frozenset[str]] = frozenset(
    {
        "readings",
        "camera_events",
        "device_status",
        "unit_aggregates",
        "aqi_hourly",
        "incidents",
        "incident_history",
        "citizen_reports",
        "dossiers",
        "indicators_766",
        "deadletters",
        "command_refusals",
        "notification_deliveries",
    }
)
"""The tables the stream workers write (schema_migrations belongs to the migration runner)."""

WINDOWS: Final[frozenset[str]] = frozenset({"1m", "15m"})
"""`unit_aggregates.window`: 1-minute tumbling, 15-minute hopping every 5 minutes."""

AQI_MEASURE: Final = "aqi"
"""`unit_aggregates.measure` for the worst station's hourly VN_AQI; every other measure is a MEASURES name."""

PERIOD_KINDS: Final[frozenset[str]] = frozenset({"day", "month"})

HISTORY_ACTIONS: Final[frozenset[str]] = frozenset(
    {"opened", "updated", "acknowledge", "assign", "dispatch", "resolve", "close", "reopen", "escalate", "cleared"}
    # A citizen report's PAKN steps (ioc.pakn) and a report linked to the incident (streams.linking).
    | {"reject", "request_info", "supply_info", "answer", "linked"}
)
"""`incident_history.action`: the stream's own changes (opened, updated, escalate, cleared, linked) and operators'."""

_AQI_POLLUTANTS: Final = ("pm25", "pm10", "no2", "o3", "co", "so2")
_STATES: Final = frozenset(s.value for s in IncidentState)


_last_whole_second: tuple[dt.datetime, dt.datetime] = (dt.datetime.min.replace(tzinfo=dt.UTC),) * 2
"""The last UTC time cut to whole seconds, and the result: a batch's readings often share a receive time."""


def _utc(value: dt.datetime, what: str) -> dt.datetime:
    global _last_whole_second  # noqa: PLW0603 - a one-entry cache, swapped whole (one assignment)
    if value.tzinfo is dt.UTC:  # what the contracts decode to: no conversion (the hot path)
        if not value.microsecond:
            return value
        last = _last_whole_second
        if last[0] == value:
            return last[1]
        whole = value.replace(microsecond=0)  # 1.5 µs: the dearest step of a reading's row
        _last_whole_second = (value, whole)
        return whole
    if value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {value.isoformat()}")
    return value.astimezone(dt.UTC).replace(microsecond=0)


def _utc_or_none(value: dt.datetime | None, what: str) -> dt.datetime | None:
    return None if value is None else _utc(value, what)


def _check_path(unit: str, path: str) -> str:
    if not path or path.rsplit("/", maxsplit=1)[-1] != unit:
        raise ValueError(f"path {path!r} does not end with unit {unit!r}: pass the unit's own path, e.g. 74/724/{unit}")
    return path


# --- observations ---------------------------------------------------------------------------------------


def reading_rows(ingested: Ingested) -> list[Row]:
    """`readings`: one row per measure of a sensor reading, in measure-name order."""
    reading = ingested.event
    if not isinstance(reading, SensorReading):
        raise TypeError(f"reading_rows takes a sensor reading, got {type(reading).__name__}")
    path = _check_path(reading.unit, ingested.path)
    observed_at = _utc(reading.observed_at, "observed_at")
    received_at = _utc(ingested.received_at, "received_at")
    return [
        {
            "device_key": topics.device_key(reading.vendor, reading.device),
            "vendor": reading.vendor,
            "device": reading.device,
            "unit": reading.unit,
            "path": path,
            "kind": reading.kind.value,
            "seq": reading.seq,
            "measure": measure,
            "value": float(value),
            "observed_at": observed_at,
            "received_at": received_at,
            "lat": reading.lat,
            "lon": reading.lon,
        }
        for measure, value in sorted(reading.values.items())
    ]


def camera_row(ingested: Ingested, duplicate: bool, incident_id: str) -> Row:
    """`camera_events`: one detection; `duplicate` when the de-duplication window had it, `incident_id` or ''."""
    event = ingested.event
    if not isinstance(event, CameraEvent):
        raise TypeError(f"camera_row takes a camera event, got {type(event).__name__}")
    return {
        "device_key": topics.device_key(event.vendor, event.device),
        "vendor": event.vendor,
        "device": event.device,
        "unit": event.unit,
        "path": _check_path(event.unit, ingested.path),
        "seq": event.seq,
        "event_type": event.event_type.value,
        "confidence": float(event.confidence),
        "plate": event.plate or "",
        "speed_kmh": event.speed_kmh,
        "speed_limit_kmh": event.speed_limit_kmh,
        "object_count": event.object_count,
        "lat": event.lat,
        "lon": event.lon,
        "image_url": event.image_url or "",
        "snapshot": event.snapshot or "",
        "observed_at": _utc(event.observed_at, "observed_at"),
        "received_at": _utc(ingested.received_at, "received_at"),
        "duplicate": int(duplicate),
        "incident_id": incident_id,
    }


def device_status_row(latest: Ingested, *, readings: int) -> Row:
    """`device_status`: a device as of its latest observation in a flush, with the flush's reading count.

    `last_seen` is when the platform received it, not the device's own clock: a device whose clock runs
    ahead would otherwise look fresh forever, its future timestamp winning every later version.
    """
    event = latest.event
    if readings < 0:
        raise ValueError(f"readings must be 0 or more, got {readings}")
    kind = event.kind.value if isinstance(event, SensorReading) else topics.CAMERA_KIND
    return {
        "device_key": topics.device_key(event.vendor, event.device),
        "vendor": event.vendor,
        "device": event.device,
        "unit": event.unit,
        "path": _check_path(event.unit, latest.path),
        "kind": kind,
        "last_seen": _utc(latest.received_at, "received_at"),
        "last_seq": event.seq,
        "readings": readings,
        "lat": event.lat,
        "lon": event.lon,
    }


# --- aggregates -------------------------------------------------------------------------------------------


def aggregate_row(
    *,
    unit: str,
    path: str,
    level: Level | str,
    window: str,
    window_start: dt.datetime,
    measure: str,
    count: int,
    total: float,
    minimum: float,
    maximum: float,
    devices: int,
    version: int,
) -> Row:
    """`unit_aggregates`: one unit × window × measure; `mean` is `total / count`, `version` grows per rewrite."""
    level_value = Level(level).value
    if window not in WINDOWS:
        raise ValueError(f"window {window!r} is not one of {sorted(WINDOWS)}")
    if measure != AQI_MEASURE and measure not in MEASURES:
        raise ValueError(f"measure {measure!r} is neither {AQI_MEASURE!r} nor a name in ioc.events.MEASURES")
    if count < 1:
        raise ValueError(f"an aggregate needs at least one reading, got count={count}")
    if not minimum <= maximum:
        raise ValueError(f"minimum {minimum} is above maximum {maximum}")
    return {
        "unit": unit,
        "path": _check_path(unit, path),
        "level": level_value,
        "window": window,
        "window_start": _utc(window_start, "window_start"),
        "measure": measure,
        "count": count,
        "sum": float(total),
        "min": float(minimum),
        "max": float(maximum),
        "mean": float(total) / count,
        "devices": devices,
        "version": version,
    }


def aqi_row(*, device_key: str, unit: str, path: str, hour: dt.datetime, result: AqiResult, version: int) -> Row:
    """`aqi_hourly`: one air station's hourly VN_AQI with its band, dominant pollutant and sub-indices."""
    start = _utc(hour, "hour")
    if start.minute or start.second:
        raise ValueError(f"hour must be the start of an hour, got {hour.isoformat()}")
    return {
        "device_key": device_key,
        "unit": unit,
        "path": _check_path(unit, path),
        "hour": start,
        "aqi": result.aqi,
        "band": result.band.level,
        "dominant": result.dominant,
        **{p: (None if p not in result.sub_indices else float(result.sub_indices[p])) for p in _AQI_POLLUTANTS},
        "version": version,
    }


# --- incidents and citizens ----------------------------------------------------------------------------


def incident_row(incident: Incident, path: str, responsible_path: str) -> Row:
    """`incidents`: one version of an incident; the unit it is escalated or dispatched to is responsible.

    An incident without `responsible_unit` is its own unit's, so pass the unit's path as `responsible_path`.
    """
    responsible_unit = incident.responsible_unit or incident.unit
    return {
        "incident_id": incident.incident_id,
        "version": incident.version,
        "rule": incident.rule,
        "module": incident.module.value,
        "unit": incident.unit,
        "path": _check_path(incident.unit, path),
        "responsible_unit": responsible_unit,
        "responsible_path": _check_path(responsible_unit, responsible_path),
        "severity": incident.severity.value,
        "state": incident.state.value,
        "title": incident.title,
        "opened_at": _utc(incident.opened_at, "opened_at"),
        "updated_at": _utc(incident.updated_at, "updated_at"),
        "sla_due_at": _utc_or_none(incident.sla_due_at, "sla_due_at"),
        "escalation_level": incident.escalation_level,
        "vendor": incident.vendor or "",
        "devices": list(incident.devices),
        "reports": list(incident.reports),
        # Sorted keys: two copies of one version must serialise identically to be duplicates.
        "detail": json.dumps(dict(incident.detail), ensure_ascii=False, sort_keys=True, separators=(",", ":")),
        "lat": incident.lat,
        "lon": incident.lon,
        "note": incident.note or "",
        "assignee": incident.assignee or "",
        "evidence": list(incident.evidence),
    }


def history_row(incident: Incident, path: str, responsible_path: str, action: str, actor: str) -> Row:
    """`incident_history`: one version with what produced it (`action`) and who (`actor`, '' for the stream)."""
    action_value = str(action)
    if action_value not in HISTORY_ACTIONS:
        raise ValueError(f"action {action_value!r} is not one of {sorted(HISTORY_ACTIONS)}")
    return {**incident_row(incident, path, responsible_path), "action": action_value, "actor": actor}


def report_row(
    report: CitizenReport,
    path: str,
    incident_id: str,
    state: IncidentState | str,
    version: int,
    *,
    linked_incident_id: str = "",
) -> Row:
    """`citizen_reports`: a report with its incident and that incident's state ('' for both until linked), and
    the open incident it is about (`linked_incident_id`, streams.linking; '' when none)."""
    state_value = str(state)
    if state_value not in _STATES | {""}:
        raise ValueError(f"state {state_value!r} is not an incident state ({', '.join(sorted(_STATES))}) or ''")
    contact = report.contact
    return {
        "report_id": report.report_id,
        "source": report.source,
        "category": report.category,
        "unit": report.unit,
        "path": _check_path(report.unit, path),
        "submitted_at": _utc(report.submitted_at, "submitted_at"),
        "text": report.text,
        "lat": report.lat,
        "lon": report.lon,
        "address": report.address or "",
        "media_urls": list(report.media_urls),
        "contact_name": (contact.name if contact else None) or "",
        "contact_phone": (contact.phone if contact else None) or "",
        "contact_email": (contact.email if contact else None) or "",
        "incident_id": incident_id,
        "linked_incident_id": linked_incident_id,
        "state": state_value,
        "version": version,
    }


# --- public services ---------------------------------------------------------------------------------------


def dossier_row(record: ServiceRecord, path: str) -> Row:
    """`dossiers`: one snapshot of a dossier, every ServiceRecord field plus the unit's path."""
    return {
        "dossier_id": record.dossier_id,
        "status_version": record.status_version,
        "unit": record.unit,
        "procedure_code": record.procedure_code,
        "status": record.status.value,
        "channel": record.channel.value,
        "received_at": _utc(record.received_at, "received_at"),
        "due_at": _utc(record.due_at, "due_at"),
        "occurred_at": _utc(record.occurred_at, "occurred_at"),
        "finished_at": _utc_or_none(record.finished_at, "finished_at"),
        "fully_online": int(record.fully_online),
        "requires_payment": int(record.requires_payment),
        "paid_online": int(record.paid_online),
        "digitised": int(record.digitised),
        "result_digital": int(record.result_digital),
        "supplement_count": record.supplement_count,
        "supplement_days": float(record.supplement_days),
        "synced_to_national_portal": int(record.synced_to_national_portal),
        "satisfaction": record.satisfaction or "",
        "path": _check_path(record.unit, path),
    }


def indicator_rows(
    scorecard_rows: Iterable[Mapping[str, Any]],
    *,
    unit: str,
    path: str,
    period_kind: str,
    period_start: dt.date,
    scheme: str,
    computed_at: dt.datetime,
) -> list[Row]:
    """`indicators_766`: one row per indicator of a scorecard (`streams.scoring766.Scorecard.to_rows()`).

    `period_start` is the period's first local calendar day (a scorecard's own `period_start` is an
    instant, which in UTC falls on the day before a Vietnamese midnight), so the caller names it.
    """
    if period_kind not in PERIOD_KINDS:
        raise ValueError(f"period_kind {period_kind!r} is not one of {sorted(PERIOD_KINDS)}")
    if isinstance(period_start, dt.datetime) or not isinstance(period_start, dt.date):
        raise TypeError(f"period_start must be a date (the period's first day), got {period_start!r}")
    if period_kind == "month" and period_start.day != 1:
        raise ValueError(f"a month period starts on day 1, got {period_start.isoformat()}")
    path = _check_path(unit, path)
    computed = _utc(computed_at, "computed_at")
    rows: list[Row] = []
    for row in scorecard_rows:
        if row["unit"] != unit or row["scheme"] != scheme:
            raise ValueError(
                f"scorecard row of unit {row['unit']!r}, scheme {row['scheme']!r} given for unit {unit!r}, "
                f"scheme {scheme!r}"
            )
        rows.append(
            {
                "unit": unit,
                "path": path,
                "period_kind": period_kind,
                "period_start": period_start,
                "scheme": scheme,
                "code": row["indicator"],
                "group_code": row["group"],
                "points": float(row["points"]),
                "max_points": float(row["max_points"]),
                "numerator": int(row["numerator"]),
                "denominator": int(row["denominator"]),
                "rate": float(row["rate"]),
                "no_data": int(row["no_data"]),
                "measured": int(row["measured"]),
                "policy": str(row["policy"]),
                "lost_dossiers": list(row["lost_dossiers"]),
                "computed_at": computed,
            }
        )
    return rows


# --- refused input -------------------------------------------------------------------------------------------


def deadletter_row(letter: DeadLetter, raw: bytes, *, place: tuple[str, str]) -> Row:
    """`deadletters`: a refused input; `raw` is the dead-letter record as consumed, whose SHA-1 is its id.

    `place` is the (unit, path) of the device topic the letter came from, or ("", "") when it names no unit
    of the tree (an HTTP route, a Kafka topic, a malformed topic): such letters are the root site's only."""
    unit, path = place
    return {
        # Not a security use: SHA-1 is the contract's content id, chosen for its short hex form.
        "letter_id": hashlib.sha1(raw, usedforsecurity=False).hexdigest(),
        "received_at": _utc(letter.received_at, "received_at"),
        "source": letter.source,
        "reason": letter.reason,
        "detail": letter.detail,
        "vendor": letter.vendor or "",
        "device": letter.device or "",
        # `size` is the original length; a record that left it at 0 kept the whole payload.
        "size": letter.size or len(letter.payload),
        "payload": base64.b64encode(letter.payload).decode("ascii"),
        "count": letter.count,  # refusals this letter stands for (a flood's summary: many)
        "unit": unit,
        "path": _check_path(unit, path) if unit else "",
    }


def refusal_row(
    command: IncidentCommand,
    *,
    reason: str,
    detail: str,
    refused_at: dt.datetime,
    place: tuple[str, str],
    responsible: tuple[str, str],
) -> Row:
    """`command_refusals`: a command the workers did not carry out, why, and the incident's (unit, path) pairs."""
    unit, path = place
    responsible_unit, responsible_path = responsible
    return {
        "command_id": command.command_id,
        "incident_id": command.incident_id,
        "action": command.action.value,
        "actor": command.actor,
        "site_unit": command.site_unit,
        "target_unit": command.target_unit or "",
        "unit": unit,
        "path": _check_path(unit, path) if unit else "",
        "responsible_unit": responsible_unit,
        "responsible_path": _check_path(responsible_unit, responsible_path) if responsible_unit else "",
        "reason": reason,
        "detail": detail,
        "issued_at": _utc(command.issued_at, "issued_at"),
        "refused_at": _utc(refused_at, "refused_at"),
    }


DELIVERY_STATUSES: Final[frozenset[str]] = frozenset({"sent", "failed", "held"})
"""`notification_deliveries.status`: sent; failed (out of attempts; `detail` says how the last one failed); held
(waiting for the site's digest)."""


def delivery_row(
    incident: Incident,
    *,
    delivery_id: str,
    event: str,
    rule: str,
    recipient: str,
    channel: str,
    status: str,
    attempts: int,
    detail: str,
    path: str,
    responsible_path: str,
    created_at: dt.datetime,
    updated_at: dt.datetime,
) -> Row:
    """`notification_deliveries`: one delivery's latest state, placed like its incident."""
    if status not in DELIVERY_STATUSES:
        raise ValueError(f"status {status!r} is not one of {sorted(DELIVERY_STATUSES)}")
    responsible_unit = incident.responsible_unit or incident.unit
    return {
        "delivery_id": delivery_id,
        "incident_id": incident.incident_id,
        "event": event,
        "rule": rule,
        "recipient": recipient,
        "channel": channel,
        "status": status,
        "attempts": attempts,
        "detail": detail[:2000],
        "unit": incident.unit,
        "path": _check_path(incident.unit, path),
        "responsible_unit": responsible_unit,
        "responsible_path": _check_path(responsible_unit, responsible_path),
        "created_at": _utc(created_at, "created_at"),
        "updated_at": _utc(updated_at, "updated_at"),
    }
