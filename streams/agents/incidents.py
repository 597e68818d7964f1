"""Incidents: one worker per episode partition turns detections, commands and time into incident versions."""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from ioc import codecs, topics
from ioc.events import Detection, Incident, IncidentCommand, Tick
from streams import lifecycle
from streams.agents.common import fail_fast, kept_state
from streams.pipeline import Outgoing, PartitionBuffer
from streams.runtime import COMMANDS, INCIDENTS, SIGNALS, Runtime
from streams.warehouse import rows

__all__ = ["register"]

log = logging.getLogger(__name__)


class _Stored(msgspec.Struct, frozen=True):
    incident: Incident | None
    commands: list[str]


_decoder: msgspec.json.Decoder[Detection | Tick | IncidentCommand] = msgspec.json.Decoder(
    Detection | Tick | IncidentCommand
)
_stored = msgspec.json.Decoder(_Stored)


def _decode_episode(raw: bytes) -> lifecycle.EpisodeState:
    stored = _stored.decode(raw)
    return lifecycle.EpisodeState(stored.incident, list(stored.commands))


def _encode_episode(state: lifecycle.EpisodeState) -> bytes:
    return msgspec.json.encode(_Stored(state.incident, state.commands))


def register(rt: Runtime) -> None:
    """Read `ioc.incident-signals.v1` (detections and ticks) and `ioc.incident-commands.v1` together.

    Both are partitioned by episode (ioc.topics.incident_partition), so everything about one incident meets here, where
    its state lives in the `episodes` table. The lifecycle itself is streams/lifecycle.py. Each change is written to
    `incidents` (latest by version) and `incident_history`, and published on `ioc.incidents.v1` for anyone who follows
    incidents (the citizen API, upward reporting).
    """
    pipeline = rt.pipeline("incidents", SIGNALS.name, COMMANDS.name)
    episodes = kept_state(
        rt,
        pipeline,
        "episodes",
        SIGNALS,
        decode=_decode_episode,
        encode=_encode_episode,
        partition_of=lambda episode: topics.incident_partition(episode, SIGNALS.partitions, is_episode=True),
    )
    source = rt.app.topic(SIGNALS.name, COMMANDS.name, key_type=bytes, value_type=bytes)

    def record(buffer: PartitionBuffer, changes: list[lifecycle.Change]) -> None:
        buffer.urgent = True  # an operator waits for every incident change
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

    ctx = rt.context

    def decode(event: Any) -> Detection | Tick | IncidentCommand | None:
        try:
            return _decoder.decode(event.value)
        except msgspec.ValidationError as exc:
            log.error("unreadable message on %s[%d]: %s", event.message.topic, event.message.partition, exc)
            return None  # acknowledged with its neighbours: reading it again would not make it readable

    async def handle(partition: int, buffer: PartitionBuffer, value: Detection | Tick | IncidentCommand | None) -> None:
        if isinstance(value, Tick):
            for episode, state in episodes.load(partition).items():
                changes = lifecycle.on_tick(state, value.at, ctx)
                if changes:
                    episodes.mark(partition, episode)
                    record(buffer, changes)
        elif isinstance(value, Detection):
            state = episodes.get(partition, value.episode, lifecycle.EpisodeState)
            changes = lifecycle.on_detection(state, value, ctx)
            if changes:
                episodes.mark(partition, value.episode)
                record(buffer, changes)
        elif isinstance(value, IncidentCommand):
            episode = topics.episode_of(value.incident_id)
            state = episodes.get(partition, episode, lifecycle.EpisodeState)
            changes, refused = lifecycle.on_command(state, value, ctx)
            if refused:
                log.warning("command %s refused: %s", value.command_id, refused)
            if changes:
                episodes.mark(partition, episode)
                record(buffer, changes)

    def prepare(partition: int, _buffer: PartitionBuffer) -> None:
        episodes.save(partition)

    @rt.app.agent(source, name="streams.incidents")
    @fail_fast
    async def incidents(stream: Any) -> None:
        await pipeline.consume(stream, decode, handle, prepare)
