"""PAKN steps of a citizen report's incident and linking reports to incidents: pure functions, no services."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ioc import pakn
from ioc.authz import CommandRefusal
from ioc.events import (
    CitizenReport,
    Detection,
    Incident,
    IncidentAction,
    IncidentCommand,
    IncidentState,
    Module,
    Severity,
)
from ioc.reference import default_reference_model
from ioc.units import load_tree
from ioc.workdays import default_calendar
from streams import lifecycle, linking
from streams.lifecycle import Context, EpisodeState

CTX = Context(default_reference_model(), default_calendar(), load_tree("2024"))
VN = ZoneInfo("Asia/Ho_Chi_Minh")
MONDAY = dt.datetime(2025, 6, 2, 7, 30, tzinfo=VN)  # 2 June 2025, office opening on a Monday with no holiday
DONG_HOA = CTX.tree.get("25957")
_ids = itertools.count()


def citizen_report(
    report_id: str = "r-1", *, at: dt.datetime = MONDAY, category: str = "flooding", **kw: Any
) -> CitizenReport:
    fields: dict[str, Any] = {"lat": DONG_HOA.lat, "lon": DONG_HOA.lon, **kw}
    return CitizenReport(
        report_id=report_id,
        source="open311",
        category=category,
        unit="25957",
        submitted_at=at,
        text="Nước ngập ngang gối trên đường Trần Hưng Đạo",
        **fields,
    )


def received(report: CitizenReport | None = None, linked: str | None = None) -> tuple[EpisodeState, Incident]:
    """A report's incident as the reports agent opens it (streams.agents.reports)."""
    report = report or citizen_report()
    answer_days = CTX.model.report_sla(report.category).resolve_working_days
    detail = {"source": "open311", pakn.DETAIL_STATE: "received"}
    detail |= pakn.deadlines(CTX.calendar, report.submitted_at, answer_days).as_detail()
    if linked:
        detail["linked_incident"] = linked
    episode = EpisodeState()
    [change] = lifecycle.on_detection(
        episode,
        Detection(
            episode=linking.report_episode(report),
            rule=pakn.REPORT_RULE,
            module=Module.ENVIRONMENT,
            unit=report.unit,
            signal="open",
            at=report.submitted_at,
            severity=Severity.HIGH,
            title="Ngập úng",
            reports=[report.report_id],
            detail=detail,
            report_category=report.category,
        ),
        CTX,
    )
    return episode, change.incident


def act(episode: EpisodeState, action: IncidentAction, at: dt.datetime, note: str | None = "") -> Any:
    assert episode.incident is not None
    command = IncidentCommand(
        command_id=f"c-{next(_ids)}",
        incident_id=episode.incident.incident_id,
        action=action,
        actor="op.donghoa",
        site_unit="25957",
        issued_at=at,
        note=note,
        grants=("operator@25957",),
    )
    return lifecycle.on_command(episode, command, CTX)


def test_deadlines_are_two_five_and_the_category_s_working_days_from_submission() -> None:
    found = pakn.deadlines(CTX.calendar, MONDAY, 15)
    assert found.reject_by == dt.datetime(2025, 6, 3, 17, 0, tzinfo=VN)  # Tuesday evening: 2 WD
    assert found.request_info_by == dt.datetime(2025, 6, 6, 17, 0, tzinfo=VN)  # Friday: 5 WD
    assert found.answer_by == dt.datetime(2025, 6, 20, 17, 0, tzinfo=VN)  # three weeks of 5 WD


