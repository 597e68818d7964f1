"""Citizen reports: store each one and open its incident, routed to the commune it is about."""

from __future__ import annotations

from typing import Any

from ioc import topics
from ioc.events import Detection, IncidentState, Severity
from streams import lifecycle
from streams.agents.common import dead_letter_undecodable, detection_messages, fail_fast
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["register"]

URGENT = frozenset({"flooding", "public_order"})


def register(rt: Runtime) -> None:
    """Read `ioc.citizen-reports.v1`: each report becomes an incident of rule `citizen-report`.

    The incident is in the module the report's category belongs to (reference model), with an SLA in Vietnamese working
    days; its id is known here already (deterministic: episode + submission time), so the report row links to it at
    once. Dashboards relate reports to sensor incidents of the same place and time (e.g. flood reports to the flood).
    A record that cannot be read is dead-lettered (`undecodable`) and the agent goes on with the next one.
    """

    @rt.app.agent(rt.topic(topics.CITIZEN_REPORTS.name), name="streams.reports")
    @fail_fast
    async def reports(stream: Any) -> None:
        async for events in stream.take_events(500, within=rt.settings.sink_flush_s):
            report_rows = []
            detections = []
            for event in events:
                try:
                    report = topics.CITIZEN_REPORTS.decode(event.value)
                except Exception as exc:  # noqa: BLE001 - whatever the bytes, they must not stop the worker
                    await dead_letter_undecodable(rt, "streams.reports", event, exc)
                    continue
                category = report.category if report.category in rt.model.report_categories else "other"
                info = rt.model.report_categories[category]
                episode = f"citizen-report:{report.unit}:{report.report_id}"
                detection = Detection(
                    episode=episode,
                    rule="citizen-report",
                    module=info.module,
                    unit=report.unit,
                    signal="open",
                    at=report.submitted_at,
                    severity=Severity.HIGH if category in URGENT else Severity.MEDIUM,
                    title=f"{info.label_vi}: {report.text[:200]}",
                    reports=[report.report_id],
                    detail={"source": report.source},
                    lat=report.lat,
                    lon=report.lon,
                    report_category=category,
                )
                detections.append(detection)
                incident = lifecycle.incident_id(episode, report.submitted_at)
                report_rows.append(rows.report_row(report, rt.path(report.unit), incident, IncidentState.OPEN, 1))
            for message in detection_messages(detections):
                await rt.topic(message.topic).send(key=message.key, value=message.value, partition=message.partition)
            await rt.sink.write("citizen_reports", report_rows)
            await rt.app.producer.flush()
