"""Per-partition buffers: when a flush is due, and that events are acknowledged only after their rows."""

from __future__ import annotations

import asyncio
from typing import Any

from ioc import codecs, topics
from ioc.events import DeadLetter, DeadLetterReason
from streams.pipeline import GroupedSink, Outgoing, Pipeline


class _Event:
    def __init__(self, log: list[str], name: str) -> None:
        self._log, self.name = log, name

    def ack(self) -> None:
        self._log.append(f"ack {self.name}")


class _Sink:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        await asyncio.sleep(0)
        self.log.append(f"write {table} {len(rows)}")


def _pipeline(log: list[str], now: list[float], sink: Any = None) -> Pipeline:
    async def send(message: Outgoing) -> None:
        log.append(f"send {message.key.decode()}")

    async def flush_producer() -> None:
        log.append("producer flushed")

    return Pipeline("t", sink or _Sink(log), send, flush_producer, batch_rows=3, flush_s=0.5, clock=lambda: now[0])


def test_due_on_rows_on_age_and_at_once_when_urgent() -> None:
    log: list[str] = []
    now = [100.0]
    pipeline = _pipeline(log, now)
    assert not pipeline.due(0)  # nothing buffered
    buffer = pipeline.buffer(0)
    buffer.events.append(_Event(log, "e1"))
    buffer.add_rows("readings", [{"a": 1}, {"a": 2}])
    assert not pipeline.due(0)
    now[0] += 0.49
    assert not pipeline.due(0)
    now[0] += 0.02
    assert pipeline.due(0)  # the oldest waited flush_s

    other = pipeline.buffer(1)
    other.events.append(_Event(log, "e2"))
    other.add_rows("readings", [{"a": 1}] * 3)
    assert pipeline.due(1)  # batch_rows reached

    third = pipeline.buffer(2)
    third.events.append(_Event(log, "e3"))
    assert not pipeline.due(2)
    third.urgent = True  # a detection: the reading→incident path does not wait for a batch
    assert pipeline.due(2)


def test_flush_sends_then_stores_then_acknowledges_and_starts_a_fresh_buffer() -> None:
    log: list[str] = []
    now = [0.0]

    async def scenario() -> None:
        pipeline = _pipeline(log, now, GroupedSink(_Sink(log), delay_s=0.001))
        buffer = pipeline.buffer(0)
        buffer.events.extend([_Event(log, "e1"), _Event(log, "e2")])
        buffer.add_rows("incidents", [{"id": 1}])
        buffer.messages.append(Outgoing("topic", b"m1", b"{}", 0))
        buffer.urgent = True
        await pipeline.flush(0)
        assert log == ["send m1"]  # messages leave in order at once; the rest completes in the background
        await pipeline.drain()
        assert not pipeline.buffer(0).urgent
        assert pipeline.flushed_events == 2

    asyncio.run(scenario())
    assert log == ["send m1", "write incidents 1", "producer flushed", "ack e1", "ack e2"]


def test_a_failed_write_leaves_events_unacknowledged() -> None:
    log: list[str] = []

    class Broken:
        async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
            raise RuntimeError("ClickHouse is away")

    async def scenario() -> None:
        pipeline = _pipeline(log, [0.0], Broken())
        buffer = pipeline.buffer(0)
        buffer.events.append(_Event(log, "e1"))
        buffer.add_rows("readings", [{"a": 1}])
        await pipeline.flush(0)
        await pipeline.drain()
        assert pipeline.flushed_events == 0

    asyncio.run(scenario())
    assert not [line for line in log if line.startswith("ack")]


class _GatedSink:
    """Writes to a table named in `gates` wait until the test opens that gate."""

    def __init__(self, log: list[str], gates: dict[str, asyncio.Event]) -> None:
        self.log, self.gates = log, gates

    async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
        if table in self.gates:
            await self.gates[table].wait()
        self.log.append(f"write {table}")


def _flushes(log: list[str], pipeline: Pipeline, partition: int, *specs: tuple[str, str]) -> None:
    for event, table in specs:
        buffer = pipeline.buffer(partition)
        buffer.events.append(_Event(log, event))
        buffer.add_rows(table, [{"a": 1}])


