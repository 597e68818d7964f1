"""Helpers the agents share: routing detections to the incident partition that owns their episode."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ioc import codecs, topics
from ioc.events import Detection
from streams.pipeline import Outgoing
from streams.runtime import SIGNALS

__all__ = ["detection_messages", "fail_fast"]


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
