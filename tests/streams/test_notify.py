"""The notifier's decisions (streams/notify.py): events from incident versions and the clock, deliveries from rules."""

from __future__ import annotations

import dataclasses
import datetime as dt

import msgspec
import pytest

from ioc.events import Incident, IncidentState, Module, Severity
from ioc.people import NotificationsSpec, NotifyEvent, Person, QuietHours
from ioc.units import load_tree
from streams import notify

TREE = load_tree("2024")
AT = dt.datetime(2026, 7, 1, 3, 0, tzinfo=dt.UTC)  # 10:00 in Vietnam


@dataclasses.dataclass(frozen=True)
class Site:
    key: str
    unit: str
    units: frozenset[str]
    roster: tuple[Person, ...]
    notifications: NotificationsSpec


def incident(**changes: object) -> Incident:
    base = Incident(
        incident_id="flood-level:25957:20260701T030000",
        version=1,
        rule="flood-level",
        module=Module.ENVIRONMENT,
        unit="25957",
        severity=Severity.HIGH,
        state=IncidentState.OPEN,
        title="Ngập: mực nước vượt ngưỡng",
        opened_at=AT,
        updated_at=AT,
        sla_due_at=AT + dt.timedelta(minutes=30),
        responsible_unit="25957",
    )
    return msgspec.structs.replace(base, **changes)


WARD_ROSTER = (
    Person(name="Trực ban Đông Hòa", email="truc.ban@donghoa.example", roles=["on-duty"], zalo_user_id="1234"),
    Person(name="Cán bộ A", email="can.bo.a@donghoa.example", roles=["officer"], team="flood"),
)
RULES = NotificationsSpec.model_validate(
    {
        "rules": [
            {
                "name": "flood",
                "events": ["opened", "sla-warning"],
                "toRoles": ["on-duty"],
                "channels": ["email", "ops"],
            },
            {"name": "assigned", "events": ["assigned"], "toAssignee": True},
            {"name": "citizens", "events": ["report-state"], "toReporters": True},
            {"name": "zalo", "events": ["opened"], "toRoles": ["on-duty", "officer"], "channels": ["zalo"]},
        ],
        "webhooks": [
            {"name": "ops", "url": "http://127.0.0.1:9/hook", "secretName": "ops"},
            {"name": "zalo", "url": "http://127.0.0.1:9/zalo", "format": "zalo-oa", "secretName": "ops"},
        ],
    }
)
WARD = Site("ioc-sites/ward-25957", "25957", frozenset({"25957"}), WARD_ROSTER, RULES)


def test_events_follow_versions_and_a_replay_gives_none() -> None:
    opened = incident()
    assert notify.events_between(None, opened) == [NotifyEvent.OPENED]
    escalated = incident(version=2, escalation_level=1, responsible_unit="724")
    assert notify.events_between(opened, escalated) == [NotifyEvent.ESCALATED]
    assert notify.events_between(escalated, opened) == []  # older: already told
    assert notify.events_between(escalated, escalated) == []  # the same version again
    assigned = incident(version=3, state=IncidentState.ACKNOWLEDGED, assignee="can.bo.a@donghoa.example")
    assert notify.events_between(escalated, assigned) == [NotifyEvent.ASSIGNED, NotifyEvent.ACKNOWLEDGED]
    reopened = incident(version=5, state=IncidentState.OPEN)
    assert notify.events_between(incident(version=4, state=IncidentState.CLOSED), reopened) == [NotifyEvent.REOPENED]
    # A version the notifier joined late at, not the opening: nothing it can tell apart.
    assert notify.events_between(None, escalated) == []


def test_a_reports_pakn_state_change_is_a_report_state_event() -> None:
    report = incident(rule="citizen-report", reports=["r-1"], detail={"pakn": "received"})
    answered = incident(version=2, rule="citizen-report", reports=["r-1"], detail={"pakn": "answered"})
    assert notify.events_between(report, answered) == [NotifyEvent.REPORT_STATE]


def test_sla_warning_then_breach_once_per_deadline() -> None:
    seen = notify.Seen(incident())
    events, seen = notify.clock_events(seen, AT + dt.timedelta(minutes=10), 15)
    assert events == []
    events, seen = notify.clock_events(seen, AT + dt.timedelta(minutes=16), 15)
    assert events == [NotifyEvent.SLA_WARNING]
    events, seen = notify.clock_events(seen, AT + dt.timedelta(minutes=20), 15)
    assert events == []
    events, seen = notify.clock_events(seen, AT + dt.timedelta(minutes=31), 15)
    assert events == [NotifyEvent.SLA_BREACHED]
    assert notify.clock_events(seen, AT + dt.timedelta(minutes=40), 15)[0] == []
    # A new deadline (escalated: a new step) warns again.
    renewed = msgspec.structs.replace(seen, incident=incident(version=2, sla_due_at=AT + dt.timedelta(hours=2)))
    assert notify.clock_events(renewed, AT + dt.timedelta(minutes=110), 15)[0] == [NotifyEvent.SLA_WARNING]


