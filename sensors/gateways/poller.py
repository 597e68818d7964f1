"""Polling mode: read a one-stop portal's event feed, for portals that cannot push webhooks.

The feed is `GET <poll_url>?after=<cursor>&limit=<n>` answering `{"events": [<ServiceRecord>...],
"next": "<cursor>" | null}`, signed like a webhook (`X-IOC-Signature` over the response body) unless
`poll_signed` is off. Each page goes through the same judge and intake as a webhook; the cursor moves
only once everything on the page is in Kafka, so a crash re-reads at most one page, which the dossier
versions make harmless. An empty page or a null `next` means drained: wait `poll_every_s`, then ask again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Final

import httpx
import msgspec

from ioc import signing
from ioc.clients.delivery import DeliveryError
from ioc.scope import Scope
from ioc.settings import PortalGatewaySettings
from sensors.gateways.intake import DossierIntake, ItemResult
from sensors.gateways.judge import judge
from sensors.gateways.state import GatewayState

__all__ = ["FeedError", "Poller"]

log = logging.getLogger(__name__)

_BACKOFF_MAX_S: Final = 60.0


class FeedError(RuntimeError):
    """The feed answered something other than a signed page of events; the message says what."""


class _Page(msgspec.Struct, frozen=True):
    events: list[msgspec.Raw]
    next: str | None = None


_pages: Final = msgspec.json.Decoder(_Page)


class Poller:
    """Drains the feed into Kafka, page by page, remembering where it stands."""

    def __init__(
        self,
        settings: PortalGatewaySettings,
        intake: DossierIntake,
        state: GatewayState,
        scope: Scope,
        client: httpx.AsyncClient,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert settings.poll_url is not None, "the poller needs PortalGatewaySettings.poll_url"
        self._settings = settings
        self._url = settings.poll_url
        self._intake = intake
        self._state = state
        self._scope = scope
        self._client = client
        self._clock = clock
        self.pages = 0
        self.events = 0

    async def _fetch(self, cursor: str | None) -> tuple[bytes, _Page]:
        params: dict[str, Any] = {"limit": self._settings.poll_page_size}
        if cursor is not None:
            params["after"] = cursor
        headers = {}
        if self._settings.poll_token is not None:
            headers["Authorization"] = f"Bearer {self._settings.poll_token.get_secret_value()}"
        response = await self._client.get(self._url, params=params, headers=headers)
        if response.status_code != 200:
            raise FeedError(f"{self._url} answered {response.status_code}: {response.text[:200]}")
        body = response.content
        if self._settings.poll_signed:
            secrets = [s.get_secret_value() for s in self._settings.webhook_secrets]
            try:
                signing.verify_webhook(
                    response.headers.get(signing.SIGNATURE_HEADER),
                    body,
                    secrets,
                    now=self._clock(),
                    tolerance_s=self._settings.signature_tolerance_s,
                )
            except signing.SignatureError as exc:
                raise FeedError(f"{self._url}: the page's signature is refused ({exc.reason}: {exc.message})") from None
        try:
            page = _pages.decode(body)
        except msgspec.DecodeError as exc:
            raise FeedError(f"{self._url}: not a page of events ({exc})") from None
        if len(page.events) > self._settings.max_batch:
            raise FeedError(f"{self._url}: {len(page.events)} events on one page; at most {self._settings.max_batch}")
        return body, page

    async def poll_once(self) -> list[ItemResult]:
        """Read pages until the feed is drained; every page's events in Kafka before its cursor moves."""
        results: list[ItemResult] = []
        while True:
            cursor = self._state.cursor(self._url)
            _body, page = await self._fetch(cursor)
            if page.events:
                verdicts = [v for raw in page.events for v in judge(bytes(raw), self._scope, max_batch=1)]
                results.extend(await self._intake.take(verdicts, f"poll:{self._url}"))
                self.events += len(page.events)
            self.pages += 1
            if page.next is not None and page.next != cursor:
                self._state.save_cursor(self._url, page.next)
            if not page.events or page.next is None:
                return results

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set, backing off (up to a minute) while the feed or Kafka is failing."""
        delay = self._settings.poll_every_s
        while not stop.is_set():
            try:
                await self.poll_once()
                delay = self._settings.poll_every_s
            except (FeedError, DeliveryError, httpx.HTTPError) as exc:
                delay = min(max(delay * 2, 1.0), _BACKOFF_MAX_S)
                log.warning("polling %s failed (%s); next try in %.0f s", self._url, exc, delay)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