def test_a_partition_is_acknowledged_in_order_even_when_a_later_flush_finishes_first() -> None:
    # Faust commits up to the first gap in what was acknowledged — and (faust-streaming 0.15) misses a gap
    # of one at the head, or any gap before a partition's first commit. Acknowledging a later flush first
    # could therefore commit past events whose rows were never stored.
    log: list[str] = []

    async def scenario() -> None:
        slow = asyncio.Event()
        pipeline = _pipeline(log, [0.0], _GatedSink(log, {"aqi_hourly": slow}))
        _flushes(log, pipeline, 0, ("e1", "aqi_hourly"))
        await pipeline.flush(0)
        _flushes(log, pipeline, 0, ("e2", "readings"))
        await pipeline.flush(0)
        _flushes(log, pipeline, 1, ("other", "readings"))  # another partition does not wait
        await pipeline.flush(1)
        for _ in range(20):
            await asyncio.sleep(0)
        assert "write readings" in log and "ack other" in log
        assert "ack e2" not in log  # stored, but e1 before it is not yet
        slow.set()
        await pipeline.drain()

    asyncio.run(scenario())
    acks = [line for line in log if line.startswith("ack e")]
    assert acks == ["ack e1", "ack e2"]
    assert log.index("write aqi_hourly") < log.index("ack e1")


def test_a_flush_after_a_failed_one_of_the_same_partition_does_not_acknowledge() -> None:
    log: list[str] = []

    class FailsOnce:
        calls = 0

        async def write(self, table: str, rows: list[dict[str, Any]]) -> None:
            FailsOnce.calls += 1
            if FailsOnce.calls == 1:
                raise RuntimeError("refused")
            log.append(f"write {table}")

    async def scenario() -> None:
        pipeline = _pipeline(log, [0.0], FailsOnce())
        _flushes(log, pipeline, 0, ("e1", "readings"))
        await pipeline.flush(0)
        _flushes(log, pipeline, 0, ("e2", "readings"))
        await pipeline.flush(0)
        await pipeline.drain()

    asyncio.run(scenario())
    assert "write readings" in log  # e2's rows were stored (idempotent), but a commit must not pass e1
    assert not [line for line in log if line.startswith("ack")]


def test_a_flush_of_a_revoked_partition_stores_but_does_not_acknowledge() -> None:
    log: list[str] = []

    class TP:
        def __init__(self, topic: str, partition: int) -> None:
            self.topic, self.partition = topic, partition

    async def scenario() -> None:
        gate = asyncio.Event()
        sink = _GatedSink(log, {"readings": gate})
        pipeline = Pipeline(
            "t", sink, _noop_send, _noop, batch_rows=3, flush_s=0.5, topics=frozenset({"ioc.readings.v1"})
        )
        _flushes(log, pipeline, 0, ("old", "readings"))
        await pipeline.flush(0)
        _flushes(log, pipeline, 0, ("buffered", "readings"))
        pipeline.revoked({TP("ioc.aggregates.v1", 0)})  # another topic's partition: nothing happens here
        assert pipeline.buffer(0).events
        pipeline.revoked({TP("ioc.readings.v1", 0)})  # this one: the buffer goes, the flush will not ack
        assert not pipeline.buffer(0).events
        _flushes(log, pipeline, 0, ("new", "incidents"))  # delivered again after the rebalance
        await pipeline.flush(0)
        gate.set()
        await pipeline.drain()

    asyncio.run(scenario())
    assert log.count("write readings") == 1
    assert [line for line in log if line.startswith("ack")] == ["ack new"]


async def _noop_send(message: Outgoing) -> None:
    return None


async def _noop() -> None:
    return None


def test_a_revocation_drops_the_kept_state_caches_of_that_partition_only() -> None:
    dropped: list[int] = []

    class Store:
        def drop(self, partition: int) -> None:
            dropped.append(partition)

    class TP:
        def __init__(self, topic: str, partition: int) -> None:
            self.topic, self.partition = topic, partition

    pipeline = Pipeline("t", _Sink([]), _noop_send, _noop, batch_rows=3, flush_s=0.5, topics=frozenset({"a"}))
    pipeline.keeps(Store())
    pipeline.revoked({TP("a", 2), TP("b", 3)})
    assert dropped == [2]


