"""Submitting Open311 requests: keys, limits, idempotency, sizes and Kafka outages (Kafka replaced by memory)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dashboards.api import create_app
from ioc import topics
from ioc.settings import ApiClientConfig, ClickHouseEndpoint
from tests.api.conftest import API_KEY, api_settings
from tests.gateways.asgi import asgi_client
from tests.gateways.memory import MemorySink

REPORTS = topics.CITIZEN_REPORTS.name
# The warehouse is never asked during a submission; an unreachable one proves it.
NO_WAREHOUSE = ClickHouseEndpoint(host="127.0.0.1", port=1)
FORM = {
    "service_code": "flooding",
    "description": "Nước ngập sâu trước chợ",
    "lat": "10.89354",
    "long": "106.79926",
    "address_string": "Chợ Đông Hòa",
    "first_name": "An",
    "phone": "0912345678",
}


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, MemorySink]]:
    sink = MemorySink()
    clients = {
        "test-app": ApiClientConfig(key=SecretStr(API_KEY), rate_per_s=1000, burst=1000),
        "slow-app": ApiClientConfig(key=SecretStr("slow-key"), rate_per_s=0.01, burst=2),
    }
    settings = api_settings(NO_WAREHOUSE, clients=clients, max_body_bytes=2048)
    async with asgi_client(create_app(settings, sink=sink)) as client:
        yield client, sink


async def submit(client: httpx.AsyncClient, form: dict[str, Any] | None = None, **headers: str) -> httpx.Response:
    return await client.post("/open311/v2/requests.json", data={"api_key": API_KEY, **(form or FORM)}, headers=headers)


async def test_a_request_becomes_a_citizen_report_on_kafka(api: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = api
    answer = await submit(client)
    assert answer.status_code == 201, answer.text
    [created] = answer.json()
    assert created["service_request_id"].startswith("o311-")
    assert answer.headers["location"] == f"/open311/v2/requests/{created['service_request_id']}.json"
    [(topic, key, value, _headers)] = sink.sent
    report = topics.CITIZEN_REPORTS.decode(value)
    assert (topic, key) == (REPORTS, report.report_id)
    assert (report.unit, report.category, report.source) == ("25957", "flooding", "open311")
    assert report.contact is not None and report.contact.phone == "0912345678"


async def test_json_bodies_and_the_header_key_work_too(api: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = api
    body = {**FORM, "lat": 10.89354, "long": 106.79926, "media_url": ["https://img/1.jpg", "https://img/2.jpg"]}
    answer = await client.post("/open311/v2/requests.json", json=body, headers={"X-API-Key": API_KEY})
    assert answer.status_code == 201, answer.text
    assert topics.CITIZEN_REPORTS.decode(sink.sent[0][2]).media_urls == ["https://img/1.jpg", "https://img/2.jpg"]


async def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer(
    api: tuple[httpx.AsyncClient, MemorySink],
) -> None:
    client, sink = api
    first = await submit(client, **{"Idempotency-Key": "phone-42-attempt"})
    again = await submit(client, **{"Idempotency-Key": "phone-42-attempt"})
    assert first.status_code == 201 and again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()[0]["service_request_id"] == first.json()[0]["service_request_id"]
    assert len(sink.sent) == 1
    other = await submit(client, {**FORM, "description": "khác"}, **{"Idempotency-Key": "phone-42-attempt"})
    assert other.status_code == 422 and "different request" in other.json()[0]["description"]


async def test_kafka_down_is_503_and_the_retry_keeps_the_report_id(api: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = api
    sink.down = True
    refused = await submit(client, **{"Idempotency-Key": "k-outage"})
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    sink.down = False
    accepted = await submit(client, **{"Idempotency-Key": "k-outage"})
    assert accepted.status_code == 201
    report = topics.CITIZEN_REPORTS.decode(sink.sent[0][2])
    assert report.report_id == accepted.json()[0]["service_request_id"]
    retried = await submit(client, **{"Idempotency-Key": "k-outage"})
    assert retried.status_code == 200 and len(sink.sent) == 1


@pytest.mark.parametrize(
    ("form", "headers", "status", "words"),
    [
        ({k: v for k, v in FORM.items()}, {}, 401, "API key is required"),
        ({**FORM, "api_key": "stolen"}, {}, 403, "not known"),
        ({**FORM, "api_key": API_KEY, "service_code": "x"}, {}, 400, "service_code"),
        ({**FORM, "api_key": API_KEY, "lat": "10.0", "long": "100.0"}, {}, 422, "not in this province"),
        ({**FORM, "api_key": API_KEY, "attribute[unit]": "99999"}, {}, 422, "attribute[unit]"),
        ({**FORM, "api_key": API_KEY}, {"Idempotency-Key": "bad key with spaces"}, 400, "Idempotency-Key"),
    ],
)
async def test_wrong_requests_get_clear_open311_errors(
    api: tuple[httpx.AsyncClient, MemorySink], form: dict[str, str], headers: dict[str, str], status: int, words: str
) -> None:
    client, sink = api
    answer = await client.post("/open311/v2/requests.json", data=form, headers=headers)
    assert answer.status_code == status, answer.text
    [error] = answer.json()
    assert error["code"] == status and words in error["description"]
    assert sink.sent == []


async def test_oversized_and_unsupported_bodies(api: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = api
    big = await submit(client, {**FORM, "description": "x" * 3000})
    assert big.status_code == 413 and "2048" in big.json()[0]["description"]
    xml = await client.post(
        "/open311/v2/requests.json", content=b"<request/>", headers={"Content-Type": "application/xml"}
    )
    assert xml.status_code == 415
    broken = await client.post(
        "/open311/v2/requests.json", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert broken.status_code == 400 and "not JSON" in broken.json()[0]["description"]
    assert sink.sent == []


async def test_each_client_has_its_own_rate_limit(api: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = api
    answers = [await submit(client, {**FORM, "api_key": "slow-key"}) for _ in range(3)]
    assert [a.status_code for a in answers] == [201, 201, 429]
    assert int(answers[2].headers["retry-after"]) >= 1
    assert (await submit(client)).status_code == 201  # the other client is not slowed
    assert len(sink.sent) == 3


async def test_services_and_discovery(api: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, _sink = api
    services = (await client.get("/open311/v2/services.json", params={"lang": "en"})).json()
    assert {"service_code": "flooding", "service_name": "Flooding"}.items() <= services[0].items()
    assert (await client.get("/open311/v2/services/flooding.json")).json()["attributes"][0]["code"] == "unit"
    assert (await client.get("/open311/v2/services/nope.json")).status_code == 404
    assert (await client.get("/open311/v2/services.json", params={"jurisdiction_id": "79"})).status_code == 404
    assert (await client.get("/open311/v2/services.json", params={"lang": "fr"})).status_code == 400
    discovery = (await client.get("/open311/v2/discovery.json")).json()
    assert discovery["endpoints"][0]["url"].endswith("/open311/v2")
