"""End to end: webhook replays and out-of-order statuses reach the warehouse once, refusals are dead-lettered.

Real Kafka, real ClickHouse and a real stream-worker process; the connector produces with its own
producer. The raw `dossiers` table (not only its FINAL view) shows that nothing was sent twice.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ioc import kafka_access, signing
from ioc.events import DossierStatus, ServiceRecord
from ioc.scope import site_scope
from ioc.settings import KafkaEndpoint, PortalGatewaySettings
from sensors.gateways import create_app
from streams.reporting import build_for, current
from tests.gateways.asgi import asgi_client
from tests.gateways.test_portal_logic import body_of
from tests.reporting.samples import snapshot
from tests.streams.worker import Worker

SECRET = "e2e-portal-secret"


@pytest.fixture
def worker(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Any:
    running = Worker(kafka, clickhouse, tmp_path)
    running.start()
    running.wait_live()
    yield running
    running.close()


@pytest.fixture
async def portal(kafka: dict[str, Any], tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = PortalGatewaySettings(
        site_unit="724",
        kafka=KafkaEndpoint.from_service(kafka, kafka_access.GATEWAY),
        webhook_secrets=[SECRET],
        state_db=tmp_path / "portal.sqlite3",
        kafka_timeout_s=20,
    )
    async with asgi_client(create_app(settings)) as client:
        yield client


async def post(portal: httpx.AsyncClient, *records: ServiceRecord) -> dict[str, Any]:
    body = body_of(*records)
    headers = {signing.SIGNATURE_HEADER: signing.sign_webhook(SECRET, body, int(time.time()))}
    answer = await portal.post("/portal/v1/dossier-events", content=body, headers=headers)
    assert answer.status_code in (202, 422), answer.text
    return answer.json()  # type: ignore[no-any-return]


async def test_replays_and_late_statuses_count_once(portal: httpx.AsyncClient, worker: Worker) -> None:
    received = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    tag = f"E2E-{int(time.time())}"
    d1 = [
        snapshot(f"{tag}-1", v, status=s, received=received, occurred_at=received + dt.timedelta(minutes=v))
        for v, s in ((1, DossierStatus.RECEIVED), (2, DossierStatus.IN_PROGRESS), (3, DossierStatus.PROCESSED))
    ]
    d2 = [
        snapshot(f"{tag}-2", v, unit="25951", received=received, occurred_at=received + dt.timedelta(minutes=v))
        for v in (1, 2)
    ]
    results = []
    results += (await post(portal, d1[0]))["results"]
    results += (await post(portal, d1[0]))["results"]  # the portal's retry
    results += (await post(portal, d1[2]))["results"]
    results += (await post(portal, d1[1]))["results"]  # arrives after the newer status
    results += (await post(portal, d2[0], d2[1], d2[0]))["results"]
    refused = await post(portal, d2[1], snapshot(f"{tag}-3", 1, unit="25747", received=received))
    results += refused["results"]
    assert [r["result"] for r in results] == [
        "accepted",
        "duplicate",
        "accepted",
        "stale",
        "accepted",
        "accepted",
        "stale",
        "duplicate",
        "refused",
    ]
    assert refused["refused"] == 1

    db = worker.database
    worker.wait_for(
        f"SELECT count() AS n FROM {db}.dossiers WHERE dossier_id LIKE %(t)s",
        lambda rows: rows[0]["n"] >= 4,
        t=f"{tag}-%",
    )
    await asyncio.sleep(2)  # anything sent twice would arrive by now
    raw = worker.query(
        f"SELECT dossier_id, status_version FROM {db}.dossiers WHERE dossier_id LIKE %(t)s"
        " ORDER BY dossier_id, status_version",
        t=f"{tag}-%",
    )
    assert [(r["dossier_id"], r["status_version"]) for r in raw] == [
        (f"{tag}-1", 1),
        (f"{tag}-1", 3),
        (f"{tag}-2", 1),
        (f"{tag}-2", 2),
    ]
    latest = worker.query(
        f"SELECT dossier_id, status FROM {db}.dossiers FINAL WHERE dossier_id LIKE %(t)s ORDER BY dossier_id",
        t=f"{tag}-%",
    )
    assert [r["status"] for r in latest] == ["processed", "received"]

    report = build_for(
        worker.warehouse, db, site_scope("724"), current("month", received), generated_at=dt.datetime.now(dt.UTC)
    )
    assert report.score.dossiers == 2  # each dossier once in Decision 766, however often it was sent

    letters = worker.wait_for(
        f"SELECT reason, device, source FROM {db}.deadletters WHERE device = %(d)s",
        lambda rows: len(rows) >= 1,
        d=f"{tag}-3",
    )
    assert letters[0]["reason"] == "unknown-unit" and letters[0]["source"] == "http:/portal/v1/dossier-events"
