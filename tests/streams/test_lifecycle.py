"""The incident lifecycle: detections, operator commands, SLA clocks in hours and working days, escalation."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ioc.authz import CommandRefusal
from ioc.events import (
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
from streams import lifecycle
from streams.lifecycle import Change, Context, EpisodeState

CTX = Context(default_reference_model(), default_calendar(), load_tree("2024"))
VN = ZoneInfo("Asia/Ho_Chi_Minh")
OPENED = dt.datetime(2025, 6, 2, 8, 13, tzinfo=VN)  # a Monday morning in Đông Hòa
EPISODE = "flood-level:25957"
ACK, DISPATCH, RESOLVE, CLOSE, REOPEN = (
    IncidentAction.ACKNOWLEDGE,
    IncidentAction.DISPATCH,
    IncidentAction.RESOLVE,
    IncidentAction.CLOSE,
    IncidentAction.REOPEN,
)
_ids = itertools.count()


def minutes(n: float) -> dt.timedelta:
    return dt.timedelta(minutes=n)


def detection(
    signal: str = "open",
    at: dt.datetime = OPENED,
    *,
    episode: str = EPISODE,
    rule: str = "flood-level",
    module: Module = Module.ENVIRONMENT,
    unit: str = "25957",
    severity: Severity = Severity.HIGH,
    devices: tuple[str, ...] = ("acme-hydro/wl-dh-01",),
    **extra: Any,
) -> Detection:
    return Detection(
        episode=episode,
        rule=rule,
        module=module,
        unit=unit,
        signal=signal,  # type: ignore[arg-type]
        at=at,
        severity=severity,
        title="Ngập: mực nước vượt mức báo động",
        devices=list(devices),
        **extra,
    )


def command(
    incident: Incident,
    action: IncidentAction,
    at: dt.datetime,
    *,
    site: str = "25957",
    grants: tuple[str, ...] | None = None,
    **extra: Any,
) -> IncidentCommand:
    """A command from `site`'s dashboard by one of its operators (`grants` default: operator of the site)."""
    return IncidentCommand(
        command_id=f"cmd-{next(_ids)}",
        incident_id=incident.incident_id,
        action=action,
        actor="op.donghoa",
        site_unit=site,
        issued_at=at,
        grants=(f"operator@{site}",) if grants is None else grants,
        **extra,
    )


def refusal(episode: EpisodeState, cmd: IncidentCommand) -> tuple[list[Change], CommandRefusal | None, str]:
    """What `on_command` did: its changes, and the refusal's code and sentence (None, "" when accepted)."""
    changes, verdict = lifecycle.on_command(episode, cmd, CTX)
    return changes, (verdict.reason if verdict else None), (verdict.detail if verdict else "")


def opened(**kw: Any) -> tuple[EpisodeState, Incident]:
    episode = EpisodeState()
    [change] = lifecycle.on_detection(episode, detection(**kw), CTX)
    assert change.action == "opened"
    return episode, change.incident


def apply(episode: EpisodeState, cmd: IncidentCommand) -> Incident:
    changes, refused = lifecycle.on_command(episode, cmd, CTX)
    assert refused is None, refused
    [change] = changes
    assert (change.action, change.actor) == (cmd.action.value, cmd.actor)
    assert episode.incident is change.incident
    return change.incident


# --- ids and opening ------------------------------------------------------------------------------------------


def test_incident_ids_are_deterministic_episode_and_utc_start() -> None:
    assert lifecycle.incident_id(EPISODE, OPENED) == "flood-level:25957:20250602T011300"
    assert lifecycle.incident_id(EPISODE, OPENED.astimezone(dt.UTC)) == "flood-level:25957:20250602T011300"
    a, b = EpisodeState(), EpisodeState()
    assert lifecycle.on_detection(a, detection(), CTX) == lifecycle.on_detection(b, detection(), CTX)


