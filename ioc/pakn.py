"""PAKN (phản ánh, kiến nghị) states of a citizen report, their deadlines in working days and labels. Pure.

A citizen report is handled as an incident of rule `citizen-report` (streams.agents.reports); its PAKN
state rides in that incident's `detail` (key `pakn`), beside the note the citizen reads (`pakn_note`)
and the deadlines (`reject_by`, `request_info_by`, `answer_by`, ISO instants). The stream worker moves
it (streams.reportflow), the dashboards offer the actions that apply (dashboards.actions) and the citizen
API shows it as Open311 `status` and `status_notes` (dashboards.api.open311): one table, here, for all three.

Deadlines follow the Cổng DVCQG rules 766 scores against (shared DOMAIN.md, "PAKN and field-report
deadlines"): reject within 2 working days of submission, request more information within 5, answer
within 15 (the reference model's `resolve_working_days` per category, shorter for urgent ones), and
publish the answer within 2 of answering (the API publishes it at once). The answer clock pauses while
the report waits for the citizen ("chờ bổ sung"), as 766 counts it (ioc.workdays.WorkingCalendar.deadline).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
from collections.abc import Mapping, Sequence
from typing import Final, Literal

from ioc.events import IncidentAction, IncidentState
from ioc.workdays import WorkingCalendar

__all__ = [
    "ACTIONS",
    "DETAIL_NOTE",
    "DETAIL_PAUSED",
    "DETAIL_STATE",
    "FINISHED",
    "LABELS",
    "PUBLISH_WORKING_DAYS",
    "REJECT_WORKING_DAYS",
    "REPORT_RULE",
    "REQUEST_INFO_WORKING_DAYS",
    "Deadlines",
    "PaknState",
    "Step",
    "citizen_status",
    "deadlines",
    "instant",
    "parse_detail",
    "parse_pauses",
    "state_of",
    "status_note",
    "step_for",
]

REPORT_RULE: Final = "citizen-report"
"""The rule of a citizen report's own incident (streams.agents.reports)."""

REJECT_WORKING_DAYS: Final = 2.0
"""Reject (từ chối tiếp nhận) within 2 WD of submission, with a reason (Cổng DVCQG, 766 item 5.2)."""
REQUEST_INFO_WORKING_DAYS: Final = 5.0
"""Request more information (đề nghị bổ sung) within 5 WD of submission."""
PUBLISH_WORKING_DAYS: Final = 2.0
"""Publish the answer within 2 WD of answering; the citizen API shows it as soon as it is stored."""

DETAIL_STATE: Final = "pakn"
DETAIL_NOTE: Final = "pakn_note"
DETAIL_PAUSED: Final = "pakn_paused"
"""Waits for the citizen so far, `from/to` ISO pairs separated by `;` (the last `to` empty while waiting)."""


class PaknState(enum.StrEnum):
    """received → (rejected | info_requested → info_supplied) → in_progress → answered."""

    RECEIVED = "received"
    REJECTED = "rejected"
    INFO_REQUESTED = "info_requested"
    INFO_SUPPLIED = "info_supplied"
    IN_PROGRESS = "in_progress"
    ANSWERED = "answered"


_BY_VALUE: Final[Mapping[str, PaknState]] = {s.value: s for s in PaknState}
FINISHED: Final[frozenset[PaknState]] = frozenset({PaknState.REJECTED, PaknState.ANSWERED})
"""States in which the citizen has their reply: Open311 `closed`, no deadline runs."""

LABELS: Final[Mapping[PaknState, tuple[str, str]]] = {
    PaknState.RECEIVED: ("Đã tiếp nhận, đang chờ xem xét", "Received, awaiting review"),
    PaknState.REJECTED: ("Từ chối tiếp nhận", "Rejected"),
    PaknState.INFO_REQUESTED: ("Đề nghị bổ sung thông tin", "More information requested"),
    PaknState.INFO_SUPPLIED: ("Đã bổ sung thông tin, đang xem xét", "Information supplied, under review"),
    PaknState.IN_PROGRESS: ("Đang xử lý", "In progress"),
    PaknState.ANSWERED: ("Đã trả lời", "Answered"),
}


@dataclasses.dataclass(frozen=True, slots=True)
class Step:
    """One PAKN action: the states it applies in, the state it leads to and the incident state it sets."""

    action: IncidentAction
    applies_in: frozenset[PaknState]
    leads_to: PaknState
    incident_state: IncidentState | None
    """The incident's new state; None keeps it (waiting for the citizen changes no lifecycle state)."""
    note_says: str
    """What the required note is, for the refusal when it is missing."""