def test_an_agent_can_tell_its_buffer_was_dropped_while_it_yielded() -> None:
    # The readings agent yields to the loop inside a large batch; a revocation meanwhile drops the buffer it
    # is filling, and it must then leave the event for the partition's next owner.
    pipeline = Pipeline("t", _Sink([]), _noop_send, _noop, batch_rows=3, flush_s=0.5)
    buffer = pipeline.buffer(1)
    other = pipeline.buffer(2)
    assert pipeline.holds(1, buffer) and pipeline.holds(2, other)
    pipeline.drop({1})
    assert not pipeline.holds(1, buffer)
    assert pipeline.holds(2, other)
    fresh = pipeline.buffer(1)
    assert fresh is not buffer and pipeline.holds(1, fresh)


class _Message:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self.topic, self.partition, self.offset = topic, partition, offset
        self.tp = (topic, partition)


class _Delivered:
    def __init__(self, offset: int, partition: int = 0, topic: str = "a") -> None:
        self.message = _Message(topic, partition, offset)


def test_events_are_admitted_in_offset_order_once_and_a_hole_is_read_again() -> None:
    rewound: list[tuple[Any, int]] = []
    now = [0.0]

    async def rewind(tp: Any, offset: int) -> None:
        rewound.append((tp, offset))

    pipeline = Pipeline(
        "t", _Sink([]), _noop_send, _noop, batch_rows=3, flush_s=0.5, clock=lambda: now[0], rewind=rewind
    )

    def admit(offset: int, partition: int = 0) -> bool:
        return asyncio.run(pipeline.admit(_Delivered(offset, partition)))

    assert [admit(o) for o in (10, 11, 12)] == [True, True, True]
    # Handed out again (Faust seeks back after a rebalance's recovery): set aside.
    assert [admit(o) for o in (10, 11, 12, 13)] == [False, False, False, True]
    # 14 never came: seek back to it, and set later ones aside until it does.
    assert admit(15) is False
    assert rewound == [(("a", 0), 14)]
    assert [admit(o) for o in (16, 14, 15, 16)] == [False, True, True, True]
    assert rewound == [(("a", 0), 14)]
    # Partitions are followed apart.
    assert admit(3, partition=1) and admit(4, partition=1)
    # A hole that stays one (no message at those offsets) is passed once the patience is spent.
    assert admit(19) is False
    now[0] += 11
    assert admit(19) is True
    assert admit(20) is True
    # A revocation forgets the partition: the next owner's (or this worker's next) first event starts it.
    pipeline.drop({0})
    assert admit(5) is True


def test_a_seek_to_the_committed_offsets_sets_where_each_partition_goes_on() -> None:
    # Faust hands out messages from where the client was, then seeks to the committed offset: a message
    # dropped before the seek (here 7) must not be taken as handled.
    pipeline = Pipeline("t", _Sink([]), _noop_send, _noop, batch_rows=3, flush_s=0.5, topics=frozenset({"a"}))

    def admit(offset: int) -> bool:
        return asyncio.run(pipeline.admit(_Delivered(offset)))

    assert admit(8) and admit(9)
    pipeline.sought({("a", 0): 7, ("b", 0): 3})
    assert [admit(o) for o in (7, 8, 9, 10)] == [True, True, True, True]
    pipeline.sought({("a", 0): None})  # where the group starts is unknown: the next event starts it
    assert admit(2) is True


