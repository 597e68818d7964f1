"""Incidents: one worker per episode partition turns detections, commands and time into incident versions."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Final

import msgspec

from ioc import topics
from ioc.authz import CommandVerdict
from ioc.events import Detection, Incident, IncidentCommand, Tick
from streams import lifecycle, linking
from streams.agents.common import detection_messages, fail_fast, kept_state
from streams.pipeline import Outgoing, PartitionBuffer
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["register"]

log = logging.getLogger(__name__)


class _Stored(msgspec.Struct, frozen=True):
    incident: Incident | None
    commands: list[str]
    waiting: list[IncidentCommand] = []
    last: lifecycle.LastChange | None = None


_DECODERS: Final[dict[str, Callable[[bytes], Detection | Tick | IncidentCommand]]] = {
    topics.INCIDENT_SIGNALS.name: topics.INCIDENT_SIGNALS.decode,
    topics.INCIDENT_COMMANDS.name: topics.INCIDENT_COMMANDS.decode,
}
_stored = msgspec.json.Decoder(_Stored)
_ANSWERING: Final = frozenset({"resolve", "close", "cleared"})
"""Changes after which an incident's linked reports are answered (streams.linking.answers_for)."""


def _decode_episode(raw: bytes) -> lifecycle.EpisodeState:
    stored = _stored.decode(raw)
    return lifecycle.EpisodeState(stored.incident, list(stored.commands), list(stored.waiting), stored.last)


def _encode_episode(state: lifecycle.EpisodeState) -> bytes:
    return msgspec.json.encode(_Stored(state.incident, state.commands, state.waiting, state.last))


def _refusal(rt: Runtime, command: IncidentCommand, verdict: CommandVerdict, state: lifecycle.EpisodeState) -> rows.Row:
    """Why a command was not carried out, placed like its incident so the commanding site's dashboard sees it."""

    def placed(unit: str) -> tuple[str, str]:
        return (unit, rt.path(unit)) if unit in rt.context.tree else ("", "")

    incident = state.incident
    # An incident the worker does not hold (stale): its place is in its id, `<rule>:<unit>:<start>`.
    unit = incident.unit if incident is not None else topics.episode_of(command.incident_id).rpartition(":")[2]
    responsible = (incident.responsible_unit or incident.unit) if incident is not None else unit
    return rows.refusal_row(
        command,
        reason=str(verdict.reason),
        detail=verdict.detail,
        refused_at=dt.datetime.now(dt.UTC),
        place=placed(unit),
        # The responsible unit is one of the deployment's edition (a 2025 unit on a 2025 deployment).
        responsible=placed(responsible)
        if rt.settings.edition == "2024"
        else (responsible, rt.responsible_path(responsible)),
    )


def _record(rt: Runtime, buffer: PartitionBuffer, changes: list[lifecycle.Change]) -> None:
    """Write each change to `incidents` and its history, and publish it on `ioc.incidents.v1`."""
    buffer.urgent = True  # an operator waits for every incident change
    for change in changes:
        incident = change.incident
        path = rt.path(incident.unit)
        responsible = rt.responsible_path(incident.responsible_unit or incident.unit)
        buffer.add_rows("incidents", [rows.incident_row(incident, path, responsible)])
        buffer.add_rows(
            "incident_history", [rows.history_row(incident, path, responsible, change.action, change.actor)]
        )
        buffer.messages.append(
            Outgoing(
                topics.INCIDENTS.name,
                incident.incident_id.encode(),
                topics.INCIDENTS.encode(incident),
                topics.partition_for(incident.incident_id, topics.INCIDENTS.partitions),
            )
        )
        if change.action in _ANSWERING:  # resolved or closed: its linked citizen reports are answered
            buffer.messages.extend(detection_messages(linking.answers_for(incident)))


