"""Incidents: one worker per episode partition turns detections, commands and time into incident versions.

Reads `ioc.incident-signals.v1` (detections and ticks) and `ioc.incident-commands.v1` together: both are
partitioned by episode (ioc.topics.incident_partition), so everything about one incident meets here,
where its state lives in the `episodes` table. The lifecycle itself is streams/lifecycle.py. Each change
is written to `incidents` (latest by version) and `incident_history`, and published on
`ioc.incidents.v1` for anyone who follows incidents (the citizen API, upward reporting).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from ioc import codecs, topics
from ioc.events import Detection, Incident, IncidentCommand, Tick
from streams import lifecycle
from streams.agents.common import fail_fast
from streams.pipeline import Outgoing, PartitionBuffer
from streams.runtime import COMMANDS, INCIDENTS, SIGNALS, Runtime
from streams.warehouse import rows

__all__ = ["register"]

log = logging.getLogger(__name__)


class _Stored(msgspec.Struct, frozen=True):
    incident: Incident | None
    commands: list[str]


_decoder = msgspec.json.Decoder(Detection | Tick | IncidentCommand)
_stored = msgspec.json.Decoder(_Stored)


def register(rt: Runtime) -> None:
    table = rt.table("episodes", SIGNALS.partitions)
    pipeline = rt.pipeline("incidents")
    cache: dict[int, dict[str, lifecycle.EpisodeState]] = {}
    dirty: dict[int, set[str]] = {}
    loaded: set[int] = set()
    source = rt.app.topic(SIGNALS.name, COMMANDS.name, key_type=bytes, value_type=bytes)

    def episode_for(partition: int, episode: str) -> lifecycle.EpisodeState:
        states = cache.setdefault(partition, {})
        state = states.get(episode)
        if state is None:
            raw = table.get(episode.encode())
            if raw:
                stored = _stored.decode(raw)
                state = lifecycle.EpisodeState(stored.incident, list(stored.commands))
            else:
                state = lifecycle.EpisodeState()
            states[episode] = state
        return state

    def load_partition(partition: int) -> None:
        if partition in loaded:
            return
        for raw_key, _raw in list(table.items()):
            episode = raw_key.decode()
            if topics.incident_partition(episode, SIGNALS.partitions, is_episode=True) == partition:
                episode_for(partition, episode)
        loaded.add(partition)

    def record(buffer: PartitionBuffer, changes: list[lifecycle.Change]) -> None:
        buffer.urgent = buffer.urgent or bool(changes)
        for change in changes:
            incident = change.incident
            path = rt.path(incident.unit)
            responsible = rt.path(incident.responsible_unit or incident.unit)
            buffer.add_rows("incidents", [rows.incident_row(incident, path, responsible)])
            buffer.add_rows(
                "incident_history", [rows.history_row(incident, path, responsible, change.action, change.actor)]
            )
            buffer.messages.append(
                Outgoing(
                    INCIDENTS.name,
                    incident.incident_id.encode(),
                    codecs.encode(incident),
                    topics.partition_for(incident.incident_id, INCIDENTS.partitions),
                )
            )

    def save(partition: int) -> None:
        states = cache.get(partition, {})
        for episode in dirty.pop(partition, set()):
            state = states[episode]
            table[episode.encode()] = msgspec.json.encode(_Stored(state.incident, state.commands))

    @rt.app.agent(source, name="streams.incidents")
    @fail_fast
    async def incidents(stream: Any) -> None:
        ctx = rt.context
        async for event in stream.noack().events():
            partition = event.message.partition
            buffer = pipeline.buffer(partition)
            buffer.events.append(event)
            try:
                value = _decoder.decode(event.value)
            except msgspec.ValidationError as exc:
                log.error("unreadable message on %s[%d]: %s", event.message.topic, partition, exc)
                value = None
            changed = dirty.setdefault(partition, set())
            if isinstance(value, Tick):
                load_partition(partition)
                for episode, state in cache.get(partition, {}).items():
                    changes = lifecycle.on_tick(state, value.at, ctx)
                    if changes:
                        changed.add(episode)
                        record(buffer, changes)
            elif isinstance(value, Detection):
                state = episode_for(partition, value.episode)
                changes = lifecycle.on_detection(state, value, ctx)
                if changes:
                    changed.add(value.episode)
                    record(buffer, changes)
            elif isinstance(value, IncidentCommand):
                episode = topics.episode_of(value.incident_id)
                state = episode_for(partition, episode)
                changes, refused = lifecycle.on_command(state, value, ctx)
                if refused:
                    log.warning("command %s refused: %s", value.command_id, refused)
                if changes:
                    changed.add(episode)
                    record(buffer, changes)
            if isinstance(value, Tick) or pipeline.due(partition):
                save(partition)
                await pipeline.flush(partition)
