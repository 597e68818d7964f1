"""The runtime's consumer takes acknowledgements for the pipelines' topics from the pipelines alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from faust.transport.drivers import aiokafka as aiokafka_driver
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from ioc.settings import StreamsSettings
from streams.runtime import GatedApp


@pytest.fixture
def app() -> Iterator[GatedApp]:
    # The consumer is built, never started: no broker is contacted. It takes the current event loop and
    # makes one for its thread: both are closed after.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    app = GatedApp("test-gate", broker="kafka://127.0.0.1:1")
    app.gated_topics = frozenset({"piped"})
    conductor: Any = app.topics
    conductor._acking_topics.update({"piped", "other"})
    consumer: Any = app.consumer
    yield app
    consumer._thread.thread_loop.close()
    asyncio.set_event_loop(None)
    loop.close()


def _message(topic: str, offset: int) -> ConsumerMessage:
    return ConsumerMessage(topic, 0, offset, 0.0, 0, None, b"k", b"v", None, tp=TP(topic, 0))


class _Event:
    def __init__(self, app: GatedApp, message: ConsumerMessage) -> None:
        self.app, self.message = app, message

    def ack(self) -> bool:
        return self.message.ack(self.app.consumer)


def _acked(app: GatedApp, topic: str) -> list[int]:
    acked: Any = app.consumer._acked  # type: ignore[attr-defined]
    return list(acked[TP(topic, 0)])


def test_faust_acknowledging_a_skipped_event_of_a_pipeline_topic_is_refused(app: GatedApp) -> None:
    # Faust acks an event its stream skips (fetched before a rebalance, taken while the flow is stopped):
    # accepted, the next commit would pass it although no agent stored it.
    assert _Event(app, _message("piped", 5)).ack() is False
    assert _acked(app, "piped") == []
    assert app.refused_acks == 1


def test_a_pipeline_acknowledges_what_it_stored(app: GatedApp) -> None:
    app.acknowledge([_Event(app, _message("piped", 5)), _Event(app, _message("piped", 6))])
    assert _acked(app, "piped") == [5, 6]
    assert app.refused_acks == 0
    # The gate closes again behind it.
    _Event(app, _message("piped", 7)).ack()
    assert _acked(app, "piped") == [5, 6]


def test_topics_no_pipeline_reads_are_acknowledged_as_faust_does(app: GatedApp) -> None:
    assert _Event(app, _message("other", 3)).ack() is True
    assert _acked(app, "other") == [3]


def _offsets(app: GatedApp, topic: str, acked: list[int], committed: int | None) -> int | None:
    consumer: Any = app.consumer
    tp = TP(topic, 0)
    consumer._acked[tp] = list(acked)
    consumer._acked_index[tp] = set(acked)
    consumer._committed_offset[tp] = committed
    offset: int | None = consumer._new_offset(tp)
    return offset


def test_a_commit_moves_only_over_a_run_that_starts_at_the_committed_offset(app: GatedApp) -> None:
    assert _offsets(app, "piped", [5, 6, 7], 5) == 8
    # Faust would commit 8 here (a one-offset hole at the head passes) and lose the event at 4.
    assert _offsets(app, "piped", [5, 6, 7], 4) is None
    assert _offsets(app, "piped", [9, 10, 12], 4) is None
    # Re-read events acknowledged again below the committed offset are dropped, not a hole.
    assert _offsets(app, "piped", [2, 3, 4, 5, 7], 4) == 6
    consumer: Any = app.consumer
    assert consumer._acked[TP("piped", 0)] == [7]
    assert consumer._acked_index[TP("piped", 0)] == {7}
    # No commit yet for the partition and no known start: nothing (Faust would commit 5 and pass 0..2).
    assert _offsets(app, "piped", [3, 4, 6], None) is None


def test_topics_no_pipeline_reads_commit_as_faust_does(app: GatedApp) -> None:
    assert _offsets(app, "other", [5, 6, 7], 4) == 8


def test_every_message_of_a_pipeline_topic_is_handed_out_whatever_was_read_before(app: GatedApp) -> None:
    # Faust drops a message below the highest offset it handed out; a re-read after a seek was lost so.
    consumer: Any = app.consumer
    consumer._read_offset[TP("piped", 0)] = 40
    consumer._read_offset[TP("other", 0)] = 40
    assert consumer._read_offset[TP("piped", 0)] is None
    assert consumer._read_offset[TP("other", 0)] == 40


def test_listeners_learn_the_committed_offsets_the_consumer_sought(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def faust_seek(consumer: Any) -> None:  # stands in for Faust's (it asks the broker)
        consumer._committed_offset[TP("piped", 0)] = 12
        consumer._committed_offset[TP("other", 0)] = 3

    monkeypatch.setattr(aiokafka_driver.Consumer, "perform_seek", faust_seek)
    app = GatedApp("test-seek", broker="kafka://127.0.0.1:1")
    app.gated_topics = frozenset({"piped"})
    heard: list[dict[tuple[str, int], int | None]] = []
    app.seek_listeners.append(heard.append)
    consumer: Any = app.consumer
    consumer.assignment = lambda: {TP("piped", 0), TP("other", 0)}
    try:
        loop.run_until_complete(consumer.perform_seek())
        assert heard == [{("piped", 0): 12}]
    finally:
        consumer._thread.thread_loop.close()
        asyncio.set_event_loop(None)
        loop.close()


def test_a_partition_the_group_never_committed_is_anchored_where_the_group_starts_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before its first commit a partition has no committed offset to start the commit's run from: a worker
    # that kept it across a rebalance committed from the first event it was handed then (a later one, fetched
    # before), passing the events its dropped buffer held. The seek now tells where the group starts it (the
    # log's start with auto_offset_reset=earliest) and the commit waits for a run from there.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    async def faust_seek(consumer: Any) -> None:  # stands in for Faust's: "piped" 1 has a committed offset
        consumer._committed_offset[TP("piped", 1)] = 12

    async def earliest(consumer: Any, *partitions: TP) -> dict[TP, int]:  # stands in for the broker's answer
        asked.append(set(partitions))
        return {tp: 4 for tp in partitions}

    asked: list[set[TP]] = []
    monkeypatch.setattr(aiokafka_driver.Consumer, "perform_seek", faust_seek)
    monkeypatch.setattr(aiokafka_driver.Consumer, "earliest_offsets", earliest)
    app = GatedApp("test-start", broker="kafka://127.0.0.1:1")
    app.gated_topics = frozenset({"piped"})
    heard: list[dict[tuple[str, int], int | None]] = []
    app.seek_listeners.append(heard.append)
    consumer: Any = app.consumer
    consumer.assignment = lambda: {TP("piped", 0), TP("piped", 1), TP("other", 0)}
    try:
        loop.run_until_complete(consumer.perform_seek())
        assert asked == [{TP("piped", 0)}]
        assert heard == [{("piped", 0): 4, ("piped", 1): 12}]
        tp = TP("piped", 0)
        consumer._acked[tp], consumer._acked_index[tp] = [7, 8, 9], {7, 8, 9}
        assert consumer._new_offset(tp) is None  # 4..6 not stored yet
        consumer._acked[tp].extend([4, 5, 6])
        consumer._acked_index[tp].update({4, 5, 6})
        assert consumer._new_offset(tp) == 10
    finally:
        consumer._thread.thread_loop.close()
        asyncio.set_event_loop(None)
        loop.close()


def test_the_kafka_client_fetches_what_the_settings_say(app: GatedApp) -> None:
    # Faust hands its client 1 byte and 1.5 s, which under load is a fetch per handful of records; the worker's
    # settings replace both (measured in docs/performance.md: the one-reading limit went from 5,000 to 12,000 msg/s).
    app.fetch_min_bytes, app.fetch_max_wait_ms = 65536, 50
    consumer: Any = app.consumer

    async def asked() -> tuple[int, int]:  # built, never started: no broker is contacted
        client = consumer._thread._create_worker_consumer(consumer.transport)
        await client.stop()
        return client._fetch_min_bytes, client._fetch_max_wait_ms

    assert asyncio.get_event_loop().run_until_complete(asked()) == (65536, 50)


def test_the_fetch_settings_default_to_full_fetches_and_a_short_wait() -> None:
    settings = StreamsSettings()
    assert settings.fetch_min_bytes >= 16384
    assert settings.fetch_max_wait_ms <= 100  # each hop of a quiet reading → incident path may wait this long