def test_a_partition_never_committed_starts_where_the_group_starts_it_not_at_what_was_fetched_before() -> None:
    # The fault run's loss: the first events of a partition (0..2) were in a buffer the rebalance dropped before
    # the group ever committed it; the worker kept the partition and was handed first what it had fetched
    # before (3). Started there, 0..2 were passed for good. With the group's start (0) it seeks back to 0.
    rewound: list[tuple[Any, int]] = []

    async def rewind(tp: Any, offset: int) -> None:
        rewound.append((tp, offset))

    pipeline = Pipeline(
        "t", _Sink([]), _noop_send, _noop, batch_rows=3, flush_s=0.5, topics=frozenset({"a"}), rewind=rewind
    )

    def admit(offset: int) -> bool:
        return asyncio.run(pipeline.admit(_Delivered(offset)))

    assert [admit(o) for o in (0, 1, 2)] == [True, True, True]
    pipeline.drop({0})
    pipeline.sought({("a", 0): 0})
    assert admit(3) is False
    assert rewound == [(("a", 0), 0)]
    assert [admit(o) for o in (0, 1, 2, 3)] == [True, True, True, True]


class _Consumed:
    """A Faust event as an agent's stream hands it out: a message, a value, an acknowledgement."""

    def __init__(self, log: list[str], offset: int, value: str, partition: int = 0) -> None:
        self.message = _Message("a", partition, offset)
        self.value = value.encode()
        self._log = log

    def ack(self) -> None:
        self._log.append(f"ack {self.message.partition}@{self.message.offset}")


class _Stream:
    def __init__(self, events: list[_Consumed]) -> None:
        self._events = events

    def noack(self) -> _Stream:
        return self

    async def events(self) -> Any:
        for event in self._events:
            yield event


def test_consume_runs_admit_decode_handle_and_flushes_each_partition_when_due() -> None:
    log: list[str] = []
    pipeline = _pipeline(log, [0.0], GroupedSink(_Sink(log), delay_s=0.001))
    events = [
        _Consumed(log, 0, "r1"),
        _Consumed(log, 0, "r1"),  # handed out twice: set aside
        _Consumed(log, 5, "r2", partition=1),
        _Consumed(log, 1, "r3"),
        _Consumed(log, 2, "r4"),  # the third row: partition 0 is due
        _Consumed(log, 6, "r5", partition=1),
    ]

    def decode(event: Any) -> str:
        return str(event.value.decode())

    async def handle(partition: int, buffer: Any, value: str) -> None:
        log.append(f"handle {partition} {value}")
        buffer.add_rows("readings", [{"v": value}])

    def prepare(partition: int, buffer: Any) -> None:
        log.append(f"prepare {partition} {len(buffer.events)}")

    async def scenario() -> None:
        await pipeline.consume(_Stream(events), decode, handle, prepare)
        await pipeline.drain()
        assert pipeline.buffer(1).row_count == 2  # partition 1 waits for more rows, or for time

    asyncio.run(scenario())
    assert log == [
        "handle 0 r1",
        "handle 1 r2",
        "handle 0 r3",
        "handle 0 r4",
        "prepare 0 3",
        "handle 1 r5",
        "write readings 3",
        "producer flushed",
        "ack 0@0",
        "ack 0@1",
        "ack 0@2",
    ]


def test_consume_leaves_an_event_whose_partition_was_revoked_while_it_was_handled() -> None:
    log: list[str] = []
    pipeline = _pipeline(log, [0.0])
    events = [_Consumed(log, 0, "r1"), _Consumed(log, 1, "r2"), _Consumed(log, 2, "r3")]

    async def handle(partition: int, buffer: Any, value: bytes) -> None:
        buffer.add_rows("readings", [{"v": 1}] * 3)  # due at once, unless revoked meanwhile
        if value == b"r2":
            pipeline.drop({partition})

    def prepare(partition: int, buffer: Any) -> None:
        log.append(f"prepare {[e.message.offset for e in buffer.events]}")

    async def scenario() -> None:
        await pipeline.consume(_Stream(events), lambda event: event.value, handle, prepare)
        await pipeline.drain()

    asyncio.run(scenario())
    # r2's buffer was dropped: no flush for it; r3 (the first event of the next assignment) goes on.
    assert [line for line in log if line.startswith("prepare")] == ["prepare [0]", "prepare [2]"]


