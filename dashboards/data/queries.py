"""Every SQL statement the dashboards and the citizen API run: named, parameterised, once for both engines.

Values are `%(name)s` parameters; the only text spliced in is the scope condition from `ioc.scope`.
"""

# Every statement runs on ClickHouse 18.16 and on chDB 26.x (tests/dashboards/test_queries.py and
# tests/api/test_queries.py run each on both): no window functions, no `toStartOfInterval`, no JOINs;
# nullable comparisons are wrapped in `ifNull`. An alias never names a column another expression of the
# statement reads (ClickHouse resolves aliases everywhere, so `max(hour) AS hour` would break
# `argMax(aqi, hour)`). `{scope}` is a row's own place, `{responsible}` an incident's responsible unit.
# Replacing tables are read with FINAL, the big append-only ones (`readings`, `camera_events`) with
# duplicate-insensitive aggregates (`argMax`, `max`, `uniqExact` of the row identity), so a re-delivered
# row never counts twice; queries on those two also filter `unit IN %(scope_units)s`, the leading column of
# their sorting key, so ClickHouse reads only the site's part. Tables are the warehouse contract
# (docs/warehouse.md). "Now" is never the server's clock but the `%(now)s` parameter (Unix seconds) every
# query gets from the data layer's clock (ioc.clock): under a demo's simulated clock the data's present runs ahead
# of the wall clock, and "the last 3 hours" must be the data's last 3 hours on every page alike.

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final

__all__ = ["CITIZEN_API", "QUERIES", "TABLE_ENGINE", "Query"]


@dataclasses.dataclass(frozen=True, slots=True)
class Query:
    """One named statement: what it answers, the table it reads, and whether its results change slowly."""

    name: str
    table: str
    description: str
    sql: str
    slow: bool = False
    window: str | None = None
    """The time condition of a query on a big table: PREWHERE on tables, part of WHERE on views.

    Named, because left to itself 18.16 would pre-filter on the tiny `duplicate` column instead, which
    selects nothing; views (a database of views over the warehouse) refuse PREWHERE on both engines."""


_RECENT: Final = "observed_at >= toDateTime(%(now)s) - INTERVAL %(hours)s HOUR"
_RANGE: Final = "observed_at >= %(start)s AND observed_at < %(end)s"
"""A history page's date range (dashboards.data.history.Window), on a big table's time column."""

_LETTER_PLACE: Final = (
    "({scope} OR (path = '' AND unit IN %(scope_units)s) OR (%(include_unplaced)s = 1 AND path = '' AND unit = ''))"
)
"""Where a dead letter shows: its path in the subtree (the worker places it by its device topic's unit); one stored
before migration 0011 has no path but a unit computed from its source, so it is placed by that; one naming no
unit (an HTTP route, a Kafka topic, a malformed topic) belongs to the whole tree's root site only."""

