"""Dead letters: store what the edge refused, with its reason, for the Data quality page.

A record on the dead-letter topic that is not a dead letter is itself dead-lettered (`undecodable`).
"""

from __future__ import annotations

from typing import Any

from ioc import topics
from streams.agents.common import dead_letter_undecodable, fail_fast
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["register"]


def register(rt: Runtime) -> None:
    @rt.app.agent(rt.topic(topics.DEADLETTER.name), name="streams.deadletters")
    @fail_fast
    async def deadletters(stream: Any) -> None:
        async for events in stream.take_events(2000, within=rt.settings.sink_flush_s):
            letters, refused = [], 0
            for event in events:
                try:
                    letters.append(rows.deadletter_row(topics.DEADLETTER.decode(event.value), event.value))
                except Exception as exc:  # noqa: BLE001 - whatever the bytes, they must not stop the worker
                    # Its own letter comes back on this topic, readable this time: stored, never looped.
                    await dead_letter_undecodable(rt, "streams.deadletters", event, exc)
                    refused += 1
            await rt.sink.write("deadletters", letters)
            if refused:
                await rt.app.producer.flush()  # the letters are in Kafka before the batch is acknowledged
