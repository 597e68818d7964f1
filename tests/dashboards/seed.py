"""Seeded warehouse rows for the dashboards' tests: SCENARIOS.md's stories in a few wards, relative to now.

Every row that names a place carries its 2024 unit code and path, and every free text names its unit
(`[25951]`), so a scoping test can prove that a ward's site never shows a sibling ward's rows. Two
versions of some incidents and a re-delivered camera event check that readers collapse duplicates.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from ioc import snapshots, units
from ioc.clients.clickhouse import Warehouse

TREE = units.load_tree("2024")

FLOOD_WARD = "25957"  # Đông Hòa, Dĩ An: the flood story
SIBLING_WARD = "25951"  # Bình An, Dĩ An: the sibling that Đông Hòa's site must never see
OTHER_WARD = "25942"  # Dĩ An ward
AIR_WARDS = ("25987", "25966")  # Bình Hòa, Lái Thiêu (Thuận An): the pollution story
CAMERA_WARDS = ("25747", "25741", "25972")  # Phú Cường, Hiệp Thành, Thuận Giao: the violations story
DISTRICT = "724"
PROVINCE = "74"
ALL_WARDS = (FLOOD_WARD, SIBLING_WARD, OTHER_WARD, *AIR_WARDS, *CAMERA_WARDS)

FLOOD_INCIDENT = "flood-level:25957:20250601T0810"
HOTSPOT_INCIDENT = "camera-hotspot:25747:20250601T0800"
SNAPSHOT_IMAGE = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478da63f8cfc0000003010100"
    "c9fe92ef0000000049454e44ae426082"
)
"""A 1×1 PNG: the snapshot of the hotspot's latest detection (tests put it in their snapshot store)."""
SNAPSHOT_KEY = snapshots.key_for(SNAPSHOT_IMAGE, "png")
SIBLING_INCIDENT = "flood-level:25951:20250601T0815"


@dataclasses.dataclass(frozen=True)
class Seeded:
    now: dt.datetime
    period: dt.date
    counts: dict[str, int]


def _place(unit: str) -> dict[str, Any]:
    u = TREE.get(unit)
    return {"unit": unit, "path": TREE.path(unit), "lat": u.lat, "lon": u.lon}


def _incident(
    incident_id: str,
    version: int,
    *,
    now: dt.datetime,
    rule: str,
    module: str,
    unit: str,
    state: str,
    severity: str,
    title: str,
    responsible: str | None = None,
    sla_minutes: float | None = 30,
    escalation: int = 0,
    reports: list[str] | None = None,
) -> dict[str, Any]:
    responsible = responsible or unit
    return {
        "incident_id": incident_id,
        "version": version,
        "rule": rule,
        "module": module,
        **_place(unit),
        "responsible_unit": responsible,
        "responsible_path": TREE.path(responsible),
        "severity": severity,
        "state": state,
        "title": title,
        "opened_at": now - dt.timedelta(minutes=40),
        "updated_at": now - dt.timedelta(minutes=40 - version),
        "sla_due_at": None if sla_minutes is None else now + dt.timedelta(minutes=sla_minutes),
        "escalation_level": escalation,
        "vendor": "",
        "devices": [f"gauge-vendor/wl-{unit}"],
        "reports": reports or [],
        "detail": "{}",
        "note": "",
    }


def incident_row(**kwargs: Any) -> dict[str, Any]:
    """An incidents row as the stream workers write it (tests insert new versions with this)."""
    return _incident(**kwargs)


