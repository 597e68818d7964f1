"""Token buckets per key (a device, a vendor): one flooding source is cut off without slowing anyone else.

Pure and clock-injected (`now` in seconds from any monotonic clock). Memory is bounded twice: buckets idle
for `idle_s` are dropped, and at most `max_keys` are kept, the least recently seen dropped first, so a
flood that invents a new device id per message costs at most `max_keys` buckets (the per-vendor limit, keyed
by the credential-checked vendor, still holds it back).
"""

from __future__ import annotations

from collections import OrderedDict

__all__ = ["TokenBuckets"]


class TokenBuckets:
    """`allow(key, now)` is true while `key` stays within `rate` per second with bursts up to `burst`."""

    __slots__ = ("_buckets", "_burst", "_idle_s", "_last_sweep", "_max_keys", "_rate")

    def __init__(self, rate: float, burst: int, *, idle_s: float = 300.0, max_keys: int = 100_000) -> None:
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError(f"rate must be > 0, burst ≥ 1 and max_keys ≥ 1, got {rate}, {burst}, {max_keys}")
        self._rate = rate
        self._burst = float(burst)
        self._idle_s = idle_s
        self._max_keys = max_keys
        # key → [tokens, last refill time], least recently seen first.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()
        self._last_sweep = 0.0

    def allow(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self._max_keys:
                self._buckets.popitem(last=False)
            bucket = self._buckets[key] = [self._burst, now]
        else:
            self._buckets.move_to_end(key)
            elapsed = now - bucket[1]
            if elapsed > 0:
                bucket[0] = min(self._burst, bucket[0] + elapsed * self._rate)
                bucket[1] = now
        if now - self._last_sweep > self._idle_s:
            self._sweep(now)
        if bucket[0] >= 1.0:
            bucket[0] -= 1.0
            return True
        return False

    def _sweep(self, now: float) -> None:
        self._last_sweep = now
        stale = [k for k, (_, last) in self._buckets.items() if now - last > self._idle_s]
        for key in stale:
            del self._buckets[key]

    def __len__(self) -> int:
        return len(self._buckets)
