"""Grouping accepted observations into one Kafka message per (topic, partition), in arrival order.

Pure: the bridge adds items and asks which batches are due (full, or older than the linger time). Each
batch remembers the MQTT message ids it carries, so they are acknowledged only once Kafka has the batch.
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


class Batcher(Generic[T]):
    """Collects items per (topic, partition); a batch is due at `max_items` or after `linger_s`."""

    def __init__(self, *, max_items: int, linger_s: float) -> None:
        if max_items < 1 or linger_s < 0:
            raise ValueError("max_items must be ≥ 1 and linger_s ≥ 0")
        self._max_items = max_items
        self._linger_s = linger_s
        self._open: dict[tuple[str, int], Batch[T]] = {}

    def add(self, topic: str, partition: int, item: T, ack: int | None, now: float) -> Batch[T] | None:
        """Add an item; returns the batch if this filled it (it is then closed)."""
        key = (topic, partition)
        batch = self._open.get(key)
        if batch is None:
            batch = self._open[key] = Batch(topic, partition, now)
        batch.items.append(item)
        if ack is not None:
            batch.acks.append(ack)
        if len(batch.items) >= self._max_items:
            return self._open.pop(key)
        return None

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
