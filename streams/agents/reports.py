"""Citizen reports: store each, open its incident with PAKN deadlines, link it to the incident it is about."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Final

from ioc import pakn, topics
from ioc.clients.clickhouse import WarehouseError
from ioc.events import ACTIVE_STATES, CitizenReport, Detection, IncidentState, Severity
from streams import lifecycle, linking
from streams.agents.common import add_detections, fail_fast
from streams.pipeline import PartitionBuffer
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["register"]

log = logging.getLogger(__name__)

URGENT = frozenset({"flooding", "public_order"})

CANDIDATES_SQL: Final = """
SELECT incident_id, rule, module, unit, severity, title, state, opened_at, lat, lon
FROM {database}.incidents FINAL
WHERE rule IN %(rules)s AND state IN %(active)s
"""
"""The open incidents reports might be about (streams.linking chooses among them, by place and time)."""

CANDIDATES_TTL_S: Final = 1.0
"""How long one reading of the open incidents serves the reports that follow it: a burst of reports (or a replay
after a restart) costs one query a second, not one each."""


class _OpenIncidents:
    """The open incidents of every rule a report category links to, read from the warehouse at most once per
    `CANDIDATES_TTL_S`. When the warehouse cannot answer, none for that long: reports are stored and opened unlinked
    rather than held back, and an outage is not waited out once per report (docs/citizen-reports.md)."""

    def __init__(self, rt: Runtime) -> None:
        self._rt = rt
        # Tuples: the driver renders a tuple as an IN list (a list would be an Array).
        self._rules = tuple(
            sorted({rule for category in rt.model.report_categories.values() for rule in category.incident_rules})
        )
        self._found: list[linking.Candidate] = []
        self._until = 0.0

    async def get(self) -> list[linking.Candidate]:
        if not self._rules or time.monotonic() < self._until:
            return self._found
        sql = CANDIDATES_SQL.format(database=self._rt.database)
        params = {"rules": self._rules, "active": ACTIVE_STATES}
        try:
            found = await asyncio.to_thread(self._rt.sink.warehouse.query, sql, params)
        except WarehouseError as exc:
            log.warning("reports: open incidents unreadable, reports stored unlinked meanwhile: %s", exc)
            found = []
        self._found = [linking.candidate(row) for row in found]
        self._until = time.monotonic() + CANDIDATES_TTL_S
        return self._found


def register(rt: Runtime) -> None:
    """Read `ioc.citizen-reports.v1`: each report becomes an incident of rule `citizen-report`.

    The incident is in the module the report's category belongs to (reference model), with an SLA in Vietnamese working
    days and its PAKN state `received` with the deadlines to reject, request information and answer (ioc.pakn); its id
    is known here already (deterministic: episode + submission time), so the report row links to it at once. A report
    about an open incident of its category nearby (streams.linking) is linked to it: the row and the report's incident
    name it, and a `link` detection adds the report to that incident. Reports are read through a pipeline
    (streams.pipeline: the detections sent and the row stored before the offset is committed, in order, through
    rebalances and restarts); the open incidents they may link to are read at most once a second (`_OpenIncidents`). A
    record that cannot be read is dead-lettered (`undecodable`) and the agent goes on with the next one.
    """

    pipeline = rt.pipeline("reports", topics.CITIZEN_REPORTS.name, flush_when_idle=True)
    open_incidents = _OpenIncidents(rt)

    async def handle(_partition: int, buffer: PartitionBuffer, report: CitizenReport) -> None:
        candidates = await open_incidents.get()
        category = report.category if report.category in rt.model.report_categories else "other"
        info = rt.model.report_categories[category]
        episode = linking.report_episode(report)
        answer_days = rt.model.report_sla(category).resolve_working_days
        deadlines = pakn.deadlines(rt.calendar, report.submitted_at, answer_days)
        linked = linking.choose(report, candidates, rt.model, rt.tree)
        detail = {"source": report.source, pakn.DETAIL_STATE: pakn.PaknState.RECEIVED.value}
        detail |= deadlines.as_detail()
        detections = []
        if linked is not None:
            detail["linked_incident"] = linked.incident_id
            detections.append(linking.link_detection(report, linked))
        detections.append(
            Detection(
                episode=episode,
                rule=pakn.REPORT_RULE,
                module=info.module,
                unit=report.unit,
                signal="open",
                at=report.submitted_at,
                severity=Severity.HIGH if category in URGENT else Severity.MEDIUM,
                title=f"{info.label_vi}: {report.text[:200]}",
                reports=[report.report_id],
                detail=detail,
                lat=report.lat,
                lon=report.lon,
                report_category=category,
            )
        )
        add_detections(buffer, detections)
        incident = lifecycle.incident_id(episode, report.submitted_at)
        row = rows.report_row(
            report,
            rt.path(report.unit),
            incident,
            IncidentState.OPEN,
            1,
            linked_incident_id=linked.incident_id if linked is not None else "",
        )
        buffer.add_rows("citizen_reports", [row])

    @rt.app.agent(rt.topic(topics.CITIZEN_REPORTS.name), name="streams.reports")
    @fail_fast
    async def reports(stream: Any) -> None:
        await pipeline.consume(
            stream, lambda event: topics.CITIZEN_REPORTS.decode(event.value), handle, lambda _partition, _buffer: None
        )
