"""The incident lifecycle: how detections, operator commands and the clock change an incident. Pure."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
from typing import Final

import msgspec

from ioc import editions, pakn, units
from ioc.authz import CommandRefusal, CommandVerdict, authorise_command, parse_grants
from ioc.events import (
    ACTIVE_STATES,
    Detection,
    Incident,
    IncidentAction,
    IncidentCommand,
    IncidentState,
    Module,
    Severity,
)
from ioc.reference import ReferenceModel
from ioc.units import UnitTree
from ioc.workdays import WorkingCalendar
from streams import linking, reportflow

__all__ = [
    "Change",
    "Context",
    "EpisodeState",
    "LastChange",
    "event_key",
    "incident_id",
    "on_command",
    "on_detection",
    "on_tick",
    "step_allowed",
    "waiting_commands",
]

SEVERITY_RANK: Final = {s: i for i, s in enumerate(Severity)}
REMEMBERED_COMMANDS: Final = 64
COMMAND_WAIT: Final = dt.timedelta(minutes=10)
"""How long a command for an incident its worker does not hold yet waits for it (`on_command`), by the ticks' clock."""
MAX_WAITING: Final = 16
"""Commands one episode keeps waiting at most; past it a new one is refused at once."""


@dataclasses.dataclass(frozen=True)
class Context:
    """What lifecycle decisions need to know about the world."""

    model: ReferenceModel
    calendar: WorkingCalendar
    tree: UnitTree
    edition: units.Edition = editions.DEFAULT_EDITION
    """The deployment's units tree: which unit answers for a place and where an overdue incident goes (ioc.editions)."""


@dataclasses.dataclass(frozen=True)
class Change:
    incident: Incident
    action: str
    actor: str = "system"


@dataclasses.dataclass
class EpisodeState:
    """An episode's current incident and the command ids already applied (commands are retried).

    An episode (one rule about one place) has at most one incident that is not closed. Its id is "<episode>:<opened>" so
    the same detection replayed names the same incident. Lifecycle: open → acknowledged → dispatched → resolved →
    closed, reopen back to open. SLA clocks run in hours for alarms and in Vietnamese working days for citizen reports;
    an incident whose clock runs out is escalated to the parent unit. Every change is a new `version` with the action
    that caused it, for the history.
    """

    incident: Incident | None = None
    commands: list[str] = dataclasses.field(default_factory=list)
    waiting: list[IncidentCommand] = dataclasses.field(default_factory=list)
    """Commands for a newer incident of the episode than the one held, in arrival order (`on_command`)."""
    last: LastChange | None = None
    """The event that made the current version: read again, its change is given again (`LastChange`)."""


@dataclasses.dataclass(frozen=True)
class LastChange:
    """What made an episode's current version: the event (`event_key`), and the change's action and actor.

    The state is saved before a change's rows are written (streams.pipeline: Faust places a table's changelog record
    by the event being handled), so a worker that dies between the two leaves a state whose last change the
    warehouse never got; its successor reads that event again, and finds it already applied (a command's id in
    `commands`, a detection or tick changing nothing). Given again, the change is the same version, whose rows
    replace themselves. An earlier event's change was followed by others, stored after it.
    """

    event: str
    action: str
    actor: str


def incident_id(episode: str, opened_at: dt.datetime) -> str:
    return f"{episode}:{opened_at.astimezone(dt.UTC):%Y%m%dT%H%M%S}"


def _is_report(incident: Incident) -> bool:
    return bool(incident.reports) and incident.rule == "citizen-report"


def _due(ctx: Context, incident: Incident, state: IncidentState, start: dt.datetime) -> dt.datetime | None:
    """When the SLA clock for the incident in `state` runs out, counted from `start`."""
    if state not in ACTIVE_STATES:
        return None
    if _is_report(incident):
        sla = ctx.model.report_sla(incident.detail.get("category", "default"))
        days = sla.acknowledge_working_days if state is IncidentState.OPEN else sla.resolve_working_days
        return ctx.calendar.add_working_days(start, days)
    alarm = ctx.model.slas.alarms[incident.severity]
    hours = alarm.acknowledge_hours if state is IncidentState.OPEN else alarm.resolve_hours
    return ctx.calendar.add_hours(start, hours)