def test_an_open_detection_opens_an_incident_with_its_sla() -> None:
    _, incident = opened()
    assert incident.incident_id == "flood-level:25957:20250602T011300"
    assert (incident.version, incident.state, incident.rule, incident.module) == (
        1,
        IncidentState.OPEN,
        "flood-level",
        Module.ENVIRONMENT,
    )
    assert (incident.unit, incident.responsible_unit, incident.escalation_level) == ("25957", "25957", 0)
    assert incident.opened_at == incident.updated_at == OPENED
    # High alarms: acknowledged within 30 minutes of opening.
    assert incident.sla_due_at == OPENED + minutes(30)
    assert incident.devices == ["acme-hydro/wl-dh-01"]


# --- commands ------------------------------------------------------------------------------------------------


def test_open_acknowledge_dispatch_resolve_close_reopen() -> None:
    episode, incident = opened()
    acked = apply(episode, command(incident, ACK, OPENED + minutes(10)))
    assert (acked.state, acked.version, acked.updated_at) == (IncidentState.ACKNOWLEDGED, 2, OPENED + minutes(10))
    assert acked.sla_due_at == OPENED + dt.timedelta(hours=8)  # now the resolve clock, from the opening
    dispatched = apply(episode, command(acked, DISPATCH, OPENED + minutes(12), site="724", target_unit="25957"))
    assert (dispatched.state, dispatched.responsible_unit) == (IncidentState.DISPATCHED, "25957")
    assert dispatched.sla_due_at == OPENED + dt.timedelta(hours=8)
    note = "Đã khơi thông cống, nước rút."
    resolved = apply(episode, command(dispatched, RESOLVE, OPENED + minutes(90), note=note))
    assert (resolved.state, resolved.note, resolved.sla_due_at) == (IncidentState.RESOLVED, note, None)
    closed = apply(episode, command(resolved, CLOSE, OPENED + minutes(120), site="74"))
    assert (closed.state, closed.note, closed.sla_due_at) == (IncidentState.CLOSED, note, None)
    reopened = apply(episode, command(closed, REOPEN, OPENED + minutes(180), note="Nước lại dâng."))
    assert (reopened.state, reopened.version, reopened.note) == (IncidentState.OPEN, 6, "Nước lại dâng.")
    assert reopened.sla_due_at == OPENED + minutes(180 + 30)  # a fresh acknowledgement clock
    assert reopened.incident_id == incident.incident_id and reopened.opened_at == OPENED


@pytest.mark.parametrize(
    ("setup", "action", "extra", "reason"),
    [
        ([], CLOSE, {}, "cannot close an incident that is open"),
        ([], REOPEN, {}, "cannot reopen an incident that is open"),
        ([ACK], ACK, {}, "cannot acknowledge an incident that is acknowledged"),
        ([], RESOLVE, {}, "resolve needs a note"),
        ([], RESOLVE, {"note": ""}, "resolve needs a note"),
        ([], DISPATCH, {"target_unit": "25747"}, "dispatch target 25747 is outside the actor's operator scope (25957)"),
        ([], DISPATCH, {"target_unit": "724"}, "dispatch target 724 is outside the actor's operator scope (25957)"),
        ([], DISPATCH, {"target_unit": "99999"}, "dispatch target 99999 is outside the actor's operator scope (25957)"),
    ],
)
def test_refused_transitions_give_a_reason_and_change_nothing(
    setup: list[IncidentAction], action: IncidentAction, extra: dict[str, Any], reason: str
) -> None:
    episode, incident = opened()
    for step in setup:
        incident = apply(episode, command(incident, step, OPENED + minutes(1)))
    commands = list(episode.commands)
    refused = command(incident, action, OPENED + minutes(5), **extra)
    changes, code, detail = refusal(episode, refused)
    assert (changes, detail) == ([], reason) and code is not None
    assert episode.incident is incident
    assert episode.commands == commands


def test_resolved_cannot_be_acknowledged_or_dispatched() -> None:
    episode, incident = opened()
    resolved = apply(episode, command(incident, RESOLVE, OPENED + minutes(5), note="Hết ngập."))
    for action, extra in ((ACK, {}), (DISPATCH, {"target_unit": "25957"}), (RESOLVE, {"note": "x"})):
        changes, code, reason = refusal(episode, command(resolved, action, OPENED + minutes(6), **extra))
        assert (changes, code, reason) == (
            [],
            CommandRefusal.WRONG_STATE,
            f"cannot {action.value} an incident that is resolved",
        )


