"""Per-partition work buffers: rows and outgoing messages written, then the Kafka events acknowledged.

Every agent iterates its stream without automatic acknowledgement. What an event produces (warehouse
rows, messages for other workers, state changes) is buffered per partition; a flush — when enough rows
are waiting, when the oldest waited long enough, or on a tick — first lets the agent save its dirty state
to its Faust table (inside the partition's own stream iteration, so the changelog lands in the right
partition), then sends the messages, writes the rows (retrying through a ClickHouse outage, which pauses
consumption), waits until Kafka has everything, and only then acknowledges the events, so their offsets
can be committed. A crash anywhere before that re-delivers the events; idempotent rows and state make the
replay harmless.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from streams.warehouse.sink import RowSink

__all__ = ["Outgoing", "PartitionBuffer", "Pipeline"]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for another worker: topic, key, value bytes and the partition it must land in."""

    topic: str
    key: bytes
    value: bytes
    partition: int


@dataclasses.dataclass
class PartitionBuffer:
    rows: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    messages: list[Outgoing] = dataclasses.field(default_factory=list)
    events: list[Any] = dataclasses.field(default_factory=list)
    row_count: int = 0
    opened_at: float = 0.0

    def add_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.rows.setdefault(table, []).extend(rows)
            self.row_count += len(rows)


Sender = Callable[[Outgoing], Awaitable[Any]]


class Pipeline:
    """The buffers of one agent, by partition, and how they are flushed."""

    def __init__(
        self,
        name: str,
        sink: RowSink,
        send: Sender,
        flush_producer: Callable[[], Awaitable[Any]],
        *,
        batch_rows: int,
        flush_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._sink = sink
        self._send = send
        self._flush_producer = flush_producer
        self._batch_rows = batch_rows
        self._flush_s = flush_s
        self._clock = clock
        self._buffers: dict[int, PartitionBuffer] = {}
        self.flushed_events = 0

    def buffer(self, partition: int) -> PartitionBuffer:
        buffer = self._buffers.get(partition)
        if buffer is None:
            buffer = self._buffers[partition] = PartitionBuffer(opened_at=self._clock())
        elif not buffer.events:
            buffer.opened_at = self._clock()
        return buffer

    def due(self, partition: int) -> bool:
        buffer = self._buffers.get(partition)
        if buffer is None or not buffer.events:
            return False
        return buffer.row_count >= self._batch_rows or self._clock() - buffer.opened_at >= self._flush_s

    async def flush(self, partition: int) -> None:
        """Send, write, wait for Kafka, then acknowledge this partition's buffered events."""
        buffer = self._buffers.pop(partition, None)
        if buffer is None or not buffer.events:
            return
        for message in buffer.messages:
            await self._send(message)
        for table, rows in buffer.rows.items():
            await self._sink.write(table, rows)
        # Changelog records (table writes) and the messages above must be in Kafka before the offsets
        # that caused them can be committed.
        await self._flush_producer()
        for event in buffer.events:
            event.ack()
        self.flushed_events += len(buffer.events)
        log.debug(
            "%s[%d]: stored %d rows, sent %d messages, acknowledged %d events",
            self.name,
            partition,
            buffer.row_count,
            len(buffer.messages),
            len(buffer.events),
        )

    def drop(self, partitions: set[int]) -> None:
        """Forget buffers of partitions this worker no longer owns (their events will be re-delivered)."""
        for partition in partitions:
            self._buffers.pop(partition, None)
