"""Fixtures for the dashboards' tests: seeded warehouses (chDB and the real server), the app under AppTest.

chDB allows one data directory per process, so every chDB test shares one seeded directory and the
`ioc` database; tests that change rows use the real ClickHouse server, each in its own database. Query
results are cached per process by the data layer, so every test starts with an empty cache.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from dashboards import launch
from dashboards.data import MemoryCommandSender, commands, source
from dashboards.data import site as data_site
from ioc.clients import clickhouse as ch
from ioc.settings import ClickHouseEndpoint, DashboardSettings, KafkaEndpoint
from tests.dashboards import schema, seed

CHDB_DATABASE = "ioc"
ARTIFACTS = Path(os.environ.get("IOC_TEST_ARTIFACTS", Path(__file__).parents[2] / ".pytest_cache" / "artifacts"))


@pytest.fixture(scope="session")
def chdb_seeded(chdb_path: Path) -> Iterator[tuple[Path, seed.Seeded]]:
    """A chDB directory with the schema and the seeded rows, shared by the whole session."""
    path = chdb_path
    warehouse = ch.in_process(str(path))
    schema.create_schema(warehouse, CHDB_DATABASE)
    seeded = seed.seed(warehouse, CHDB_DATABASE)
    try:
        yield path, seeded
    finally:
        source.close_all()
        warehouse.close()


@pytest.fixture
def server_seeded(clickhouse: dict[str, Any]) -> Iterator[tuple[ClickHouseEndpoint, seed.Seeded]]:
    """A fresh database on the local stack's ClickHouse server, with the schema and the seeded rows."""
    database = f"dash_{uuid.uuid4().hex[:10]}"
    endpoint = ClickHouseEndpoint(
        host=clickhouse["host"],
        port=clickhouse["port"],
        http_port=clickhouse["http_port"],
        user=clickhouse["user"],
        password=SecretStr(clickhouse["password"]),
        database=database,
    )
    with clickhouse_admin(endpoint) as admin:
        schema.create_schema(admin, database)
        seeded = seed.seed(admin, database)
    try:
        yield endpoint, seeded
    finally:
        source.close_all()
        with clickhouse_admin(endpoint) as admin:
            schema.drop_database(admin, database)


def clickhouse_admin(endpoint: ClickHouseEndpoint) -> ch.Warehouse:
    return ch.connect(endpoint.model_copy(update={"database": "default"}))


@pytest.fixture(autouse=True)
def _empty_query_cache() -> None:
    data_site._CACHE.invalidate()


@pytest.fixture
def memory_sender(monkeypatch: pytest.MonkeyPatch) -> MemoryCommandSender:
    sender = MemoryCommandSender()
    monkeypatch.setattr(commands, "sender_for", lambda _endpoint: sender)
    return sender


def chdb_settings(path: Path, site: str, **overrides: Any) -> DashboardSettings:
    values: dict[str, Any] = {
        "site_unit": site,
        "chdb_path": path,
        "clickhouse": ClickHouseEndpoint(database=CHDB_DATABASE),
        "kafka": KafkaEndpoint(bootstrap="127.0.0.1:1"),
        **overrides,
    }
    return DashboardSettings(**values)


def claims(grants: list[str], *, login: str = "op", age_s: float = 60, lifetime_s: float = 3600) -> dict[str, Any]:
    """What st.user holds after an OIDC sign-in (the ID token's claims plus Streamlit's own keys)."""
    now = dt.datetime.now(dt.UTC).timestamp()
    return {
        "is_logged_in": True,
        "provider": "ioc",
        "sub": login,
        "name": f"Cán bộ {login}",
        "email": f"{login}@binhduong.gov.vn",
        "ioc_grants": grants,
        "iat": int(now - age_s),
        "exp": int(now - age_s + lifetime_s),
    }


OIDC = {"oidc_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}
"""Settings that switch sign-in on for AppTest runs (the provider itself is never contacted there)."""


def app(monkeypatch: pytest.MonkeyPatch, settings: DashboardSettings, user: dict[str, Any] | None = None) -> AppTest:
    """The dashboard under AppTest, with `settings` in the environment as `ioc dashboard` would put them."""
    for key in list(os.environ):
        if key.startswith(launch.ENV_PREFIX):
            monkeypatch.delenv(key)
    for key, value in launch.settings_env(settings).items():
        monkeypatch.setenv(key, value)
    at = AppTest.from_file(str(launch.APP), default_timeout=60)
    at.user = user if user is not None else {}
    return at


def page_text(at: AppTest) -> str:
    """Everything a page shows as text: headings, markdown, captions, metrics, alerts and table cells."""
    parts: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        parts.extend(str(e.value) for e in getattr(at, kind))
    parts.extend(f"{m.label} {m.value}" for m in at.metric)
    for frame in at.dataframe:
        parts.append(frame.value.to_string())
    return "\n".join(parts)
