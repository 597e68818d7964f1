"""Every SQL statement the citizen API runs, each named, parameterised and written once for both engines.

Values are always `%(name)s` parameters, escaped by the driver (`ioc.clients.clickhouse.render`); the only text
spliced in is the scope condition from `ioc.scope` (`{scope}`), itself parameterised, so every statement
reads only what the site may publish. Tables are the warehouse contract (docs/warehouse.md), read with
FINAL or duplicate-insensitive aggregates (`argMax`, `max`), never raw counts. Like the dashboards' own
queries, these avoid what ClickHouse 18.16 lacks (window functions, JOINs on views) and never alias a
column another expression of the statement reads. Times are passed in (`%(since)s`), not taken from
`now()`, so a cached answer and its `generated_at` agree. tests/api/test_queries.py runs each statement
on chDB and on the real server.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

__all__ = ["QUERIES", "Query"]


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """One named statement: what it answers and the table it reads."""

    name: str
    table: str
    description: str
    sql: str


_ALL: Final[tuple[Query, ...]] = (
    # --- open data ------------------------------------------------------------------------------------------
    Query(
        "air_stations",
        "aqi_hourly",
        "Each air station's latest hourly VN_AQI since a time, with its band and dominant pollutant.",
        """
        SELECT device_key, unit, argMax(aqi, hour) AS aqi_now, argMax(band, hour) AS band_now,
               argMax(dominant, hour) AS dominant_now, max(hour) AS latest_hour
        FROM aqi_hourly FINAL
        WHERE {scope} AND hour >= %(since)s
        GROUP BY device_key, unit
        ORDER BY unit, device_key
        """,
    ),
    Query(
        "device_positions",
        "device_status",
        "Where each device of one kind is (last reported position) and when it was last heard.",
        """
        SELECT device_key, unit, lat, lon, last_seen
        FROM device_status FINAL
        WHERE {scope} AND kind = %(kind)s
        ORDER BY unit, device_key
        """,
    ),
    Query(
        "water_gauges",
        "readings",
        "Each water gauge's latest level, peak and last report time since a time.",
        """
        SELECT device_key, unit, argMax(value, observed_at) AS level_now, max(value) AS peak,
               max(observed_at) AS last_at, any(lat) AS gauge_lat, any(lon) AS gauge_lon
        FROM readings
        WHERE {scope} AND unit IN %(scope_units)s AND measure = 'waterLevel' AND observed_at >= %(since)s
        GROUP BY device_key, unit
        ORDER BY level_now DESC, device_key
        """,
    ),
    Query(
        "public_alerts",
        "incidents",
        "Active incidents of the rules the public is warned about (floods, bad air), newest first.",
        """
        SELECT incident_id, rule, unit, severity, state, title, opened_at, updated_at, lat, lon
        FROM incidents FINAL
        WHERE {scope} AND state IN ('open', 'acknowledged', 'dispatched') AND rule IN %(rules)s
        ORDER BY opened_at DESC, incident_id
        """,
    ),
    Query(
        "score_latest_period",
        "indicators_766",
        "The newest period that has Decision 766 scores.",
        """
        SELECT max(period_start) AS latest, count() AS rows_found
        FROM indicators_766 FINAL
        WHERE {scope} AND period_kind = %(period_kind)s
        """,
    ),
    Query(
        "scores",
        "indicators_766",
        "Decision 766 points per unit and group for one period.",
        """
        SELECT unit, group_code, sum(points) AS group_points, sum(max_points) AS group_max
        FROM indicators_766 FINAL
        WHERE {scope} AND period_kind = %(period_kind)s AND period_start = %(period)s
        GROUP BY unit, group_code
        ORDER BY unit, group_code
        """,
    ),
    # --- Open311 requests ---------------------------------------------------------------------------------------
    Query(
        "report",
        "citizen_reports",
        "One citizen report (never its contact details), if it is about a place in the site.",
        """
        SELECT report_id, source, category, unit, submitted_at, text, address, lat, lon, media_urls, incident_id
        FROM citizen_reports FINAL
        WHERE {scope} AND report_id = %(report_id)s
        """,
    ),
    Query(
        "reports",
        "citizen_reports",
        "Citizen reports submitted in a time range, optionally of some categories, newest first.",
        """
        SELECT report_id, source, category, unit, submitted_at, text, address, lat, lon, media_urls, incident_id
        FROM citizen_reports FINAL
        WHERE {scope} AND submitted_at >= %(start)s AND submitted_at < %(end)s
              AND (%(any_category)s = 1 OR category IN %(categories)s)
        ORDER BY submitted_at DESC, report_id
        LIMIT %(limit)s
        """,
    ),
    Query(
        "reports_by_id",
        "citizen_reports",
        "The given citizen reports, newest first.",
        """
        SELECT report_id, source, category, unit, submitted_at, text, address, lat, lon, media_urls, incident_id
        FROM citizen_reports FINAL
        WHERE {scope} AND report_id IN %(report_ids)s
        ORDER BY submitted_at DESC, report_id
        """,
    ),
    Query(
        "incident_states",
        "incidents",
        "The current state of the given incidents, with the unit now responsible and the SLA.",
        """
        SELECT incident_id, state, responsible_unit, sla_due_at, updated_at, escalation_level
        FROM incidents FINAL
        WHERE {scope} AND incident_id IN %(incident_ids)s
        """,
    ),
    Query(
        "incident_trail",
        "incident_history",
        "Every recorded version of one incident: what happened and when (never who, nor their notes).",
        """
        SELECT version, action, state, responsible_unit, escalation_level, updated_at
        FROM incident_history FINAL
        WHERE {scope} AND incident_id = %(incident_id)s
        ORDER BY version
        """,
    ),
)

QUERIES: Final[Mapping[str, Query]] = {q.name: q for q in _ALL}
