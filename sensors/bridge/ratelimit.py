"""Per-device token buckets: one flooding device is cut off without slowing anyone else.

Pure and clock-injected (`now` in seconds from any monotonic clock). Buckets of devices idle for long are
dropped so memory stays bounded by the number of active devices.
"""

from __future__ import annotations

__all__ = ["TokenBuckets"]


class TokenBuckets:
    """`allow(key, now)` is true while `key` stays within `rate` per second with bursts up to `burst`."""

    __slots__ = ("_buckets", "_burst", "_idle_s", "_last_sweep", "_rate")

    def __init__(self, rate: float, burst: int, *, idle_s: float = 300.0) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst ≥ 1, got rate={rate}, burst={burst}")
        self._rate = rate
        self._burst = float(burst)
        self._idle_s = idle_s
        self._buckets: dict[str, list[float]] = {}  # key → [tokens, last refill time]
        self._last_sweep = 0.0

    def allow(self, key: str, now: float) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self._burst, now]
        else:
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