def test_opened_goes_to_the_wards_on_duty_by_email_webhook_and_zalo() -> None:
    opened = incident()
    deliveries = notify.plan(
        opened, NotifyEvent.OPENED, notify.change_key(NotifyEvent.OPENED, opened), WARD, TREE, at=AT
    )
    by_channel = {(d.channel, d.recipient) for d in deliveries}
    assert by_channel == {
        ("email", "truc.ban@donghoa.example"),
        ("ops", "ops"),
        ("zalo", "truc.ban@donghoa.example"),  # the officer has no Zalo id: not told there
    }
    mail = next(d for d in deliveries if d.channel == "email")
    assert "Sự cố mới" in mail.subject and "phường Đông Hòa" in mail.subject
    assert "Hạn xử lý / Due: 10:30 01/07/2026" in mail.text
    hook = next(d for d in deliveries if d.channel == "ops")
    body = msgspec.json.decode(hook.body())
    assert body["event"] == "opened" and body["incident"]["incident_id"] == opened.incident_id
    assert body["recipients"] == ["truc.ban@donghoa.example"]
    zalo = msgspec.json.decode(next(d for d in deliveries if d.channel == "zalo").body())
    assert zalo["recipient"] == {"user_id": "1234"} and "Sự cố mới" in zalo["message"]["text"]
    again = notify.plan(opened, NotifyEvent.OPENED, notify.change_key(NotifyEvent.OPENED, opened), WARD, TREE, at=AT)
    assert [d.delivery_id for d in again] == [d.delivery_id for d in deliveries]  # deterministic
    assert len({d.delivery_id for d in deliveries}) == 3


def test_roles_fall_back_to_the_nearest_unit_above_and_the_deciding_site_is_the_deepest_with_rules() -> None:
    district_roster = (Person(name="Trực ban Dĩ An", email="truc.ban@dian.example", roles=["on-duty"]),)
    district = Site("ioc-sites/district-724", "724", TREE.subtree("724"), district_roster, RULES)
    quiet_ward = Site("ioc-sites/ward-25951", "25951", frozenset({"25951"}), (), NotificationsSpec())
    sites = [district, WARD, quiet_ward]
    assert notify.deciding_site(sites, "25957") is WARD
    assert notify.deciding_site(sites, "25951") is district  # the ward declares no rules: its district's apply
    assert notify.deciding_site(sites, "724") is district
    assert notify.deciding_site(sites, "718") is None
    escalated = incident(version=2, escalation_level=1, responsible_unit="724")
    key = notify.change_key(NotifyEvent.OPENED, escalated)
    emails = {d.recipient for d in notify.plan(escalated, NotifyEvent.OPENED, key, district, TREE, at=AT)}
    assert "truc.ban@dian.example" in emails
    ward_case = incident(unit="25951", responsible_unit="25951")
    mails = notify.plan(ward_case, NotifyEvent.OPENED, "k", district, TREE, at=AT)
    assert {d.recipient for d in mails if d.channel == "email"} == {"truc.ban@dian.example"}


def test_assignee_team_and_citizens() -> None:
    assigned = incident(version=2, assignee="team:flood")
    mails = notify.plan(assigned, NotifyEvent.ASSIGNED, "k", WARD, TREE, at=AT)
    assert [d.recipient for d in mails] == ["can.bo.a@donghoa.example"]
    answered = incident(version=3, reports=["r-1", "r-2"], state=IncidentState.RESOLVED, note="Đã khơi thông cống")
    told = notify.plan(answered, NotifyEvent.REPORT_STATE, "k", WARD, TREE, at=AT, reporters={"r-2": "dan@example.vn"})
    assert [(d.recipient, d.address) for d in told] == [("citizen:r-2", "dan@example.vn")]
    assert "Đã khơi thông cống" in told[0].text and "Phản ánh của bạn" in told[0].subject


def test_quiet_hours_hold_less_severe_ones_for_the_digest() -> None:
    spec = RULES.model_copy(update={"quiet_hours": QuietHours(start="22:00", end="06:00")})
    site = dataclasses.replace(WARD, notifications=spec)
    night = dt.datetime(2026, 7, 1, 16, 0, tzinfo=dt.UTC)  # 23:00 in Vietnam
    medium = incident(severity=Severity.MEDIUM)
    assert all(d.held for d in notify.plan(medium, NotifyEvent.OPENED, "k", site, TREE, at=night))
    assert not any(d.held for d in notify.plan(incident(), NotifyEvent.OPENED, "k", site, TREE, at=night))
    assert not any(d.held for d in notify.plan(medium, NotifyEvent.OPENED, "k", site, TREE, at=AT))


def test_a_rule_naming_an_unknown_channel_is_refused() -> None:
    with pytest.raises(ValueError, match="not webhooks of this site"):
        NotificationsSpec.model_validate({"rules": [{"name": "x", "events": ["opened"], "channels": ["sms"]}]})


def test_on_a_2025_deployment_the_ward_falls_back_to_the_city_and_is_named_as_2025_names_it() -> None:
    # 25951 is Bình An under Dĩ An (724) in the 2024 tree, and phường Đông Hòa under the city (79) in 2025.
    roster = (
        Person(name="Trực ban Dĩ An cũ", email="truc.ban@dian.example", roles=["on-duty"], unit="724"),
        Person(name="Trực ban thành phố", email="truc.ban@hcmc.example", roles=["on-duty"], unit="79"),
    )
    city = Site("ioc-sites/city-79", "79", frozenset({"79", "25951"}), roster, RULES)
    case = incident(unit="25957", responsible_unit="25951")
    on_2025 = notify.plan(case, NotifyEvent.OPENED, "k", city, TREE, at=AT, edition="2025")
    assert {d.recipient for d in on_2025 if d.channel == "email"} == {"truc.ban@hcmc.example"}
    assert "phường Đông Hòa" in on_2025[0].text and "Bình An" not in on_2025[0].text
    # The same roster on the 2024 tree: 25951 is Bình An, whose next unit up is Dĩ An.
    on_2024 = notify.plan(case, NotifyEvent.OPENED, "k", city, TREE, at=AT)
    assert {d.recipient for d in on_2024 if d.channel == "email"} == {"truc.ban@dian.example"}