def test_reject_needs_a_reason_and_closes_the_report_for_the_citizen() -> None:
    episode, _ = received()
    changes, verdict = act(episode, IncidentAction.REJECT, MONDAY + dt.timedelta(hours=2), note="  ")
    assert changes == [] and verdict is not None and verdict.reason is CommandRefusal.NOTE_REQUIRED
    assert "reason" in verdict.detail
    [change], verdict = act(episode, IncidentAction.REJECT, MONDAY + dt.timedelta(hours=2), note="Trùng phản ánh r-0")
    assert verdict is None and change.action == "reject"
    assert change.incident.state is IncidentState.CLOSED and change.incident.sla_due_at is None
    assert pakn.state_of(change.incident.detail, change.incident.state) is pakn.PaknState.REJECTED
    assert change.incident.detail[pakn.DETAIL_NOTE] == "Trùng phản ánh r-0"
    # Rejected is final: it can be neither answered nor rejected again.
    changes, verdict = act(episode, IncidentAction.ANSWER, MONDAY + dt.timedelta(hours=3), note="x")
    assert changes == [] and verdict.reason is CommandRefusal.WRONG_STATE and "rejected" in verdict.detail


def test_waiting_for_the_citizen_stops_the_answer_clock_and_supplying_moves_the_deadline() -> None:
    episode, opened = received(citizen_report(category="infrastructure"))  # 10 WD to answer
    first_due = dt.datetime.fromisoformat(opened.detail["answer_by"])
    asked_at = MONDAY + dt.timedelta(hours=3)  # Monday 11:00
    [asked], _ = act(episode, IncidentAction.REQUEST_INFO, asked_at, note="Xin ảnh chụp vị trí ổ gà")
    assert asked.incident.sla_due_at is None  # no escalation while waiting
    assert pakn.citizen_status(pakn.state_of(asked.incident.detail, asked.incident.state)) == "open"
    # Supplying needs the request first, and a note.
    supplied_at = asked_at + dt.timedelta(days=2)  # Wednesday 11:00: two working days waited
    changes, verdict = act(episode, IncidentAction.SUPPLY_INFO, supplied_at, note=None)
    assert changes == [] and verdict.reason is CommandRefusal.NOTE_REQUIRED
    [supplied], _ = act(episode, IncidentAction.SUPPLY_INFO, supplied_at, note="Người dân gửi ảnh qua tổng đài")
    new_due = dt.datetime.fromisoformat(supplied.incident.detail["answer_by"])
    assert CTX.calendar.working_days_between(first_due, new_due) == pytest.approx(2.0)
    assert supplied.incident.sla_due_at == new_due
    [progress], _ = act(episode, IncidentAction.ACKNOWLEDGE, supplied_at + dt.timedelta(hours=1))
    assert pakn.state_of(progress.incident.detail, progress.incident.state) is pakn.PaknState.IN_PROGRESS
    assert progress.incident.sla_due_at == new_due  # escalation follows the answer deadline, waits excluded
    [answered], _ = act(episode, IncidentAction.ANSWER, supplied_at + dt.timedelta(hours=5), note="Đã vá ổ gà")
    incident = answered.incident
    assert incident.state is IncidentState.RESOLVED
    assert pakn.status_note(pakn.state_of(incident.detail, incident.state), incident.detail["pakn_note"], "vi") == (
        "Đã trả lời: Đã vá ổ gà"
    )
    assert "publish_by" in incident.detail


def test_a_pakn_action_on_an_ordinary_incident_is_refused() -> None:
    episode = EpisodeState()
    lifecycle.on_detection(
        episode,
        Detection(
            episode="flood-level:25957",
            rule="flood-level",
            module=Module.ENVIRONMENT,
            unit="25957",
            signal="open",
            at=MONDAY,
            severity=Severity.HIGH,
            title="Ngập",
        ),
        CTX,
    )
    changes, verdict = act(episode, IncidentAction.ANSWER, MONDAY + dt.timedelta(hours=1), note="x")
    assert changes == [] and verdict.reason is CommandRefusal.WRONG_STATE and "citizen reports only" in verdict.detail


def flood(at: dt.datetime = MONDAY, **kw: Any) -> linking.Candidate:
    fields: dict[str, Any] = {
        "incident_id": "flood-level:25957:20250602T005500",
        "rule": "flood-level",
        "module": "environment",
        "unit": "25957",
        "severity": "high",
        "title": "Ngập: mực nước vượt mức báo động",
        "state": "open",
        "opened_at": at,
        "lat": DONG_HOA.lat,
        "lon": DONG_HOA.lon,
        **kw,
    }
    return linking.Candidate(**fields)


