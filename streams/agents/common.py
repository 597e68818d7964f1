"""Helpers the agents share: routing detections to the incident partition that owns their episode, the
per-partition cache of a Faust state table, and the latest event heard from each device."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from ioc import codecs, topics
from ioc.events import Detection, Ingested
from streams.pipeline import Outgoing, PartitionBuffer
from streams.runtime import SIGNALS
from streams.warehouse import rows

__all__ = ["DevicesHeard", "PartitionedState", "add_detections", "detection_messages", "fail_fast"]

S = TypeVar("S")


def detection_messages(detections: Iterable[Detection]) -> list[Outgoing]:
    return [
        Outgoing(
            SIGNALS.name,
            d.episode.encode(),
            codecs.encode(d),
            topics.incident_partition(d.episode, SIGNALS.partitions, is_episode=True),
        )
        for d in detections
    ]


def add_detections(buffer: PartitionBuffer, detections: Iterable[Detection]) -> None:
    """Queue detections for their incident partitions; a buffer holding any is flushed at once."""
    messages = detection_messages(detections)
    if messages:
        buffer.messages.extend(messages)
        buffer.urgent = True


class PartitionedState(Generic[S]):
    """One agent's states by partition and key, read through from a Faust table and written back on save.

    `get` decodes a key's stored state once (or makes its first one); `mark` records that it changed;
    `save` writes the changed ones of a partition to the table (inside the partition's own stream
    iteration, so the changelog lands in the right partition). `load` brings in every stored state of a
    partition, for the checks a tick runs over all of them (after a restart, a device that never sends
    again must still be found silent).
    """

    def __init__(
        self,
        table: Any,
        *,
        decode: Callable[[bytes], S],
        encode: Callable[[S], bytes],
        partition_of: Callable[[str], int],
    ) -> None:
        self._table = table
        self._decode = decode
        self._encode = encode
        self._partition_of = partition_of
        self._states: dict[int, dict[str, S]] = {}
        self._dirty: dict[int, set[str]] = {}
        self._loaded: set[int] = set()

    def get(self, partition: int, key: str, first: Callable[[], S]) -> S:
        states = self._states.setdefault(partition, {})
        state = states.get(key)
        if state is None:
            raw = self._table.get(key.encode())
            state = states[key] = self._decode(raw) if raw else first()
        return state

    def load(self, partition: int) -> dict[str, S]:
        """Every state of `partition`, the stored ones included."""
        states = self._states.setdefault(partition, {})
        if partition not in self._loaded:
            for raw_key, raw in list(self._table.items()):
                key = raw_key.decode()
                if key not in states and self._partition_of(key) == partition:
                    states[key] = self._decode(raw)
            self._loaded.add(partition)
        return states

    def mark(self, partition: int, key: str) -> None:
        self._dirty.setdefault(partition, set()).add(key)

    def changed(self, partition: int) -> list[tuple[str, S]]:
        """The states of `partition` marked since its last save."""
        states = self._states.get(partition, {})
        return [(key, states[key]) for key in self._dirty.get(partition, set())]

    def save(self, partition: int) -> None:
        states = self._states.get(partition, {})
        for key in self._dirty.pop(partition, set()):
            self._table[key.encode()] = self._encode(states[key])

    def drop(self, partition: int) -> None:
        """Forget a revoked partition's cached states: whoever owns it next reads them from the table."""
        self._states.pop(partition, None)
        self._dirty.pop(partition, None)
        self._loaded.discard(partition)


class DevicesHeard:
    """Each device's latest event per partition and how many came since the last flush: `device_status` rows."""

    def __init__(self) -> None:
        self._latest: dict[int, dict[str, tuple[Ingested, int]]] = {}

    def heard(self, partition: int, key: str, item: Ingested) -> None:
        newest = self._latest.setdefault(partition, {})
        previous = newest.get(key)
        newest[key] = (item, (previous[1] if previous else 0) + 1)

    def take_rows(self, partition: int) -> list[dict[str, Any]]:
        return [rows.device_status_row(item, readings=n) for item, n in self._latest.pop(partition, {}).values()]


log = logging.getLogger(__name__)


def fail_fast(agent: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """Stop the whole worker when an agent fails, rather than let Faust restart the agent alone.

    A restarted agent would resume from the consumer's position, skipping the events it had taken but not
    yet acknowledged; a restarted worker resumes from the committed offsets and loses nothing.
    """

    @functools.wraps(agent)
    async def guarded(stream: Any) -> None:
        try:
            await agent(stream)
        except Exception:
            log.critical(
                "agent %s failed; stopping the worker so it restarts from committed offsets",
                agent.__name__,
                exc_info=True,
            )
            logging.shutdown()
            os._exit(70)

    return guarded
