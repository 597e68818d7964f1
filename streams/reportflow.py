"""A citizen report's PAKN steps on its incident: reject, request and supply information, answer. Pure.

streams.lifecycle calls these for incidents of rule `citizen-report`: `on_pakn_command` for the PAKN
actions (ioc.pakn.ACTIONS says which apply when), `follow` after an ordinary incident action so the PAKN
state keeps up (acknowledging puts a report in progress, resolving answers it), and `answer_linked` when
the incident the report was linked to is resolved (streams.linking). Each returns the next version of
the incident, or why nothing changes; the lifecycle records it like any other change.
"""

from __future__ import annotations

import datetime as dt

import msgspec

from ioc import pakn
from ioc.authz import CommandRefusal, CommandVerdict
from ioc.events import Detection, Incident, IncidentAction, IncidentCommand
from ioc.reference import ReferenceModel
from ioc.workdays import WorkingCalendar

__all__ = ["answer_linked", "follow", "is_report", "on_pakn_command"]

_LINKED_ANSWER_VI = "Đã xử lý cùng sự việc chung ({title})"


def is_report(incident: Incident) -> bool:
    return incident.rule == pakn.REPORT_RULE


def _paused(detail: dict[str, str], at: dt.datetime, *, start: bool) -> str:
    """The waits with one begun (`start`) or the open one ended at `at`."""
    text = detail.get(pakn.DETAIL_PAUSED, "")
    if start:
        return f"{text};{at.isoformat()}/" if text else f"{at.isoformat()}/"
    return text + at.isoformat() if text.endswith("/") else text


def _answer_by(
    incident: Incident, detail: dict[str, str], model: ReferenceModel, calendar: WorkingCalendar
) -> dt.datetime:
    pauses = [(a, b) for a, b in pakn.parse_pauses(detail.get(pakn.DETAIL_PAUSED, "")) if b is not None]
    days = model.report_sla(incident.detail.get("category", "default")).resolve_working_days
    return pakn.deadlines(calendar, incident.opened_at, days, pauses).answer_by


def _next(
    incident: Incident,
    step: pakn.Step,
    *,
    at: dt.datetime,
    note: str,
    model: ReferenceModel,
    calendar: WorkingCalendar,
) -> Incident:
    detail = {**incident.detail, pakn.DETAIL_STATE: step.leads_to.value, pakn.DETAIL_NOTE: note}
    state = step.incident_state or incident.state
    due: dt.datetime | None = None
    if step.leads_to is pakn.PaknState.INFO_REQUESTED:
        detail[pakn.DETAIL_PAUSED] = _paused(detail, at, start=True)  # the answer clock stops
    elif step.leads_to is pakn.PaknState.INFO_SUPPLIED:
        detail[pakn.DETAIL_PAUSED] = _paused(detail, at, start=False)
        answer_by = _answer_by(incident, detail, model, calendar)
        detail["answer_by"] = answer_by.isoformat()
        due = answer_by
    elif step.leads_to is pakn.PaknState.ANSWERED:
        detail["answered_at"] = at.isoformat()
        detail["publish_by"] = calendar.add_working_days(at, pakn.PUBLISH_WORKING_DAYS).isoformat()
    return msgspec.structs.replace(
        incident, version=incident.version + 1, updated_at=at, state=state, sla_due_at=due, note=note, detail=detail
    )


def on_pakn_command(
    incident: Incident, command: IncidentCommand, model: ReferenceModel, calendar: WorkingCalendar
) -> Incident | CommandVerdict:
    """Carry out a PAKN action (already authorised) on a report's incident, or say why it does not apply."""
    if not is_report(incident):
        return CommandVerdict(
            CommandRefusal.WRONG_STATE, f"{command.action.value} applies to citizen reports only, not {incident.rule}"
        )
    current = pakn.state_of(incident.detail, incident.state)
    step = pakn.step_for(command.action, current)
    if isinstance(step, str):
        return CommandVerdict(CommandRefusal.WRONG_STATE, step)
    note = (command.note or "").strip()
    if not note:
        return CommandVerdict(CommandRefusal.NOTE_REQUIRED, f"{command.action.value} needs a note: {step.note_says}")
    return _next(incident, step, at=command.issued_at, note=note, model=model, calendar=calendar)


def follow(incident: Incident, action: IncidentAction, note: str | None) -> Incident:
    """The PAKN state after an ordinary incident action on a report's incident (the new version, unchanged
    otherwise): acknowledge or dispatch → in progress, resolve → answered (its note is the answer),
    reopen → received. Waiting for the citizen stays waiting, and its clock stays stopped."""
    if not is_report(incident):
        return incident
    current = pakn.state_of(incident.detail, incident.state)
    detail = dict(incident.detail)
    if action in (IncidentAction.ACKNOWLEDGE, IncidentAction.DISPATCH):
        if current is pakn.PaknState.INFO_REQUESTED:
            return msgspec.structs.replace(incident, sla_due_at=None)
        if current in (pakn.PaknState.RECEIVED, pakn.PaknState.INFO_SUPPLIED):
            detail[pakn.DETAIL_STATE] = pakn.PaknState.IN_PROGRESS.value
        # In progress, the clock is the answer's: its deadline already counts the waits for the citizen.
        answer_by = pakn.instant(detail, "answer_by")
        if answer_by is not None:
            return msgspec.structs.replace(incident, detail=detail, sla_due_at=answer_by)
    elif action is IncidentAction.RESOLVE:
        detail.update({pakn.DETAIL_STATE: pakn.PaknState.ANSWERED.value, pakn.DETAIL_NOTE: note or ""})
        detail["answered_at"] = incident.updated_at.isoformat()
    elif action is IncidentAction.REOPEN:
        detail.update({pakn.DETAIL_STATE: pakn.PaknState.RECEIVED.value, pakn.DETAIL_NOTE: ""})
    else:
        return incident
    return msgspec.structs.replace(incident, detail=detail)


def answer_linked(
    incident: Incident, detection: Detection, model: ReferenceModel, calendar: WorkingCalendar
) -> Incident | None:
    """Answer a report whose linked incident was resolved (an `answer` detection); None when there is
    nothing to do: not this report's link any more, or the report already has its reply."""
    if not is_report(incident) or incident.detail.get("linked_incident") != detection.detail.get("incident"):
        return None
    current = pakn.state_of(incident.detail, incident.state)
    step = pakn.step_for(IncidentAction.ANSWER, current)
    if isinstance(step, str):
        return None
    head = _LINKED_ANSWER_VI.format(title=detection.title)
    resolution = detection.detail.get("note", "").strip()
    note = f"{head}: {resolution}" if resolution else head
    return _next(incident, step, at=detection.at, note=note, model=model, calendar=calendar)
