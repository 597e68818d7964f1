"""Attacks on the citizen API, served by uvicorn on loopback against the real Kafka and ClickHouse.

Each test attacks with ordinary HTTP clients (httpx), asserts the refusal and its reason, and that a
legitimate client kept being served in the same run: a flood from one address (429 with Retry-After while
another address still gets 200), a client over its key's limit (429 while another key's report still
reaches Kafka), a report sent twice (the first report's id, one record on Kafka), a 10,000-deep nested
JSON body and a malformed one (400 naming the problem; the next report still accepted).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from pydantic import SecretStr

from dashboards.api import create_app
from ioc import kafka_access, topics
from ioc.clients import clickhouse as ch
from ioc.settings import ApiClientConfig, ClickHouseEndpoint, KafkaEndpoint
from streams.warehouse import migrate
from tests.api import seed
from tests.api.conftest import api_settings, endpoint_of
from tests.api.server import serve

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.clickhouse]

APP_KEY = "security-app-key"
SLOW_KEY = "security-slow-key"
REPORTS = topics.CITIZEN_REPORTS
SUBMIT = "/open311/v2/requests.json"


def _form(description: str, **extra: str) -> dict[str, str]:
    return {
        "api_key": APP_KEY,
        "service_code": "flooding",
        "description": description,
        "lat": "10.89354",
        "long": "106.79926",
        "address_string": "Chợ Đông Hòa",
        "phone": "0912345678",
        **extra,
    }


def _end_offsets(admin: KafkaEndpoint) -> dict[int, int]:
    consumer = Consumer({**admin.client_config(), "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        return {
            p: int(consumer.get_watermark_offsets(TopicPartition(REPORTS.name, p), timeout=10)[1])
            for p in range(REPORTS.partitions)
        }
    finally:
        consumer.close()


def _keys_since(admin: KafkaEndpoint, start: dict[int, int], idle_s: float = 3.0) -> list[str]:
    """The keys of every citizen report written to Kafka since `start` (read until the topic is idle)."""
    consumer = Consumer({**admin.client_config(), "group.id": f"read-{uuid.uuid4().hex}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(REPORTS.name, p, offset) for p, offset in start.items()])
    keys: list[str] = []
    last = time.monotonic()
    try:
        while time.monotonic() - last < idle_s:
            message = consumer.poll(0.3)
            if message is not None and not message.error():
                keys.append((message.key() or b"").decode())
                last = time.monotonic()
    finally:
        consumer.close()
    return keys


@pytest.fixture
def admin(kafka: dict[str, Any]) -> KafkaEndpoint:
    return KafkaEndpoint.from_service(kafka)


@pytest.fixture
def api_db(clickhouse: dict[str, Any]) -> Iterator[ClickHouseEndpoint]:
    """A fresh database on the real ClickHouse server with the warehouse schema and tests/api's rows."""
    database = f"sec_{uuid.uuid4().hex[:10]}"
    with ch.connect(endpoint_of(clickhouse)) as warehouse:
        migrate(warehouse, database)
        seed.seed(warehouse, database)
    yield endpoint_of(clickhouse, database)
    with ch.connect(endpoint_of(clickhouse)) as warehouse:
        warehouse.command(f"DROP DATABASE IF EXISTS {database}")


@pytest.fixture
def api_url(api_db: ClickHouseEndpoint, kafka: dict[str, Any]) -> Iterator[str]:
    """The API as it runs in production (its own Kafka principal), with small limits to attack."""
    settings = api_settings(
        api_db,
        kafka=KafkaEndpoint.from_service(kafka, kafka_access.API),
        kafka_timeout_s=20,
        clients={
            "app": ApiClientConfig(key=SecretStr(APP_KEY), rate_per_s=100, burst=100),
            "slow-app": ApiClientConfig(key=SecretStr(SLOW_KEY), rate_per_s=0.01, burst=2),
        },
        address_rate_per_s=0.5,
        address_burst=20,
        duplicate_window_s=600,
    )
    with serve(create_app(settings)) as url:
        yield url


def _client(url: str, address: str) -> httpx.Client:
    """An ordinary HTTP client whose connections come from `address` (any 127.x address is loopback)."""
    return httpx.Client(base_url=url, transport=httpx.HTTPTransport(local_address=address), timeout=30)


