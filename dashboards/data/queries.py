"""Every SQL statement the dashboards run, each named, parameterised and written once for both engines.

Values are always `%(name)s` parameters, escaped by the driver (`ioc.clients.clickhouse.render`). The only text
spliced into a statement is the site's scope condition from `ioc.scope` (`{scope}` for a row's own
place, `{responsible}` for an incident's responsible unit), itself parameterised. Every statement runs on
ClickHouse 18.16 and on chDB 26.x (tests/dashboards/test_queries.py runs each on both): no window
functions, no `toStartOfInterval`, no JOINs; nullable comparisons are wrapped in `ifNull`.

An alias never names a column that another expression of the same statement reads (ClickHouse
resolves aliases everywhere in a statement, so `max(hour) AS hour` would break `argMax(aqi, hour)`).

Tables are the warehouse contract (docs/warehouse.md). Replacing tables are read with FINAL, or with
duplicate-insensitive aggregates (`argMax`, `max`, `uniqExact` of the row identity) on the big
append-only ones (`readings`, `camera_events`), so a re-delivered row never counts twice. Every query on
`readings` and `camera_events` also filters `unit IN %(scope_units)s`, the leading column of their
sorting key, so ClickHouse reads only the site's part of the table, and names its time window
(`Query.window`): on a table it becomes PREWHERE (left to itself, 18.16 would pre-filter on the tiny
`duplicate` column instead, which selects nothing); a site's database is views of the warehouse
(operators.sitedb), which refuse PREWHERE on both engines, so there it joins the WHERE clause. Trends
above a ward read the stream workers' 15-minute aggregates rather than raw readings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

__all__ = ["QUERIES", "TABLE_ENGINE", "Query"]


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """One named statement: what it answers, the table it reads, and whether its results change slowly."""

    name: str
    table: str
    description: str
    sql: str
    slow: bool = False
    window: str | None = None
    """The time condition of a query on a big table: PREWHERE on tables, part of WHERE on views."""


_RECENT: Final = "observed_at >= now() - INTERVAL %(hours)s HOUR"

_ALL: Final[tuple[Query, ...]] = (
    # --- overview ---------------------------------------------------------------------------------------
    Query(
        "incidents_by_unit",
        "incidents",
        "Active incidents per place, responsible unit and severity, with how many are past their SLA.",
        """
        SELECT unit, responsible_unit, severity, count() AS incidents,
               countIf(ifNull(sla_due_at < now(), 0)) AS overdue
        FROM incidents FINAL
        WHERE ({scope} OR {responsible}) AND state IN ('open', 'acknowledged', 'dispatched')
        GROUP BY unit, responsible_unit, severity
        """,
    ),
    Query(
        "aqi_by_station",
        "aqi_hourly",
        "Each air station's latest hourly VN_AQI within the last hours, with its band and dominant pollutant.",
        """
        SELECT unit, device_key, argMax(aqi, hour) AS aqi, argMax(band, hour) AS band,
               argMax(dominant, hour) AS dominant, max(hour) AS latest_hour
        FROM aqi_hourly FINAL
        WHERE {scope} AND hour >= now() - INTERVAL %(hours)s HOUR
        GROUP BY unit, device_key
        """,
    ),
    Query(
        "reports_by_state",
        "citizen_reports",
        "Citizen reports per category and state over the last days.",
        """
        SELECT category, state, count() AS reports
        FROM citizen_reports FINAL
        WHERE {scope} AND submitted_at >= now() - INTERVAL %(days)s DAY
        GROUP BY category, state
        """,
    ),
    Query(
        "devices_by_vendor",
        "device_status",
        "Devices per vendor and kind, how many are silent (no data for their kind's silence limit).",
        """
        SELECT vendor, kind, count() AS devices,
               countIf(toUnixTimestamp(now()) - toUnixTimestamp(last_seen)
                       > if(kind = 'camera', %(camera_silent_s)s, %(device_silent_s)s)) AS silent,
               min(last_seen) AS oldest, max(last_seen) AS newest
        FROM device_status FINAL
        WHERE {scope}
        GROUP BY vendor, kind
        ORDER BY vendor, kind
        """,
    ),
    # --- environment ------------------------------------------------------------------------------------
    Query(
        "aqi_trend",
        "aqi_hourly",
        "Worst station AQI per place and hour over the last hours.",
        """
        SELECT unit, hour, max(aqi) AS aqi
        FROM aqi_hourly FINAL
        WHERE {scope} AND hour >= now() - INTERVAL %(hours)s HOUR
        GROUP BY unit, hour
        ORDER BY hour
        """,
    ),
    Query(
        "pollutant_trend",
        "unit_aggregates",
        "Mean and peak of each pollutant per 15-minute window for a unit (its rolled-up rows).",
        """
        SELECT window_start, measure, sum(sum) / sum(count) AS mean, max(max) AS peak
        FROM unit_aggregates FINAL
        WHERE {scope} AND unit IN %(roots)s AND window = '15m' AND measure IN %(measures)s
              AND window_start >= now() - INTERVAL %(hours)s HOUR
        GROUP BY window_start, measure
        ORDER BY window_start
        """,
    ),
    Query(
        "water_levels",
        "readings",
        "Each water gauge's latest level, peak and last report time within the last hours.",
        """
        SELECT device_key, unit, argMax(value, observed_at) AS level, max(value) AS peak,
               max(observed_at) AS last_at, any(lat) AS lat, any(lon) AS lon
        FROM readings {prewhere}
        WHERE {window} AND {scope} AND unit IN %(scope_units)s AND measure = 'waterLevel'
        GROUP BY device_key, unit
        ORDER BY level DESC
        """,
        window=_RECENT,
    ),
    Query(
        "water_trend",
        "readings",
        "Each water gauge's highest level per five minutes over the last hours (a ward's few gauges).",
        """
        SELECT device_key, toStartOfFiveMinute(observed_at) AS at, max(value) AS level
        FROM readings {prewhere}
        WHERE {window} AND {scope} AND unit IN %(scope_units)s AND measure = 'waterLevel'
        GROUP BY device_key, at
        ORDER BY at
        """,
        window=_RECENT,
    ),
    Query(
        "water_trend_by_unit",
        "unit_aggregates",
        "The highest water level per 15 minutes in each of the given units (their rolled-up rows).",
        """
        SELECT unit, window_start AS at, max(max) AS level
        FROM unit_aggregates FINAL
        WHERE {scope} AND unit IN %(units)s AND window = '15m' AND measure = 'waterLevel'
              AND window_start >= now() - INTERVAL %(hours)s HOUR
        GROUP BY unit, at
        ORDER BY at
        """,
    ),
    Query(
        "device_locations",
        "device_status",
        "Where the devices of one kind are (last reported position) and when each was last heard.",
        """
        SELECT device_key, vendor, unit, lat, lon, last_seen
        FROM device_status FINAL
        WHERE {scope} AND kind = %(kind)s
        ORDER BY device_key
        """,
    ),
    # --- traffic and cameras ----------------------------------------------------------------------------
    Query(
        "camera_counts",
        "camera_events",
        "Distinct detections per camera and type over the last hours (de-duplicated repeats left out), with\n"
        "where each camera is: the page's violations by type and place and its hotspots, from one scan.",
        """
        SELECT device_key, unit, event_type, uniqExact(seq) AS events, any(lat) AS lat, any(lon) AS lon,
               max(observed_at) AS last_at
        FROM camera_events {prewhere}
        WHERE {window} AND {scope} AND unit IN %(scope_units)s AND duplicate = 0 AND event_type IN %(types)s
        GROUP BY device_key, unit, event_type
        """,
        window=_RECENT,
    ),
    Query(
        "camera_events_recent",
        "camera_events",
        "The latest camera detections (plates are personal data: masked by the data layer for viewers).",
        """
        SELECT device_key, unit, seq, event_type, confidence, plate, speed_kmh, speed_limit_kmh,
               observed_at, image_url, incident_id
        FROM camera_events {prewhere}
        WHERE {window} AND {scope} AND unit IN %(scope_units)s AND duplicate = 0
        ORDER BY observed_at DESC
        LIMIT 1 BY device_key, seq
        LIMIT %(limit)s
        """,
        window=_RECENT,
    ),
    # --- incidents --------------------------------------------------------------------------------------
    Query(
        "incident_queue",
        "incidents",
        "Incidents in the chosen states, modules and severities, soonest SLA first.",
        """
        SELECT incident_id, version, rule, module, unit, responsible_unit, severity, state, title,
               opened_at, updated_at, sla_due_at, escalation_level, note, lat, lon
        FROM incidents FINAL
        WHERE ({scope} OR {responsible}) AND state IN %(states)s AND module IN %(modules)s
              AND severity IN %(severities)s
        ORDER BY sla_due_at, opened_at DESC
        LIMIT %(limit)s
        """,
    ),
    Query(
        "incident",
        "incidents",
        "One incident's latest version, if the site may see it.",
        """
        SELECT incident_id, version, rule, module, unit, responsible_unit, severity, state, title,
               opened_at, updated_at, sla_due_at, escalation_level, note, lat, lon, devices, reports
        FROM incidents FINAL
        WHERE ({scope} OR {responsible}) AND incident_id = %(incident_id)s
        """,
    ),
    Query(
        "incident_history",
        "incident_history",
        "Every recorded version of one incident: who did what, when.",
        """
        SELECT version, action, actor, state, responsible_unit, escalation_level, updated_at, note
        FROM incident_history FINAL
        WHERE ({scope} OR {responsible}) AND incident_id = %(incident_id)s
        ORDER BY version
        """,
    ),
    # --- citizen reports --------------------------------------------------------------------------------
    Query(
        "reports_recent",
        "citizen_reports",
        "The latest citizen reports (contact details are personal data: masked for viewers).",
        """
        SELECT report_id, source, category, unit, submitted_at, text, address, lat, lon,
               contact_name, contact_phone, contact_email, incident_id, state
        FROM citizen_reports FINAL
        WHERE {scope} AND submitted_at >= now() - INTERVAL %(days)s DAY AND category IN %(categories)s
        ORDER BY submitted_at DESC
        LIMIT %(limit)s
        """,
    ),
    Query(
        "escalations",
        "incidents",
        "Incidents escalated to a higher unit because their SLA ran out, most recent first.",
        """
        SELECT incident_id, module, unit, responsible_unit, escalation_level, state, title, sla_due_at,
               length(reports) AS linked_reports, updated_at
        FROM incidents FINAL
        WHERE ({scope} OR {responsible}) AND escalation_level > 0 AND module IN %(modules)s
        ORDER BY updated_at DESC
        LIMIT %(limit)s
        """,
    ),
    # --- public services (Decision 766) -------------------------------------------------------------------
    Query(
        "score_periods",
        "indicators_766",
        "The periods that have Decision 766 scores, newest first.",
        """
        SELECT DISTINCT period_start
        FROM indicators_766 FINAL
        WHERE {scope} AND period_kind = %(period_kind)s
        ORDER BY period_start DESC
        LIMIT 36
        """,
        slow=True,
    ),
    Query(
        "scorecard",
        "indicators_766",
        "One unit's Decision 766 indicators for one period.",
        """
        SELECT code, group_code, points, max_points, numerator, denominator, rate, no_data,
               length(lost_dossiers) AS lost
        FROM indicators_766 FINAL
        WHERE {scope} AND unit = %(unit)s AND period_kind = %(period_kind)s AND period_start = %(period)s
        ORDER BY code
        """,
        slow=True,
    ),
    Query(
        "score_ranking",
        "indicators_766",
        "Decision 766 total and per-group points of several units for one period.",
        """
        SELECT unit, group_code, sum(points) AS points, sum(max_points) AS max_points
        FROM indicators_766 FINAL
        WHERE {scope} AND unit IN %(units)s AND period_kind = %(period_kind)s AND period_start = %(period)s
        GROUP BY unit, group_code
        """,
        slow=True,
    ),
    Query(
        "lost_dossier_ids",
        "indicators_766",
        "Which dossiers cost a unit points in a period, by indicator.",
        """
        SELECT code, arrayJoin(lost_dossiers) AS dossier_id
        FROM indicators_766 FINAL
        WHERE {scope} AND unit = %(unit)s AND period_kind = %(period_kind)s AND period_start = %(period)s
        LIMIT %(limit)s
        """,
        slow=True,
    ),
    Query(
        "dossiers",
        "dossiers",
        "The latest snapshot of the given dossiers.",
        """
        SELECT dossier_id, unit, procedure_code, status, channel, received_at, due_at, finished_at,
               fully_online, requires_payment, paid_online, digitised, result_digital, supplement_count,
               supplement_days, synced_to_national_portal, satisfaction
        FROM dossiers FINAL
        WHERE {scope} AND dossier_id IN %(dossier_ids)s
        ORDER BY due_at
        """,
        slow=True,
    ),
    # --- data quality -----------------------------------------------------------------------------------
    Query(
        "silent_devices",
        "device_status",
        "Devices that have been silent for longer than their kind's limit, longest first.",
        """
        SELECT device_key, vendor, kind, unit, last_seen
        FROM device_status FINAL
        WHERE {scope} AND toUnixTimestamp(now()) - toUnixTimestamp(last_seen)
              > if(kind = 'camera', %(camera_silent_s)s, %(device_silent_s)s)
        ORDER BY last_seen
        LIMIT %(limit)s
        """,
    ),
    # Dead letters carry no unit column: the unit is the MQTT topic's third segment (ioc/v1/{unit}/...);
    # letters without one (an HTTP route, a malformed topic) belong to the whole tree's root site only.
    Query(
        "rejections_by_vendor",
        "deadletters",
        "Refused inputs per vendor and reason over the last hours.",
        """
        SELECT vendor, reason, count() AS letters, max(received_at) AS last_at
        FROM deadletters FINAL
        WHERE received_at >= now() - INTERVAL %(hours)s HOUR
              AND (if(startsWith(source, 'ioc/v1/'), splitByChar('/', source)[3], '') IN %(scope_units)s
                   OR (%(include_unplaced)s = 1
                       AND if(startsWith(source, 'ioc/v1/'), splitByChar('/', source)[3], '') = ''))
        GROUP BY vendor, reason
        ORDER BY letters DESC
        """,
    ),
    Query(
        "rejections_recent",
        "deadletters",
        "The latest refused inputs with their reason (never the payload).",
        """
        SELECT received_at, vendor, device, reason, detail, source, size
        FROM deadletters FINAL
        WHERE received_at >= now() - INTERVAL %(hours)s HOUR
              AND (if(startsWith(source, 'ioc/v1/'), splitByChar('/', source)[3], '') IN %(scope_units)s
                   OR (%(include_unplaced)s = 1
                       AND if(startsWith(source, 'ioc/v1/'), splitByChar('/', source)[3], '') = ''))
        ORDER BY received_at DESC
        LIMIT %(limit)s
        """,
    ),
)

QUERIES: Final[Mapping[str, Query]] = {q.name: q for q in _ALL}

TABLE_ENGINE: Final = "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = %(table)s"
"""Whether a name in the connection's database is a table or a view (a site's database holds views)."""
