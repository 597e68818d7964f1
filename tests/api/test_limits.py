"""The citizen API's limits as pure parts: per-address buckets, bounded memory, JSON depth, duplicate keys, files."""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest

from dashboards.api import open311
from dashboards.api.front_cache import FrontCache
from dashboards.api.ledger import Ledger
from dashboards.api.limits import AddressLimiter
from dashboards.api.routes_open311 import parse_fields
from dashboards.audit import AuditLog
from dashboards.sites import Site
from ioc.settings import CitizenApiSettings

SITE = Site.from_settings(CitizenApiSettings(site_unit="74"))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_each_address_has_its_own_bucket_and_memory_stays_bounded() -> None:
    clock = Clock()
    limiter = AddressLimiter(rate_per_s=1.0, burst=3, max_addresses=100, clock=clock)
    assert [limiter.take("10.0.0.1").allowed for _ in range(4)] == [True, True, True, False]
    refused = limiter.take("10.0.0.1")
    assert not refused.allowed and 0 < refused.retry_after_s <= 1
    assert limiter.take("10.0.0.2").allowed  # another address is not slowed
    clock.now = 1.0
    assert limiter.take("10.0.0.1").allowed  # a token came back after a second
    for i in range(10_000):  # a flood from many addresses
        limiter.take(f"192.168.{i // 256}.{i % 256}")
    assert len(limiter) == 100


def test_json_nesting_is_refused_before_decoding() -> None:
    for body in (b"[" * 10_000 + b"]" * 10_000, b'{"a":' * 10_000 + b"1" + b"}" * 10_000):
        with pytest.raises(open311.RequestError, match="nested deeper than 8 levels") as refused:
            parse_fields(body, "application/json")
        assert refused.value.status == 400
    # Brackets inside strings do not count; a flat Open311 body passes.
    fields = parse_fields(
        b'{"description": "[[[[[[[[[[[[ \\" {{{{{{{{{{", "media_url": ["a", "b"]}', "application/json"
    )
    assert fields["media_url"] == ["a", "b"]
    with pytest.raises(open311.RequestError, match="must be a string"):
        parse_fields(b'{"description": {"x": 1}}', "application/json")


def _submission(description: str, **extra: str) -> open311.Submission:
    fields = {"service_code": "flooding", "description": description, "lat": "10.89354", "long": "106.79926", **extra}
    return open311.parse_submission(fields, SITE)


def test_duplicate_keys_ignore_case_and_spacing_but_not_the_reporter_or_place() -> None:
    key = open311.duplicate_key(_submission("Ngập  sâu", phone="0912"), "app", "1.2.3.4")
    assert key == open311.duplicate_key(_submission(" ngập sâu ", phone="0912"), "app", "5.6.7.8")
    assert key != open311.duplicate_key(_submission("Ngập sâu", phone="0913"), "app", "1.2.3.4")
    assert key != open311.duplicate_key(_submission("Ngập sâu hơn", phone="0912"), "app", "1.2.3.4")
    assert key != open311.duplicate_key(_submission("Ngập sâu", phone="0912"), "other-app", "1.2.3.4")
    anonymous = open311.duplicate_key(_submission("Ngập sâu"), "app", "1.2.3.4")
    assert anonymous != open311.duplicate_key(_submission("Ngập sâu"), "app", "1.2.3.5")  # two people


def test_the_ledger_answers_duplicates_within_the_window_and_its_file_is_private(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "ledger" / "api.sqlite3"
    ledger = Ledger(path, ttl_s=3600, clock=clock)
    assert ledger.claim_report("k", "r1", window_s=60) == "r1"
    assert ledger.claim_report("k", "r2", window_s=60) == "r1"
    ledger.release_report("k", "r1")  # Kafka never took r1: the next one is not a duplicate
    assert ledger.claim_report("k", "r3", window_s=60) == "r3"
    clock.now = 61
    assert ledger.claim_report("k", "r4", window_s=60) == "r4"  # the window passed
    ledger.close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    audit = tmp_path / "audit" / "audit.jsonl"
    AuditLog(audit).record("op", "74", "sign-in")
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600


async def test_the_front_cache_never_keeps_long_keys() -> None:
    calls: list[str] = []

    async def app(scope: dict[str, Any], _receive: Any, send: Any) -> None:
        calls.append(scope["query_string"].decode())
        headers = [(b"cache-control", b"public, max-age=60"), (b"etag", b'"x"')]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})

    cache = FrontCache(app)

    async def get(query: str) -> None:
        scope = {"type": "http", "method": "GET", "path": "/open-data/v1/x", "query_string": query.encode()}
        scope["headers"] = []

        async def send(_message: dict[str, Any]) -> None:
            return None

        await cache(scope, None, send)

    for _ in range(2):
        await get("a=1")
        await get("a=" + "9" * 3000)
    assert calls == ["a=1", "a=" + "9" * 3000, "a=" + "9" * 3000]  # the short one cached, the long one never
    assert len(cache._entries) == 1