def test_consume_dead_letters_a_record_it_cannot_decode_and_goes_on() -> None:
    log: list[str] = []
    sent: list[Outgoing] = []
    pipeline = _pipeline(log, [0.0], GroupedSink(_Sink(log), delay_s=0.001))
    pipeline._send = lambda message: _record(sent, log, message)  # type: ignore[method-assign]
    events = [
        _Consumed(log, 0, "r1"),
        _Consumed(log, 1, "\x00garbage"),
        _Consumed(log, 2, "r3"),
        _Consumed(log, 3, "r4"),
    ]

    def decode(event: Any) -> Any:
        return topics.READINGS.decode(event.value) if event.value.startswith(b"\x00") else event.value

    async def handle(partition: int, buffer: Any, value: bytes) -> None:
        log.append(f"handle {value.decode()}")
        buffer.add_rows("readings", [{"v": 1}])

    async def scenario() -> None:
        await pipeline.consume(_Stream(events), decode, handle, lambda _p, _b: None)
        await pipeline.drain()

    asyncio.run(scenario())
    assert [line for line in log if line.startswith(("handle", "ack"))] == [
        "handle r1",
        "handle r3",
        "handle r4",  # the third row: due
        "ack 0@0",
        "ack 0@1",  # the garbage is acknowledged with its flush: a restart does not read it again
        "ack 0@2",
        "ack 0@3",
    ]
    (letter_message,) = sent
    assert letter_message.topic == topics.DEADLETTER.name
    letter = codecs.decode(letter_message.value, DeadLetter)
    assert (letter.reason, letter.source, letter.payload) == (
        DeadLetterReason.UNDECODABLE,
        "kafka:a[0]@1",
        b"\x00garbage",
    )
    assert letter.detail.startswith("ContractError: ") and "Traceback" not in letter.detail
    assert pipeline.undecodable_events == 1


async def _record(sent: list[Outgoing], log: list[str], message: Outgoing) -> None:
    sent.append(message)
    log.append(f"send {message.key.decode()}")


class _StreamThenQuiet(_Stream):
    """Hands out its events, then nothing more for a while (time passes), as a topic without ticks between bursts."""

    def __init__(self, events: list[_Consumed], now: list[float]) -> None:
        super().__init__(events)
        self._now = now

    async def events(self) -> Any:
        for event in self._events:
            yield event
        self._now[0] += 1.0  # long past flush_s
        await asyncio.sleep(0.3)


def test_an_idle_flush_stores_and_acknowledges_the_last_events_without_waiting_for_the_next() -> None:
    def run(flush_when_idle: bool, *, due_while_handling: bool = False) -> list[str]:
        log: list[str] = []
        now = [0.0]

        async def send(message: Outgoing) -> None:
            log.append(f"send {message.key.decode()}")

        async def flush_producer() -> None:
            pass

        pipeline = Pipeline(
            "t",
            GroupedSink(_Sink(log), delay_s=0.001),
            send,
            flush_producer,
            batch_rows=100,
            flush_s=0.05,
            clock=lambda: now[0],
            flush_when_idle=flush_when_idle,
        )

        async def handle(_partition: int, buffer: Any, value: str) -> None:
            if value == "d2" and due_while_handling:
                now[0] += 1.0  # due while d2 is being handled: the idle timer must leave this buffer alone
                await asyncio.sleep(0.1)
            buffer.add_rows("dossiers", [{"v": value}])

        async def scenario() -> None:
            await pipeline.consume(
                _StreamThenQuiet([_Consumed(log, 0, "d1"), _Consumed(log, 1, "d2")], now),
                lambda event: event.value.decode(),
                handle,
                lambda _p, _b: None,
            )
            await pipeline.drain()

        asyncio.run(scenario())
        return log

    # Without it, the last events wait in their buffer for the partition's next event, however long that takes.
    assert run(flush_when_idle=False) == []
    # With it they are stored and acknowledged while the topic is quiet.
    assert run(flush_when_idle=True) == ["write dossiers 2", "ack 0@0", "ack 0@1"]
    # A buffer due while an event is being handled into it waits for the handler: d2's row is written before its ack.
    assert run(flush_when_idle=True, due_while_handling=True) == ["write dossiers 2", "ack 0@0", "ack 0@1"]
