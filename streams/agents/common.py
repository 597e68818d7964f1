"""Helpers the agents share: detections routed to their episode's partition, per-partition state caches
over Faust tables, the latest event heard from each device, and the dead letter of a record no agent can read.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Generic, TypeVar

from ioc import topics
from ioc.events import Detection, Ingested
from ioc.topics import KafkaTopic
from streams.pipeline import Outgoing, PartitionBuffer, Pipeline
from streams.runtime import Runtime
from streams.warehouse import rows
from streams.windows import UnitWindows, read_unit, write_unit

__all__ = [
    "DevicesHeard",
    "PartitionedState",
    "WindowStore",
    "add_detections",
    "detection_messages",
    "fail_fast",
    "kept_state",
]

S = TypeVar("S")


def detection_messages(detections: Iterable[Detection]) -> list[Outgoing]:
    return [
        Outgoing(
            topics.INCIDENT_SIGNALS.name,
            d.episode.encode(),
            topics.INCIDENT_SIGNALS.encode(d),
            topics.incident_partition(d.episode, topics.INCIDENT_SIGNALS.partitions, is_episode=True),
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
            stored = self._read(key)
            state = states[key] = first() if stored is None else stored
        return state

    def _read(self, key: str) -> S | None:
        raw = self._table.get(key.encode())
        return self._decode(raw) if raw else None

    def _write(self, key: str, state: S) -> None:
        self._table[key.encode()] = self._encode(state)

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
            self._write(key, states[key])

    def drop(self, partition: int) -> None:
        """Forget a revoked partition's cached states: whoever owns it next reads them from the table."""
        self._states.pop(partition, None)
        self._dirty.pop(partition, None)
        self._loaded.discard(partition)


class WindowStore(PartitionedState[UnitWindows]):
    """Units' windows over a Faust table, a key per unit and per unit-minute (streams.windows.write_unit)."""

    def _read(self, key: str) -> UnitWindows | None:
        return read_unit(self._table, key)

    def _write(self, key: str, state: UnitWindows) -> None:
        write_unit(self._table, state)

    def load(self, partition: int) -> dict[str, UnitWindows]:
        raise NotImplementedError("unit windows are read a unit at a time (their table also holds minute keys)")


def kept_state(
    rt: Runtime,
    pipeline: Pipeline,
    name: str,
    topic: KafkaTopic,
    *,
    decode: Callable[[bytes], S],
    encode: Callable[[S], bytes],
    partition_of: Callable[[str], int] | None = None,
    store: type[PartitionedState[Any]] = PartitionedState,
) -> PartitionedState[S]:
    """The states of the Faust table `name`, co-partitioned with `topic`, forgotten with `pipeline`'s revoked
    partitions. Keys are placed as producers place them (`topics.partition_for`) unless `partition_of` says."""
    state: PartitionedState[S] = store(
        rt.table(name, topic.partitions),
        decode=decode,
        encode=encode,
        partition_of=partition_of or functools.partial(_partition_for, partitions=topic.partitions),
    )
    pipeline.keeps(state)
    return state


def _partition_for(key: str, partitions: int) -> int:
    return topics.partition_for(key, partitions)


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
