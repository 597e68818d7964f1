"""Operators' incident actions: which apply in which state, the command each sends, and waiting for its effect."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Final

from dashboards.audit import AuditLog
from dashboards.auth import Access
from dashboards.data import CommandSender
from ioc import pakn
from ioc.authz import CommandRefusal, authorise_command, operator_units, parse_grants
from ioc.events import IncidentAction, IncidentCommand, IncidentState

# A dashboard never changes an incident itself. It sends an `IncidentCommand` to the stream workers
# (`dashboards.data.commands`), writes the action to the audit log, and remembers the incident's version
# at that moment; the page shows "waiting" until the workers have written a newer version, then the new
# state. Who may act, and where to: `ioc.authz.authorise_command`, the same verdict the stream worker gives
# again where the command is carried out (the command carries the actor's grants, cut to the site).

__all__ = [
    "ALLOWED",
    "ActionRefused",
    "Pending",
    "allowed_actions",
    "build_command",
    "dispatch_targets",
    "may_act",
    "report_actions",
    "send_action",
]

ALLOWED: Final[Mapping[str, tuple[IncidentAction, ...]]] = {
    IncidentState.OPEN: (
        IncidentAction.ACKNOWLEDGE,
        IncidentAction.ASSIGN,
        IncidentAction.DISPATCH,
        IncidentAction.RESOLVE,
    ),
    IncidentState.ACKNOWLEDGED: (IncidentAction.ASSIGN, IncidentAction.DISPATCH, IncidentAction.RESOLVE),
    IncidentState.DISPATCHED: (IncidentAction.ASSIGN, IncidentAction.DISPATCH, IncidentAction.RESOLVE),
    IncidentState.RESOLVED: (IncidentAction.CLOSE, IncidentAction.REOPEN),
    IncidentState.CLOSED: (IncidentAction.REOPEN,),
}
"""The lifecycle open → acknowledged → dispatched → resolved → closed, with reopen (DESIGN.md)."""


class ActionRefused(ValueError):
    """The action does not apply (wrong state, missing note or target, no operator role); nothing was sent."""

    def __init__(self, reason: CommandRefusal, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclasses.dataclass(frozen=True, slots=True)
class Pending:
    """A sent command whose effect has not been seen yet."""

    incident_id: str
    version: int
    action: IncidentAction
    command_id: str
    partition: int
    sent_at: dt.datetime

    def settled_by(self, latest: Mapping[str, Any] | None) -> bool:
        """Whether the workers have written a newer version of the incident since the command was sent."""
        return latest is not None and int(latest["version"]) > self.version


def allowed_actions(state: str) -> tuple[IncidentAction, ...]:
    return ALLOWED.get(state, ())


def report_actions(incident: Mapping[str, Any]) -> tuple[IncidentAction, ...]:
    """What an operator may do with a citizen report's incident now: take it up (acknowledge: in progress) while it
    awaits review, and the PAKN steps its state allows (ioc.pakn.ACTIONS), in that order."""
    state = str(incident["state"])
    phase = pakn.state_of(pakn.parse_detail(incident.get("detail")), state)
    review = (pakn.PaknState.RECEIVED, pakn.PaknState.INFO_SUPPLIED)
    first = (IncidentAction.ACKNOWLEDGE,) if state == IncidentState.OPEN and phase in review else ()
    return first + tuple(action for action, step in pakn.ACTIONS.items() if phase in step.applies_in)


def _pakn_refusal(incident: Mapping[str, Any], action: IncidentAction, note: str | None) -> ActionRefused | None:
    if incident.get("rule") != pakn.REPORT_RULE:
        return ActionRefused(CommandRefusal.WRONG_STATE, f"{action.value} applies to citizen reports only")
    phase = pakn.state_of(pakn.parse_detail(incident.get("detail")), str(incident["state"]))
    step = pakn.step_for(action, phase)
    if isinstance(step, str):
        return ActionRefused(CommandRefusal.WRONG_STATE, step)
    if note is None:
        return ActionRefused(CommandRefusal.NOTE_REQUIRED, f"{action.value} needs a note: {step.note_says}")
    return None


def may_act(access: Access | None, incident: Mapping[str, Any]) -> bool:
    """Whether the person is an operator of the incident's place or responsible unit."""
    if access is None:
        return False
    places = [incident.get("unit"), incident.get("responsible_unit")]
    return any(isinstance(code, str) and code in access.site.tree and access.can_act(code) for code in places)


