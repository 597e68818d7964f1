"""Helpers the agents share: routing detections to the incident partition that owns their episode."""

from __future__ import annotations

from collections.abc import Iterable

from ioc import codecs, topics
from ioc.events import Detection
from streams.pipeline import Outgoing
from streams.runtime import SIGNALS

__all__ = ["detection_messages"]


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
