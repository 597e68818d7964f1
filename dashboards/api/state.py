"""What every route of the citizen API shares (site, data, cache, sink...) and how answers become HTTP.

Cached bodies with ETag and Cache-Control, Open311 error lists and RFC 9457 problems: every route fails alike.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, Final

import pydantic
from fastapi import Request, Response

from dashboards.api import models
from dashboards.api.clients import ApiClients
from dashboards.api.ledger import Ledger
from dashboards.data import SiteData, TtlCache
from dashboards.sites import Site
from ioc.clients import clickhouse
from ioc.clients.delivery import EventSink
from ioc.problems import PROBLEM_JSON, problem_body
from ioc.settings import CitizenApiSettings

__all__ = [
    "JSON",
    "LD_JSON",
    "ApiState",
    "Cached",
    "open311_error",
    "problem",
]

JSON: Final = "application/json"
LD_JSON: Final = "application/ld+json"

_open311_errors: Final = pydantic.TypeAdapter(list[models.Open311Error])


def open311_error(status: int, description: str, headers: Mapping[str, str] | None = None) -> Response:
    """An Open311 error answer: a list of one `{code, description}`."""
    body = _open311_errors.dump_json([models.Open311Error(code=status, description=description)])
    return Response(body, status_code=status, media_type=JSON, headers=dict(headers or {}))


def problem(
    status: int,
    title: str,
    detail: str,
    *,
    field: str | None = None,
    kind: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """An RFC 9457 problem answer (NGSI-LD's ProblemDetails have the same shape)."""
    body = problem_body(status, title, detail, field=field, kind=kind)
    return Response(body, status_code=status, media_type=PROBLEM_JSON, headers=dict(headers or {}))


@dataclasses.dataclass(frozen=True, slots=True)
class Cached:
    """A finished body: its bytes, media type, strong ETag, extra headers, and when it expires."""

    body: bytes
    media_type: str
    etag: str
    headers: Mapping[str, str]
    expires: float

    @classmethod
    def of(
        cls, body: bytes, media_type: str, ttl_s: float, now: float, headers: Mapping[str, str] | None = None
    ) -> Cached:
        etag = '"' + hashlib.blake2b(body, digest_size=12).hexdigest() + '"'
        return cls(body, media_type, etag, dict(headers or {}), now + ttl_s)


@dataclasses.dataclass
class ApiState:
    """One process's shared parts; the warehouse connection is opened on first use."""

    settings: CitizenApiSettings
    site: Site
    clients: ApiClients
    ledger: Ledger
    sink: EventSink
    cache: TtlCache
    clock: Callable[[], float] = time.time
    connect: Callable[[], clickhouse.Warehouse] | None = None
    _data: SiteData | None = None
    _data_lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)

    async def data(self) -> SiteData:
        """The data layer, connecting to ClickHouse on first use (raises WarehouseError if it cannot)."""
        if self._data is None:
            async with self._data_lock:
                if self._data is None:
                    assert self.connect is not None, "ApiState needs a warehouse or a way to connect"
                    warehouse = await asyncio.to_thread(self.connect)
                    # Rows are not kept: the finished bodies are, in `cache`, for their answer's lifetime.
                    self._data = SiteData(warehouse, self.site, live_ttl_s=0, slow_ttl_s=0)
        return self._data

    async def query(self, run: Callable[[SiteData], Any]) -> Any:
        """Run blocking data-layer work off the event loop."""
        data = await self.data()
        return await asyncio.to_thread(run, data)

    async def cached(
        self,
        request: Request,
        key: Hashable,
        ttl_s: float,
        build: Callable[[SiteData], bytes | tuple[bytes, Mapping[str, str]]],
        *,
        media_type: str = JSON,
    ) -> Response:
        """The body `build` makes for `key` (optionally with headers), cached for `ttl_s`, as a response.

        Honours If-None-Match with 304. An empty body means "nothing there": the caller turns it into 404.
        """

        async def make() -> Cached:
            built = await self.query(build)
            body, extra = built if isinstance(built, tuple) else (built, {})
            return Cached.of(body, media_type, ttl_s, self.cache.now(), extra)

        found = await self.cache.get_or_build(key, ttl_s, make)
        shared = {
            "ETag": found.etag,
            # What is left of the body's life: a stale body (served while it is being rebuilt) says 0, so
            # no cache downstream (the front cache, a proxy, the phone) keeps it any longer.
            "Cache-Control": f"public, max-age={max(0, round(found.expires - self.cache.now()))}",
            "Vary": "Accept",
            **found.headers,
        }
        if request.headers.get("if-none-match") == found.etag:
            return Response(status_code=304, headers=shared)
        return Response(found.body, media_type=found.media_type, headers=shared)

    def close(self) -> None:
        self.sink.close()
        self.ledger.close()
        if self._data is not None:
            self._data.warehouse.close()
