"""Fixtures for the citizen API's tests: a seeded database on the real ClickHouse server, settings, clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from ioc.clients import clickhouse as ch
from ioc.settings import ApiClientConfig, CitizenApiSettings, ClickHouseEndpoint, KafkaEndpoint
from streams.warehouse import migrate
from tests.api import seed

API_KEY = "test-app-key"


def endpoint_of(ch: dict[str, Any], database: str = "default") -> ClickHouseEndpoint:
    return ClickHouseEndpoint(
        host=ch["host"],
        port=ch["port"],
        http_port=ch["http_port"],
        user=ch["user"],
        password=SecretStr(ch["password"]),
        database=database,
    )


@pytest.fixture(scope="session")
def seeded_api_db(clickhouse: dict[str, Any]) -> Iterator[tuple[ClickHouseEndpoint, seed.Seeded]]:
    """A fresh database with the warehouse schema and the seeded rows, shared by the session's API tests."""
    database = f"api_{uuid.uuid4().hex[:10]}"
    with ch.connect(endpoint_of(clickhouse)) as admin:
        migrate(admin, database)
        seeded = seed.seed(admin, database)
    yield endpoint_of(clickhouse, database), seeded
    with ch.connect(endpoint_of(clickhouse)) as admin:
        admin.command(f"DROP DATABASE IF EXISTS {database}")


def api_settings(ch: ClickHouseEndpoint, **changes: Any) -> CitizenApiSettings:
    """Settings for a test API: the seeded database, one client, open data on, no caching."""
    fields: dict[str, Any] = {
        "clickhouse": ch,
        "kafka": KafkaEndpoint(bootstrap="127.0.0.1:1"),
        "site_unit": "74",
        "public_enabled": True,
        "clients": {"test-app": ApiClientConfig(key=SecretStr(API_KEY), rate_per_s=1000, burst=1000)},
        "cache_ttl_s": 0,
        "slow_cache_ttl_s": 0,
        "kafka_timeout_s": 3,
        # Tests send many requests from one address, and the same report on purpose: the security tests
        # (tests/security/test_api.py) switch these back on with their own limits.
        "address_rate_per_s": 1e6,
        "address_burst": 1_000_000,
        "duplicate_window_s": 0,
    }
    fields.update(changes)
    return CitizenApiSettings(**fields)
