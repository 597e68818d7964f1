"""What the site publishes as open data, as answer models: air quality, flood warnings, cameras, 766 scores."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any, Final

from dashboards.api import models
from dashboards.data import Rows, SiteData, score766
from dashboards.sites import Site
from ioc import aqi, topics
from ioc.decision766 import Scheme, default_scheme
from ioc.events import ACTIVE_STATES, Module
from ioc.reference import AqiBandRule, ReferenceModel, SilenceRule, ThresholdRule

# Each function runs the named queries it needs for a scope (the site, or a unit within it) and shapes the
# rows into the models of `dashboards.api.models`; the JSON routes and the NGSI-LD routes both use them,
# so the two views of the same data cannot disagree. Thresholds (the flood gauge's alert and clear levels,
# how long a silent camera still counts as online) come from the reference model, as the stream workers'.

__all__ = [
    "FLOOD_WINDOW_H",
    "PERIOD",
    "air_stations",
    "alert_rules",
    "band_of",
    "cameras",
    "flood_warnings",
    "page_of",
    "parse_period",
    "public_alerts",
    "scores",
]

FLOOD_WINDOW_H: Final = 2
"""Hours back a gauge's latest level still counts: a gauge silent longer is not a current warning."""

PERIOD: Final = re.compile(r"^(?P<year>20[0-9]{2})-(?P<month>0[1-9]|1[0-2])$")

_DEFAULT_CAMERA_SILENCE_MIN: Final = 30.0


def band_of(value: int) -> models.AqiBand:
    found = aqi.band(max(value, 0))
    return models.AqiBand(level=found.level, label_vi=found.label_vi, label_en=found.label_en, colour=found.hex)


def alert_rules(model: ReferenceModel) -> tuple[str, ...]:
    """Rules the public is warned about: floods (level and rise) and bad air."""
    return tuple(
        sorted(
            r.id
            for r in model.rules
            if r.module is Module.ENVIRONMENT and (r.id.startswith("flood") or isinstance(r, AqiBandRule))
        )
    )


def air_stations(data: SiteData, site: Site, unit: str, *, hours: int) -> list[models.AirStation]:
    """Each air station's latest hourly VN_AQI within `hours`, with its position."""
    rows = data.run("aqi_by_station", unit, hours=hours)
    positions = {str(r["device_key"]): r for r in data.run("device_positions", unit, kind="air")} if rows else {}
    stations = []
    for row in rows:
        where = positions.get(str(row["device_key"]), {})
        value = int(row["aqi"])
        stations.append(
            models.AirStation(
                station=str(row["device_key"]),
                unit=str(row["unit"]),
                unit_name=site.row_unit_full_name(str(row["unit"])),
                lat=where.get("lat"),
                lon=where.get("lon"),
                aqi=value,
                band=band_of(value),
                dominant_pollutant=str(row["dominant"]),
                observed_hour=row["latest_hour"],
            )
        )
    return stations


def public_alerts(data: SiteData, site: Site, unit: str) -> Rows:
    """Active incidents of the public warning rules, newest first."""
    return data.run("public_alerts", unit, active=ACTIVE_STATES, rules=alert_rules(site.model) or ("",))


def flood_warnings(data: SiteData, site: Site, unit: str, *, now: dt.datetime) -> list[models.FloodWarning]:
    """Active flood incidents, then gauges at or above their watch level (highest first)."""
    warnings = []
    for row in public_alerts(data, site, unit):
        rule_id = str(row["rule"])
        if not rule_id.startswith("flood"):
            continue
        rule = _rule(site.model, rule_id)
        warnings.append(
            models.FloodWarning(
                kind="incident",
                id=str(row["incident_id"]),
                unit=str(row["unit"]),
                unit_name=site.row_unit_full_name(str(row["unit"])),
                lat=row["lat"],
                lon=row["lon"],
                status="active",
                severity=str(row["severity"]),
                title_vi=str(row["title"]),
                title_en=rule.title_en if rule is not None else str(row["title"]),
                since=row["opened_at"],
            )
        )
    level_rule = _rule(site.model, "flood-level")
    if isinstance(level_rule, ThresholdRule):
        for row in data.run("water_gauges", unit, since=now - dt.timedelta(hours=FLOOD_WINDOW_H)):
            level = float(row["level_now"])
            if level < level_rule.clear_below:
                continue
            alert = level >= level_rule.above
            warnings.append(
                models.FloodWarning(
                    kind="gauge",
                    id=str(row["device_key"]),
                    unit=str(row["unit"]),
                    unit_name=site.row_unit_full_name(str(row["unit"])),
                    lat=row["gauge_lat"],
                    lon=row["gauge_lon"],
                    status="alert" if alert else "watch",
                    title_vi="Mực nước vượt ngưỡng báo động" if alert else "Mực nước cần theo dõi",
                    title_en="Water above the alert level" if alert else "Water level to watch",
                    level_m=level,
                    alert_level_m=level_rule.above,
                    clear_level_m=level_rule.clear_below,
                    since=row["last_at"],
                )
            )
    return warnings