def test_dispatch_target_must_be_within_the_acting_sites_subtree() -> None:
    episode, incident = opened()
    # The district site may send it to any of its wards, the province anywhere in the province.
    moved = apply(episode, command(incident, DISPATCH, OPENED + minutes(3), site="724", target_unit="25951"))
    assert moved.responsible_unit == "25951"
    moved = apply(episode, command(moved, DISPATCH, OPENED + minutes(4), site="74", target_unit="724"))
    assert moved.responsible_unit == "724"
    changes, code, _ = refusal(episode, command(moved, DISPATCH, OPENED + minutes(5), site="724", target_unit="25747"))
    assert (changes, code) == ([], CommandRefusal.TARGET_OUTSIDE_SCOPE)


def test_a_ward_operator_on_the_districts_site_dispatches_within_its_ward_only() -> None:
    episode, incident = opened()
    ward = ("operator@25957",)
    sibling = command(incident, DISPATCH, OPENED + minutes(3), site="724", grants=ward, target_unit="25951")
    changes, code, detail = refusal(episode, sibling)
    assert (changes, code) == ([], CommandRefusal.TARGET_OUTSIDE_SCOPE) and "25951" in detail
    assert episode.incident is incident
    # Grants the site could not give (another district, the province) are cut to the site: still refused.
    inflated = ("operator@25957", "operator@718", "viewer@74")
    forged = command(incident, DISPATCH, OPENED + minutes(4), site="724", grants=inflated, target_unit="25951")
    assert refusal(episode, forged)[1] is CommandRefusal.TARGET_OUTSIDE_SCOPE
    # No grants at all (an old or forged command): refused.
    bare = command(incident, ACK, OPENED + minutes(4), site="724", grants=())
    assert refusal(episode, bare)[1] is CommandRefusal.NOT_OPERATOR
    # Its own ward: carried out.
    kept = apply(
        episode, command(incident, DISPATCH, OPENED + minutes(5), site="724", grants=ward, target_unit="25957")
    )
    assert kept.state is IncidentState.DISPATCHED and kept.responsible_unit == "25957"


def test_the_site_proven_by_the_transport_overrides_the_body() -> None:
    episode, incident = opened()
    # A body claiming the province, delivered on the commune's own topic, acts as the commune's site.
    claimed = command(incident, DISPATCH, OPENED + minutes(1), site="74", target_unit="25951")
    changes, verdict = lifecycle.on_command(episode, claimed, CTX, site_unit="25957")
    assert changes == [] and verdict is not None and verdict.reason is CommandRefusal.TARGET_OUTSIDE_SCOPE


def test_a_command_from_a_site_that_does_not_cover_the_incident_is_refused() -> None:
    episode, incident = opened()
    for site, reason in (  # a neighbouring ward, another district, no such unit
        ("25951", CommandRefusal.OUTSIDE_SITE),
        ("718", CommandRefusal.OUTSIDE_SITE),
        ("99999", CommandRefusal.UNKNOWN_SITE),
    ):
        changes, code, detail = refusal(episode, command(incident, ACK, OPENED + minutes(1), site=site))
        assert (changes, code) == ([], reason) and site in detail
    assert episode.incident is incident and episode.commands == []
    # Dispatched to Bình An, the incident is also Bình An's to act on.
    moved = apply(episode, command(incident, DISPATCH, OPENED + minutes(2), site="724", target_unit="25951"))
    done = apply(episode, command(moved, RESOLVE, OPENED + minutes(3), site="25951", note="Đã xử lý."))
    assert done.state is IncidentState.RESOLVED


def test_a_command_for_another_incident_of_the_episode_is_refused() -> None:
    episode, incident = opened()
    stale = IncidentCommand(
        command_id="cmd-stale",
        incident_id=f"{EPISODE}:20240101T000000",
        action=ACK,
        actor="op",
        site_unit="25957",
        issued_at=OPENED,
    )
    assert refusal(episode, stale) == (
        [],
        CommandRefusal.STALE,
        f"incident {EPISODE}:20240101T000000 is not the current incident of its episode",
    )
    assert episode.incident is incident and episode.waiting == []


