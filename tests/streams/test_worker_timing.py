"""Stream workers end to end, driven by ticks: a silent device, a violation hotspot, a stalled vehicle seen 20 times."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ioc.events import CameraEvent, CameraEventType
from tests.streams.worker import Worker, reading


@pytest.fixture
def worker(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Iterator[Worker]:
    w = Worker(kafka, clickhouse, tmp_path)  # its own database
    w.start()
    try:
        w.wait_live()
        yield w
    finally:
        w.close()


def _start(hours_ago: float) -> dt.datetime:
    return (dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours_ago)).replace(second=0, microsecond=0)


def test_a_silent_device_gets_one_vendor_incident_at_the_tick_that_found_it_and_it_closes_when_the_device_is_back(
    worker: Worker,
) -> None:
    vendor, device = "quiet-hydro", f"wl-{uuid.uuid4().hex[:6]}"
    base = _start(3)
    worker.readings(
        [
            reading(vendor, device, "25957", seq, {"waterLevel": 0.6}, base + dt.timedelta(seconds=30 * seq))
            for seq in range(10)
        ]
    )
    last = base + dt.timedelta(seconds=270)
    worker.tick(last + dt.timedelta(minutes=9))  # quiet for 9 minutes: nothing yet
    found_at = last + dt.timedelta(minutes=11)
    worker.tick(found_at)
    db = worker.database
    query = f"SELECT * FROM {db}.incidents FINAL WHERE rule = 'device-silence' AND vendor = %(v)s"
    [incident] = worker.wait_for(query, lambda rows: len(rows) >= 1, v=vendor)
    assert incident["opened_at"] == found_at
    assert incident["incident_id"] == f"device-silence:25957:{vendor}.{device}:{found_at:%Y%m%dT%H%M%S}"
    assert (incident["module"], incident["severity"], incident["state"], incident["vendor"]) == (
        "data_quality",
        "medium",
        "open",
        vendor,
    )
    assert (incident["unit"], incident["responsible_unit"], incident["escalation_level"]) == ("25957", "25957", 0)
    assert incident["devices"] == [f"{vendor}/{device}"]

    # Hours later, far past its 2-hour SLA, still the vendor's: not pushed up to Dĩ An district.
    much_later = found_at + dt.timedelta(hours=3)
    worker.tick(much_later)
    # The device is back: the incident closes itself.
    back = much_later + dt.timedelta(minutes=1)
    worker.readings([reading(vendor, device, "25957", 10, {"waterLevel": 0.6}, back)])
    [closed] = worker.wait_for(
        f"SELECT * FROM {db}.incidents FINAL WHERE incident_id = %(i)s",
        lambda rows: rows and rows[0]["state"] == "closed",
        i=incident["incident_id"],
    )
    assert (closed["escalation_level"], closed["responsible_unit"], closed["updated_at"]) == (0, "25957", back)
    history = worker.query(
        f"SELECT action FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version",
        i=incident["incident_id"],
    )
    assert [h["action"] for h in history] == ["opened", "cleared"]
    count = f"SELECT count() AS n FROM {db}.incidents FINAL WHERE rule = 'device-silence' AND vendor = %(v)s"
    assert worker.count(count, v=vendor) == 1


def _camera(
    device: str, unit: str, seq: int, at: dt.datetime, event_type: CameraEventType, **extra: Any
) -> CameraEvent:
    return CameraEvent(
        vendor="vn-vision",
        device=device,
        unit=unit,
        seq=seq,
        observed_at=at,
        event_type=event_type,
        confidence=0.92,
        **extra,
    )


def test_a_burst_of_violations_is_one_hotspot_and_twenty_obstruction_events_one_incident(worker: Worker) -> None:
    junction, street = f"cam-pc-{uuid.uuid4().hex[:6]}", f"cam-dh-{uuid.uuid4().hex[:6]}"
    base = _start(1)
    red = CameraEventType.RED_LIGHT
    violations = [
        _camera(junction, "25747", i, base + dt.timedelta(seconds=20 * i), red, plate=f"61A-{500 + i}.00")
        for i in range(8)
    ]
    repeats = [
        _camera(street, "25957", i, base + dt.timedelta(seconds=15 * i), CameraEventType.OBSTRUCTION, object_count=4)
        for i in range(20)
    ]
    worker.cameras(violations + repeats)
    worker.cameras(violations[:3] + repeats[:6])  # a gateway re-sending: nothing new, duplicates stay duplicates
    worker.tick(base + dt.timedelta(minutes=6))
    db = worker.database
    stored = worker.wait_for(
        f"SELECT device, count() AS n, sum(duplicate) AS dup FROM {db}.camera_events FINAL"
        " WHERE device IN (%(a)s, %(b)s) GROUP BY device",
        lambda rows: {r["device"]: r["n"] for r in rows} == {junction: 8, street: 20},
        a=junction,
        b=street,
    )
    assert {r["device"]: r["dup"] for r in stored} == {junction: 0, street: 19}
    query = (
        f"SELECT * FROM {db}.incidents FINAL WHERE rule IN ('camera-hotspot', 'camera-event')"
        " AND (has(devices, %(a)s) OR has(devices, %(b)s)) ORDER BY rule"
    )
    rows = worker.wait_for(
        query,
        lambda rows: {r["rule"] for r in rows} == {"camera-hotspot", "camera-event"},
        a=f"vn-vision/{junction}",
        b=f"vn-vision/{street}",
    )
    assert [r["rule"] for r in rows] == ["camera-event", "camera-hotspot"]
    obstruction, hotspot = rows
    assert (hotspot["unit"], hotspot["module"], hotspot["severity"], hotspot["state"]) == (
        "25747",
        "traffic",
        "low",
        "open",
    )
    assert hotspot["opened_at"] == base  # the cluster began with its first violation
    assert hotspot["incident_id"] == f"camera-hotspot:25747:vn-vision.{junction}:{base:%Y%m%dT%H%M%S}"
    assert (obstruction["unit"], obstruction["title"], obstruction["opened_at"]) == (
        "25957",
        "Ùn tắc, phương tiện dừng đỗ",
        base,
    )
    assert obstruction["incident_id"] == f"camera-obstruction:25957:{base:%Y%m%dT%H%M%S}"
    for incident in rows:
        history = worker.query(
            f"SELECT action FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version",
            i=incident["incident_id"],
        )
        assert [h["action"] for h in history] == ["opened"], incident["rule"]
