"""A site's people and who is told what: the roster and notification rules an IOCSite declares.

One shape for three readers: the operator's IOCSite spec (`spec.roster`, `spec.notifications`, its CRD
schema generated from these classes), the effective configuration it publishes on `ioc.site-config.v1`,
and the stream workers' notifier (streams/notify.py) and the dashboards, which read them back from there.
camelCase on the wire as Kubernetes spells it. docs/notifications.md describes the semantics.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Annotated, Final, Literal

import pydantic
from pydantic.alias_generators import to_camel

from ioc.events import Module, Severity
from ioc.fields import UnitCodeField

__all__ = [
    "EMAIL_CHANNEL",
    "NotificationRule",
    "NotificationsSpec",
    "NotifyEvent",
    "Person",
    "QuietHours",
    "RosterRole",
    "Webhook",
    "roster_from_claims",
]

EMAIL_CHANNEL: Final = "email"
"""The e-mail channel's name in a rule's `channels`; any other name is one of the site's webhooks."""


class _Wire(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid", alias_generator=to_camel, populate_by_name=True)


class RosterRole(enum.StrEnum):
    """What a person does on a site's roster (not a sign-in role: `ioc.authz` grants say who may act)."""

    ON_DUTY = "on-duty"
    """Told first about what opens in the unit they serve; acknowledges or assigns."""
    OFFICER = "officer"
    """Takes incidents assigned to them in the field and resolves them."""
    LEAD = "lead"
    """The unit's lead: told of escalations and breaches."""


Email = Annotated[str, pydantic.Field(pattern=r"^[^@\s]{1,64}@[^@\s]{1,190}$", max_length=255)]
TeamName = Annotated[str, pydantic.Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
ChannelName = Annotated[str, pydantic.Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
ClockTime = Annotated[str, pydantic.Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class Person(_Wire):
    """Someone on a site's roster; `email` identifies them (assignments, sign-in, notifications)."""

    name: str = pydantic.Field(min_length=1, max_length=200, description="Full name, as colleagues know it.")
    email: Email = pydantic.Field(description="E-mail address: how they are assigned, signed in and e-mailed.")
    roles: list[RosterRole] = pydantic.Field(
        default_factory=list, max_length=len(RosterRole), description="on-duty, officer and/or lead."
    )
    team: TeamName | None = pydantic.Field(None, description="Team they belong to (incidents may go to a team).")
    unit: UnitCodeField | None = pydantic.Field(
        None, description="Unit of the site's subtree they serve; the site's own unit when unset."
    )
    zalo_user_id: str | None = pydantic.Field(
        None,
        pattern=r"^[0-9]{1,32}$",
        description="Their Zalo user id with the province's Official Account (for zalo-oa webhooks).",
    )


class NotifyEvent(enum.StrEnum):
    """What happened that a rule may tell people about."""

    OPENED = "opened"
    ACKNOWLEDGED = "acknowledged"
    ASSIGNED = "assigned"
    DISPATCHED = "dispatched"
    ESCALATED = "escalated"
    SLA_WARNING = "sla-warning"
    """The current step's SLA runs out within the site's `slaWarningMinutes`."""
    SLA_BREACHED = "sla-breached"
    RESOLVED = "resolved"
    CLOSED = "closed"
    REOPENED = "reopened"
    REPORT_STATE = "report-state"
    """A citizen report changed state: told to the citizens who left a contact (`toReporters`)."""


class NotificationRule(_Wire):
    """When (events, modules, severity) to tell whom (roster roles, people, the assignee) through which channels."""

    name: ChannelName = pydantic.Field(description="The rule's name: part of each delivery's record.")
    events: list[NotifyEvent] = pydantic.Field(min_length=1, max_length=len(NotifyEvent))
    modules: list[Module] = pydantic.Field(
        default_factory=list, max_length=len(Module), description="Modules it covers; all when empty."
    )
    min_severity: Severity = pydantic.Field(Severity.LOW, description="Incidents below this severity are not told.")
    to_roles: list[RosterRole] = pydantic.Field(
        default_factory=list,
        max_length=len(RosterRole),
        description="Roster people with these roles serving the incident's responsible unit (or the nearest unit "
        "above it on the site's roster).",
    )
    to_people: list[Email] = pydantic.Field(default_factory=list, max_length=50, description="Named people.")
    to_assignee: bool = pydantic.Field(False, description="Also the person (or team) the incident is assigned to.")
    to_reporters: bool = pydantic.Field(
        False, description="Also the citizens whose linked reports left an e-mail (report-state, resolved, closed)."
    )
    channels: list[ChannelName] = pydantic.Field(
        default_factory=lambda: [EMAIL_CHANNEL],
        min_length=1,
        max_length=10,
        description="'email' and/or names of the site's webhooks (each receives one call per event).",
    )
    digest: bool = pydantic.Field(
        False, description="Collect these into one message per recipient every `digestMinutes` instead."
    )


class Webhook(_Wire):
    """An HTTPS endpoint told of events, each call signed (HMAC-SHA256, header X-IOC-Signature)."""

    name: ChannelName = pydantic.Field(description="How rules name it in `channels` (not 'email').")
    url: str = pydantic.Field(pattern=r"^https?://[^\s]+$", max_length=2000)
    format: Literal["generic", "zalo-oa"] = pydantic.Field(
        "generic",
        description="generic: the event as JSON; zalo-oa: a Zalo Official Account customer-service message per "
        "recipient with a Zalo user id (recipient.user_id, message.text).",
    )
    secret_name: ChannelName = pydantic.Field(
        description="Name of the signing secret in the notifier's settings (IOC_STREAMS_NOTIFY__WEBHOOK_SECRETS)."
    )


class QuietHours(_Wire):
    """Hours (Vietnam time) when less severe notifications wait for the next digest instead."""

    start: ClockTime = pydantic.Field(description="HH:MM, Vietnam time (UTC+7).")
    end: ClockTime = pydantic.Field(description="HH:MM; before start means the next morning.")
    min_severity: Severity = pydantic.Field(
        Severity.HIGH, description="Incidents at or above this severity are told at once even in quiet hours."
    )

    def holds(self, at: dt.datetime, severity: Severity) -> bool:
        """Whether a notification about an incident of `severity` at `at` waits for the digest."""
        ranks = list(Severity)
        if ranks.index(severity) >= ranks.index(self.min_severity):
            return False
        local = at.astimezone(_VIETNAM).strftime("%H:%M")
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end


_VIETNAM: Final = dt.timezone(dt.timedelta(hours=7))


class NotificationsSpec(_Wire):
    """A site's notification rules, webhooks, quiet hours and digest."""

    rules: list[NotificationRule] = pydantic.Field(default_factory=list, max_length=50)
    webhooks: list[Webhook] = pydantic.Field(default_factory=list, max_length=20)
    quiet_hours: QuietHours | None = None
    digest_minutes: Annotated[int, pydantic.Field(ge=5, le=1440)] = pydantic.Field(
        60, description="How often held and digest notifications are sent, together, per recipient."
    )
    sla_warning_minutes: Annotated[int, pydantic.Field(ge=1, le=1440)] = pydantic.Field(
        30, description="How long before a step's SLA runs out the sla-warning event fires."
    )

    @pydantic.model_validator(mode="after")
    def _channels_exist(self) -> NotificationsSpec:
        names = {w.name for w in self.webhooks}
        if EMAIL_CHANNEL in names:
            raise ValueError(f"a webhook may not be named {EMAIL_CHANNEL!r}")
        for rule in self.rules:
            unknown = [c for c in rule.channels if c != EMAIL_CHANNEL and c not in names]
            if unknown:
                raise ValueError(f"rule {rule.name}: channel(s) {', '.join(unknown)} are not webhooks of this site")
        return self


def roster_from_claims(claims: dict[str, object], roles_claim: str = "ioc_roster") -> list[Person]:
    """The signed-in person as a roster entry, from their identity provider's claims, or none.

    The provider releases `roles_claim` as a list of `role@unit` (e.g. `on-duty@25957`) and optionally `team`;
    each unit gives one entry. A claim that does not parse adds nothing (the spec's roster is the fallback).
    """
    email = claims.get("email")
    name = claims.get("name") or email
    raw = claims.get(roles_claim)
    if not isinstance(email, str) or not isinstance(name, str) or not isinstance(raw, list):
        return []
    by_unit: dict[str, list[RosterRole]] = {}
    for item in raw:
        role, _, unit = str(item).partition("@")
        if role in RosterRole.__members__.values() and unit:
            by_unit.setdefault(unit, []).append(RosterRole(role))
    team = claims.get("team")
    people = []
    for unit, roles in by_unit.items():
        try:
            people.append(
                Person(name=name, email=email, roles=roles, unit=unit, team=team if isinstance(team, str) else None)
            )
        except pydantic.ValidationError:
            continue
    return people