# --- a command before its incident (after a rebalance) ------------------------------------------------------


def test_a_command_for_an_incident_not_held_yet_waits_for_it_and_is_applied_when_it_opens() -> None:
    # The operator saw the incident; this worker took the episode over and has not read its detection again yet.
    _, incident = opened()
    episode = EpisodeState()
    ack = command(incident, ACK, OPENED + minutes(1))
    resolve = command(incident, RESOLVE, OPENED + minutes(2), note="Đã xử lý.")
    assert refusal(episode, ack) == ([], None, "")
    assert refusal(episode, resolve) == ([], None, "")
    assert refusal(episode, ack) == ([], None, "")  # the dashboard's retry waits once
    assert episode.waiting == [ack, resolve] and episode.incident is None
    assert lifecycle.waiting_commands(episode, OPENED + minutes(3)) == ([], [])  # still waiting
    lifecycle.on_detection(episode, detection(), CTX)  # the detection, read again
    ready, given_up = lifecycle.waiting_commands(episode)
    assert (ready, given_up, episode.waiting) == ([ack, resolve], [], [])
    assert apply(episode, ready[0]).state is IncidentState.ACKNOWLEDGED
    assert apply(episode, ready[1]).state is IncidentState.RESOLVED
    assert lifecycle.on_command(episode, ack, CTX) == ([], None)  # applied once


def test_a_waiting_command_is_refused_when_its_incident_does_not_come_or_a_newer_one_does() -> None:
    _, first = opened()
    later = OPENED + dt.timedelta(days=1)
    _, second = opened(at=later)
    episode = EpisodeState()
    lost = command(first, ACK, OPENED + minutes(1))
    assert refusal(episode, lost) == ([], None, "")
    ready, given_up = lifecycle.waiting_commands(episode, OPENED + minutes(1) + lifecycle.COMMAND_WAIT + minutes(1))
    assert ready == [] and [(c, v.reason) for c, v in given_up] == [(lost, CommandRefusal.STALE)]
    assert "did not reach its worker within 10 minutes" in given_up[0][1].detail and episode.waiting == []
    # Waiting for the first incident when the episode's newer one turns up: the first is no longer current.
    superseded = command(first, ACK, OPENED + minutes(1))
    assert refusal(episode, superseded) == ([], None, "")
    lifecycle.on_detection(episode, detection(at=later), CTX)
    assert episode.incident is not None and episode.incident.incident_id == second.incident_id
    ready, given_up = lifecycle.waiting_commands(episode)
    assert ready == [] and [(c, v.reason) for c, v in given_up] == [(superseded, CommandRefusal.STALE)]
    # So many waiting that a new one is refused at once, not kept.
    flood = EpisodeState()
    for n in range(lifecycle.MAX_WAITING):
        assert refusal(flood, command(first, ACK, OPENED + minutes(n))) == ([], None, "")
    assert refusal(flood, command(first, ACK, OPENED))[1] is CommandRefusal.STALE


def test_a_retried_command_applies_once() -> None:
    episode, incident = opened()
    ack = command(incident, ACK, OPENED + minutes(1))
    acked = apply(episode, ack)
    # The last command read again gives its change again, the same version (its rows may not have been stored
    # before the worker that applied it died; written twice, they are one row).
    assert lifecycle.on_command(episode, ack, CTX) == ([Change(acked, "acknowledge", ack.actor)], None)
    resolve = command(acked, RESOLVE, OPENED + minutes(2), note="Đã xử lý.")
    resolved = apply(episode, resolve)
    assert lifecycle.on_command(episode, resolve, CTX) == ([Change(resolved, "resolve", resolve.actor)], None)
    assert lifecycle.on_command(episode, ack, CTX) == ([], None)  # an older retry: nothing, and not "refused" either
    assert episode.incident is resolved and resolved.version == 3
    assert episode.commands == [ack.command_id, resolve.command_id]
    # Once another change made the current version, the last command's retry gives nothing.
    other, first = opened()
    ack2 = command(first, ACK, OPENED + minutes(1))
    apply(other, ack2)
    [grown] = lifecycle.on_detection(other, detection(at=OPENED + minutes(2), devices=("acme-hydro/wl-dh-02",)), CTX)
    assert grown.action == "updated" and other.last is not None and other.last.action == "updated"
    assert lifecycle.on_command(other, ack2, CTX) == ([], None)


