"""The portal connector without services: judging messages, de-duplicating versions, the signed webhook."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import AsyncIterator

import httpx
import msgspec
import pytest

from ioc import codecs, signing, topics
from ioc.events import DeadLetter, DossierStatus, ServiceRecord
from ioc.scope import site_scope
from ioc.settings import PortalGatewaySettings
from sensors.gateways import DossierIntake, GatewayState, create_app, judge
from tests.gateways.asgi import asgi_client
from tests.gateways.memory import MemorySink
from tests.reporting.samples import snapshot

SECRET = "portal-secret"
SCOPE = site_scope("724")  # Dĩ An: wards 25942, 25951, 25957, ...


def body_of(*records: ServiceRecord) -> bytes:
    if len(records) == 1:
        return codecs.encode(records[0])
    return b"[" + b",".join(codecs.encode(r) for r in records) + b"]"


# --- judging -----------------------------------------------------------------------------------------------


def test_one_snapshot_and_a_batch_are_judged_item_by_item() -> None:
    good = snapshot("HS-1", 1)
    other_district = snapshot("HS-2", 1, unit="25747")
    verdicts = judge(body_of(good, other_district), SCOPE, max_batch=10)
    assert [type(v).__name__ for v in verdicts] == ["Accepted", "Rejected"]
    assert verdicts[1].reason == "unknown-unit" and "25747" in verdicts[1].detail  # type: ignore[union-attr]
    assert verdicts[1].dossier_id == "HS-2"  # type: ignore[union-attr]
    [single] = judge(body_of(good), SCOPE, max_batch=10)
    assert single.record == good  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"not json", "not-json"),
        (b"[1, 2", "not-json"),
        (b"[]", "schema"),
        (b'{"dossier_id": "x"}', "schema"),
        (b'{"schema": "ioc.sensor-reading.v1"}', "schema"),
    ],
)
def test_bad_bodies_get_a_dead_letter_reason(body: bytes, reason: str) -> None:
    [verdict] = judge(body, SCOPE, max_batch=10)
    assert verdict.reason == reason  # type: ignore[union-attr]


def test_a_batch_over_the_limit_is_refused_whole() -> None:
    [verdict] = judge(body_of(*(snapshot(f"HS-{i}", 1) for i in range(3))), SCOPE, max_batch=2)
    assert verdict.reason == "too-large"  # type: ignore[union-attr]


def test_a_snapshot_the_contract_refuses_names_the_field() -> None:
    raw = json.loads(codecs.encode(snapshot("HS-1", 1)))
    raw["due_at"] = "2020-01-01T00:00:00+07:00"
    [verdict] = judge(json.dumps(raw).encode(), SCOPE, max_batch=10)
    assert verdict.reason == "schema" and "due_at" in verdict.detail  # type: ignore[union-attr]


# --- versions ------------------------------------------------------------------------------------------------


def test_replays_and_out_of_order_statuses_are_sent_once_and_refusals_dead_lettered() -> None:
    sink, state = MemorySink(), GatewayState(None)
    intake = DossierIntake(sink, state)
    v1, v2 = snapshot("HS-1", 1), snapshot("HS-1", 2, status=DossierStatus.IN_PROGRESS)
    v3 = snapshot("HS-1", 3, status=DossierStatus.PROCESSED)

    def take(*records: ServiceRecord) -> list[str]:
        verdicts = judge(body_of(*records), SCOPE, max_batch=10)
        return [r.result for r in asyncio.run(intake.take(verdicts, "test"))]

    assert take(v1) == ["accepted"]
    assert take(v1) == ["duplicate"]
    assert take(v3) == ["accepted"]
    assert take(v2) == ["stale"]  # arrived after a newer status
    assert take(v2, v3, snapshot("HS-9", 1, unit="25747")) == ["stale", "duplicate", "refused"]
    sent = [codecs.decode(v, ServiceRecord) for v in sink.on(topics.SERVICE_RECORDS.name)]
    assert [(r.dossier_id, r.status_version) for r in sent] == [("HS-1", 1), ("HS-1", 3)]
    [letter] = [codecs.decode(v, DeadLetter) for v in sink.on(topics.DEADLETTER.name)]
    assert letter.reason == "unknown-unit" and letter.device == "HS-9" and letter.vendor == "portal"
    assert codecs.decode(letter.payload, ServiceRecord).dossier_id == "HS-9"
    assert state.version("HS-1") == 3


def test_a_version_is_recorded_only_once_kafka_has_it() -> None:
    sink, state = MemorySink(), GatewayState(None)
    intake = DossierIntake(sink, state)
    sink.down = True
    verdicts = judge(body_of(snapshot("HS-1", 1)), SCOPE, max_batch=10)
    with pytest.raises(Exception, match="timed out"):
        asyncio.run(intake.take(verdicts, "test"))
    assert state.version("HS-1") is None
    sink.down = False
    assert [r.result for r in asyncio.run(intake.take(verdicts, "test"))] == ["accepted"]


def test_state_keeps_versions_and_cursors_across_restarts(tmp_path) -> None:
    path = tmp_path / "state.sqlite3"
    first = GatewayState(path)
    first.record_version("HS-1", 4)
    first.record_version("HS-1", 2)  # never lowers
    first.save_cursor("http://portal/feed", "c-10")
    first.close()
    again = GatewayState(path)
    assert again.version("HS-1") == 4
    assert again.cursor("http://portal/feed") == "c-10"


# --- the webhook -------------------------------------------------------------------------------------------------


@pytest.fixture
async def portal() -> AsyncIterator[tuple[httpx.AsyncClient, MemorySink]]:
    sink = MemorySink()
    settings = PortalGatewaySettings(site_unit="724", webhook_secrets=[SECRET], max_body_bytes=4096)
    async with asgi_client(create_app(settings, sink=sink, state=GatewayState(None))) as client:
        yield client, sink


def signed(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    stamp = int(at if at is not None else time.time())
    return {signing.SIGNATURE_HEADER: signing.sign_webhook(secret, body, stamp), "Content-Type": "application/json"}


async def test_a_signed_snapshot_is_accepted_and_a_replay_is_a_duplicate(
    portal: tuple[httpx.AsyncClient, MemorySink],
) -> None:
    client, sink = portal
    body = body_of(snapshot("HS-1", 1))
    first = await client.post("/portal/v1/dossier-events", content=body, headers=signed(body))
    assert first.status_code == 202, first.text
    assert first.json()["accepted"] == 1
    again = await client.post("/portal/v1/dossier-events", content=body, headers=signed(body))
    assert again.status_code == 202
    assert again.json()["results"][0]["result"] == "duplicate"
    assert len(sink.on(topics.SERVICE_RECORDS.name)) == 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "missing"),
        ({signing.SIGNATURE_HEADER: "t=1,v1=00"}, "expired"),
        ({signing.SIGNATURE_HEADER: "nonsense"}, "malformed"),
    ],
)
async def test_unsigned_or_badly_signed_calls_are_401_and_nothing_is_kept(
    portal: tuple[httpx.AsyncClient, MemorySink], headers: dict[str, str], reason: str
) -> None:
    client, sink = portal
    answer = await client.post("/portal/v1/dossier-events", content=body_of(snapshot("HS-1", 1)), headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert reason in answer.json()["detail"]
    assert sink.sent == []


async def test_a_signature_with_another_secret_is_refused(portal: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = portal
    body = body_of(snapshot("HS-1", 1))
    answer = await client.post("/portal/v1/dossier-events", content=body, headers=signed(body, "guess"))
    assert answer.status_code == 401 and "mismatch" in answer.json()["detail"]
    assert sink.sent == []


async def test_an_oversized_body_is_413(portal: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = portal
    body = b"[" + b" " * 5000 + b"]"
    answer = await client.post("/portal/v1/dossier-events", content=body, headers=signed(body))
    assert answer.status_code == 413
    assert "4096" in answer.json()["detail"]
    assert sink.sent == []


async def test_an_unknown_unit_is_422_and_dead_lettered(portal: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = portal
    body = body_of(snapshot("HS-1", 1), snapshot("HS-2", 1, unit="99999"))
    answer = await client.post("/portal/v1/dossier-events", content=body, headers=signed(body))
    assert answer.status_code == 422
    results = answer.json()["results"]
    assert [r["result"] for r in results] == ["accepted", "refused"]
    assert results[1]["reason"] == "unknown-unit"
    assert len(sink.on(topics.SERVICE_RECORDS.name)) == 1 and len(sink.on(topics.DEADLETTER.name)) == 1


async def test_a_body_that_is_not_json_is_400_and_dead_lettered(portal: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = portal
    body = b"<xml>dossier</xml>"
    answer = await client.post("/portal/v1/dossier-events", content=body, headers=signed(body))
    assert answer.status_code == 400
    [letter] = [msgspec.json.decode(v, type=DeadLetter) for v in sink.on(topics.DEADLETTER.name)]
    assert letter.reason == "not-json" and letter.payload == body


async def test_kafka_down_is_503_with_retry_after(portal: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, sink = portal
    sink.down = True
    body = body_of(snapshot("HS-1", 1))
    answer = await client.post("/portal/v1/dossier-events", content=body, headers=signed(body))
    assert answer.status_code == 503 and answer.headers["retry-after"] == "5"
    assert (await client.get("/readyz")).status_code == 503
    sink.down = False
    assert (await client.post("/portal/v1/dossier-events", content=body, headers=signed(body))).status_code == 202


async def test_reading_reports_is_off_without_a_token(portal: tuple[httpx.AsyncClient, MemorySink]) -> None:
    client, _sink = portal
    assert (await client.get("/reports/v1/upward")).status_code == 404
    assert (await client.get("/healthz")).json() == {"status": "ok"}


def test_timestamps_are_utc_aware() -> None:
    assert snapshot("HS-1", 1).received_at.utcoffset() == dt.timedelta(hours=7)


def test_json_nested_deeper_than_the_decoder_goes_is_not_json_not_an_exception() -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    (verdict,) = judge(deep, SCOPE, max_batch=500)
    assert (verdict.reason, verdict.detail) == ("not-json", "the JSON is nested too deeply")  # type: ignore[union-attr]
