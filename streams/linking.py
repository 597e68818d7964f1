"""Linking citizen reports to the open incident they are about, and answering them when it is resolved. Pure.

A report is linked to an incident when (all of):
- the incident's rule is one of the report category's `incident_rules` (reference model; a flooding
  report and a `flood-level` incident);
- the incident is still open (acknowledged or dispatched counts: ioc.events.ACTIVE_STATES);
- it opened before the report was submitted, or at most `report_linking.window_minutes` after;
- it is within `report_linking.radius_m` of the report: both points are the report's and the
  incident's coordinates where they have them, else their communes' markers (ioc.units).
Of several, the nearest wins, then the latest opened, then the smallest id (so a replay chooses the same).

The reports agent (streams.agents.reports) reads the candidates from the warehouse, calls `choose`, and
sends the report's own incident with `linked_incident` in its detail and a `link` detection to the chosen
incident's episode (`link_detection`). The incidents agent (streams.agents.incidents) sends an `answer`
detection to each linked report's episode when the incident is resolved or closed (`answers_for`);
streams.reportflow answers the report with the resolution's note. A report submitted before its incident
opened but delivered after is linked (the window); one the worker read before the incident existed is not
linked later (docs/citizen-reports.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, Final

from ioc import pakn, topics
from ioc.events import ACTIVE_STATES, CitizenReport, Detection, Incident, IncidentState, Module, Severity
from ioc.reference import ReferenceModel
from ioc.units import UnitTree, distance_m

__all__ = [
    "LINK_PREFIX",
    "Candidate",
    "answers_for",
    "candidate",
    "choose",
    "link_detection",
    "linked_reports",
    "report_episode",
]

LINK_PREFIX: Final = "report:"
"""A linked incident's detail keeps `report:<report id>` → that report's episode, to answer it later."""

_DONE: Final = frozenset({IncidentState.RESOLVED, IncidentState.CLOSED})


@dataclasses.dataclass(frozen=True, slots=True)
class Candidate:
    """An incident a report might be about, as the warehouse has it now."""

    incident_id: str
    rule: str
    module: str
    unit: str
    severity: str
    title: str
    state: str
    opened_at: dt.datetime
    lat: float | None = None
    lon: float | None = None


def candidate(row: Mapping[str, Any]) -> Candidate:
    """A candidate from an `incidents` row (opened_at read as UTC when the driver gives it naive)."""
    opened = row["opened_at"]
    if opened.tzinfo is None:
        opened = opened.replace(tzinfo=dt.UTC)
    return Candidate(
        incident_id=str(row["incident_id"]),
        rule=str(row["rule"]),
        module=str(row["module"]),
        unit=str(row["unit"]),
        severity=str(row["severity"]),
        title=str(row["title"]),
        state=str(row["state"]),
        opened_at=opened,
        lat=row.get("lat"),
        lon=row.get("lon"),
    )


def report_episode(report: CitizenReport) -> str:
    """The episode of a report's own incident (one per report)."""
    return f"{pakn.REPORT_RULE}:{report.unit}:{report.report_id}"


def _point(lat: float | None, lon: float | None, unit: str, tree: UnitTree) -> tuple[float, float] | None:
    if lat is not None and lon is not None:
        return lat, lon
    if unit in tree:
        marker = tree.get(unit)
        return marker.lat, marker.lon
    return None


def choose(
    report: CitizenReport, candidates: Iterable[Candidate], model: ReferenceModel, tree: UnitTree
) -> Candidate | None:
    """The incident `report` is about, by the rules in this module's opening; None when none fits."""
    category = model.report_categories.get(report.category)
    rules = frozenset(category.incident_rules) if category else frozenset()
    if not rules:
        return None
    linking = model.report_linking
    latest = report.submitted_at + dt.timedelta(minutes=linking.window_minutes)
    here = _point(report.lat, report.lon, report.unit, tree)
    if here is None:
        return None
    fitting: list[tuple[float, float, str, Candidate]] = []
    for found in candidates:
        if found.rule not in rules or found.state not in ACTIVE_STATES or found.opened_at > latest:
            continue
        there = _point(found.lat, found.lon, found.unit, tree)
        if there is None:
            continue
        distance = distance_m(*here, *there)
        if distance <= linking.radius_m:
            fitting.append((distance, -found.opened_at.timestamp(), found.incident_id, found))
    return min(fitting, key=lambda f: f[:3])[3] if fitting else None


def link_detection(report: CitizenReport, incident: Candidate) -> Detection:
    """The `link` signal that adds `report` to `incident` (on the incident's own episode)."""
    return Detection(
        episode=topics.episode_of(incident.incident_id),
        rule=incident.rule,
        module=Module(incident.module),
        unit=incident.unit,
        signal="link",
        at=report.submitted_at,
        severity=Severity(incident.severity),
        title=incident.title,
        reports=[report.report_id],
        detail={"incident": incident.incident_id, LINK_PREFIX + report.report_id: report_episode(report)},
    )


def linked_reports(incident: Incident) -> dict[str, str]:
    """Report id → its episode, for every report linked to `incident`."""
    return {k.removeprefix(LINK_PREFIX): v for k, v in incident.detail.items() if k.startswith(LINK_PREFIX)}


def answers_for(incident: Incident) -> list[Detection]:
    """An `answer` detection to each linked report once `incident` is resolved or closed (none before)."""
    if incident.state not in _DONE or incident.rule == pakn.REPORT_RULE:
        return []
    found = []
    for report_id, episode in sorted(linked_reports(incident).items()):
        unit = episode.split(":")[1]
        found.append(
            Detection(
                episode=episode,
                rule=pakn.REPORT_RULE,
                module=incident.module,
                unit=unit,
                signal="answer",
                at=incident.updated_at,
                severity=incident.severity,
                title=incident.title,
                reports=[report_id],
                detail={"incident": incident.incident_id, "note": incident.note or ""},
            )
        )
    return found