def test_only_the_last_commands_are_remembered() -> None:
    episode, incident = opened()
    for n in range(lifecycle.REMEMBERED_COMMANDS + 10):
        incident = apply(episode, command(incident, DISPATCH, OPENED + minutes(n), target_unit="25957"))
    assert len(episode.commands) == lifecycle.REMEMBERED_COMMANDS


# --- detections -------------------------------------------------------------------------------------------------


def test_detections_merge_devices_and_reports_and_raise_severity_without_a_new_incident() -> None:
    episode, incident = opened()
    later = OPENED + minutes(2)
    [change] = lifecycle.on_detection(
        episode, detection(at=later, devices=("acme-hydro/wl-dh-02",), reports=["r-2", "r-1"]), CTX
    )
    assert change.action == "updated"
    merged = change.incident
    assert merged.incident_id == incident.incident_id and merged.version == 2
    assert merged.devices == ["acme-hydro/wl-dh-01", "acme-hydro/wl-dh-02"]
    assert merged.reports == ["r-1", "r-2"]
    [raised] = lifecycle.on_detection(episode, detection(at=later, severity=Severity.CRITICAL), CTX)
    assert (raised.action, raised.incident.severity, raised.incident.version) == ("updated", Severity.CRITICAL, 3)
    # Nothing new (a replay, a milder finding): no change.
    assert lifecycle.on_detection(episode, detection(at=later, severity=Severity.LOW), CTX) == []
    assert lifecycle.on_detection(episode, detection(), CTX) == []
    assert episode.incident is raised.incident


def test_clear_with_auto_close_closes_the_incident() -> None:
    episode, incident = opened(episode="aqi-bad:25987:envi.aq-1", rule="aqi-bad", unit="25987", auto_close=True)
    cleared_at = OPENED + minutes(90)
    [change] = lifecycle.on_detection(
        episode,
        detection(
            "clear", cleared_at, episode="aqi-bad:25987:envi.aq-1", rule="aqi-bad", unit="25987", auto_close=True
        ),
        CTX,
    )
    assert change.action == "cleared"
    assert (change.incident.state, change.incident.sla_due_at, change.incident.updated_at) == (
        IncidentState.CLOSED,
        None,
        cleared_at,
    )
    assert change.incident.note and "auto-closed" in change.incident.note
    # A repeated clear changes nothing; the next open is a new incident.
    assert lifecycle.on_detection(episode, detection("clear", cleared_at, auto_close=True), CTX) == []
    again = OPENED + minutes(200)
    [fresh] = lifecycle.on_detection(episode, detection(at=again, episode="aqi-bad:25987:envi.aq-1"), CTX)
    assert fresh.action == "opened"
    assert fresh.incident.incident_id == lifecycle.incident_id("aqi-bad:25987:envi.aq-1", again)
    assert fresh.incident.incident_id != incident.incident_id


def test_clear_without_auto_close_records_when_it_cleared_once() -> None:
    episode, incident = opened()
    first = OPENED + minutes(40)
    [change] = lifecycle.on_detection(episode, detection("clear", first), CTX)
    assert (change.action, change.incident.state) == ("cleared", IncidentState.OPEN)
    assert change.incident.detail["cleared_at"] == first.isoformat()
    assert change.incident.sla_due_at == incident.sla_due_at  # an operator still has to act on it
    assert lifecycle.on_detection(episode, detection("clear", OPENED + minutes(50)), CTX) == []


def test_the_condition_coming_back_on_an_active_incident_drops_cleared_at() -> None:
    episode, _ = opened()
    lifecycle.on_detection(episode, detection("clear", OPENED + minutes(40)), CTX)
    # A replay of the first open (redelivered after a crash) is no news.
    assert lifecycle.on_detection(episode, detection(), CTX) == []
    # The water is back above the alert level before anyone closed the incident.
    [back] = lifecycle.on_detection(episode, detection(at=OPENED + minutes(60)), CTX)
    assert back.action == "updated"
    assert "cleared_at" not in back.incident.detail
    # ... so that clearing again is recorded again.
    [again] = lifecycle.on_detection(episode, detection("clear", OPENED + minutes(80)), CTX)
    assert again.incident.detail["cleared_at"] == (OPENED + minutes(80)).isoformat()


