"""Requests per client address: token buckets in a bounded LRU, and the ASGI middleware answering 429.

Beside the per-app-key limit on submissions (`dashboards.api.clients`), every request, read or write, is
metered by the address it comes from, so one machine cannot starve the others. Memory stays bounded: at
most `max_addresses` buckets are kept, the least recently seen forgotten first (a forgotten address starts
again with a full burst, which only ever helps a well-behaved client).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from dashboards.api.clients import Verdict
from dashboards.api.state import open311_error, problem

__all__ = ["AddressLimiter", "AddressRateLimit"]

_OPEN311: Final = "/open311/"
_EXEMPT: Final = frozenset({"/healthz", "/readyz"})  # probes come from the kubelet's one address


class AddressLimiter:
    """A token bucket per client address (`rate_per_s` sustained, `burst` at once), at most `max_addresses`."""

    def __init__(
        self, rate_per_s: float, burst: int, max_addresses: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max = max_addresses
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, address: str) -> Verdict:
        """Spend one request of `address`'s allowance."""
        now = self._clock()
        with self._lock:
            tokens, updated = self._buckets.pop(address, (self._burst, now))
            tokens = min(self._burst, tokens + (now - updated) * self._rate)
            allowed = tokens >= 1
            if allowed:
                tokens -= 1
            self._buckets[address] = (tokens, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        if allowed:
            return Verdict(True)
        return Verdict(False, math.ceil((1 - tokens) / self._rate * 1000) / 1000)


class AddressRateLimit:
    """ASGI middleware: 429 with Retry-After once an address is over its limit (Open311 or problem shape)."""

    def __init__(self, app: Any, limiter: AddressLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] in _EXEMPT:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = str(client[0]) if client else "unknown"
        verdict = self.limiter.take(address)
        if verdict.allowed:
            await self.app(scope, receive, send)
            return
        wait = max(1, math.ceil(verdict.retry_after_s))
        detail = f"too many requests from {address}; retry in {wait} s"
        headers = {"Retry-After": str(wait)}
        if scope["path"].startswith(_OPEN311):
            response = open311_error(429, detail, headers)
        else:
            response = problem(429, "Too many requests", detail, headers=headers)
        await response(scope, receive, send)
