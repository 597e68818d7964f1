"""A camera event's snapshot key reaches its `camera_events` row (streams.warehouse.rows), '' without one."""

from __future__ import annotations

import datetime as dt

from ioc.events import CameraEvent, CameraEventType, Ingested
from streams.warehouse import rows

KEY = "466a934dd47512665d78aacab5dd0c4011dc253400b60b2898f45dab71ae12cf.png"
AT = dt.datetime(2026, 12, 7, 1, 0, tzinfo=dt.UTC)


def _ingested(snapshot: str | None) -> Ingested:
    event = CameraEvent(
        vendor="cam-vendor",
        device="cam-1",
        unit="25957",
        seq=3,
        observed_at=AT,
        event_type=CameraEventType.OBSTRUCTION,
        confidence=0.9,
        snapshot=snapshot,
    )
    return Ingested(event=event, path="74/724/25957", received_at=AT)


def test_the_row_keeps_the_snapshot_key() -> None:
    assert rows.camera_row(_ingested(KEY), duplicate=False, incident_id="x")["snapshot"] == KEY
    assert rows.camera_row(_ingested(None), duplicate=False, incident_id="")["snapshot"] == ""