def test_a_clear_for_no_incident_or_a_finished_one_changes_nothing() -> None:
    assert lifecycle.on_detection(EpisodeState(), detection("clear"), CTX) == []
    episode, incident = opened()
    apply(episode, command(incident, RESOLVE, OPENED + minutes(5), note="Hết ngập."))
    assert lifecycle.on_detection(episode, detection("clear", OPENED + minutes(6), auto_close=True), CTX) == []


def test_an_open_detection_reopens_a_resolved_incident() -> None:
    episode, incident = opened()
    lifecycle.on_detection(episode, detection("clear", OPENED + minutes(40)), CTX)
    resolved = apply(episode, command(episode.incident, RESOLVE, OPENED + minutes(45), note="Nước rút."))  # type: ignore[arg-type]
    back = OPENED + minutes(100)
    [change] = lifecycle.on_detection(episode, detection(at=back, devices=("acme-hydro/wl-dh-02",)), CTX)
    assert change.action == "reopen"
    reopened = change.incident
    assert (reopened.incident_id, reopened.state, reopened.version) == (
        incident.incident_id,
        IncidentState.OPEN,
        resolved.version + 1,
    )
    assert reopened.sla_due_at == back + minutes(30)
    assert "cleared_at" not in reopened.detail
    assert reopened.devices == ["acme-hydro/wl-dh-01", "acme-hydro/wl-dh-02"]


def test_a_closed_incident_is_not_reopened_by_a_detection_a_new_one_opens() -> None:
    episode, incident = opened()
    resolved = apply(episode, command(incident, RESOLVE, OPENED + minutes(5), note="Xong."))
    apply(episode, command(resolved, CLOSE, OPENED + minutes(6)))
    [change] = lifecycle.on_detection(episode, detection(at=OPENED + minutes(7)), CTX)
    assert change.action == "opened" and change.incident.incident_id != incident.incident_id


# --- SLA and escalation -----------------------------------------------------------------------------------------


def test_a_high_alarm_not_acknowledged_in_30_minutes_escalates_up_to_the_province_and_no_further() -> None:
    episode, _ = opened()
    assert lifecycle.on_tick(episode, OPENED + minutes(30), CTX) == []  # due at, not yet past
    first = OPENED + minutes(30) + dt.timedelta(seconds=1)
    [up] = lifecycle.on_tick(episode, first, CTX)
    assert up.action == "escalate"
    district = up.incident
    assert (district.responsible_unit, district.escalation_level, district.state) == ("724", 1, IncidentState.OPEN)
    assert (district.sla_due_at, district.updated_at, district.version) == (first + minutes(30), first, 2)
    assert lifecycle.on_tick(episode, first + minutes(10), CTX) == []
    second = first + minutes(31)
    [up] = lifecycle.on_tick(episode, second, CTX)
    province = up.incident
    assert (province.responsible_unit, province.escalation_level, province.sla_due_at) == (
        "74",
        2,
        second + minutes(30),
    )
    # The province has nobody above it: the incident stays the province's, shown overdue.
    assert lifecycle.on_tick(episode, second + minutes(31), CTX) == []
    assert lifecycle.on_tick(episode, second + dt.timedelta(days=3), CTX) == []
    assert episode.incident is province
    # The district acknowledges: the resolve clock (8 hours from the opening) runs out next.
    acked = apply(episode, command(province, ACK, second + minutes(40), site="724"))
    assert acked.sla_due_at == OPENED + dt.timedelta(hours=8)
    assert acked.responsible_unit == "74"


def test_the_resolve_clock_escalates_an_acknowledged_incident() -> None:
    episode, incident = opened()
    acked = apply(episode, command(incident, ACK, OPENED + minutes(5)))
    assert lifecycle.on_tick(episode, OPENED + dt.timedelta(hours=8), CTX) == []
    [up] = lifecycle.on_tick(episode, OPENED + dt.timedelta(hours=8, seconds=1), CTX)
    assert (up.incident.state, up.incident.responsible_unit, up.incident.escalation_level) == (
        IncidentState.ACKNOWLEDGED,
        "724",
        1,
    )
    assert up.incident.sla_due_at == acked.sla_due_at + dt.timedelta(hours=8, seconds=1)  # type: ignore[operator]


