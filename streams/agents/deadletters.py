"""Dead letters: store what the edge refused, with its reason, for the Data quality page."""

from __future__ import annotations

import logging
from typing import Any

from ioc import codecs, topics
from streams.agents.common import fail_fast
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["register"]

log = logging.getLogger(__name__)


def register(rt: Runtime) -> None:
    @rt.app.agent(rt.topic(topics.DEADLETTER.name), name="streams.deadletters")
    @fail_fast
    async def deadletters(stream: Any) -> None:
        async for events in stream.take_events(2000, within=rt.settings.sink_flush_s):
            letters = []
            for event in events:
                try:
                    letters.append(rows.deadletter_row(topics.DEADLETTER.decode(event.value), event.value))
                except (codecs.ContractError, ValueError) as exc:
                    log.error("unreadable dead letter at offset %s: %s", event.message.offset, exc)
            await rt.sink.write("deadletters", letters)