def _bump(current: Incident, at: dt.datetime, **changes: object) -> Incident:
    return msgspec.structs.replace(current, version=current.version + 1, updated_at=at, **changes)


def event_key(event: Detection | IncidentCommand | dt.datetime) -> str:
    """A detection, a command, or a tick's time, as `LastChange.event` names it."""
    if isinstance(event, IncidentCommand):
        return f"command:{event.command_id}"
    if isinstance(event, Detection):  # the same detection read again is the same bytes
        return f"detection:{hashlib.sha256(msgspec.json.encode(event)).hexdigest()[:24]}"
    return f"tick:{event.isoformat()}"


def _again(episode: EpisodeState, key: str) -> list[Change] | None:
    """The current version's change once more when `key` is the event that made it (`LastChange`), else None."""
    last = episode.last
    if last is None or last.event != key or episode.incident is None:
        return None
    return [Change(episode.incident, last.action, last.actor)]


def _made(episode: EpisodeState, key: str, changes: list[Change]) -> list[Change]:
    if changes:
        episode.last = LastChange(key, changes[-1].action, changes[-1].actor)
    return changes


def on_detection(episode: EpisodeState, detection: Detection, ctx: Context) -> list[Change]:
    """Apply a rule's finding, or a report's link (streams.linking); returns the changes made (usually none or one)."""
    key = event_key(detection)
    again = _again(episode, key)
    if again is not None:
        return again
    if detection.signal in ("link", "answer"):
        return _made(episode, key, _linked(episode, detection, ctx))
    return _made(episode, key, _on_finding(episode, detection, ctx))


def _on_finding(episode: EpisodeState, detection: Detection, ctx: Context) -> list[Change]:
    current = episode.incident
    if detection.signal == "clear":
        if current is None or current.state not in ACTIVE_STATES:
            return []
        if detection.auto_close:
            note = "Tự động đóng: điều kiện đã hết (auto-closed: the condition cleared)."
            closed = _bump(current, detection.at, state=IncidentState.CLOSED, sla_due_at=None, note=note)
            episode.incident = closed
            return [Change(closed, "cleared")]
        if "cleared_at" in current.detail:
            return []
        detail = {**current.detail, "cleared_at": detection.at.isoformat()}
        updated = _bump(current, detection.at, detail=detail)
        episode.incident = updated
        return [Change(updated, "cleared")]
    if current is None or current.state is IncidentState.CLOSED:
        return [_open(episode, detection, ctx)]
    devices = sorted(set(current.devices) | set(detection.devices))
    reports = sorted(set(current.reports) | set(detection.reports))
    severity = max(current.severity, detection.severity, key=SEVERITY_RANK.__getitem__)
    # Only a finding newer than the resolution reopens: a detection replayed after a worker restart
    # (at-least-once) is older than the operator's resolve and must not undo it.
    if current.state is IncidentState.RESOLVED and detection.signal == "open" and detection.at > current.updated_at:
        state = IncidentState.OPEN
        reopened = _bump(
            current,
            detection.at,
            state=state,
            devices=devices,
            reports=reports,
            severity=severity,
            sla_due_at=_due(ctx, current, state, detection.at),
            detail={k: v for k, v in current.detail.items() if k != "cleared_at"},
        )
        episode.incident = reopened
        return [Change(reopened, "reopen")]
    detail = current.detail
    if detection.signal == "open" and "cleared_at" in detail and detection.at > _cleared_at(detail):
        # The condition came back after it cleared (the water rose again): no longer cleared. A replayed
        # older open leaves it be.
        detail = {k: v for k, v in detail.items() if k != "cleared_at"}
    if (devices, reports, severity, detail) == (current.devices, current.reports, current.severity, current.detail):
        return []
    updated = _bump(current, detection.at, devices=devices, reports=reports, severity=severity, detail=detail)
    episode.incident = updated
    return [Change(updated, "updated")]