def test_resolved_and_closed_incidents_do_not_escalate() -> None:
    episode, incident = opened()
    apply(episode, command(incident, RESOLVE, OPENED + minutes(5), note="Xong."))
    assert lifecycle.on_tick(episode, OPENED + dt.timedelta(days=2), CTX) == []
    assert lifecycle.on_tick(EpisodeState(), OPENED, CTX) == []


def test_data_quality_incidents_are_not_escalated() -> None:
    silence = "device-silence:25957:acme-hydro.wl-dh-01"
    episode, incident = opened(
        episode=silence,
        rule="device-silence",
        module=Module.DATA_QUALITY,
        severity=Severity.MEDIUM,
        vendor="acme-hydro",
    )
    assert incident.sla_due_at == OPENED + dt.timedelta(hours=2)
    assert incident.vendor == "acme-hydro"
    assert lifecycle.on_tick(episode, OPENED + dt.timedelta(days=5), CTX) == []
    assert episode.incident is incident  # still overdue, still the vendor's, at level 0


@pytest.mark.parametrize(
    ("severity", "hours"), [(Severity.CRITICAL, 0.25), (Severity.HIGH, 0.5), (Severity.MEDIUM, 2), (Severity.LOW, 8)]
)
def test_alarm_acknowledgement_slas_run_on_clock_hours(severity: Severity, hours: float) -> None:
    saturday_night = dt.datetime(2026, 2, 14, 23, 0, tzinfo=VN)  # a Tết holiday: alarms do not wait for Monday
    _, incident = opened(severity=severity, at=saturday_night)
    assert incident.sla_due_at == saturday_night + dt.timedelta(hours=hours)


# --- citizen reports: working days -------------------------------------------------------------------------------


def report(at: dt.datetime, category: str, report_id: str = "r-1") -> Detection:
    return detection(
        at=at,
        episode=f"citizen-report:25957:{report_id}",
        rule="citizen-report",
        module=Module.ENVIRONMENT,
        severity=Severity.HIGH,
        devices=(),
        reports=[report_id],
        report_category=category,
    )


def test_a_flooding_report_is_acknowledged_within_half_a_working_day() -> None:
    monday = dt.datetime(2025, 6, 2, 9, 0, tzinfo=VN)
    episode = EpisodeState()
    [change] = lifecycle.on_detection(episode, report(monday, "flooding"), CTX)
    incident = change.incident
    assert incident.detail["category"] == "flooding"
    assert incident.sla_due_at == dt.datetime(2025, 6, 2, 14, 30, tzinfo=VN)  # 4 office hours, lunch excluded
    acked = apply(episode, command(incident, ACK, monday + minutes(30)))
    # Resolve: 2 working days (16 office hours) from receipt: 6.5 on Monday, 8 on Tuesday, 1.5 on Wednesday.
    assert acked.sla_due_at == dt.datetime(2025, 6, 4, 9, 0, tzinfo=VN)


def test_a_report_filed_just_before_tet_2026_is_due_after_the_holiday() -> None:
    friday = dt.datetime(2026, 2, 13, 16, 0, tzinfo=VN)  # Tết holiday runs 14–22 February 2026
    [flooding] = lifecycle.on_detection(EpisodeState(), report(friday, "flooding"), CTX)
    # One office hour on Friday, three more on Monday 23 February.
    assert flooding.incident.sla_due_at == dt.datetime(2026, 2, 23, 10, 30, tzinfo=VN)
    [waste] = lifecycle.on_detection(EpisodeState(), report(friday, "waste", "r-2"), CTX)
    assert waste.incident.sla_due_at == dt.datetime(2026, 2, 23, 16, 0, tzinfo=VN)  # the default: 1 working day


