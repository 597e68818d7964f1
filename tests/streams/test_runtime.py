"""The runtime's consumer takes acknowledgements for the pipelines' topics from the pipelines alone."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from faust.types import TP
from faust.types.tuples import ConsumerMessage

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