def _linked(episode: EpisodeState, detection: Detection, ctx: Context) -> list[Change]:
    """A report linked to this running incident (`link`), or this report's linked incident resolved (`answer`):
    streams.linking. Neither opens an incident; one no longer current (closed, another episode's) is left be."""
    current = episode.incident
    if current is None:
        return []
    if detection.signal == "answer":
        answered = reportflow.answer_linked(current, detection, ctx.model, ctx.calendar)
        if answered is None:
            return []
        episode.incident = answered
        return [Change(answered, "answer")]
    stale = current.incident_id != detection.detail.get("incident") or current.state not in ACTIVE_STATES
    if stale or set(detection.reports) <= set(current.reports):
        return []  # closed meanwhile (or reopened as another incident), or a replayed link
    links = {k: v for k, v in detection.detail.items() if k.startswith(linking.LINK_PREFIX)}
    reports = sorted(set(current.reports) | set(detection.reports))
    updated = _bump(current, max(detection.at, current.updated_at), reports=reports, detail={**current.detail, **links})
    episode.incident = updated
    return [Change(updated, "linked")]


def _cleared_at(detail: dict[str, str]) -> dt.datetime:
    return dt.datetime.fromisoformat(detail["cleared_at"])


def _open(episode: EpisodeState, detection: Detection, ctx: Context) -> Change:
    incident = Incident(
        incident_id=incident_id(detection.episode, detection.at),
        version=1,
        rule=detection.rule,
        module=detection.module,
        unit=detection.unit,
        severity=detection.severity,
        state=IncidentState.OPEN,
        title=detection.title,
        opened_at=detection.at,
        updated_at=detection.at,
        responsible_unit=editions.responsible_unit(detection.unit, ctx.edition, detection.lat, detection.lon),
        vendor=detection.vendor,
        devices=sorted(set(detection.devices)),
        reports=sorted(set(detection.reports)),
        detail={**detection.detail, **({"category": detection.report_category} if detection.report_category else {})},
        lat=detection.lat,
        lon=detection.lon,
    )
    incident = msgspec.structs.replace(incident, sla_due_at=_due(ctx, incident, IncidentState.OPEN, detection.at))
    episode.incident = incident
    return Change(incident, "opened")


_ALLOWED: Final[dict[IncidentAction, frozenset[IncidentState]]] = {
    IncidentAction.ACKNOWLEDGE: frozenset({IncidentState.OPEN}),
    IncidentAction.ASSIGN: frozenset(ACTIVE_STATES),
    IncidentAction.DISPATCH: frozenset({IncidentState.OPEN, IncidentState.ACKNOWLEDGED, IncidentState.DISPATCHED}),
    IncidentAction.RESOLVE: frozenset({IncidentState.OPEN, IncidentState.ACKNOWLEDGED, IncidentState.DISPATCHED}),
    IncidentAction.CLOSE: frozenset({IncidentState.RESOLVED}),
    IncidentAction.REOPEN: frozenset({IncidentState.RESOLVED, IncidentState.CLOSED}),
}
_NEXT: Final[dict[IncidentAction, IncidentState]] = {
    IncidentAction.ACKNOWLEDGE: IncidentState.ACKNOWLEDGED,
    IncidentAction.DISPATCH: IncidentState.DISPATCHED,
    IncidentAction.RESOLVE: IncidentState.RESOLVED,
    IncidentAction.CLOSE: IncidentState.CLOSED,
    IncidentAction.REOPEN: IncidentState.OPEN,
}


_STATE_KEPT: Final[dict[str, frozenset[IncidentState]]] = {
    "updated": frozenset(IncidentState) - {IncidentState.CLOSED},
    "cleared": frozenset(ACTIVE_STATES),
    "escalate": frozenset(ACTIVE_STATES),
    "assign": frozenset(ACTIVE_STATES),  # a person or team takes it; the state stays
    "linked": frozenset(ACTIVE_STATES),  # a citizen report joined it
}
"""History actions that leave the state as it was, and the states they happen in."""