def cameras(data: SiteData, site: Site, unit: str, *, now: dt.datetime) -> list[models.Camera]:
    """Every camera's position, and whether it reported within the camera-silence rule's limit."""
    rule = _rule(site.model, "camera-silence")
    silent_after = dt.timedelta(
        minutes=rule.silent_minutes if isinstance(rule, SilenceRule) else _DEFAULT_CAMERA_SILENCE_MIN
    )
    return [
        models.Camera(
            device=str(row["device_key"]),
            unit=str(row["unit"]),
            unit_name=site.row_unit_full_name(str(row["unit"])),
            lat=row["lat"],
            lon=row["lon"],
            last_seen=row["last_seen"],
            online=now - row["last_seen"] <= silent_after,
        )
        for row in data.run("device_positions", unit, kind=topics.CAMERA_KIND)
    ]


def scores(
    data: SiteData, site: Site, unit: str, period: dt.date | None, scheme: Scheme | None = None
) -> tuple[dt.date | None, list[models.UnitScore]]:
    """Decision 766 scores of every unit in scope for a month (the latest scored one when None): ranked first, best
    first, then the units not measured on every indicator the ranked ones were (no rank)."""
    scheme = scheme or default_scheme()
    if period is None:
        latest = data.run("score_latest_period", unit, period_kind="month")
        if not latest or not int(latest[0]["rows_found"]):
            return None, []
        period = latest[0]["latest"]
        assert isinstance(period, dt.date)
    rows = data.run("scores", unit, period_kind="month", period=period)
    by_unit: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_unit.setdefault(str(row["unit"]), []).append(row)
    # Ranked as the dashboards rank (dashboards/data/score766.py): re-based on the points measured, and a unit
    # never above another because it had less data (docs/decision-766.md).
    measured = score766.from_ranking_rows(
        {
            "unit": r["unit"],
            "group_code": r["group_code"],
            "points": r["group_points"],
            "coverage": r["group_coverage"],
            "measured_codes": r["measured_codes"],
        }
        for r in rows
    )
    order = score766.ranking(measured, site.row_unit_full_name)
    return period, [
        models.UnitScore(
            rank=entry["rank"],
            standing=entry["standing"],
            unit=entry["unit"],
            unit_name=entry["place"],
            level=site.row_unit_level(entry["unit"]),
            score=entry["score"],
            coverage=entry["coverage"],
            points=entry["earned"],
            max_points=round(sum(float(g["group_max"]) for g in by_unit[entry["unit"]]), 2),
            groups=[_group(scheme, g) for g in sorted(by_unit[entry["unit"]], key=lambda g: str(g["group_code"]))],
        )
        for entry in order
    ]


def _group(scheme: Scheme, row: dict[str, Any]) -> models.GroupPoints:
    code = str(row["group_code"])
    try:
        group = scheme.group(code)
        vi, en = group.label_vi, group.label_en
    except KeyError:
        vi = en = code
    return models.GroupPoints(
        code=code,
        label_vi=vi,
        label_en=en,
        points=round(float(row["group_points"]), 2),
        max_points=round(float(row["group_max"]), 2),
    )


def _rule(model: ReferenceModel, rule_id: str) -> Any:
    try:
        return model.rule(rule_id)
    except KeyError:
        return None


def parse_period(text: str | None) -> dt.date | None:
    """`2025-06` → 1 June 2025; None stays None; raises ValueError naming the expected shape."""
    if text is None:
        return None
    found = PERIOD.match(text)
    if found is None:
        raise ValueError(f"period {text[:20]!r} is not a month like 2025-06")
    return dt.date(int(found["year"]), int(found["month"]), 1)


def page_of(items: Sequence[Any], page: int, size: int) -> list[Any]:
    """Items of 1-based `page` of `size`."""
    start = (page - 1) * size
    return list(items[start : start + size])
