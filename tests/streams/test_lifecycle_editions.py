"""The incident lifecycle under each edition: who answers for a place, and where an overdue incident goes."""

from __future__ import annotations

import dataclasses
import datetime as dt
from zoneinfo import ZoneInfo

from ioc import units
from ioc.authz import CommandRefusal
from ioc.events import Detection, IncidentAction, IncidentCommand, Module, Severity
from ioc.reference import default_reference_model
from ioc.workdays import default_calendar
from streams import lifecycle
from streams.lifecycle import Context, EpisodeState

CTX_2024 = Context(default_reference_model(), default_calendar(), units.load_tree("2024"))
CTX_2025 = dataclasses.replace(CTX_2024, edition="2025")
OPENED = dt.datetime(2025, 8, 4, 8, 13, tzinfo=ZoneInfo("Asia/Ho_Chi_Minh"))
HOUR = dt.timedelta(hours=1)


def flood(unit: str = "25957") -> Detection:
    return Detection(
        episode=f"flood-level:{unit}",
        rule="flood-level",
        module=Module.ENVIRONMENT,
        unit=unit,
        signal="open",
        at=OPENED,
        severity=Severity.HIGH,
        title="Ngập: mực nước vượt mức báo động",
        devices=["acme-hydro/wl-dh-01"],
    )


def escalations(ctx: Context, unit: str = "25957") -> list[str]:
    """The responsible unit at the opening, then after each SLA that runs out (high: 30 minutes each)."""
    episode = EpisodeState()
    [opened] = lifecycle.on_detection(episode, flood(unit), ctx)
    chain = [opened.incident.responsible_unit or ""]
    now = OPENED
    for _ in range(4):
        now += HOUR
        for change in lifecycle.on_tick(episode, now, ctx):
            assert change.action == "escalate"
            chain.append(change.incident.responsible_unit or "")
    return chain


def test_2024_the_ward_then_the_district_then_the_province() -> None:
    assert escalations(CTX_2024) == ["25957", "724", "74"]


def test_2025_the_new_ward_then_straight_to_the_city_and_no_further() -> None:
    assert escalations(CTX_2025) == ["25951", units.HCMC_CODE]


def test_2025_an_incident_opened_under_the_old_tree_never_goes_to_a_district() -> None:
    episode = EpisodeState()
    [opened] = lifecycle.on_detection(episode, flood(), CTX_2024)
    assert opened.incident.responsible_unit == "25957"
    # The deployment switched to the 2025 tree while the incident was open.
    [up] = lifecycle.on_tick(episode, OPENED + HOUR, CTX_2025)
    assert (up.incident.responsible_unit, up.incident.escalation_level) == (units.HCMC_CODE, 1)


def test_the_incident_keeps_its_2024_place_whatever_the_edition() -> None:
    [opened] = lifecycle.on_detection(EpisodeState(), flood(), CTX_2025)
    assert (opened.incident.unit, opened.incident.incident_id.split(":")[1]) == ("25957", "25957")


def command(incident_id: str, action: IncidentAction, site: str, at: dt.datetime, **extra: str) -> IncidentCommand:
    return IncidentCommand(
        command_id=f"c-{action.value}-{site}-{at:%H%M}",
        incident_id=incident_id,
        action=action,
        actor=f"op.{site}",
        site_unit=site,
        issued_at=at,
        grants=(f"operator@{site}",),
        **extra,
    )


def test_2025_the_city_acknowledges_what_reached_it_and_dispatches_to_the_new_ward() -> None:
    episode = EpisodeState()
    [opened] = lifecycle.on_detection(episode, flood(), CTX_2025)
    lifecycle.on_tick(episode, OPENED + HOUR, CTX_2025)
    incident_id = opened.incident.incident_id
    ack = command(incident_id, IncidentAction.ACKNOWLEDGE, units.HCMC_CODE, OPENED + 2 * HOUR)
    changes, refused = lifecycle.on_command(episode, ack, CTX_2025)
    assert refused is None and changes[0].incident.state.value == "acknowledged"
    sent = command(incident_id, IncidentAction.DISPATCH, units.HCMC_CODE, OPENED + 3 * HOUR, target_unit="25951")
    changes, refused = lifecycle.on_command(episode, sent, CTX_2025)
    assert refused is None and changes[0].incident.responsible_unit == "25951"
    # A neighbouring new ward (Dĩ An, 25942) holds neither the place nor the responsibility.
    other = command(incident_id, IncidentAction.RESOLVE, "25942", OPENED + 4 * HOUR, note="không phải địa bàn")
    changes, refused = lifecycle.on_command(episode, other, CTX_2025)
    assert changes == [] and refused is not None and refused.reason is CommandRefusal.OUTSIDE_SITE


def test_on_a_2024_deployment_the_city_is_no_site() -> None:
    episode = EpisodeState()
    [opened] = lifecycle.on_detection(episode, flood(), CTX_2024)
    ack = command(opened.incident.incident_id, IncidentAction.ACKNOWLEDGE, units.HCMC_CODE, OPENED + HOUR)
    _, refused = lifecycle.on_command(episode, ack, CTX_2024)
    assert refused is not None and refused.reason is CommandRefusal.UNKNOWN_SITE


def test_2025_a_citizens_flooding_report_lands_on_the_new_ward_and_escalates_to_the_city() -> None:
    report = Detection(
        episode="citizen-report:25957:r-1",
        rule="citizen-report",
        module=Module.CITIZEN_REPORTS,
        unit="25957",
        signal="open",
        at=OPENED,
        severity=Severity.MEDIUM,
        title="Phản ánh: ngập đường Đông Hòa",
        devices=[],
        reports=["r-1"],
        report_category="flooding",
    )
    episode = EpisodeState()
    [opened] = lifecycle.on_detection(episode, report, CTX_2025)
    assert (opened.incident.unit, opened.incident.responsible_unit) == ("25957", "25951")
    assert opened.incident.sla_due_at is not None
    [up] = lifecycle.on_tick(episode, opened.incident.sla_due_at + dt.timedelta(seconds=1), CTX_2025)
    assert up.incident.responsible_unit == units.HCMC_CODE
