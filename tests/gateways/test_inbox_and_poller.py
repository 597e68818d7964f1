"""A parent's inbox of children's signed reports, and the polling mode, without real services."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from ioc import codecs, signing, topics, upward
from ioc.events import DossierStatus, ServiceRecord
from ioc.scope import site_scope
from ioc.settings import PortalGatewaySettings
from sensors.gateways import DossierIntake, FeedError, GatewayState, Poller, create_app
from tests.gateways.asgi import asgi_client
from tests.gateways.memory import MemorySink
from tests.reporting.samples import sample_report, snapshot

CHILD_PRIVATE, CHILD_PUBLIC = signing.generate_signing_key()
READ = "read-token"


@pytest.fixture
async def parent() -> AsyncIterator[tuple[httpx.AsyncClient, MemorySink]]:
    """The province (74) connector, knowing the public key of Dĩ An (724), relaying upward."""
    sink = MemorySink()
    settings = PortalGatewaySettings(
        site_unit="74", report_keys={"724": CHILD_PUBLIC}, relay_reports=True, read_token=READ
    )
    async with asgi_client(create_app(settings, sink=sink, state=GatewayState(None))) as client:
        yield client, sink


async def push(client: httpx.AsyncClient, envelope: upward.SignedReport, key: str | None = None) -> httpx.Response:
    return await client.post(
        "/reports/v1/upward",
        content=codecs.encode(envelope),
        headers={"Idempotency-Key": key or envelope.idempotency_key, "Content-Type": "application/json"},
    )


async def test_a_report_is_kept_once_however_often_it_is_pushed(parent: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = parent
    envelope = upward.seal(sample_report(), CHILD_PRIVATE, "724")
    first = await push(client, envelope)
    assert first.status_code == 201, first.text
    assert first.json() == {
        "result": "accepted",
        "report_id": "724:month:2025-06",
        "idempotency_key": envelope.idempotency_key,
    }
    for _ in range(3):
        again = await push(client, envelope)
        assert again.status_code == 200 and again.json()["result"] == "duplicate"
    assert len(sink.on(topics.REPORTS_OUTBOX.name)) == 1  # relayed once, unchanged
    assert sink.on(topics.REPORTS_OUTBOX.name)[0] == codecs.encode(envelope)
    listed = await client.get("/reports/v1/upward", headers={"Authorization": f"Bearer {READ}"})
    assert [r["report_id"] for r in listed.json()] == ["724:month:2025-06"]
    one = await client.get("/reports/v1/upward/724:month:2025-06", headers={"Authorization": f"Bearer {READ}"})
    assert one.json()["incidents"]["opened"] == 3
    assert (await client.get("/reports/v1/upward", headers={"Authorization": "Bearer nope"})).status_code == 403


async def test_a_new_revision_replaces_the_old_one(parent: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, _sink = parent
    old = upward.seal(sample_report(), CHILD_PRIVATE, "724")
    changed = sample_report(incidents=msgspec.structs.replace(sample_report().incidents, opened=5))
    newer = upward.seal(
        msgspec.structs.replace(changed, generated_at=changed.generated_at.replace(hour=9)), CHILD_PRIVATE, "724"
    )
    assert (await push(client, old)).status_code == 201
    assert (await push(client, newer)).status_code == 201
    latest = await client.get("/reports/v1/upward/724:month:2025-06", headers={"Authorization": f"Bearer {READ}"})
    assert latest.json()["incidents"]["opened"] == 5


@pytest.mark.parametrize(
    ("make", "status", "words"),
    [
        (lambda: upward.seal(sample_report(), signing.generate_signing_key()[0], "724"), 401, "mismatch"),
        (lambda: upward.seal(sample_report(unit="725"), CHILD_PRIVATE, "725"), 401, "unknown-key"),
        (lambda: upward.seal(sample_report(unit="725"), CHILD_PRIVATE, "724"), 403, "may sign only its own"),
        (lambda: upward.seal(sample_report(unit="74"), CHILD_PRIVATE, "74"), 401, "unknown-key"),
    ],
)
async def test_bad_signatures_and_foreign_units_get_clear_4xx(
    parent: tuple[httpx.AsyncClient, MemorySink], make, status: int, words: str
) -> None:
    client, sink = parent
    answer = await push(client, make())
    assert answer.status_code == status, answer.text
    assert words in answer.json()["detail"]
    assert answer.headers["content-type"] == "application/problem+json"
    assert sink.sent == []


async def test_an_unknown_unit_and_a_unit_outside_the_site_are_refused() -> None:
    sink = MemorySink()
    keys = {"99999": CHILD_PUBLIC, "725": CHILD_PUBLIC}
    settings = PortalGatewaySettings(site_unit="724", report_keys=keys)
    async with asgi_client(create_app(settings, sink=sink, state=GatewayState(None))) as client:
        unknown = await push(client, upward.seal(sample_report(unit="99999"), CHILD_PRIVATE, "99999"))
        assert unknown.status_code == 422 and "not a unit" in unknown.json()["detail"]
        sibling = await push(client, upward.seal(sample_report(unit="725"), CHILD_PRIVATE, "725"))
        assert sibling.status_code == 403 and "not under this site" in sibling.json()["detail"]


async def test_garbage_mismatched_keys_and_oversized_bodies_are_refused(
    parent: tuple[httpx.AsyncClient, MemorySink],
) -> None:
    client, _sink = parent
    garbage = await client.post("/reports/v1/upward", content=b"{nope")
    assert garbage.status_code == 400 and "not JSON" in garbage.json()["detail"]
    envelope = upward.seal(sample_report(), CHILD_PRIVATE, "724")
    wrong_key = await push(client, envelope, key="724:month:2025-06:0000000000000000")
    assert wrong_key.status_code == 422 and "differs" in wrong_key.json()["detail"]
    huge = await client.post("/reports/v1/upward", content=b"x" * (1024 * 1024 + 1))
    assert huge.status_code == 413


# --- polling ------------------------------------------------------------------------------------------------------

SECRET = "feed-secret"


class Feed:
    """A portal's event feed in memory: pages of snapshots, signed like webhooks."""

    def __init__(self, events: list[ServiceRecord], page: int, *, secret: str = SECRET) -> None:
        self.events, self.page, self.secret = events, page, secret
        self.calls: list[dict[str, str]] = []
        self.down = False

    def __call__(self, request: httpx.Request) -> httpx.Response:
        params = dict(request.url.params)
        self.calls.append(params)
        if self.down:
            return httpx.Response(502, text="bad gateway")
        start = int(params.get("after", "0"))
        chunk = self.events[start : start + self.page]
        following = str(start + len(chunk)) if chunk else None
        body = json.dumps({"events": [json.loads(codecs.encode(e)) for e in chunk], "next": following}).encode()
        headers = {signing.SIGNATURE_HEADER: signing.sign_webhook(self.secret, body, int(time.time()))}
        return httpx.Response(200, content=body, headers=headers)