_OPEN_FOR_DECISION: Final = frozenset({PaknState.RECEIVED, PaknState.INFO_SUPPLIED})
ACTIONS: Final[Mapping[IncidentAction, Step]] = {
    step.action: step
    for step in (
        Step(
            IncidentAction.REJECT,
            _OPEN_FOR_DECISION,
            PaknState.REJECTED,
            IncidentState.CLOSED,
            "the reason the citizen reads",
        ),
        Step(
            IncidentAction.REQUEST_INFO,
            _OPEN_FOR_DECISION | {PaknState.IN_PROGRESS},
            PaknState.INFO_REQUESTED,
            None,
            "what information is needed",
        ),
        Step(
            IncidentAction.SUPPLY_INFO,
            frozenset({PaknState.INFO_REQUESTED}),
            PaknState.INFO_SUPPLIED,
            None,
            "the information the citizen gave",
        ),
        Step(
            IncidentAction.ANSWER,
            _OPEN_FOR_DECISION | {PaknState.IN_PROGRESS},
            PaknState.ANSWERED,
            IncidentState.RESOLVED,
            "the answer the citizen reads",
        ),
    )
}
"""The PAKN actions an operator takes on a report's incident; every one needs a note."""


def step_for(action: IncidentAction, state: PaknState) -> Step | str:
    """The step `action` takes from `state`, or a sentence saying why it does not apply."""
    step = ACTIONS.get(action)
    if step is None:
        return f"{action.value} is not a PAKN action"
    if state not in step.applies_in:
        allowed = ", ".join(sorted(s.value for s in step.applies_in))
        return f"cannot {action.value} a report that is {state.value} (only when {allowed})"
    return step


def state_of(detail: Mapping[str, str], incident_state: str) -> PaknState:
    """A report incident's PAKN state: as recorded, else read from the lifecycle state (reports stored
    before PAKN states existed, or moved only by incident actions)."""
    recorded = detail.get(DETAIL_STATE, "")
    if recorded in _BY_VALUE:
        return _BY_VALUE[recorded]
    if incident_state in (IncidentState.RESOLVED, IncidentState.CLOSED):
        return PaknState.ANSWERED
    if incident_state in (IncidentState.ACKNOWLEDGED, IncidentState.DISPATCHED):
        return PaknState.IN_PROGRESS
    return PaknState.RECEIVED


def citizen_status(state: PaknState) -> Literal["open", "closed"]:
    """Open311's status: `closed` once the citizen has their reply (rejected or answered)."""
    return "closed" if state in FINISHED else "open"


def status_note(state: PaknState, note: str, lang: str) -> str:
    """What the citizen reads in `status_notes`: the state, and the reason, request or answer."""
    vi, en = LABELS[state]
    label = en if lang == "en" else vi
    return f"{label}: {note}" if note else label


@dataclasses.dataclass(frozen=True, slots=True)
class Deadlines:
    """When each PAKN step is due, in the calendar's zone."""

    reject_by: dt.datetime
    request_info_by: dt.datetime
    answer_by: dt.datetime

    def as_detail(self) -> dict[str, str]:
        return {
            "reject_by": self.reject_by.isoformat(),
            "request_info_by": self.request_info_by.isoformat(),
            "answer_by": self.answer_by.isoformat(),
        }


def deadlines(
    calendar: WorkingCalendar,
    submitted_at: dt.datetime,
    answer_working_days: float,
    paused: Sequence[tuple[dt.datetime, dt.datetime]] = (),
) -> Deadlines:
    """The deadlines of a report submitted at `submitted_at`; `paused` are the waits for the citizen,
    which push the answer deadline back (the other two are about intake and do not pause)."""
    return Deadlines(
        reject_by=calendar.add_working_days(submitted_at, REJECT_WORKING_DAYS),
        request_info_by=calendar.add_working_days(submitted_at, REQUEST_INFO_WORKING_DAYS),
        answer_by=calendar.deadline(submitted_at, answer_working_days, paused),
    )


def parse_pauses(text: str) -> list[tuple[dt.datetime, dt.datetime | None]]:
    """The waits recorded in `detail['pakn_paused']`; an open wait has None as its end."""
    pauses: list[tuple[dt.datetime, dt.datetime | None]] = []
    for item in filter(None, text.split(";")):
        start, _, end = item.partition("/")
        pauses.append((dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end) if end else None))
    return pauses


def parse_detail(text: object) -> dict[str, str]:
    """An incident's `detail` as the warehouse stores it (a JSON object of strings); {} for anything else."""
    try:
        found = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def instant(detail: Mapping[str, str], key: str) -> dt.datetime | None:
    """A deadline kept in `detail` (an ISO instant), or None when it is not there."""
    value = detail.get(key)
    return dt.datetime.fromisoformat(value) if value else None