_PAGES: Final[tuple[Query, ...]] = (
    # --- overview ---------------------------------------------------------------------------------------
    Query(
        "incidents_by_unit",
        "incidents",
        "Active incidents per place, responsible unit and severity, with how many are past their SLA.",
        """
        SELECT unit, responsible_unit, severity, count() AS incidents,
               countIf(ifNull(sla_due_at < toDateTime(%(now)s), 0)) AS overdue
        FROM incidents FINAL
        WHERE ({scope} OR {responsible}) AND state IN %(active)s
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
        WHERE {scope} AND hour >= toDateTime(%(now)s) - INTERVAL %(hours)s HOUR
        GROUP BY unit, device_key
        ORDER BY unit, device_key
        """,
    ),
    Query(
        "reports_by_state",
        "citizen_reports",
        "Citizen reports per category and state submitted in a time range.",
        """
        SELECT category, state, count() AS reports
        FROM citizen_reports FINAL
        WHERE {scope} AND submitted_at >= %(start)s AND submitted_at < %(end)s
        GROUP BY category, state
        """,
    ),
    Query(
        "devices_by_vendor",
        "device_status",
        "Devices per vendor and kind, how many are silent (no data for their kind's silence limit).",
        """
        SELECT vendor, kind, count() AS devices,
               countIf(%(now)s - toUnixTimestamp(last_seen)
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
        "Worst station AQI per place and hour in a time range.",
        """
        SELECT unit, hour, max(aqi) AS aqi
        FROM aqi_hourly FINAL
        WHERE {scope} AND hour >= %(start)s AND hour < %(end)s
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
              AND window_start >= %(start)s AND window_start < %(end)s
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
        "Each water gauge's highest level per five minutes in a time range (a ward's few gauges).",
        """
        SELECT device_key, toStartOfFiveMinute(observed_at) AS at, max(value) AS level
        FROM readings {prewhere}
        WHERE {window} AND {scope} AND unit IN %(scope_units)s AND measure = 'waterLevel'
        GROUP BY device_key, at
        ORDER BY at
        """,
        window=_RANGE,
    ),
    Query(
        "water_trend_by_unit",
        "unit_aggregates",
        "The highest water level per 15 minutes in each of the given units (their rolled-up rows).",
        """
        SELECT unit, window_start AS at, max(max) AS level
        FROM unit_aggregates FINAL
        WHERE {scope} AND unit IN %(units)s AND window = '15m' AND measure = 'waterLevel'
              AND window_start >= %(start)s AND window_start < %(end)s
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
        "Distinct detections per camera and type in a time range (de-duplicated repeats left out), with\n"
        "where each camera is: the page's violations by type and place and its hotspots, from one scan.",
        """
        SELECT device_key, unit, event_type, uniqExact(seq) AS events, any(lat) AS lat, any(lon) AS lon,
               max(observed_at) AS last_at
        FROM camera_events {prewhere}
        WHERE {window} AND {scope} AND unit IN %(scope_units)s AND duplicate = 0 AND event_type IN %(types)s
        GROUP BY device_key, unit, event_type
        """,
        window=_RANGE,
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
        SELECT incident_id, version, assignee, evidence, rule, module, unit, responsible_unit, severity, state, title,
               opened_at, updated_at, sla_due_at, escalation_level, note, lat, lon, devices, reports, detail
        FROM incidents FINAL
        WHERE ({scope} OR {responsible}) AND incident_id = %(incident_id)s
        """,
    ),
    Query(
        "incident_history",
        "incident_history",
        "Every recorded version of one incident: who did what, when.",
        """
        SELECT version, action, actor, state, responsible_unit, escalation_level, updated_at, note, assignee
        FROM incident_history FINAL
        WHERE ({scope} OR {responsible}) AND incident_id = %(incident_id)s
        ORDER BY version
        """,
    ),
    Query(
        "incident_deliveries",
        "notification_deliveries",
        "The notifications sent (or held, or failed) about one incident, latest first (docs/notifications.md).",
        """
        SELECT delivery_id, event, rule, recipient, channel, status, attempts, detail, updated_at
        FROM notification_deliveries FINAL
        WHERE ({scope} OR {responsible}) AND incident_id = %(incident_id)s
        ORDER BY updated_at DESC, event, recipient
        LIMIT %(limit)s
        """,
    ),
    Query(
        "command_refusal",
        "command_refusals",
        "Why the stream workers refused one incident command (none when it was carried out or is still queued).",
        """
        SELECT command_id, incident_id, action, actor, target_unit, reason, detail, refused_at
        FROM command_refusals FINAL
        WHERE ({scope} OR {responsible}) AND command_id = %(command_id)s
        """,
    ),
    Query(
        "incident_snapshots",
        "camera_events",
        "The camera snapshots (keys in the snapshot store) of one incident's detections since a time, newest first.",
        """
        SELECT device_key, seq, event_type, observed_at, snapshot
        FROM camera_events
        WHERE {scope} AND unit IN %(scope_units)s AND observed_at >= %(since)s AND incident_id = %(incident_id)s
              AND snapshot != '' AND duplicate = 0
        ORDER BY observed_at DESC, device_key, seq
        LIMIT 1 BY device_key, seq
        LIMIT %(limit)s
        """,
    ),
    # --- citizen reports --------------------------------------------------------------------------------
    Query(
        "reports_recent",
        "citizen_reports",
        "The latest citizen reports (contact details are personal data: masked for viewers).",
        """
        SELECT report_id, source, category, unit, submitted_at, text, address, lat, lon,
               contact_name, contact_phone, contact_email, incident_id, linked_incident_id, state
        FROM citizen_reports FINAL
        WHERE {scope} AND submitted_at >= %(start)s AND submitted_at < %(end)s AND category IN %(categories)s
        ORDER BY submitted_at DESC
        LIMIT %(limit)s
        """,
    ),
    Query(
        "report_incidents",
        "incidents",
        "The reports' own incidents: their state, PAKN state and deadlines (in `detail`, ioc.pakn) and version.",
        """
        SELECT incident_id, version, rule, unit, responsible_unit, state, detail, note, sla_due_at, updated_at
        FROM incidents FINAL
        WHERE ({scope} OR {responsible}) AND incident_id IN %(incident_ids)s
        """,
    ),
    Query(
        "incident_reports",
        "citizen_reports",
        "The citizen reports linked to one incident (streams.linking), oldest first.",
        """
        SELECT report_id, category, unit, submitted_at, text, incident_id
        FROM citizen_reports FINAL
        WHERE {scope} AND linked_incident_id = %(incident_id)s
        ORDER BY submitted_at, report_id
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
        SELECT code, group_code, points, max_points, numerator, denominator, rate, no_data, measured, policy,
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
        "Decision 766 points earned, points measured and indicators measured per unit and group for one period.",
        """
        SELECT unit, group_code, sumIf(points, measured = 1) AS points, sumIf(max_points, measured = 1) AS coverage,
               groupArrayIf(code, measured = 1) AS measured_codes
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
        WHERE {scope} AND %(now)s - toUnixTimestamp(last_seen)
              > if(kind = 'camera', %(camera_silent_s)s, %(device_silent_s)s)
        ORDER BY last_seen
        LIMIT %(limit)s
        """,
    ),
    # Dead letters are placed like every other row (_LETTER_PLACE), and a site's database holds its copy of them.
    Query(
        "rejections_by_vendor",
        "deadletters",
        "Refused inputs per vendor and reason in a time range.",
        f"""
        SELECT vendor, reason, sum(count) AS letters, max(received_at) AS last_at
        FROM deadletters FINAL
        WHERE received_at >= %(start)s AND received_at < %(end)s
              AND {_LETTER_PLACE}
        GROUP BY vendor, reason
        ORDER BY letters DESC
        """,  # noqa: S608 - only the constant _LETTER_PLACE is spliced in
    ),
    Query(
        "rejections_recent",
        "deadletters",
        "The latest refused inputs with their reason (never the payload).",
        f"""
        SELECT received_at, vendor, device, reason, detail, source, size
        FROM deadletters FINAL
        WHERE received_at >= %(start)s AND received_at < %(end)s
              AND {_LETTER_PLACE}
        ORDER BY received_at DESC
        LIMIT %(limit)s
        """,  # noqa: S608 - only the constant _LETTER_PLACE is spliced in
    ),
)

_CITIZEN: Final[tuple[Query, ...]] = (
    # --- the citizen API: a vendor's own rejections (the vendor from its token, never from the request) -----------
    Query(
        "vendor_rejections",
        "deadletters",
        "One vendor's refused inputs in a time range, newest first, with reason and detail (never the payload).",
        f"""
        SELECT received_at, device, reason, detail, source, size, count
        FROM deadletters FINAL
        WHERE vendor = %(vendor)s AND received_at >= %(start)s AND received_at < %(end)s
              AND {_LETTER_PLACE}
        ORDER BY received_at DESC
        LIMIT %(limit)s
        """,  # noqa: S608 - only the constant _LETTER_PLACE is spliced in
    ),
    # --- the citizen API: open data (times are passed in, so a cached answer and its generated_at agree) ----
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
        WHERE {scope} AND state IN %(active)s AND rule IN %(rules)s
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
        "Decision 766 points per unit and group for one period (only measured indicators earn points).",
        """
        SELECT unit, group_code, sumIf(points, measured = 1) AS group_points, sum(max_points) AS group_max,
               sumIf(max_points, measured = 1) AS group_coverage, groupArrayIf(code, measured = 1) AS measured_codes
        FROM indicators_766 FINAL
        WHERE {scope} AND period_kind = %(period_kind)s AND period_start = %(period)s
        GROUP BY unit, group_code
        ORDER BY unit, group_code
        """,
    ),
    # --- the citizen API: Open311 requests (never a reporter's contact details, nor who acted) -----------
    Query(
        "report",
        "citizen_reports",
        "One citizen report (never its contact details), if it is about a place in the site.",
        """
        SELECT report_id, source, category, unit, submitted_at, text, address, lat, lon, media_urls, incident_id,
               linked_incident_id
        FROM citizen_reports FINAL
        WHERE {scope} AND report_id = %(report_id)s
        """,
    ),
    Query(
        "reports",
        "citizen_reports",
        "Citizen reports submitted in a time range, optionally of some categories, newest first.",
        """
        SELECT report_id, source, category, unit, submitted_at, text, address, lat, lon, media_urls, incident_id,
               linked_incident_id
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
        SELECT report_id, source, category, unit, submitted_at, text, address, lat, lon, media_urls, incident_id,
               linked_incident_id
        FROM citizen_reports FINAL
        WHERE {scope} AND report_id IN %(report_ids)s
        ORDER BY submitted_at DESC, report_id
        """,
    ),
    Query(
        "incident_states",
        "incidents",
        "The current state of the given incidents, with the unit now responsible, the SLA and the detail that holds "
        "a report's PAKN state and the note its citizen reads (ioc.pakn).",
        """
        SELECT incident_id, state, responsible_unit, sla_due_at, updated_at, escalation_level, detail
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

QUERIES: Final[Mapping[str, Query]] = {q.name: q for q in (*_PAGES, *_CITIZEN)}

TABLE_ENGINE: Final = "SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = %(table)s"
"""Whether a name in the connection's database is a table (a site's copies, the warehouse) or a view."""

CITIZEN_API: Final = frozenset({"aqi_by_station", *(q.name for q in _CITIZEN)})
"""The statements the citizen API runs (what it publishes: never personal data); the pages run the others."""
