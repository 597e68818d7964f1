"""Who is told what about an incident: events from its versions and clock, deliveries from site rules. Pure.

The notifier agent (streams/agents/notifications.py) remembers, per incident, what it has seen (`Seen`); each
new version of the incident (`ioc.incidents.v1`) gives the events between the two (`events_between`), each
tick the SLA events (`clock_events`). For each event the deciding site — the deepest site holding the
incident's responsible unit whose configuration has notification rules (ioc.people) — gives the deliveries
(`plan`): one per recipient and channel, with a deterministic id (incident, event and the version or SLA
deadline it is about, recipient, channel), so an event seen twice plans the same deliveries and the agent
sends each once. Sending is streams/notifier.py's.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Protocol, TypeVar

import msgspec

from ioc import editions, pakn, units
from ioc.events import ACTIVE_STATES, Incident, IncidentState, Severity
from ioc.people import EMAIL_CHANNEL, NotificationRule, NotificationsSpec, NotifyEvent, Person, Webhook
from ioc.units import UnitTree

__all__ = [
    "Delivery",
    "NotifyingSite",
    "Seen",
    "change_key",
    "clock_events",
    "clock_key",
    "deciding_site",
    "delivery_id",
    "events_between",
    "plan",
    "render",
]

_SEVERITY_RANK: Final = {s: i for i, s in enumerate(Severity)}
_STATE_EVENTS: Final[dict[IncidentState, NotifyEvent]] = {
    IncidentState.ACKNOWLEDGED: NotifyEvent.ACKNOWLEDGED,
    IncidentState.DISPATCHED: NotifyEvent.DISPATCHED,
    IncidentState.RESOLVED: NotifyEvent.RESOLVED,
    IncidentState.CLOSED: NotifyEvent.CLOSED,
}


class Seen(msgspec.Struct, frozen=True):
    """What the notifier last saw of an incident, and which SLA deadlines it has already warned of or reported."""

    incident: Incident
    warned: str = ""
    """The `sla_due_at` (ISO) an sla-warning was planned for."""
    breached: str = ""
    """The `sla_due_at` (ISO) an sla-breached was planned for."""


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """One message to one recipient through one channel about one event."""

    delivery_id: str
    incident_id: str
    event: NotifyEvent
    rule: str
    channel: str
    recipient: str
    """How the record names the recipient: a person's e-mail, a webhook's name, `citizen:<report id>`."""
    address: str
    """Where it goes: an e-mail address, or the webhook's URL."""
    subject: str
    text: str
    webhook: Webhook | None = None
    zalo_user_id: str | None = None
    held: bool = False
    """Waits for the site's next digest (quiet hours or a digest rule) instead of going now."""
    payload: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def body(self) -> bytes:
        """The webhook call's JSON body (generic: the event; zalo-oa: an OA customer-service message)."""
        if self.webhook is not None and self.webhook.format == "zalo-oa":
            document: Mapping[str, Any] = {
                "recipient": {"user_id": self.zalo_user_id},
                "message": {"text": f"{self.subject}\n{self.text}"[:2000]},
            }
        else:
            document = {
                "delivery_id": self.delivery_id,
                "event": self.event.value,
                "rule": self.rule,
                "subject": self.subject,
                "text": self.text,
                **self.payload,
            }
        return json.dumps(document, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()


def delivery_id(incident_id: str, event_key: str, recipient: str, channel: str) -> str:
    """The same event for the same recipient and channel is one delivery, however often it is planned."""
    raw = "\x1f".join((incident_id, event_key, recipient, channel)).encode()
    return hashlib.sha256(raw).hexdigest()[:32]


def events_between(previous: Incident | None, current: Incident) -> list[NotifyEvent]:
    """What happened from the version the notifier saw to this one (none for an older or the same version)."""
    if previous is not None and current.version <= previous.version:
        return []  # replayed or out of order: already told
    if previous is None:
        # First sight: its opening, or (a version the notifier joined late at) nothing it can tell apart.
        return [NotifyEvent.OPENED] if current.version == 1 and current.state is IncidentState.OPEN else []
    events: list[NotifyEvent] = []
    if current.escalation_level > previous.escalation_level:
        events.append(NotifyEvent.ESCALATED)
    if current.assignee and current.assignee != previous.assignee:
        events.append(NotifyEvent.ASSIGNED)
    if current.state is not previous.state:
        events.append(NotifyEvent.REOPENED if current.state is IncidentState.OPEN else _STATE_EVENTS[current.state])
    # A citizen report's own incident (rule `citizen-report`) carries its PAKN state in `detail` (ioc.pakn); a change of
    # it, or of the incident's state, is what its reporter is told. A sensor incident's linked reports are told through
    # their own incidents (resolving it answers them: streams.linking), so once each.
    if current.rule == pakn.REPORT_RULE and (
        current.detail.get(pakn.DETAIL_STATE) != previous.detail.get(pakn.DETAIL_STATE)
        or current.state is not previous.state
    ):
        events.append(NotifyEvent.REPORT_STATE)
    return events


def change_key(event: NotifyEvent, incident: Incident) -> str:
    """What makes a change event unique: the incident version that brought it."""
    return f"{event.value}@v{incident.version}"


def clock_key(event: NotifyEvent, incident: Incident) -> str:
    """What makes an SLA event unique: the deadline it is about."""
    due = incident.sla_due_at.isoformat() if incident.sla_due_at is not None else ""
    return f"{event.value}@{due}"


def clock_events(seen: Seen, now: dt.datetime, warning_minutes: int) -> tuple[list[NotifyEvent], Seen]:
    """The SLA events due at `now` for an incident, and what to remember so each is told once per deadline."""
    incident = seen.incident
    due = incident.sla_due_at
    if due is None or incident.state not in ACTIVE_STATES:
        return [], seen
    key = due.isoformat()
    events: list[NotifyEvent] = []
    if now > due and seen.breached != key:
        events.append(NotifyEvent.SLA_BREACHED)
        seen = msgspec.structs.replace(seen, breached=key, warned=key)
    elif now >= due - dt.timedelta(minutes=warning_minutes) and seen.warned != key and now <= due:
        events.append(NotifyEvent.SLA_WARNING)
        seen = msgspec.structs.replace(seen, warned=key)
    return events, seen


class NotifyingSite(Protocol):
    """The parts of a site's settings the planner reads (streams.siteconfig.SiteSettings has them)."""

    @property
    def key(self) -> str: ...
    @property
    def unit(self) -> str: ...
    @property
    def units(self) -> frozenset[str]: ...
    @property
    def roster(self) -> tuple[Person, ...]: ...
    @property
    def notifications(self) -> NotificationsSpec: ...


S = TypeVar("S", bound=NotifyingSite)


def deciding_site(sites: Iterable[S], unit: str) -> S | None:
    """The deepest site holding `unit` whose configuration has notification rules (a ward served by its district
    and declaring none is told through its district's rules); None when no site tells anyone about it."""
    holding = [s for s in sites if unit in s.units and s.notifications.rules]
    return min(holding, key=lambda s: (len(s.units), s.key), default=None)


def _serving(
    roster: Sequence[Person], role_names: set[str], unit: str, site_unit: str, edition: units.Edition
) -> list[Person]:
    """People with one of the roles serving `unit`, else the nearest unit above it that has some (within the site).

    "Above" is the edition's escalation chain (ioc.editions): after the 2025 reform a ward's next unit up is the
    city, never the district that no longer exists."""
    chain = [unit]
    while (parent := editions.escalation_parent(chain[-1], edition)) is not None and parent not in chain:
        chain.append(parent)
    for code in chain:
        found = [p for p in roster if (p.unit or site_unit) == code and role_names & {r.value for r in p.roles}]
        if found:
            return found
        if code == site_unit:
            break
    return []


def _assigned(roster: Sequence[Person], assignee: str | None) -> list[Person]:
    if not assignee:
        return []
    if assignee.startswith("team:"):
        team = assignee.removeprefix("team:")
        return [p for p in roster if p.team == team]
    return [p for p in roster if p.email == assignee]


def _applies(rule: NotificationRule, event: NotifyEvent, incident: Incident) -> bool:
    if event not in rule.events:
        return False
    if rule.modules and incident.module not in rule.modules:
        return False
    return _SEVERITY_RANK[incident.severity] >= _SEVERITY_RANK[rule.min_severity]


def render(
    incident: Incident, event: NotifyEvent, place: str, responsible: str, *, citizen: bool = False
) -> tuple[str, str]:
    """Subject and text of a notification, Vietnamese first with an English line (operators and citizens read it).

    `place` names the incident's commune as rows carry it (the 2024 tree), `responsible` the unit answering for it in
    the deployment's edition; the two can share a code and still be different units (the 2025 reform reused codes).
    """
    what_vi, what_en = _WORDS[event]
    if citizen:
        subject = f"[IOC] Phản ánh của bạn: {what_vi} / Your report: {what_en}"
        lines = [
            f"Phản ánh của bạn về \u201c{incident.title}\u201d ({place}) đã được cập nhật: {what_vi}.",
            f"Your report about \u201c{incident.title}\u201d ({place}) was updated: {what_en}.",
        ]
        state = incident.detail.get(pakn.DETAIL_STATE, "")
        if state in pakn.PaknState.__members__.values():
            label_vi, label_en = pakn.LABELS[pakn.PaknState(state)]
            lines.append(f"Trạng thái / Status: {label_vi} / {label_en}")
        answer = incident.detail.get(pakn.DETAIL_NOTE) or (
            incident.note if incident.state in (IncidentState.RESOLVED, IncidentState.CLOSED) else None
        )
        if answer:
            lines.append(f"Trả lời / Answer: {answer}")
        return subject, "\n".join(lines)
    subject = f"[IOC] {what_vi}: {incident.title} — {place} ({_SEVERITY_VI[incident.severity]})"
    lines = [
        f"Sự cố / Incident: {incident.title}",
        f"Sự việc / Event: {what_vi} ({what_en})",
        f"Địa bàn / Place: {place}",
        f"Đơn vị chịu trách nhiệm / Responsible: {responsible}",
        f"Mức độ / Severity: {_SEVERITY_VI[incident.severity]} ({incident.severity.value})",
        f"Trạng thái / State: {incident.state.value}",
    ]
    if incident.sla_due_at is not None and incident.state in ACTIVE_STATES:
        local = incident.sla_due_at.astimezone(dt.timezone(dt.timedelta(hours=7)))
        lines.append(f"Hạn xử lý / Due: {local:%H:%M %d/%m/%Y} (giờ Việt Nam)")
    if incident.assignee:
        lines.append(f"Người được giao / Assigned to: {incident.assignee}")
    if incident.note:
        lines.append(f"Ghi chú / Note: {incident.note}")
    lines.append(f"Mã sự cố / Incident id: {incident.incident_id}")
    return subject, "\n".join(lines)


_WORDS: Final[dict[NotifyEvent, tuple[str, str]]] = {
    NotifyEvent.OPENED: ("Sự cố mới", "new incident"),
    NotifyEvent.ACKNOWLEDGED: ("Đã tiếp nhận", "acknowledged"),
    NotifyEvent.ASSIGNED: ("Đã giao xử lý", "assigned"),
    NotifyEvent.DISPATCHED: ("Đã điều phối", "dispatched"),
    NotifyEvent.ESCALATED: ("Chuyển cấp trên (quá hạn)", "escalated (SLA ran out)"),
    NotifyEvent.SLA_WARNING: ("Sắp quá hạn xử lý", "SLA about to run out"),
    NotifyEvent.SLA_BREACHED: ("Quá hạn xử lý", "SLA breached"),
    NotifyEvent.RESOLVED: ("Đã xử lý xong", "resolved"),
    NotifyEvent.CLOSED: ("Đã đóng", "closed"),
    NotifyEvent.REOPENED: ("Mở lại", "reopened"),
    NotifyEvent.REPORT_STATE: ("Phản ánh thay đổi trạng thái", "report state changed"),
}
_SEVERITY_VI: Final[dict[Severity, str]] = {
    Severity.LOW: "thấp",
    Severity.MEDIUM: "trung bình",
    Severity.HIGH: "cao",
    Severity.CRITICAL: "nghiêm trọng",
}


def _people(
    rule: NotificationRule, roster: Sequence[Person], incident: Incident, site_unit: str, edition: units.Edition
) -> list[Person]:
    """Whom a rule names for an incident: roster roles serving its responsible unit, named people, its assignee."""
    people: dict[str, Person] = {}
    responsible = incident.responsible_unit or incident.unit
    for person in _serving(roster, {r.value for r in rule.to_roles}, responsible, site_unit, edition):
        people.setdefault(person.email, person)
    for email in rule.to_people:
        known = next((p for p in roster if p.email == email), None)
        people.setdefault(email, known or Person(name=email, email=email))
    if rule.to_assignee:
        for person in _assigned(roster, incident.assignee):
            people.setdefault(person.email, person)
    return list(people.values())


def plan(
    incident: Incident,
    event: NotifyEvent,
    event_key: str,
    site: NotifyingSite,
    tree: UnitTree,
    *,
    at: dt.datetime,
    reporters: Mapping[str, str] | None = None,
    edition: units.Edition = "2024",
) -> list[Delivery]:
    """The deliveries `site`'s rules make of `event` about `incident` (`event_key`: the version or deadline it is
    about). `reporters`: linked report id → the citizen's e-mail, for `toReporters` rules. `tree` names the places
    rows carry (2024 communes); `edition` is the deployment's units tree, which says who serves the unit answering.

    E-mail and zalo-oa webhooks: one delivery per person; a generic webhook: one call per event naming them all.
    """
    spec = site.notifications
    webhooks = {w.name: w for w in spec.webhooks}
    place = tree.get(incident.unit).full_name if incident.unit in tree else incident.unit
    responsible = editions.unit_name(incident.responsible_unit or incident.unit, edition)
    quiet = spec.quiet_hours is not None and spec.quiet_hours.holds(at, incident.severity)
    planned: dict[str, Delivery] = {}

    def add(rule: str, channel: str, recipient: str, address: str, text: tuple[str, str], **extra: Any) -> None:
        did = delivery_id(incident.incident_id, event_key, recipient, channel)
        planned.setdefault(
            did, Delivery(did, incident.incident_id, event, rule, channel, recipient, address, *text, **extra)
        )

    for rule in spec.rules:
        if not _applies(rule, event, incident):
            continue
        people = _people(rule, site.roster, incident, site.unit, edition)
        text = render(incident, event, place, responsible)
        held = rule.digest or quiet
        for channel in rule.channels:
            hook = webhooks.get(channel)
            if hook is None:  # e-mail (NotificationsSpec checked every other channel is a webhook)
                for person in people:
                    add(rule.name, channel, person.email, person.email, text, held=held)
            elif hook.format == "zalo-oa":
                for person in people:
                    if person.zalo_user_id is not None:
                        add(rule.name, channel, person.email, hook.url, text, webhook=hook,
                            zalo_user_id=person.zalo_user_id, held=held)  # fmt: skip
            else:
                payload = {"incident": msgspec.to_builtins(incident), "recipients": sorted(p.email for p in people)}
                add(rule.name, channel, hook.name, hook.url, text, webhook=hook, held=held, payload=payload)
        if rule.to_reporters and event is NotifyEvent.REPORT_STATE:
            citizen_text = render(incident, event, place, responsible, citizen=True)
            for report_id, email in sorted((reporters or {}).items()):
                # Citizens are told at once: quiet hours and digests are for the staff's rosters.
                add(rule.name, EMAIL_CHANNEL, f"citizen:{report_id}", email, citizen_text)
    return list(planned.values())