def test_a_flood_from_one_address_gets_429_while_another_address_is_served(api_url: str) -> None:
    with _client(api_url, "127.0.0.1") as flooder, _client(api_url, "127.0.0.2") as citizen:
        answers = [flooder.get("/open311/v2/services.json") for _ in range(25)]
        codes = [a.status_code for a in answers]
        assert codes[:20] == [200] * 20 and set(codes[20:]) == {429}, codes
        refused = answers[-1]
        assert int(refused.headers["Retry-After"]) >= 1
        [error] = refused.json()
        assert error["code"] == 429 and "too many requests from 127.0.0.1" in error["description"]
        # Another address is not slowed down, on any route (problem details outside /open311).
        assert citizen.get("/open311/v2/services.json").status_code == 200
        assert citizen.get("/healthz").status_code == 200
        # The flooder is refused on the other families too, as an RFC 9457 problem.
        other = flooder.get("/open-data/v1/air-quality")
        assert other.status_code == 429 and other.headers["content-type"].startswith("application/problem+json")
        assert other.json()["status"] == 429 and int(other.headers["Retry-After"]) >= 1


def test_a_client_over_its_key_limit_gets_429_while_another_key_still_reports(
    api_url: str, admin: KafkaEndpoint
) -> None:
    start = _end_offsets(admin)
    tag = uuid.uuid4().hex[:8]
    with _client(api_url, "127.0.0.3") as slow, _client(api_url, "127.0.0.4") as app:
        answers = [slow.post(SUBMIT, data=_form(f"Ngập {tag} lần {i}", api_key=SLOW_KEY)) for i in range(3)]
        assert [a.status_code for a in answers] == [201, 201, 429], [a.text for a in answers]
        assert "slow-app is over its rate limit" in answers[2].json()[0]["description"]
        assert int(answers[2].headers["Retry-After"]) >= 1
        fine = app.post(SUBMIT, data=_form(f"Ngập {tag} của app"))
        assert fine.status_code == 201, fine.text
    accepted = {a.json()[0]["service_request_id"] for a in answers[:2]} | {fine.json()[0]["service_request_id"]}
    assert accepted <= set(_keys_since(admin, start))  # every accepted report is on Kafka, the refused one not


def test_the_same_report_sent_twice_gets_the_first_id_and_one_record(api_url: str, admin: KafkaEndpoint) -> None:
    start = _end_offsets(admin)
    text = f"Cây đổ chắn ngang đường số {uuid.uuid4().hex[:6]}"
    with _client(api_url, "127.0.0.5") as citizen:
        first = citizen.post(SUBMIT, data=_form(text))
        again = citizen.post(SUBMIT, data=_form("  " + text.upper() + " "))  # case and spacing do not matter
        other = citizen.post(SUBMIT, data=_form(text + " (thêm đoạn khác)"))
    assert first.status_code == 201, first.text
    first_id = first.json()[0]["service_request_id"]
    assert again.status_code == 200 and again.json()[0]["service_request_id"] == first_id
    assert again.headers["Duplicate-Of"] == first_id and "trùng" in again.json()[0]["service_notice"]
    assert other.status_code == 201 and other.json()[0]["service_request_id"] != first_id
    keys = _keys_since(admin, start)
    assert keys.count(first_id) == 1 and other.json()[0]["service_request_id"] in keys


def test_deeply_nested_and_malformed_json_bodies_get_400_and_reports_still_flow(
    api_url: str, admin: KafkaEndpoint
) -> None:
    start = _end_offsets(admin)
    deep = b'{"description":' + b"[" * 10_000 + b"]" * 10_000 + b"}"
    with _client(api_url, "127.0.0.6") as attacker, _client(api_url, "127.0.0.7") as citizen:
        nested = attacker.post(SUBMIT, content=deep, headers={"Content-Type": "application/json", "X-API-Key": APP_KEY})
        assert nested.status_code == 400, nested.text
        assert "nested deeper than 8 levels" in nested.json()[0]["description"]
        broken = attacker.post(
            SUBMIT, content=b'{"description": "x",', headers={"Content-Type": "application/json", "X-API-Key": APP_KEY}
        )
        assert broken.status_code == 400 and "not JSON" in broken.json()[0]["description"]
        objects = attacker.post(
            SUBMIT,
            content=b'{"description": {"a": {"b": 1}}}',
            headers={"Content-Type": "application/json", "X-API-Key": APP_KEY},
        )
        assert objects.status_code == 400 and "`description` must be a string" in objects.json()[0]["description"]
        fine = citizen.post(SUBMIT, data=_form(f"Đèn tín hiệu hỏng {uuid.uuid4().hex[:6]}"))
        assert fine.status_code == 201, fine.text
        assert attacker.get("/healthz").status_code == 200  # the server is alive and answering
    assert fine.json()[0]["service_request_id"] in _keys_since(admin, start)
