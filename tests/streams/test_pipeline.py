"""Per-partition buffers: when a flush is due, and that events are acknowledged only after their rows."""

from __future__ import annotations

import asyncio
from typing import Any

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
