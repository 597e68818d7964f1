"""Seeded warehouse rows for the citizen API's tests, relative to now: air, floods, cameras, scores, reports.

Every place is a real 2024 unit with its path, so scoping shows: Dĩ An (724) sees the flood in Đông Hòa
(25957) but not the bad air of Thuận An (725). Incidents and the citizen report's incident have two
versions, so a reader that forgot FINAL would count them twice.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from ioc import units
from ioc.clients.clickhouse import Warehouse

TREE = units.load_tree("2024")

FLOOD_WARD = "25957"  # Đông Hòa, Dĩ An
SIBLING_WARD = "25951"  # Bình An, Dĩ An
NO_DATA_WARD = "25750"  # in Thủ Dầu Một: a 766 indicator without data
AIR_WARDS = ("25987", "25966")  # Bình Hòa, Lái Thiêu (Thuận An)
CAMERA_WARD = "25747"  # Phú Cường, Thủ Dầu Một
REPORT_ID = "o311-seed-0001"


@dataclasses.dataclass(frozen=True)
class Seeded:
    now: dt.datetime
    month: dt.date
    report_incident: str


def _place(unit: str) -> dict[str, Any]:
    return {"unit": unit, "path": TREE.path(unit)}


def _incident(
    incident_id: str,
    version: int,
    *,
    rule: str,
    module: str,
    unit: str,
    state: str,
    now: dt.datetime,
    title: str,
    reports: list[str] | None = None,
) -> dict[str, Any]:
    u = TREE.get(unit)
    return {
        "incident_id": incident_id,
        "version": version,
        "rule": rule,
        "module": module,
        **_place(unit),
        "responsible_unit": unit,
        "responsible_path": TREE.path(unit),
        "severity": "high",
        "state": state,
        "title": title,
        "opened_at": now - dt.timedelta(minutes=50),
        "updated_at": now - dt.timedelta(minutes=50 - 10 * version),
        "sla_due_at": now + dt.timedelta(hours=4),
        "escalation_level": 0,
        "vendor": "",
        "devices": [],
        "reports": reports or [],
        "detail": json.dumps({"category": "flooding"} if reports else {}),
        "lat": u.lat,
        "lon": u.lon,
        "note": "",
    }


def seed(warehouse: Warehouse, database: str) -> Seeded:
    """Insert the rows; returns the times and ids tests compare against."""
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    hour = now.replace(minute=0, second=0)
    month = now.date().replace(day=1)

    def insert(table: str, rows: list[dict[str, Any]]) -> None:
        warehouse.insert(f"{database}.{table}", rows)

    stations = [(f"air-vendor/aq-{ward}", ward, aqi) for ward, aqi in zip(AIR_WARDS, (132, 48), strict=True)]
    insert(
        "aqi_hourly",
        [
            {
                "device_key": key,
                **_place(ward),
                "hour": hour - dt.timedelta(hours=back),
                "aqi": aqi - back,
                "band": 3 if aqi - back > 100 else 1,
                "dominant": "pm25",
                "pm25": float(aqi),
                "pm10": None,
                "no2": None,
                "o3": None,
                "co": None,
                "so2": None,
                "version": 1,
            }
            for key, ward, aqi in stations
            for back in (0, 1)
        ],
    )
    devices = [
        ("air-vendor/aq-25987", "air", "25987", now - dt.timedelta(minutes=2)),
        ("air-vendor/aq-25966", "air", "25966", now - dt.timedelta(minutes=2)),
        ("cam-vendor/cam-1", "camera", CAMERA_WARD, now - dt.timedelta(minutes=1)),
        ("cam-vendor/cam-2", "camera", CAMERA_WARD, now - dt.timedelta(hours=2)),
        ("cam-vendor/cam-3", "camera", FLOOD_WARD, now - dt.timedelta(minutes=1)),
        ("gauge-vendor/wl-1", "water", FLOOD_WARD, now - dt.timedelta(minutes=1)),
    ]
    insert(
        "device_status",
        [
            {
                "device_key": key,
                "vendor": key.split("/")[0],
                "device": key.split("/")[1],
                **_place(unit),
                "kind": kind,
                "last_seen": seen,
                "last_seq": 10,
                "readings": 1,
                "lat": TREE.get(unit).lat,
                "lon": TREE.get(unit).lon,
            }
            for key, kind, unit, seen in devices
        ],
    )
    insert(
        "readings",
        [
            {
                "device_key": f"gauge-vendor/wl-{unit}",
                "vendor": "gauge-vendor",
                "device": f"wl-{unit}",
                **_place(unit),
                "kind": "water",
                "seq": seq,
                "measure": "waterLevel",
                "value": level,
                "observed_at": now - dt.timedelta(minutes=10 - seq),
                "received_at": now,
                "lat": TREE.get(unit).lat,
                "lon": TREE.get(unit).lon,
            }
            for unit, levels in ((FLOOD_WARD, (1.2, 1.7)), (SIBLING_WARD, (0.4, 0.5)))
            for seq, level in enumerate(levels)
        ],
    )
    flood = "flood-level:25957:20250601T080000"
    report_incident = f"citizen-report:{FLOOD_WARD}:{REPORT_ID}:20250601T080000"
    incidents = [
        _incident(
            flood,
            1,
            rule="flood-level",
            module="environment",
            unit=FLOOD_WARD,
            state="open",
            now=now,
            title="Ngập: mực nước vượt mức báo động",
        ),
        _incident(
            flood,
            2,
            rule="flood-level",
            module="environment",
            unit=FLOOD_WARD,
            state="acknowledged",
            now=now,
            title="Ngập: mực nước vượt mức báo động",
        ),
        _incident(
            "aqi-bad:25987:20250601T070000",
            1,
            rule="aqi-bad",
            module="environment",
            unit="25987",
            state="open",
            now=now,
            title="Không khí kém",
        ),
        _incident(
            "flood-level:25951:20250501T080000",
            3,
            rule="flood-level",
            module="environment",
            unit=SIBLING_WARD,
            state="closed",
            now=now,
            title="Ngập đã rút",
        ),
        _incident(
            report_incident,
            1,
            rule="citizen-report",
            module="environment",
            unit=FLOOD_WARD,
            state="open",
            now=now,
            title="Ngập úng: nước ngập trước chợ",
            reports=[REPORT_ID],
        ),
        _incident(
            report_incident,
            2,
            rule="citizen-report",
            module="environment",
            unit=FLOOD_WARD,
            state="dispatched",
            now=now,
            title="Ngập úng: nước ngập trước chợ",
            reports=[REPORT_ID],
        ),
    ]
    insert("incidents", incidents)
    actions = {1: ("opened", "streams"), 2: ("dispatch", "operator@25957"), 3: ("close", "operator@25951")}
    insert(
        "incident_history",
        [{**i, "action": actions[i["version"]][0], "actor": actions[i["version"]][1]} for i in incidents],
    )
    insert(
        "citizen_reports",
        [
            {
                "report_id": REPORT_ID,
                "source": "open311",
                "category": "flooding",
                **_place(FLOOD_WARD),
                "submitted_at": now - dt.timedelta(minutes=50),
                "text": "Nước ngập sâu trước chợ Đông Hòa",
                "lat": TREE.get(FLOOD_WARD).lat,
                "lon": TREE.get(FLOOD_WARD).lon,
                "address": "Chợ Đông Hòa",
                "media_urls": ["https://img.example/flood.jpg"],
                "contact_name": "Nguyễn Văn An",
                "contact_phone": "0912345678",
                "contact_email": "an@example.vn",
                "incident_id": report_incident,
                "state": "open",
                "version": 1,
            }
        ],
    )
    scores = {FLOOD_WARD: (15.0, 18.0), SIBLING_WARD: (12.0, 10.0), "724": (13.5, 14.0), "25747": (20.0, 22.0)}
    # NO_DATA_WARD: full marks on 2.1 and no data for 3.1 (the points an old scorer gave it for nothing).
    insert(
        "indicators_766",
        [
            {
                **_place(unit),
                "period_kind": "month",
                "period_start": month,
                "scheme": "qd766-2022",
                "code": code,
                "group_code": code[0],
                "points": points,
                "max_points": maximum,
                "numerator": 1,
                "denominator": 1,
                "rate": 1.0,
                "no_data": no_data,
                "measured": 1 - no_data,
                "lost_dossiers": [],
                "computed_at": now,
            }
            for unit, (g2, g3) in {**scores, NO_DATA_WARD: (20.0, 22.0)}.items()
            for code, points, maximum in (("2.1", g2, 20.0), ("3.1", g3, 22.0))
            for no_data in [int(unit == NO_DATA_WARD and code == "3.1")]
        ],
    )
    return Seeded(now=now, month=month, report_incident=report_incident)