def step_allowed(before: IncidentState | None, action: str, after: IncidentState) -> bool:
    """Whether this lifecycle moves an incident from `before` (None: not yet opened) to `after` by `action`, as a
    history row (`incident_history.action`) names it. History checkers ask it; the functions above obey it."""
    if before is None:
        return action == "opened" and after is IncidentState.OPEN
    if action == "cleared" and before in ACTIVE_STATES and after is IncidentState.CLOSED:
        return True  # an auto-closing rule whose condition cleared
    if action in _STATE_KEPT:
        return before in _STATE_KEPT[action] and after is before
    try:
        command = IncidentAction(action)
    except ValueError:
        return False
    step = pakn.ACTIONS.get(command)
    if step is not None:  # a citizen report's PAKN step: closes, resolves, or keeps the state while waiting
        return before in ACTIVE_STATES and after is (step.incident_state or before)
    return before in _ALLOWED[command] and after is _NEXT[command]


def on_command(
    episode: EpisodeState, command: IncidentCommand, ctx: Context, *, site_unit: str | None = None
) -> tuple[list[Change], CommandVerdict | None]:
    """Apply an operator's command; returns the changes, or none and the refusal (a reason code and a sentence).

    The command is authorised here, where it is carried out, with the same verdict the dashboard gave
    (`ioc.authz.authorise_command`): against the grants it carries, cut to the commanding site. `site_unit`
    is the site the command came from as the transport proved it (its own command topic); without it, the
    command's `site_unit`.
    """
    if command.command_id in episode.commands:
        return _again(episode, event_key(command)) or [], None  # a retried command: already applied
    current = episode.incident
    if current is None or current.incident_id != command.incident_id:
        return [], _wait_or_refuse(episode, command)
    site = site_unit or command.site_unit
    verdict = authorise_command(
        grants=parse_grants(list(command.grants)),
        site_unit=site,
        action=command.action,
        incident_unit=current.unit,
        responsible_unit=current.responsible_unit,
        target_unit=command.target_unit,
        tree=editions.hierarchy(ctx.edition),
    )
    if not verdict.allowed:
        return [], verdict
    if command.action in pakn.ACTIONS:
        stepped = reportflow.on_pakn_command(current, command, ctx.model, ctx.calendar)
        if isinstance(stepped, CommandVerdict):
            return [], stepped
        return _applied(episode, command, stepped), None
    if current.state not in _ALLOWED[command.action]:
        return [], CommandVerdict(
            CommandRefusal.WRONG_STATE, f"cannot {command.action.value} an incident that is {current.state.value}"
        )
    changes: dict[str, object] = {}
    if command.action is IncidentAction.DISPATCH:
        changes["responsible_unit"] = command.target_unit
    if command.action is IncidentAction.ASSIGN:
        # A person or team takes it; the state and its SLA clock stay (acknowledging is its own step).
        changes["assignee"] = command.assignee
    if command.action is IncidentAction.RESOLVE and not command.note:
        return [], CommandVerdict(CommandRefusal.NOTE_REQUIRED, "resolve needs a note")
    if command.evidence:
        changes["evidence"] = list(dict.fromkeys([*current.evidence, *command.evidence]))
    state = _NEXT.get(command.action, current.state)
    start = command.issued_at if command.action is IncidentAction.REOPEN else current.opened_at
    updated = _bump(
        current,
        command.issued_at,
        state=state,
        sla_due_at=current.sla_due_at if state is current.state else _due(ctx, current, state, start),
        note=command.note if command.note is not None else current.note,
        **changes,
    )
    updated = reportflow.follow(updated, command.action, command.note)  # a report's PAKN state keeps up
    return _applied(episode, command, updated), None


def _applied(episode: EpisodeState, command: IncidentCommand, incident: Incident) -> list[Change]:
    """`command` carried out: `incident` is the episode's current version, and the command is remembered."""
    episode.incident = incident
    episode.commands = [*episode.commands, command.command_id][-REMEMBERED_COMMANDS:]
    return _made(episode, event_key(command), [Change(incident, command.action.value, command.actor)])


