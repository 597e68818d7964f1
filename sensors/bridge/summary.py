"""Summarising a flood of refusals: per (vendor, device, reason) and interval, the first refusal is
dead-lettered with its bytes and the rest are only counted, then reported in one summary letter.

Pure and clock-injected (`now` in seconds from any monotonic clock). At most `max_keys` counters are held;
beyond that the least recently opened one is summarised early, so memory stays bounded whatever a flood
invents. A summary is lost if the bridge dies before it is sent: what it loses is a count, never a reading.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict

__all__ = ["Summariser", "Summary"]


@dataclasses.dataclass(slots=True)
class Summary:
    """Refusals of one key counted but not stored one by one; `sample` is the last one's detail."""

    key: tuple[str, str, str]  # (vendor or MQTT topic, device or "", reason)
    opened_at: float
    count: int = 0
    sample: str = ""
    topic: str = ""  # where the last one came from (its MQTT topic names the unit)


class Summariser:
    """`admit(key, now, detail)` is true when this refusal is to be dead-lettered in full."""

    def __init__(self, interval_s: float, *, max_keys: int = 10_000) -> None:
        if interval_s <= 0 or max_keys < 1:
            raise ValueError(f"interval_s must be > 0 and max_keys ≥ 1, got {interval_s}, {max_keys}")
        self._interval_s = interval_s
        self._max_keys = max_keys
        self._open: OrderedDict[tuple[str, str, str], Summary] = OrderedDict()
        self._evicted: list[Summary] = []

    def admit(self, key: tuple[str, str, str], now: float, detail: str, topic: str = "") -> bool:
        summary = self._open.get(key)
        if summary is not None and now - summary.opened_at < self._interval_s:
            summary.count += 1
            summary.sample = detail
            summary.topic = topic
            return False
        if summary is not None:  # its interval is over: report it, and this refusal opens the next
            self._evicted.append(self._open.pop(key))
        elif len(self._open) >= self._max_keys:
            self._evicted.append(self._open.popitem(last=False)[1])
        self._open[key] = Summary(key, now)
        return True

    def due(self, now: float) -> list[Summary]:
        """Summaries whose interval is over (or that were pushed out), with a count to report."""
        while self._open:
            first = next(iter(self._open.values()))
            if now - first.opened_at < self._interval_s:
                break
            self._evicted.append(self._open.popitem(last=False)[1])
        ready, self._evicted = [s for s in self._evicted if s.count], []
        return ready

    def drain(self) -> list[Summary]:
        ready = [s for s in [*self._evicted, *self._open.values()] if s.count]
        self._evicted, self._open = [], OrderedDict()
        return ready

    def __len__(self) -> int:
        return len(self._open)