def poller_for(feed: Feed, sink: MemorySink, state: GatewayState, **changes: object) -> Poller:
    settings = PortalGatewaySettings(
        site_unit="724",
        webhook_secrets=[SECRET],
        poll_url="http://portal.test/feed",
        poll_page_size=2,
        **changes,  # type: ignore[arg-type]
    )
    client = httpx.AsyncClient(transport=httpx.MockTransport(feed))
    return Poller(settings, DossierIntake(sink, state), state, site_scope("724"), client)


def test_polling_drains_the_feed_page_by_page_and_remembers_where_it_stands() -> None:
    events = [
        snapshot("HS-1", 1),
        snapshot("HS-2", 1),
        snapshot("HS-1", 2, status=DossierStatus.IN_PROGRESS),
        snapshot("HS-1", 2, status=DossierStatus.IN_PROGRESS),  # the portal repeats itself
        snapshot("HS-3", 1, unit="25747"),  # not Dĩ An's
    ]
    feed, sink, state = Feed(events, page=2), MemorySink(), GatewayState(None)
    results = asyncio.run(poller_for(feed, sink, state).poll_once())
    assert [r.result for r in results] == ["accepted", "accepted", "accepted", "duplicate", "refused"]
    sent = [codecs.decode(v, ServiceRecord) for v in sink.on(topics.SERVICE_RECORDS.name)]
    assert [(r.dossier_id, r.status_version) for r in sent] == [("HS-1", 1), ("HS-2", 1), ("HS-1", 2)]
    assert state.cursor("http://portal/feed") is None
    assert state.cursor("http://portal.test/feed") == "5"
    events.append(snapshot("HS-2", 2, status=DossierStatus.IN_PROGRESS))
    again = asyncio.run(poller_for(feed, sink, state).poll_once())
    assert [r.result for r in again] == ["accepted"]
    assert feed.calls[-1]["after"] == "6"


def test_an_unsigned_page_or_a_failing_feed_moves_nothing() -> None:
    feed, sink, state = Feed([snapshot("HS-1", 1)], page=2, secret="someone-else"), MemorySink(), GatewayState(None)
    with pytest.raises(FeedError, match="signature is refused"):
        asyncio.run(poller_for(feed, sink, state).poll_once())
    assert sink.sent == [] and state.cursor("http://portal.test/feed") is None
    feed.down = True
    with pytest.raises(FeedError, match="502"):
        asyncio.run(poller_for(feed, sink, state).poll_once())


def test_kafka_down_keeps_the_cursor_so_the_page_is_read_again() -> None:
    feed, sink, state = Feed([snapshot("HS-1", 1)], page=2), MemorySink(), GatewayState(None)
    sink.down = True
    with pytest.raises(Exception, match="timed out"):
        asyncio.run(poller_for(feed, sink, state).poll_once())
    assert state.cursor("http://portal.test/feed") is None
    sink.down = False
    assert [r.result for r in asyncio.run(poller_for(feed, sink, state).poll_once())] == ["accepted"]