def test_an_unanswered_report_escalates_on_working_days() -> None:
    friday = dt.datetime(2026, 2, 13, 16, 0, tzinfo=VN)
    episode = EpisodeState()
    lifecycle.on_detection(episode, report(friday, "flooding"), CTX)
    # Over Tết nothing runs out.
    assert lifecycle.on_tick(episode, dt.datetime(2026, 2, 22, 23, 0, tzinfo=VN), CTX) == []
    late = dt.datetime(2026, 2, 23, 10, 31, tzinfo=VN)
    [up] = lifecycle.on_tick(episode, late, CTX)
    assert (up.incident.responsible_unit, up.incident.escalation_level) == ("724", 1)
    # Half a working day from then: 59 minutes before lunch, 3 hours 1 minute after.
    assert up.incident.sla_due_at == dt.datetime(2026, 2, 23, 16, 1, tzinfo=VN)


def test_an_alarm_with_reports_attached_keeps_its_hour_clock() -> None:
    episode, incident = opened()
    [change] = lifecycle.on_detection(episode, detection(at=OPENED + minutes(1), reports=["r-1"]), CTX)
    assert change.incident.sla_due_at == incident.sla_due_at


def test_a_replayed_open_older_than_the_resolution_does_not_reopen() -> None:
    ctx = _ctx_for_replay()
    episode = lifecycle.EpisodeState()
    at = dt.datetime(2025, 6, 2, 8, 0, tzinfo=dt.UTC)
    opened = _replay_detection(at)
    lifecycle.on_detection(episode, opened, ctx)
    assert episode.incident is not None
    command = IncidentCommand(
        command_id="c1",
        incident_id=episode.incident.incident_id,
        action=IncidentAction.RESOLVE,
        actor="op",
        site_unit="724",
        issued_at=at + dt.timedelta(hours=1),
        note="đã xử lý",
        grants=("operator@724",),
    )
    lifecycle.on_command(episode, command, ctx)
    assert episode.incident.state is IncidentState.RESOLVED
    assert lifecycle.on_detection(episode, opened, ctx) == []  # the same open, delivered again
    later = _replay_detection(at + dt.timedelta(hours=2))
    (change,) = lifecycle.on_detection(episode, later, ctx)
    assert change.action == "reopen"


def _ctx_for_replay() -> lifecycle.Context:
    return lifecycle.Context(default_reference_model(), default_calendar(), load_tree("2024"))


def _replay_detection(at: dt.datetime) -> Detection:
    return Detection(
        episode="flood-level:25957",
        rule="flood-level",
        module=Module.ENVIRONMENT,
        unit="25957",
        signal="open",
        at=at,
        severity=Severity.HIGH,
        title="Ngập",
        devices=["acme/wl-1"],
    )


@pytest.mark.parametrize(
    ("before", "action", "after", "allowed"),
    [
        (None, "opened", IncidentState.OPEN, True),
        (None, "acknowledge", IncidentState.ACKNOWLEDGED, False),
        (IncidentState.OPEN, "acknowledge", IncidentState.ACKNOWLEDGED, True),
        (IncidentState.OPEN, "resolve", IncidentState.CLOSED, False),
        (IncidentState.DISPATCHED, "assign", IncidentState.DISPATCHED, True),
        (IncidentState.OPEN, "linked", IncidentState.OPEN, True),
        # A citizen report's PAKN steps: reject closes, answer resolves, waiting for the citizen keeps the state.
        (IncidentState.OPEN, "reject", IncidentState.CLOSED, True),
        (IncidentState.ACKNOWLEDGED, "request_info", IncidentState.ACKNOWLEDGED, True),
        (IncidentState.ACKNOWLEDGED, "supply_info", IncidentState.ACKNOWLEDGED, True),
        (IncidentState.ACKNOWLEDGED, "answer", IncidentState.RESOLVED, True),
        (IncidentState.RESOLVED, "reject", IncidentState.CLOSED, False),
        (IncidentState.OPEN, "request_info", IncidentState.RESOLVED, False),
        (IncidentState.OPEN, "no-such-action", IncidentState.OPEN, False),
    ],
)
def test_step_allowed_knows_every_history_action(
    before: IncidentState | None, action: str, after: IncidentState, allowed: bool
) -> None:
    assert lifecycle.step_allowed(before, action, after) is allowed
