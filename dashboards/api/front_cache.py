"""ASGI middleware answering repeated public GETs of the citizen API from memory, as a proxy's cache would."""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

# It keeps an answer for as long as it said it may be kept (`Cache-Control: public, max-age=N`), and sends
# it before routing and parameter validation run, which are most of a cached answer's cost.

__all__ = ["FrontCache"]

_MAX_ENTRIES: Final = 4096
_MAX_KEY_BYTES: Final = 2048
"""Longer paths and query strings are answered but never kept: 4096 entries of at most this much key each."""

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
        if (
            scope["type"] != "http"
            or scope["method"] != "GET"
            or not scope["path"].startswith(_PREFIXES)
            or len(scope["path"]) + len(scope["query_string"]) > _MAX_KEY_BYTES
        ):
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
