"""Per-partition work buffers: rows and outgoing messages written, then the Kafka events acknowledged."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
import os
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar

from ioc import codecs, topics
from ioc.events import DEAD_LETTER_PAYLOAD_BYTES, DeadLetter, DeadLetterReason
from streams.warehouse.sink import RowSink

__all__ = ["GroupedSink", "Outgoing", "PartitionBuffer", "Pipeline", "ack_each", "undecodable"]

log = logging.getLogger(__name__)

V = TypeVar("V")


class GroupedSink:
    """Group commit: rows from every flush in progress are inserted together, one insert per table.

    ClickHouse wants few large inserts (each one makes a part); the agents flush often and per partition.
    Every `write` joins the next group of its table; the group is inserted after `delay_s` (or once
    `max_rows` wait) and each writer is released when the insert that carried its rows succeeded. Each
    table has its own lane, so a small urgent insert (an incident) never queues behind a big one (a
    batch of readings). The underlying sink retries through outages, so a write waits as long as
    ClickHouse is away.
    """

    def __init__(self, sink: RowSink, *, delay_s: float = 0.05, max_rows: int = 100_000) -> None:
        self.sink = sink
        self._delay_s = delay_s
        self._max_rows = max_rows
        self._lanes: dict[str, _Lane] = {}

    async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        lane = self._lanes.get(table)
        if lane is None:
            lane = self._lanes[table] = _Lane(self.sink, table, self._delay_s, self._max_rows)
        await lane.write(rows)


class _Lane:
    """One table's group commit: writers wait for the insert that carries their rows."""

    def __init__(self, sink: RowSink, table: str, delay_s: float, max_rows: int) -> None:
        self._sink = sink
        self._table = table
        self._delay_s = delay_s
        self._max_rows = max_rows
        self._pending: list[tuple[list[dict[str, Any]], asyncio.Future[None]]] = []
        self._rows = 0
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Future[None] | None = None

    async def write(self, rows: list[dict[str, Any]]) -> None:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = asyncio.ensure_future(self._run())
        done: asyncio.Future[None] = loop.create_future()
        self._pending.append((rows, done))
        self._rows += len(rows)
        assert self._wake is not None
        self._wake.set()
        await done

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._rows < self._max_rows:
                await asyncio.sleep(self._delay_s)
            parts, self._pending, self._rows = self._pending, [], 0
            if not parts:
                continue
            combined = [row for rows, _ in parts for row in rows]
            try:
                await self._sink.write(self._table, combined)
            except Exception as exc:  # noqa: BLE001 - handed to every writer of the group
                for _, done in parts:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in parts:
                if not done.done():
                    done.set_result(None)


@dataclasses.dataclass(frozen=True, slots=True)
class Outgoing:
    """A message for another worker: topic, key, value bytes and the partition it must land in."""

    topic: str
    key: bytes
    value: bytes
    partition: int


def undecodable(event: Any, exc: BaseException) -> Outgoing:
    """The dead letter for a Kafka record an agent could not decode: its bytes, where it was, and why.

    A contract error's message says what was wrong with the bytes (it quotes no server internals); any other
    exception is named by its type only. Keyed like the record, so a producer's letters stay together.
    """
    message, value = event.message, bytes(event.value or b"")
    topic, partition, key = message.topic, message.partition, getattr(event, "key", None)
    why = exc.message if isinstance(exc, codecs.ContractError) else "decoding raised"
    letter = DeadLetter(
        source=f"kafka:{topic}[{partition}]@{message.offset}",
        reason=DeadLetterReason.UNDECODABLE,
        detail=f"{type(exc).__name__}: {why}"[:2000],
        received_at=dt.datetime.now(dt.UTC),
        payload=value[:DEAD_LETTER_PAYLOAD_BYTES],
        size=len(value),
    )
    letter_key = bytes(key) if isinstance(key, bytes | bytearray) and key else f"{topic}:{partition}".encode()
    return Outgoing(
        topics.DEADLETTER.name,
        letter_key[:200],
        topics.DEADLETTER.encode(letter),
        topics.partition_for(letter_key[:200].decode(errors="replace"), topics.DEADLETTER.partitions),
    )