def test_a_report_links_to_the_open_incident_of_its_category_nearby_and_in_time() -> None:
    model, tree = CTX.model, CTX.tree
    report = citizen_report(at=MONDAY + dt.timedelta(minutes=12))
    assert linking.choose(report, [flood()], model, tree) == flood()
    # Another category's rule, a closed incident, or one far away do not link.
    assert linking.choose(citizen_report(category="waste"), [flood()], model, tree) is None
    assert linking.choose(report, [flood(state="resolved")], model, tree) is None
    assert linking.choose(report, [flood(lat=DONG_HOA.lat + 0.05)], model, tree) is None  # ~5.5 km north
    # Time: an incident opening more than the window after the report is another event.
    window = dt.timedelta(minutes=model.report_linking.window_minutes)
    assert (
        linking.choose(report, [flood(at=report.submitted_at + window + dt.timedelta(minutes=1))], model, tree) is None
    )
    assert linking.choose(report, [flood(at=report.submitted_at + window)], model, tree) is not None
    # Of two, the nearer; a report with no point is placed at its commune's marker.
    near, far = (
        flood(incident_id="a:1:1", lat=DONG_HOA.lat + 0.001),
        flood(incident_id="b:1:1", lat=DONG_HOA.lat + 0.01),
    )
    assert linking.choose(report, [far, near], model, tree) == near
    assert linking.choose(citizen_report(lat=None, lon=None), [far], model, tree) == far


def test_linking_adds_the_report_and_resolving_answers_it_with_the_note() -> None:
    report = citizen_report(at=MONDAY + dt.timedelta(minutes=12))
    flood_episode = EpisodeState()
    lifecycle.on_detection(
        flood_episode,
        Detection(
            episode="flood-level:25957",
            rule="flood-level",
            module=Module.ENVIRONMENT,
            unit="25957",
            signal="open",
            at=MONDAY,
            severity=Severity.HIGH,
            title="Ngập: mực nước vượt mức báo động",
        ),
        CTX,
    )
    assert flood_episode.incident is not None
    found = flood(incident_id=flood_episode.incident.incident_id)
    [linked] = lifecycle.on_detection(flood_episode, linking.link_detection(report, found), CTX)
    assert linked.action == "linked" and linked.incident.reports == [report.report_id]
    # A replay of the last change's event gives that change again, the same version (rows that replace themselves).
    assert lifecycle.on_detection(flood_episode, linking.link_detection(report, found), CTX) == [linked]
    assert linking.answers_for(linked.incident) == []  # still open: nothing to answer

    report_episode, _ = received(report, linked=found.incident_id)
    resolve = IncidentCommand(
        command_id="c-resolve",
        incident_id=found.incident_id,
        action=IncidentAction.RESOLVE,
        actor="op",
        site_unit="25957",
        issued_at=MONDAY + dt.timedelta(hours=2),
        note="Đã bơm thoát nước",
        grants=("operator@25957",),
    )
    [resolved], _ = lifecycle.on_command(flood_episode, resolve, CTX)
    [answer] = linking.answers_for(resolved.incident)
    assert answer.episode == linking.report_episode(report) and answer.signal == "answer"
    [change] = lifecycle.on_detection(report_episode, answer, CTX)
    assert change.action == "answer" and change.incident.state is IncidentState.RESOLVED
    assert pakn.state_of(change.incident.detail, change.incident.state) is pakn.PaknState.ANSWERED
    assert "Đã bơm thoát nước" in change.incident.detail[pakn.DETAIL_NOTE]
    assert lifecycle.on_detection(report_episode, answer, CTX) == [change]  # answered once: the same version again
    # A report linked elsewhere is not answered by this incident.
    other, _ = received(citizen_report("r-2"), linked="flood-rise:25957:x")
    assert lifecycle.on_detection(other, answer, CTX) == []


def test_a_link_to_an_incident_no_longer_open_changes_nothing_and_never_opens_one() -> None:
    report = citizen_report()
    assert lifecycle.on_detection(EpisodeState(), linking.link_detection(report, flood()), CTX) == []
