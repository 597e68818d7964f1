"""A TTL cache of finished response bodies, with one build at a time per key (no stampede on expiry).

Public reads are the same few questions asked many times a second, so the API caches the encoded body
(and its ETag), not rows: a cache hit costs a dict lookup. Entries live for their query's lifetime
(CitizenApiSettings.cache_ttl_s or slow_cache_ttl_s); once expired, an entry is still served for one more
lifetime while a single background build replaces it, so under load an expiry costs no caller a query.

`FrontCache` sits in front of the whole application, as a reverse proxy's cache would: a repeated GET of
a public answer (one that said `Cache-Control: public, max-age=N`, N being what is left of its life) is
sent from memory before routing and parameter validation run, which are most of a cached answer's cost.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Any, Final

__all__ = ["Cached", "FrontCache", "ResponseCache"]

_MAX_ENTRIES: Final = 4096


@dataclasses.dataclass(frozen=True, slots=True)
class Cached:
    """A finished body: its bytes, media type, strong ETag, extra headers, and when it expires."""

    body: bytes
    media_type: str
    etag: str
    headers: Mapping[str, str]
    expires: float
    ttl_s: float = 0.0

    @classmethod
    def of(
        cls, body: bytes, media_type: str, ttl_s: float, now: float, headers: Mapping[str, str] | None = None
    ) -> Cached:
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        return cls(body, media_type, etag, dict(headers or {}), now + ttl_s, ttl_s)


class ResponseCache:
    """Bodies by key, each until its expiry; `get_or_build` builds a missing one exactly once at a time."""

    def __init__(self, clock: Callable[[], float] = time.monotonic, max_entries: int = _MAX_ENTRIES) -> None:
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[Hashable, Cached] = OrderedDict()
        self._building: dict[Hashable, asyncio.Future[Cached]] = {}
        self._refreshing: set[Hashable] = set()
        self._tasks: set[asyncio.Future[Cached]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def now(self) -> float:
        """The cache's clock: expiry times are on it."""
        return self._clock()

    async def get_or_build(self, key: Hashable, build: Callable[[], Awaitable[Cached]]) -> Cached:
        """The cached body for `key`, or the one `build` makes (shared with every concurrent caller).

        An expired body is still served, for up to its own lifetime again, while one background build
        replaces it (stale-while-revalidate): under load, an expiry costs no caller a warehouse query.
        """
        found = self._entries.get(key)
        now = self._clock()
        if found is not None and found.expires > now:
            return found
        if found is not None and now < found.expires + found.ttl_s and found.ttl_s > 0:
            if key not in self._building and key not in self._refreshing:
                self._refreshing.add(key)
                task = asyncio.ensure_future(self._build(key, build))
                self._tasks.add(task)
                task.add_done_callback(functools.partial(self._refreshed, key))
            return found
        pending = self._building.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._build(key, build)

    async def _build(self, key: Hashable, build: Callable[[], Awaitable[Cached]]) -> Cached:
        future: asyncio.Future[Cached] = asyncio.get_running_loop().create_future()
        self._building[key] = future
        try:
            made = await build()
        except BaseException as exc:
            future.set_exception(exc)
            # Nobody else may be waiting: retrieve the exception so asyncio does not log it as unhandled.
            future.exception()
            raise
        finally:
            self._building.pop(key, None)
        future.set_result(made)
        if made.expires > self._clock():
            self._entries[key] = made
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)
        return made

    def _refreshed(self, key: Hashable, done: asyncio.Future[Cached]) -> None:
        self._refreshing.discard(key)
        self._tasks.discard(done)
        if not done.cancelled():
            # Retrieve a failure so asyncio does not log it: the stale body keeps being served until it is
            # too old, and then a caller builds it again itself.
            done.exception()

    def clear(self) -> None:
        self._entries.clear()


_PREFIXES: Final = ("/open-data/", "/ngsi-ld/", "/open311/v2/requests/", "/open311/v2/services")
_MAX_AGE: Final = b"max-age="


@dataclasses.dataclass(frozen=True, slots=True)
class _Stored:
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes
    expires: float


def _max_age(headers: list[tuple[bytes, bytes]]) -> float:
    for name, value in headers:
        if name.lower() == b"cache-control" and b"public" in value and _MAX_AGE in value:
            digits = value.split(_MAX_AGE, 1)[1].split(b",", 1)[0].strip()
            return float(digits) if digits.isdigit() else 0.0
    return 0.0


class FrontCache:
    """ASGI middleware: answers repeated public GETs from memory for as long as they said they may be kept."""

    def __init__(self, app: Any, clock: Callable[[], float] = time.monotonic, max_entries: int = _MAX_ENTRIES) -> None:
        self.app = app
        self._clock = clock
        self._max = max_entries
        self._entries: OrderedDict[tuple[str, bytes, bool], _Stored] = OrderedDict()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or not scope["path"].startswith(_PREFIXES):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key = (scope["path"], scope["query_string"], b"application/ld+json" in headers.get(b"accept", b""))
        found = self._entries.get(key)
        if found is not None and found.expires > self._clock():
            if headers.get(b"if-none-match") == found.etag:
                kept = [(n, v) for n, v in found.headers if n.lower() in (b"etag", b"cache-control", b"vary")]
                await send({"type": "http.response.start", "status": 304, "headers": kept})
                await send({"type": "http.response.body", "body": b""})
                return
            await send({"type": "http.response.start", "status": 200, "headers": found.headers})
            await send({"type": "http.response.body", "body": found.body})
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body") and start.get("status") == 200:
                    self._keep(key, list(start.get("headers", [])), b"".join(chunks))
            await send(message)

        await self.app(scope, receive, capture)

    def _keep(self, key: tuple[str, bytes, bool], headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        max_age = _max_age(headers)
        if max_age <= 0:
            return
        etag = next((v for n, v in headers if n.lower() == b"etag"), b"")
        self._entries[key] = _Stored(headers, body, etag, self._clock() + max_age)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)
