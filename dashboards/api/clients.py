"""Who may submit reports: per-client API keys and a token-bucket rate limit per client. Pure."""

from __future__ import annotations

import dataclasses
import hashlib
import math
import threading
import time
from collections.abc import Callable, Mapping

from ioc.settings import ApiClientConfig

# Each client (the citizen app, a partner's hotline system) has its own key and limit, from
# `CitizenApiSettings.clients`. Keys are compared as SHA-256 digests, so the lookup time says nothing about
# how close a guess was; the limit is a token bucket (a burst, then a sustained rate), and a refused call
# learns how long to wait (`Retry-After`).

__all__ = ["ApiClients", "Verdict"]


@dataclasses.dataclass(frozen=True, slots=True)
class Verdict:
    """Whether one call may go ahead; if not, after how many seconds it could."""

    allowed: bool
    retry_after_s: float = 0.0


@dataclasses.dataclass(slots=True)
class _Bucket:
    tokens: float
    updated: float


class ApiClients:
    """The configured clients: authenticate a presented key, and meter each client's calls."""

    def __init__(self, clients: Mapping[str, ApiClientConfig], clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._by_digest = {_digest(c.key.get_secret_value()): name for name, c in clients.items()}
        self._limits = {name: (c.rate_per_s, float(c.burst)) for name, c in clients.items()}
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._by_digest)

    def authenticate(self, key: str | None) -> str | None:
        """The client whose key this is, or None."""
        if not key:
            return None
        return self._by_digest.get(_digest(key))

    def take(self, client: str) -> Verdict:
        """Spend one call of `client`'s allowance."""
        rate, burst = self._limits[client]
        now = self._clock()
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                bucket = self._buckets[client] = _Bucket(burst, now)
            bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
            bucket.updated = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return Verdict(True)
            return Verdict(False, math.ceil((1 - bucket.tokens) / rate * 1000) / 1000)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()