@dataclasses.dataclass
class PartitionBuffer:
    rows: dict[str, list[dict[str, Any]]] = dataclasses.field(default_factory=dict)
    messages: list[Outgoing] = dataclasses.field(default_factory=list)
    events: list[Any] = dataclasses.field(default_factory=list)
    row_count: int = 0
    opened_at: float = 0.0
    urgent: bool = False
    """Something an operator waits for is in here (a detection, an incident change): flush it now."""
    generation: int = 0
    """The partition's assignment this buffer's events came in (see `Pipeline.drop`)."""
    gathered: dict[int, list[Any]] = dataclasses.field(default_factory=dict)
    """Items an agent gathers per destination partition, to send as one message each when it flushes."""

    def add_rows(self, table: str, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.rows.setdefault(table, []).extend(rows)
            self.row_count += len(rows)


Sender = Callable[[Outgoing], Awaitable[Any]]


def ack_each(events: list[Any]) -> None:
    """Acknowledge Faust events one by one (the runtime wraps this; see `streams.runtime.GatedApp`)."""
    for event in events:
        event.ack()


class _Droppable(Protocol):
    def drop(self, partition: int) -> None: ...


Rewind = Callable[[Any, int], Awaitable[Any]]
"""Seek a topic-partition back to an offset (the runtime's consumer): its messages come again from there."""

REWIND_PATIENCE_S = 10.0
"""How long after seeking back over a hole later messages are set aside while the missing one is awaited;
past it the hole is taken as real (no message at those offsets) and the partition moves on."""


class Pipeline:
    """The buffers of one agent, by partition, and how they are flushed.

    Every agent iterates its stream without automatic acknowledgement (`consume`). What an event produces (warehouse
    rows, messages for other workers, state changes) is buffered per partition; a flush — when enough rows are waiting,
    when the oldest waited long enough (checked on every event, ticks included, so an idle partition's buffer waits at
    most one tick longer), or at once when the buffer holds something urgent (a detection, an incident change: the
    reading→incident path never waits for a batch to fill) — first lets the agent save its dirty state to its Faust
    table (inside the partition's own stream iteration, so the changelog lands in the right partition), then sends the
    messages, writes the rows (retrying through a ClickHouse outage, which pauses consumption), waits until Kafka has
    everything, and only then acknowledges the events, so their offsets can be committed. A crash anywhere before that
    re-delivers the events; idempotent rows and state make the replay harmless.

    Acknowledgements go out strictly in the order the events came, per partition, and never across a rebalance: flushes
    complete in the background and may finish out of order (one waits for a table another does not write), and a commit
    must never move past an event still waiting. A flush begun before its partition was revoked never acknowledges: the
    new owner (or this worker again) reads those events from the committed offset. Agents take each partition's events
    in offset order and once (`admit`), so a message Faust failed to hand out is read again rather than skipped. The
    runtime's consumer (`streams.runtime.GatedApp`) commits only over what pipelines acknowledged, from the committed
    offset on.
    """

    def __init__(
        self,
        name: str,
        sink: RowSink | GroupedSink,
        send: Sender,
        flush_producer: Callable[[], Awaitable[Any]],
        *,
        batch_rows: int,
        flush_s: float,
        max_inflight: int = 4,
        clock: Callable[[], float] = time.monotonic,
        topics: frozenset[str] = frozenset(),
        acknowledge: Callable[[list[Any]], None] = ack_each,
        rewind: Rewind | None = None,
        flush_when_idle: bool = False,
    ) -> None:
        self.name = name
        self.flush_when_idle = flush_when_idle
        """Flush a due buffer on a timer too, not only when its partition's next event comes: for agents without
        per-partition state on topics that get no ticks (a last dossier or letter must not wait for the next)."""
        self._handling: PartitionBuffer | None = None
        """The buffer an event is being handled into (the idle flush leaves it alone until the handler is done)."""
        self._flushing = asyncio.Lock()
        """One flush hands its messages over and takes its place in the partition's order at a time."""
        self.topics = topics
        """The topics this pipeline's agent reads: a revocation of another topic's partition leaves it be."""
        self._sink = sink
        self._send = send
        self._flush_producer = flush_producer
        self._batch_rows = batch_rows
        self._flush_s = flush_s
        self._clock = clock
        self._acknowledge = acknowledge
        self._rewind = rewind
        self._next: dict[tuple[str, int], int] = {}
        """Per topic-partition, the offset of the next event this generation has not handed to the agent."""
        self._rewound: dict[tuple[str, int], tuple[int, float]] = {}
        """Holes sought back over: the offset awaited and until when."""
        self._buffers: dict[int, PartitionBuffer] = {}
        self._inflight: set[asyncio.Future[None]] = set()
        self._tail: dict[int, asyncio.Future[None]] = {}
        """Each partition's latest flush: the next one acknowledges only after it."""
        self._generation: dict[int, int] = {}
        """Bumped when a partition is revoked: flushes of an older generation do not acknowledge."""
        self._max_inflight = max_inflight
        self._stores: list[_Droppable] = []
        self.flushed_events = 0
        self.undecodable_events = 0

    def keeps(self, store: _Droppable) -> None:
        """A per-partition state cache (its `drop(partition)`) to forget with the partition's buffer."""
        self._stores.append(store)

    def buffer(self, partition: int) -> PartitionBuffer:
        buffer = self._buffers.get(partition)
        if buffer is None:
            buffer = self._buffers[partition] = PartitionBuffer(
                opened_at=self._clock(), generation=self._generation.get(partition, 0)
            )
        elif not buffer.events:
            buffer.opened_at = self._clock()
        return buffer

    async def admit(self, event: Any) -> bool:
        """Whether the agent should handle `event` now: each partition's events in offset order, each once.

        Faust hands out some messages twice after a rebalance (it reads from where the client was, then
        seeks to the committed offset) and can lose some on the way: messages fetched while their
        partition is paused for recovery are dropped, and the client has moved past them. An event already
        handed out in this assignment is set aside (its first copy is acknowledged when stored); an event
        after a hole makes the consumer seek back to the hole, and later events are set aside until the
        missing one comes. So state is applied in order and the commit (which stops at a hole) moves on.
        """
        message = event.message
        key = (message.topic, message.partition)
        offset = message.offset
        expected = self._next.get(key)
        if expected is None or offset == expected:
            self._next[key] = offset + 1
            self._rewound.pop(key, None)
            return True
        if offset < expected:
            return False
        awaited = self._rewound.get(key)
        if awaited is None or awaited[0] != expected:
            log.warning(
                "%s: %s[%d] jumped from offset %d to %d; reading again from %d",
                self.name,
                message.topic,
                message.partition,
                expected,
                offset,
                expected,
            )
            self._rewound[key] = (expected, self._clock() + REWIND_PATIENCE_S)
            if self._rewind is not None:
                await self._rewind(message.tp, expected)
            return False
        if self._clock() < awaited[1]:
            return False
        log.error("%s: %s[%d] has no message at offsets %d..%d; going on", self.name, *key, expected, offset - 1)
        self._next[key] = offset + 1
        del self._rewound[key]
        return True

    async def consume(
        self,
        stream: Any,
        decode: Callable[[Any], V],
        handle: Callable[[int, PartitionBuffer, V], Awaitable[None]],
        prepare: Callable[[int, PartitionBuffer], None],
    ) -> None:
        """Run an agent over its Faust stream: admit → buffer → decode → handle → flush when due.

        Only what is the agent's own comes in: `decode` turns an event into its value, `handle` does the
        per-event work into the partition's buffer, and `prepare` readies a due buffer for its flush (saves
        the dirty state, adds the rows and messages gathered since the last one). A record `decode` cannot
        read (forged or corrupt bytes) is dead-lettered with the buffer's flush and acknowledged with it: the
        agent moves on instead of stopping the worker on it again at every restart.
        """
        idle = asyncio.ensure_future(self._flush_idle(prepare)) if self.flush_when_idle else None
        try:
            await self._consume(stream, decode, handle, prepare)
        finally:
            if idle is not None:
                idle.cancel()

    async def _flush_idle(self, prepare: Callable[[int, PartitionBuffer], None]) -> None:
        """Flush due buffers every half `flush_s` whatever arrives (`flush_when_idle` pipelines only).

        A flush that fails here stops the worker, as a failing agent does (streams.agents.common.fail_fast): its
        events were taken from their buffer unacknowledged, and only a restart from the committed offsets brings
        them back."""
        try:
            while True:
                await asyncio.sleep(max(self._flush_s / 2, 0.05))
                for partition, buffer in list(self._buffers.items()):
                    if buffer is not self._handling and self.holds(partition, buffer) and self.due(partition):
                        prepare(partition, buffer)
                        await self.flush(partition)
        except Exception:
            log.critical("%s: an idle flush failed; stopping the worker", self.name, exc_info=True)
            logging.shutdown()
            os._exit(70)

    async def _consume(
        self,
        stream: Any,
        decode: Callable[[Any], V],
        handle: Callable[[int, PartitionBuffer, V], Awaitable[None]],
        prepare: Callable[[int, PartitionBuffer], None],
    ) -> None:
        async for event in stream.noack().events():
            if not await self.admit(event):
                continue
            partition = event.message.partition
            buffer = self.buffer(partition)
            buffer.events.append(event)
            self._handling = buffer
            try:
                value = decode(event)
            except Exception as exc:  # noqa: BLE001 - whatever the bytes, they must not stop the worker
                message = event.message
                log.warning(
                    "%s: %s[%d]@%d cannot be decoded (%s); dead-lettered",
                    self.name,
                    message.topic,
                    partition,
                    message.offset,
                    type(exc).__name__,
                )
                buffer.messages.append(undecodable(event, exc))
                self.undecodable_events += 1
            else:
                await handle(partition, buffer, value)
            self._handling = None
            if not self.holds(partition, buffer):
                continue  # revoked while `handle` yielded: the event comes again to the partition's owner
            if self.due(partition):
                prepare(partition, buffer)
                await self.flush(partition)

    def sought(self, offsets: dict[tuple[str, int], int | None]) -> None:
        """The consumer went back to these committed offsets (after a rebalance's recovery): expect them next.

        Faust hands out messages from where the client was before it seeks; one dropped there would
        otherwise open the assignment with a hole nobody sees. Events already handled come again and are
        handled again (rows and state changes are idempotent). A partition the group never committed comes
        with where the group starts reading it (`streams.runtime.GatedApp`), not None: what the client had
        fetched before a rebalance must not open it either, or the events a revoked buffer held are skipped.
        """
        for key, offset in offsets.items():
            if self.topics and key[0] not in self.topics:
                continue
            self._rewound.pop(key, None)
            if offset is None:
                self._next.pop(key, None)
            else:
                self._next[key] = offset

    def holds(self, partition: int, buffer: PartitionBuffer) -> bool:
        """`buffer` is still the partition's open buffer (not dropped by a revocation meanwhile)."""
        return self._buffers.get(partition) is buffer

    def due(self, partition: int) -> bool:
        buffer = self._buffers.get(partition)
        if buffer is None or not buffer.events:
            return False
        return (
            buffer.urgent or buffer.row_count >= self._batch_rows or self._clock() - buffer.opened_at >= self._flush_s
        )

    async def flush(self, partition: int) -> None:
        """Hand this partition's buffer over: messages are queued now, in order; rows and acks follow.

        Messages go to the producer here, so detections keep their order across flushes (an `open` is never
        overtaken by its `clear`). Writing the rows, waiting for Kafka and acknowledging run in the
        background while the agent goes on reading — at most `max_inflight` flushes at a time, so a
        ClickHouse outage still stops consumption once they are all waiting.
        """
        async with self._flushing:  # the agent's own flush and the idle timer's never interleave
            buffer = self._buffers.pop(partition, None)
            if buffer is None or not buffer.events:
                return
            for message in buffer.messages:
                await self._send(message)
            while len(self._inflight) >= self._max_inflight:
                await asyncio.wait(self._inflight, return_when=asyncio.FIRST_COMPLETED)
            current = buffer.generation == self._generation.get(partition, 0)
            previous = self._tail.get(partition) if current else None
            task = asyncio.ensure_future(self._complete(partition, buffer, previous))
            if current:
                self._tail[partition] = task
            self._inflight.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            # Its events stay unacknowledged, so a restart delivers them again; say why loudly.
            log.error("%s: a flush failed: %r", self.name, task.exception())

    async def _complete(self, partition: int, buffer: PartitionBuffer, previous: asyncio.Future[None] | None) -> None:
        # Each table's rows travel in their own group (GroupedSink lanes): write them side by side.
        await asyncio.gather(*(self._sink.write(table, rows) for table, rows in buffer.rows.items()))
        # Changelog records (table writes) and the messages queued above must be in Kafka before the
        # offsets that caused them can be committed.
        await self._flush_producer()
        if previous is not None:
            # In order: an earlier flush that failed leaves these events unacknowledged too.
            try:
                await previous
            except Exception as exc:
                raise RuntimeError(f"an earlier flush of partition {partition} failed") from exc
        if buffer.generation != self._generation.get(partition, 0):
            log.info(
                "%s[%d]: revoked while flushing; %d events left to be delivered again",
                self.name,
                partition,
                len(buffer.events),
            )
            return
        if self._tail.get(partition) is asyncio.current_task():
            del self._tail[partition]
        self._acknowledge(buffer.events)
        self.flushed_events += len(buffer.events)
        log.debug(
            "%s[%d]: stored %d rows, sent %d messages, acknowledged %d events",
            self.name,
            partition,
            buffer.row_count,
            len(buffer.messages),
            len(buffer.events),
        )

    async def drain(self) -> None:
        """Wait for every flush in progress (tests, shutdown)."""
        while self._inflight:
            await asyncio.wait(set(self._inflight))

    def drop(self, partitions: set[int]) -> None:
        """Forget buffers of partitions this worker no longer owns (their events will be re-delivered).

        Flushes of these partitions still in progress finish writing (idempotent rows) but do not
        acknowledge: acknowledged after the rebalance, they could let a commit skip the events dropped here.
        The state caches kept with this pipeline forget the partition too.
        """
        for key in [k for k in self._next if k[1] in partitions]:
            # The next assignment starts wherever the committed offset is.
            self._next.pop(key, None)
            self._rewound.pop(key, None)
        for partition in partitions:
            self._buffers.pop(partition, None)
            self._tail.pop(partition, None)
            self._generation[partition] = self._generation.get(partition, 0) + 1
            # States changed by the dropped events but not saved: read them from the table again, so the
            # events, when they come back, are applied (and send their messages) once more.
            for store in self._stores:
                store.drop(partition)

    def revoked(self, revoked: set[Any]) -> None:
        """Drop the partitions of this pipeline's topics among the revoked topic-partitions."""
        self.drop({tp.partition for tp in revoked if not self.topics or tp.topic in self.topics})