def _wait_or_refuse(episode: EpisodeState, command: IncidentCommand) -> CommandVerdict | None:
    """A command for an incident other than the one held: refused if that one is older, else kept waiting.

    An incident this worker has not seen open yet, though the operator has: after a rebalance the command can come
    before the detection that opened it is read again (they travel on two topics). It waits for it
    (`waiting_commands`), and is refused only if the incident does not come within COMMAND_WAIT.
    """
    if not _newer(command.incident_id, episode.incident):
        return CommandVerdict(
            CommandRefusal.STALE, f"incident {command.incident_id} is not the current incident of its episode"
        )
    if any(w.command_id == command.command_id for w in episode.waiting):
        return None
    if len(episode.waiting) >= MAX_WAITING:
        return CommandVerdict(
            CommandRefusal.STALE,
            f"incident {command.incident_id} is not known here yet and {MAX_WAITING} commands already wait",
        )
    episode.waiting = [*episode.waiting, command]
    return None


def _opened_stamp(incident_id: str) -> str:
    """The `%Y%m%dT%H%M%S` opening time in an incident id (`incident_id`): ids of one episode sort by it."""
    return incident_id.rpartition(":")[2]


def _newer(incident_id: str, current: Incident | None) -> bool:
    """Whether `incident_id` opened after the episode's `current` incident (any, when there is none)."""
    return current is None or _opened_stamp(incident_id) > _opened_stamp(current.incident_id)


def waiting_commands(
    episode: EpisodeState, now: dt.datetime | None = None
) -> tuple[list[IncidentCommand], list[tuple[IncidentCommand, CommandVerdict]]]:
    """Take the waiting commands whose wait is over: those for the incident the episode now holds (to apply with
    `on_command`, in the order they came), and those given up, with the refusal to record: their incident was
    superseded by a newer one, or (with `now`, a tick's time) did not come within COMMAND_WAIT of the command."""
    if not episode.waiting:
        return [], []
    current = episode.incident
    ready: list[IncidentCommand] = []
    given_up: list[tuple[IncidentCommand, CommandVerdict]] = []
    kept: list[IncidentCommand] = []
    for command in episode.waiting:
        if current is not None and command.incident_id == current.incident_id:
            ready.append(command)
        elif not _newer(command.incident_id, current):
            detail = f"incident {command.incident_id} is not the current incident of its episode"
            given_up.append((command, CommandVerdict(CommandRefusal.STALE, detail)))
        elif now is not None and now - command.issued_at > COMMAND_WAIT:
            minutes = int(COMMAND_WAIT.total_seconds() // 60)
            detail = f"incident {command.incident_id} did not reach its worker within {minutes} minutes"
            given_up.append((command, CommandVerdict(CommandRefusal.STALE, detail)))
        else:
            kept.append(command)
    episode.waiting = kept
    return ready, given_up


def on_tick(episode: EpisodeState, now: dt.datetime, ctx: Context) -> list[Change]:
    """The clock moved: escalate an incident whose SLA ran out to the parent of its responsible unit.

    The parent is the deployment edition's (`ioc.editions.escalation_parent`): in the 2025 tree a commune's
    incident goes straight to the city, and never to a district that no longer exists.
    """
    again = _again(episode, event_key(now))
    if again is not None:
        return again
    current = episode.incident
    if current is None or current.state not in ACTIVE_STATES or current.sla_due_at is None or now <= current.sla_due_at:
        return []
    if current.module is Module.DATA_QUALITY:
        return []  # the vendor's to fix: shown as overdue, not pushed up the government tree
    responsible = current.responsible_unit or current.unit
    parent = editions.escalation_parent(responsible, ctx.edition)
    if parent is None:
        return []  # nobody above (the province): it stays there, shown overdue
    updated = _bump(
        current,
        now,
        escalation_level=current.escalation_level + 1,
        responsible_unit=parent,
        sla_due_at=_due(ctx, current, current.state, now),
    )
    episode.incident = updated
    episode.last = LastChange(event_key(now), "escalate", "system")
    return [Change(updated, "escalate")]
