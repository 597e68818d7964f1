"""Grouping accepted observations into one Kafka message per (topic, partition), in arrival order.

Pure: the bridge adds items and asks which batches are due (full by count or by bytes, or older than the
linger time). Each batch remembers the MQTT message ids it carries, so they are acknowledged only once
Kafka has the batch.
"""

from __future__ import annotations

import dataclasses
from typing import Generic, TypeVar

__all__ = ["Batch", "Batcher"]

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class Batch(Generic[T]):
    topic: str
    partition: int
    opened_at: float
    items: list[T] = dataclasses.field(default_factory=list)
    acks: list[int] = dataclasses.field(default_factory=list)
    size: int = 0  # bytes of the items' source payloads: an estimate of the Kafka message's size
    attempts: int = 0  # times Kafka refused it (the bridge retries, splits or dead-letters)


class Batcher(Generic[T]):
    """Collects items per (topic, partition); a batch is due at `max_items`, before it would pass `max_bytes`,
    or after `linger_s`."""

    def __init__(self, *, max_items: int, linger_s: float, max_bytes: int = 512 * 1024) -> None:
        if max_items < 1 or linger_s < 0 or max_bytes < 1:
            raise ValueError("max_items must be ≥ 1, linger_s ≥ 0 and max_bytes ≥ 1")
        self._max_items = max_items
        self._linger_s = linger_s
        self._max_bytes = max_bytes
        self._open: dict[tuple[str, int], Batch[T]] = {}

    def add(self, topic: str, partition: int, item: T, ack: int | None, now: float, *, size: int = 0) -> list[Batch[T]]:
        """Add an item of `size` bytes; returns the batches this closed, oldest first (usually none).

        A batch that this item would push past `max_bytes` is closed first and the item opens the next one.
        """
        key = (topic, partition)
        closed: list[Batch[T]] = []
        batch = self._open.get(key)
        if batch is not None and batch.items and batch.size + size > self._max_bytes:
            closed.append(self._open.pop(key))
            batch = None
        if batch is None:
            batch = self._open[key] = Batch(topic, partition, now)
        batch.items.append(item)
        batch.size += size
        if ack is not None:
            batch.acks.append(ack)
        if len(batch.items) >= self._max_items or batch.size >= self._max_bytes:
            closed.append(self._open.pop(key))
        return closed

    def due(self, now: float) -> list[Batch[T]]:
        """Close and return every batch older than the linger time."""
        ready = [key for key, batch in self._open.items() if now - batch.opened_at >= self._linger_s]
        return [self._open.pop(key) for key in ready]

    def drain(self) -> list[Batch[T]]:
        """Close and return every open batch (shutdown)."""
        batches = list(self._open.values())
        self._open.clear()
        return batches

    @property
    def pending_items(self) -> int:
        return sum(len(b.items) for b in self._open.values())
