"""A vendor reads its own rejections with its token, and only its own; the bridge keeps the vendor on unreadable input.

The route runs against the real ClickHouse server (letters written as the dead-letter agent writes them); the
bridge's verdicts are pure and checked directly.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dashboards.api import create_app
from ioc import codecs, topics, vendortoken
from ioc.clients import clickhouse as ch
from ioc.events import DeadLetter, DeadLetterReason
from ioc.settings import ClickHouseEndpoint
from ioc.units import load_tree
from sensors.bridge import Rejected, Validator
from streams.warehouse import rows
from tests.api.conftest import api_settings
from tests.gateways.asgi import asgi_client
from tests.gateways.memory import MemorySink

KEY = "k" * 48
TREE = load_tree("2024")


def test_tokens_name_their_vendor_and_forgeries_name_nobody() -> None:
    token = vendortoken.issue(KEY, "acme-hydro")
    assert vendortoken.verify(KEY, token) == "acme-hydro"
    other = vendortoken.issue(KEY, "other-air")
    forged = "acme-hydro." + other.partition(".")[2]  # B's MAC under A's name
    assert vendortoken.verify(KEY, forged) is None
    assert vendortoken.verify("another key", token) is None
    assert vendortoken.verify(KEY, "acme-hydro") is None and vendortoken.verify(KEY, "") is None
    with pytest.raises(ValueError, match="empty"):
        vendortoken.issue("", "acme-hydro")


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        (topics.mqtt_topic("25957", "water", "acme-hydro", "wl-9"), b"x" * (codecs.MAX_PAYLOAD_BYTES + 1), "too-large"),
        (topics.mqtt_topic("25957", "water", "acme-hydro", "wl-9"), b"{oops", "not-json"),
        (topics.mqtt_topic("25957", "water", "acme-hydro", "wl-9"), b"[{oops", "not-json"),  # a batch
    ],
)
def test_a_refusal_before_the_payload_is_read_keeps_the_topic_s_vendor(topic: str, payload: bytes, reason: str) -> None:
    [(verdict, _)] = Validator(TREE).check_message(topic, payload)
    assert isinstance(verdict, Rejected) and verdict.reason == reason
    assert (verdict.vendor, verdict.device) == ("acme-hydro", "wl-9")


def _letter(vendor: str, device: str, reason: DeadLetterReason, detail: str, at: dt.datetime) -> dict[str, Any]:
    letter = DeadLetter(
        source=f"mqtt:{topics.mqtt_topic('25957', 'water', vendor, device)}",
        reason=reason,
        detail=detail,
        received_at=at,
        payload=b"{oops",
        vendor=vendor,
        device=device,
    )
    raw = codecs.encode(letter) + uuid.uuid4().bytes  # distinct ids for letters of equal content
    return rows.deadletter_row(letter, raw, place=("25957", TREE.path("25957")))


@pytest.fixture
async def api(seeded_api_db: tuple[ClickHouseEndpoint, Any]) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    endpoint, _ = seeded_api_db
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    letters = [
        _letter(a, "wl-1", DeadLetterReason.NOT_JSON, "malformed JSON at byte 1", now - dt.timedelta(minutes=5)),
        _letter(a, "wl-2", DeadLetterReason.SCHEMA, "Expected `int` - at `$.seq`", now - dt.timedelta(minutes=1)),
        _letter(b, "aq-1", DeadLetterReason.IMPLAUSIBLE_VALUE, "pm25=-3.0", now - dt.timedelta(minutes=2)),
        _letter(a, "wl-1", DeadLetterReason.NOT_JSON, "too old to show", now - dt.timedelta(days=3)),
    ]
    with ch.connect(endpoint) as admin:
        admin.insert(f"{endpoint.database}.deadletters", letters)
    settings = api_settings(endpoint, vendor_token_key=SecretStr(KEY))
    async with asgi_client(create_app(settings, sink=MemorySink())) as client:
        yield client, a, b


@pytest.mark.slow
@pytest.mark.clickhouse
async def test_a_vendor_reads_its_own_rejections_and_never_another_s(api: tuple[httpx.AsyncClient, str, str]) -> None:
    client, a, b = api
    url = "/vendors/v1/rejections.json"
    answer = await client.get(url, headers={"Authorization": f"Bearer {vendortoken.issue(KEY, a)}"})
    assert answer.status_code == 200, answer.text
    assert "no-store" in answer.headers["cache-control"]
    body = answer.json()
    assert body["vendor"] == a
    assert [(i["device"], i["reason"]) for i in body["items"]] == [("wl-2", "schema"), ("wl-1", "not-json")]
    assert "payload" not in body["items"][0]
    # B's token shows B's letter only; A's token with a `vendor` parameter still shows A's (it is ignored).
    of_b = (await client.get(url, headers={"Authorization": f"Bearer {vendortoken.issue(KEY, b)}"})).json()
    assert [i["detail"] for i in of_b["items"]] == ["pm25=-3.0"]
    sneaky = await client.get(
        url, params={"vendor": b}, headers={"Authorization": f"Bearer {vendortoken.issue(KEY, a)}"}
    )
    assert sneaky.json()["vendor"] == a and all(i["device"].startswith("wl-") for i in sneaky.json()["items"])
    # A's name with B's MAC, a token under another key, or none at all: refused.
    forged = a + "." + vendortoken.issue(KEY, b).partition(".")[2]
    for headers in (
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": f"Bearer {vendortoken.issue('x', a)}"},
        {},
    ):
        refused = await client.get(url, headers=headers)
        assert refused.status_code == 401 and "Bearer" in refused.headers["www-authenticate"], refused.text
    wider = await client.get(url, params={"days": 7}, headers={"Authorization": f"Bearer {vendortoken.issue(KEY, a)}"})
    assert len(wider.json()["items"]) == 3


async def test_without_a_token_key_the_route_is_not_served() -> None:
    app = create_app(api_settings(ClickHouseEndpoint(port=1)), sink=MemorySink())
    async with asgi_client(app) as client:
        assert (await client.get("/vendors/v1/rejections.json")).status_code == 404