def seed(warehouse: Warehouse, database: str, now: dt.datetime | None = None) -> Seeded:
    """Insert the seeded rows into `database`; returns the reference time and the period used."""
    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    period = now.date().replace(day=1)
    rows: dict[str, list[dict[str, Any]]] = {}

    # --- readings: water gauges (flood story) and air stations (pollution story) --------------------------
    readings = []
    levels = {FLOOD_WARD: (0.6, 1.8), SIBLING_WARD: (0.5, 0.6), OTHER_WARD: (1.0, 1.4)}
    for unit, (start, end) in levels.items():
        for i in range(60):
            at = now - dt.timedelta(minutes=59 - i)
            readings.append(
                {
                    "device_key": f"gauge-vendor/wl-{unit}",
                    "vendor": "gauge-vendor",
                    "device": f"wl-{unit}",
                    **_place(unit),
                    "kind": "water",
                    "seq": i,
                    "measure": "waterLevel",
                    "value": round(start + (end - start) * i / 59, 3),
                    "observed_at": at,
                    "received_at": at,
                }
            )
    for n, unit in enumerate(AIR_WARDS):
        for i in range(30):
            at = now - dt.timedelta(minutes=2 * (29 - i))
            readings.append(
                {
                    "device_key": f"air-vendor/aq-{unit}",
                    "vendor": "air-vendor",
                    "device": f"aq-{unit}",
                    **_place(unit),
                    "kind": "air",
                    "seq": i,
                    "measure": "pm25",
                    "value": 40.0 + 3 * i + 10 * n,
                    "observed_at": at,
                    "received_at": at,
                }
            )
    readings.append(dict(readings[-1]))  # a re-delivered reading
    rows["readings"] = readings

    # --- hourly AQI per station -------------------------------------------------------------------------
    aqi = []
    station_aqi = {AIR_WARDS[0]: 160, AIR_WARDS[1]: 95, FLOOD_WARD: 40, SIBLING_WARD: 120}
    bands = {40: 1, 95: 2, 120: 3, 160: 4}
    for unit, value in station_aqi.items():
        for h in range(24):
            hour = (now - dt.timedelta(hours=23 - h)).replace(minute=0, second=0)
            index = max(10, value - (23 - h) * 3)
            aqi.append(
                {
                    "device_key": f"air-vendor/aq-{unit}",
                    **{k: v for k, v in _place(unit).items() if k in ("unit", "path")},
                    "hour": hour,
                    "aqi": index,
                    "band": bands[value] if h == 23 else 1 + (index > 50) + (index > 100) + (index > 150),
                    "dominant": "pm25",
                    "pm25": float(index),
                    "pm10": None,
                    "no2": None,
                    "o3": None,
                    "co": None,
                    "so2": None,
                    "version": 1,
                }
            )
    rows["aqi_hourly"] = aqi

    # --- 15-minute aggregates, rolled up to district and province ------------------------------------------
    aggregates = []
    water_units = (FLOOD_WARD, SIBLING_WARD, OTHER_WARD, DISTRICT, PROVINCE)
    for unit, measure in [
        *((u, "pm25") for u in (*AIR_WARDS, "725", PROVINCE, FLOOD_WARD, SIBLING_WARD, DISTRICT)),
        *((u, "waterLevel") for u in water_units),
    ]:
        level = TREE.get(unit).level.value
        for w in range(24):
            start = (now - dt.timedelta(minutes=15 * (23 - w))).replace(second=0)
            start = start.replace(minute=start.minute - start.minute % 5)
            if measure == "pm25":
                mean = 30.0 + w + (10 if unit in AIR_WARDS else 0)
            else:
                mean = 0.5 + (w / 23) * (1.2 if unit != SIBLING_WARD else 0.1)
            aggregates.append(
                {
                    "unit": unit,
                    "path": TREE.path(unit),
                    "level": level,
                    "window": "15m",
                    "window_start": start,
                    "measure": measure,
                    "count": 10,
                    "sum": mean * 10,
                    "min": mean - (5 if measure == "pm25" else 0.05),
                    "max": mean + (5 if measure == "pm25" else 0.05),
                    "mean": mean,
                    "devices": 1,
                    "version": 1,
                }
            )
    rows["unit_aggregates"] = aggregates

    # --- camera events (violations story) -----------------------------------------------------------------
    events = []
    types = ("red_light", "wrong_lane", "no_helmet", "speeding")
    for n, unit in enumerate((*CAMERA_WARDS, FLOOD_WARD, SIBLING_WARD)):
        for i in range(8 - n):
            at = now - dt.timedelta(minutes=5 * i + n)
            kind = types[(i + n) % 4]
            events.append(
                {
                    "device_key": f"cam-vendor/cam-{unit}",
                    "vendor": "cam-vendor",
                    "device": f"cam-{unit}",
                    **_place(unit),
                    "seq": i,
                    "event_type": kind,
                    "confidence": 0.9,
                    "plate": f"61A-{unit[-3:]}.{i:02d}",
                    "speed_kmh": 72.0 if kind == "speeding" else None,
                    "speed_limit_kmh": 50.0 if kind == "speeding" else None,
                    "object_count": None,
                    "image_url": f"https://cams.example.vn/{unit}/{i}.jpg",
                    "snapshot": SNAPSHOT_KEY if (n, i) == (0, 0) else "",
                    "observed_at": at,
                    "received_at": at,
                    "duplicate": 0,
                    "incident_id": HOTSPOT_INCIDENT if (n, i) == (0, 0) else "",
                }
            )
    events.append(dict(events[0]))  # re-delivered: must not count twice
    events.append({**events[1], "seq": 100, "duplicate": 1})  # a repeat inside the de-duplication window
    rows["camera_events"] = events

    # --- device status: one silent camera, one silent gauge -----------------------------------------------
    status = []
    for unit in ALL_WARDS:
        for kind, vendor, prefix in (
            ("water", "gauge-vendor", "wl"),
            ("air", "air-vendor", "aq"),
            ("camera", "cam-vendor", "cam"),
        ):
            silent = (unit, kind) in ((CAMERA_WARDS[0], "camera"), (SIBLING_WARD, "water"), (FLOOD_WARD, "air"))
            status.append(
                {
                    "device_key": f"{vendor}/{prefix}-{unit}",
                    "vendor": vendor,
                    "device": f"{prefix}-{unit}",
                    **_place(unit),
                    "kind": kind,
                    "last_seen": now - dt.timedelta(hours=2 if silent else 0, seconds=30),
                    "last_seq": 59,
                    "readings": 10,
                }
            )
    rows["device_status"] = status

    # --- incidents --------------------------------------------------------------------------------------
    incidents = [
        _incident(
            FLOOD_INCIDENT,
            1,
            now=now,
            rule="flood-level",
            module="environment",
            unit=FLOOD_WARD,
            state="open",
            severity="high",
            title="Ngập: mực nước vượt mức báo động [25957]",
            reports=["rep-25957-1"],
        ),
        _incident(
            FLOOD_INCIDENT,
            2,
            now=now,
            rule="flood-level",
            module="environment",
            unit=FLOOD_WARD,
            state="open",
            severity="high",
            title="Ngập: mực nước vượt mức báo động [25957]",
            reports=["rep-25957-1", "rep-25957-2"],
        ),
        _incident(
            SIBLING_INCIDENT,
            1,
            now=now,
            rule="flood-level",
            module="environment",
            unit=SIBLING_WARD,
            state="acknowledged",
            severity="medium",
            title="Ngập cục bộ [25951]",
            sla_minutes=-10,
        ),
        _incident(
            "aqi-bad:25987:20250601T0700",
            3,
            now=now,
            rule="aqi-bad",
            module="environment",
            unit=AIR_WARDS[0],
            state="open",
            severity="medium",
            title="Chất lượng không khí xấu [25987]",
        ),
        _incident(
            "flood-rise:25942:20250601T0600",
            4,
            now=now,
            rule="flood-rise",
            module="environment",
            unit=OTHER_WARD,
            state="acknowledged",
            severity="high",
            title="Nước dâng nhanh [25942]",
            responsible=DISTRICT,
            escalation=1,
            sla_minutes=-5,
        ),
        _incident(
            HOTSPOT_INCIDENT,
            1,
            now=now,
            rule="camera-hotspot",
            module="traffic",
            unit=CAMERA_WARDS[0],
            state="open",
            severity="low",
            title="Điểm nóng vi phạm [25747]",
        ),
        _incident(
            "flood-level:25957:20250531T2200",
            5,
            now=now,
            rule="flood-level",
            module="environment",
            unit=FLOOD_WARD,
            state="resolved",
            severity="high",
            title="Ngập đã xử lý [25957]",
        ),
    ]
    rows["incidents"] = incidents
    rows["incident_history"] = [
        {**row, "action": "opened" if row["version"] == 1 else "updated", "actor": "streams"} for row in incidents
    ]

    # --- citizen reports (personal data) ------------------------------------------------------------------
    reports = []
    for i, unit in enumerate((FLOOD_WARD, FLOOD_WARD, SIBLING_WARD, AIR_WARDS[0])):
        reports.append(
            {
                "report_id": f"rep-{unit}-{i + 1 if unit == FLOOD_WARD else 1}",
                "source": "app",
                "category": "flooding" if unit != AIR_WARDS[0] else "pollution",
                **_place(unit),
                "submitted_at": now - dt.timedelta(minutes=28 - i, days=0 if i < 3 else 3),
                "text": f"Nước ngập tới đầu gối trên đường [{unit}]",
                "address": f"Đường số {i + 1} [{unit}]",
                "media_urls": [],
                "contact_name": f"Nguyễn Văn Dân {unit}",
                "contact_phone": f"0912{unit}",
                "contact_email": f"dan{unit}@example.vn",
                "incident_id": FLOOD_INCIDENT if unit == FLOOD_WARD else "",
                "state": "open",
                "version": 1,
            }
        )
    rows["citizen_reports"] = reports

    # --- dossiers and Decision 766 indicators -------------------------------------------------------------
    dossiers = []
    indicators = []
    scored = (*ALL_WARDS, DISTRICT, "725", "718", PROVINCE)
    for n, unit in enumerate(scored):
        late = f"hs-{unit}-late"
        dossiers.append(
            {
                "dossier_id": late,
                "status_version": 3,
                "unit": unit,
                "path": TREE.path(unit),
                "procedure_code": "1.001234",
                "status": "processed",
                "channel": "one_stop_desk",
                "received_at": now - dt.timedelta(days=10),
                "due_at": now - dt.timedelta(days=3),
                "occurred_at": now - dt.timedelta(days=1),
                "finished_at": now - dt.timedelta(days=1),
                "fully_online": 0,
                "requires_payment": 1,
                "paid_online": 0,
                "digitised": 0,
                "result_digital": 0,
                "synced_to_national_portal": 1,
                "supplement_count": 0,
                "supplement_days": 0.0,
                "satisfaction": "unsatisfied",
            }
        )
        for group, code, max_points in (
            ("1", "1.4", 6),
            ("2", "2.1", 20),
            ("3", "3.3", 6),
            ("4", "4.2", 4),
            ("5", "5.4", 6),
        ):
            rate = max(0.2, 1.0 - 0.07 * n) if code == "2.1" else 0.9
            indicators.append(
                {
                    "unit": unit,
                    "path": TREE.path(unit),
                    "period_kind": "month",
                    "period_start": period,
                    "scheme": "766-2022.dvcqg-2025",
                    "code": code,
                    "group_code": group,
                    "points": round(max_points * rate, 2),
                    "max_points": float(max_points),
                    "numerator": int(rate * 100),
                    "denominator": 100,
                    "rate": rate,
                    "no_data": 0,
                    "lost_dossiers": [late] if code == "2.1" else [],
                    "computed_at": now,
                }
            )
    rows["dossiers"] = dossiers
    rows["indicators_766"] = indicators

    # --- dead letters (data quality) ------------------------------------------------------------------------
    letters = []
    for i, (source, reason, vendor) in enumerate(
        (
            # As the bridge names them (sensors/bridge/service.py): `mqtt:` and the device's topic.
            (f"mqtt:ioc/v1/{FLOOD_WARD}/air/air-vendor/aq-{FLOOD_WARD}", "implausible-value", "air-vendor"),
            (f"mqtt:ioc/v1/{SIBLING_WARD}/water/gauge-vendor/wl-{SIBLING_WARD}", "schema", "gauge-vendor"),
            (f"mqtt:ioc/v1/{CAMERA_WARDS[0]}/camera/cam-vendor/cam-{CAMERA_WARDS[0]}", "rate-limited", "cam-vendor"),
            ("http:/portal/dossiers", "not-json", ""),
        )
    ):
        letters.append(
            {
                "letter_id": f"{i:040x}",
                "received_at": now - dt.timedelta(minutes=10 + i),
                "source": source,
                "reason": reason,
                "detail": f"refused [{source.split('/')[2] if source.startswith('mqtt:ioc/') else 'portal'}]",
                "vendor": vendor,
                "device": source.rsplit("/", 1)[-1],
                "size": 120,
                "payload": "e30=",
            }
        )
    rows["deadletters"] = letters

    for table, table_rows in rows.items():
        warehouse.insert(f"{database}.{table}", table_rows)
    return Seeded(now=now, period=period, counts={t: len(r) for t, r in rows.items()})