def dispatch_targets(access: Access, incident: Mapping[str, Any]) -> list[str]:
    """Where this person may send the incident: the units they operate (the incident's own place first)."""
    scope = operator_units(parse_grants(access.grant_strings), access.site.unit, access.site.tree)
    tree = access.site.tree
    candidates = [incident.get("unit"), incident.get("responsible_unit")] + [u.code for u in tree]
    return list(
        dict.fromkeys(
            code
            for code in candidates
            if isinstance(code, str) and code in tree and any(tree.is_within(code, unit) for unit in scope)
        )
    )


def build_command(
    access: Access,
    incident: Mapping[str, Any],
    action: IncidentAction,
    *,
    target_unit: str | None = None,
    note: str | None = None,
    assignee: str | None = None,
    evidence: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> IncidentCommand:
    """The command for `action` on `incident`, or `ActionRefused` saying why it does not apply."""
    verdict = authorise_command(
        grants=parse_grants(access.grant_strings),
        site_unit=access.site.unit,
        action=action,
        incident_unit=str(incident["unit"]),
        responsible_unit=incident.get("responsible_unit") or None,
        target_unit=target_unit,
        tree=access.site.tree,
    )
    if verdict.reason is not None:
        raise ActionRefused(verdict.reason, f"{access.actor}: {verdict.detail}")
    text = (note or "").strip() or None
    if action in pakn.ACTIONS:
        refused = _pakn_refusal(incident, action, text)
        if refused is not None:
            raise refused
    elif action not in allowed_actions(str(incident["state"])):
        raise ActionRefused(
            CommandRefusal.WRONG_STATE, f"{action.value} does not apply to a {incident['state']} incident"
        )
    if action is IncidentAction.RESOLVE and text is None:
        raise ActionRefused(CommandRefusal.NOTE_REQUIRED, "resolving needs a note saying what was done")
    if action is IncidentAction.ASSIGN and not assignee:
        raise ActionRefused(CommandRefusal.ASSIGNEE_REQUIRED, "assigning needs a person or a team from the roster")
    return IncidentCommand(
        command_id=uuid.uuid4().hex,
        incident_id=str(incident["incident_id"]),
        action=action,
        actor=access.actor,
        site_unit=access.site.unit,
        issued_at=now or dt.datetime.now(dt.UTC),
        target_unit=target_unit if action is IncidentAction.DISPATCH else None,
        note=text,
        assignee=assignee if action is IncidentAction.ASSIGN else None,
        evidence=tuple(evidence),
        grants=access.grant_strings,
    )


def send_action(
    sender: CommandSender,
    audit: AuditLog,
    access: Access,
    incident: Mapping[str, Any],
    action: IncidentAction,
    *,
    target_unit: str | None = None,
    note: str | None = None,
    assignee: str | None = None,
    evidence: Sequence[str] = (),
) -> Pending:
    """Build, send and audit one action; returns what to wait for. Raises `ActionRefused` or `CommandError`."""
    command = build_command(
        access, incident, action, target_unit=target_unit, note=note, assignee=assignee, evidence=evidence
    )
    delivery = sender.send(command)
    audit.record(
        access.actor,
        access.site.unit,
        f"incident-{action.value}",
        targets=[command.incident_id],
        command_id=command.command_id,
        version_seen=int(incident["version"]),
        topic=delivery.topic,
        partition=delivery.partition,
        offset=delivery.offset,
        target_unit=command.target_unit,
        note=command.note,
        assignee=command.assignee,
        evidence=list(command.evidence),
    )
    return Pending(
        incident_id=command.incident_id,
        version=int(incident["version"]),
        action=action,
        command_id=command.command_id,
        partition=delivery.partition,
        sent_at=command.issued_at,
    )