def register(rt: Runtime) -> None:
    """Read `ioc.incident-signals.v1` (detections and ticks) and `ioc.incident-commands.v1` together.

    Both are partitioned by episode (ioc.topics.incident_partition), so everything about one incident meets here, where
    its state lives in the `episodes` table. The lifecycle itself is streams/lifecycle.py. Each change is written to
    `incidents` (latest by version) and `incident_history`, and published on `ioc.incidents.v1` for anyone who follows
    incidents (the citizen API, upward reporting). A command is authorised again here (streams.lifecycle.on_command,
    with ioc.authz); one that is not carried out is written to `command_refusals` with its reason, for the dashboard.
    """
    signals, commands = topics.INCIDENT_SIGNALS, topics.INCIDENT_COMMANDS
    pipeline = rt.pipeline("incidents", signals.name, commands.name)
    episodes = kept_state(
        rt,
        pipeline,
        "episodes",
        signals,
        decode=_decode_episode,
        encode=_encode_episode,
        partition_of=lambda episode: topics.incident_partition(episode, signals.partitions, is_episode=True),
    )
    source = rt.app.topic(signals.name, commands.name, key_type=bytes, value_type=bytes)

    ctx = rt.context

    def decode(event: Any) -> Detection | Tick | IncidentCommand:
        # What does not decode (not JSON, or not the topic's shape) is dead-lettered by the pipeline (`undecodable`).
        return _DECODERS[event.message.topic](event.value)

    def refuse(
        buffer: PartitionBuffer, command: IncidentCommand, verdict: CommandVerdict, state: lifecycle.EpisodeState
    ) -> None:
        log.warning("command %s refused (%s): %s", command.command_id, verdict.reason, verdict.detail)
        buffer.urgent = True  # the operator who sent it is waiting
        buffer.add_rows("command_refusals", [_refusal(rt, command, verdict, state)])

    def apply(partition: int, buffer: PartitionBuffer, command: IncidentCommand, state: lifecycle.EpisodeState) -> None:
        waited = len(state.waiting)
        changes, refused = lifecycle.on_command(state, command, ctx)
        if refused is not None:
            refuse(buffer, command, refused, state)
        if changes or len(state.waiting) != waited:
            episodes.mark(partition, topics.episode_of(command.incident_id))
        if changes:
            _record(rt, buffer, changes)

    def settle(
        partition: int, buffer: PartitionBuffer, episode: str, state: lifecycle.EpisodeState, now: dt.datetime | None
    ) -> None:
        """Carry out, or give up, the commands that waited for their incident (streams.lifecycle.waiting_commands)."""
        ready, given_up = lifecycle.waiting_commands(state, now)
        if ready or given_up:
            episodes.mark(partition, episode)
        for command, verdict in given_up:
            refuse(buffer, command, verdict, state)
        for command in ready:
            apply(partition, buffer, command, state)

    async def handle(partition: int, buffer: PartitionBuffer, value: Detection | Tick | IncidentCommand) -> None:
        if isinstance(value, Tick):
            for episode, state in episodes.load(partition).items():
                changes = lifecycle.on_tick(state, value.at, ctx)
                if changes:
                    episodes.mark(partition, episode)
                    _record(rt, buffer, changes)
                settle(partition, buffer, episode, state, value.at)
        elif isinstance(value, Detection):
            state = episodes.get(partition, value.episode, lifecycle.EpisodeState)
            changes = lifecycle.on_detection(state, value, ctx)
            if changes:
                episodes.mark(partition, value.episode)
                _record(rt, buffer, changes)
            settle(partition, buffer, value.episode, state, None)
        elif isinstance(value, IncidentCommand):
            episode = topics.episode_of(value.incident_id)
            apply(partition, buffer, value, episodes.get(partition, episode, lifecycle.EpisodeState))

    def prepare(partition: int, _buffer: PartitionBuffer) -> None:
        episodes.save(partition)

    @rt.app.agent(source, name="streams.incidents")
    @fail_fast
    async def incidents(stream: Any) -> None:
        await pipeline.consume(stream, decode, handle, prepare)
