"""End to end: an Open311 request becomes an incident in the right commune, and GET follows its lifecycle.

Real Kafka, real ClickHouse and a real stream-worker process (tests/streams/worker.py); the API produces
to Kafka with its own producer, exactly as in production.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from dashboards.api import create_app
from ioc import kafka_access, topics, units
from ioc.events import IncidentAction, IncidentCommand
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint
from tests.api.conftest import API_KEY, api_settings
from tests.gateways.asgi import asgi_client
from tests.streams.worker import Worker

BINH_CHUAN = units.load_tree("2024").get("25969")  # Thuận An: a commune whose marker no other shares
COMMANDS = topics.INCIDENT_COMMANDS


@pytest.fixture
def worker(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Any:
    running = Worker(kafka, clickhouse, tmp_path)
    running.start()
    running.wait_live()
    yield running
    running.close()


@pytest.fixture
async def api(worker: Worker, kafka: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    ch = worker.ch
    endpoint = ClickHouseEndpoint(
        host=ch["host"], port=ch["port"], user=ch["user"], password=SecretStr(ch["password"]), database=worker.database
    )
    settings = api_settings(endpoint, kafka=KafkaEndpoint.from_service(kafka, kafka_access.API), kafka_timeout_s=20)
    async with asgi_client(create_app(settings)) as client:
        yield client


async def _status(api: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    answer = await api.get(f"/open311/v2/requests/{request_id}.json", params={"lang": "en"})
    assert answer.status_code == 200, answer.text
    [request] = answer.json()
    return request  # type: ignore[no-any-return]


async def _until(api: httpx.AsyncClient, worker: Worker, request_id: str, state: str) -> dict[str, Any]:
    """The request once its incident is stored in `state` (the report row can come a moment before it)."""
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        request = await _status(api, request_id)
        if request["ioc_state"] == state and request["history"] and request["history"][-1]["ioc_state"] == state:
            return request
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"request stayed {request['ioc_state']}, never {state}\n{worker.log()}")
        worker.tick(worker.now)  # flush what partitions have buffered, as the leader's ticks would
        await asyncio.sleep(0.5)


def _command(worker: Worker, incident_id: str, action: IncidentAction, **extra: Any) -> None:
    command = IncidentCommand(
        command_id=f"cmd-{uuid.uuid4().hex[:8]}",
        incident_id=incident_id,
        action=action,
        actor="operator@25969",
        site_unit="725",
        issued_at=dt.datetime.now(dt.UTC),
        grants=("operator@725",),
        **extra,
    )
    partition = topics.incident_partition(incident_id, COMMANDS.partitions)
    worker.send(COMMANDS, topics.episode_of(incident_id), COMMANDS.encode(command), partition)


async def test_an_open311_request_becomes_an_incident_and_its_status_follows_it(
    api: httpx.AsyncClient, worker: Worker
) -> None:
    submitted = await api.post(
        "/open311/v2/requests.json",
        data={
            "api_key": API_KEY,
            "service_code": "flooding",
            "description": "Nước ngập qua bánh xe trên đường ĐT 743",
            "lat": str(BINH_CHUAN.lat),
            "long": str(BINH_CHUAN.lon),
            "email": "dan@example.vn",
        },
        headers={"Idempotency-Key": "flow-1"},
    )
    assert submitted.status_code == 201, submitted.text
    request_id = submitted.json()[0]["service_request_id"]

    first = await _status(api, request_id)
    assert first["ioc_state"] in {"received", "open"}  # the workers may already have it
    assert first["status"] == "open"

    opened = await _until(api, worker, request_id, "open")
    assert opened["unit"] == "25969" and opened["unit_name"] == "phường Bình Chuẩn"
    assert opened["agency_responsible"] == "phường Bình Chuẩn"
    assert opened["expected_datetime"] is not None  # the SLA clock, in working days
    assert [h["action"] for h in opened["history"]] == ["opened"]
    rows = worker.query(
        f"SELECT incident_id, unit, rule, state FROM {worker.database}.incidents FINAL WHERE has(reports, %(r)s)",
        r=request_id,
    )
    assert len(rows) == 1 and rows[0]["unit"] == "25969" and rows[0]["rule"] == "citizen-report"
    incident_id = rows[0]["incident_id"]

    _command(worker, incident_id, IncidentAction.ACKNOWLEDGE)
    acknowledged = await _until(api, worker, request_id, "acknowledged")
    # The citizen reads the PAKN state (ioc.pakn): acknowledging puts the report in progress.
    assert acknowledged["status"] == "open" and acknowledged["status_notes"] == "In progress"
    assert acknowledged["pakn_state"] == "in_progress" and acknowledged["answer_by"] is not None

    _command(worker, incident_id, IncidentAction.RESOLVE, note="Đã khơi thông cống")
    resolved = await _until(api, worker, request_id, "resolved")
    assert resolved["status"] == "closed"
    assert resolved["status_notes"] == "Answered: Đã khơi thông cống" and resolved["answer_by"] is None
    assert [h["action"] for h in resolved["history"]] == ["opened", "acknowledge", "resolve"]
    assert "dan@example.vn" not in str(resolved)

    retried = await api.post(
        "/open311/v2/requests.json",
        data={
            "api_key": API_KEY,
            "service_code": "flooding",
            "description": "Nước ngập qua bánh xe trên đường ĐT 743",
            "lat": str(BINH_CHUAN.lat),
            "long": str(BINH_CHUAN.lon),
            "email": "dan@example.vn",
        },
        headers={"Idempotency-Key": "flow-1"},
    )
    assert retried.status_code == 200 and retried.json()[0]["service_request_id"] == request_id
    count = worker.count(
        f"SELECT count() AS n FROM {worker.database}.citizen_reports FINAL WHERE report_id = %(r)s", r=request_id
    )
    assert count == 1


async def _until_pakn(api: httpx.AsyncClient, worker: Worker, request_id: str, phase: str) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + 90
    while True:
        request = await _status(api, request_id)
        if request["pakn_state"] == phase:
            return request
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"request stayed {request['pakn_state']}, never {phase}\n{worker.log()}")
        worker.tick(worker.now)
        await asyncio.sleep(0.5)


async def test_the_citizen_follows_the_pakn_steps_through_status_and_status_notes(
    api: httpx.AsyncClient, worker: Worker
) -> None:
    submitted = await api.post(
        "/open311/v2/requests.json",
        data={
            "api_key": API_KEY,
            "service_code": "infrastructure",
            "description": "Ổ gà lớn trước cổng trường tiểu học",
            "lat": str(BINH_CHUAN.lat),
            "long": str(BINH_CHUAN.lon),
        },
        headers={"Idempotency-Key": f"pakn-{uuid.uuid4().hex[:8]}"},
    )
    assert submitted.status_code == 201, submitted.text
    request_id = submitted.json()[0]["service_request_id"]
    received = await _until_pakn(api, worker, request_id, "received")
    assert received["status"] == "open" and received["status_notes"] == "Received, awaiting review"
    [row] = worker.query(
        f"SELECT incident_id FROM {worker.database}.citizen_reports FINAL WHERE report_id = %(r)s", r=request_id
    )
    incident_id = row["incident_id"]

    _command(worker, incident_id, IncidentAction.REQUEST_INFO, note="Xin ảnh chụp ổ gà")
    asked = await _until_pakn(api, worker, request_id, "info_requested")
    assert asked["status"] == "open"
    assert asked["status_notes"] == "More information requested: Xin ảnh chụp ổ gà"
    in_vietnamese = (await api.get(f"/open311/v2/requests/{request_id}.json")).json()[0]
    assert in_vietnamese["status_notes"] == "Đề nghị bổ sung thông tin: Xin ảnh chụp ổ gà"

    _command(worker, incident_id, IncidentAction.SUPPLY_INFO, note="Người dân gửi ảnh qua tổng đài 1022")
    await _until_pakn(api, worker, request_id, "info_supplied")
    _command(worker, incident_id, IncidentAction.REJECT, note="Thuộc thẩm quyền Sở Giao thông vận tải")
    rejected = await _until_pakn(api, worker, request_id, "rejected")
    assert rejected["status"] == "closed" and rejected["answer_by"] is None
    assert rejected["status_notes"] == "Rejected: Thuộc thẩm quyền Sở Giao thông vận tải"
    assert [h["action"] for h in rejected["history"]] == ["opened", "request_info", "supply_info", "reject"]
    assert [h["label_en"] for h in rejected["history"]][1:] == [
        "More information requested",
        "Information supplied",
        "Rejected",
    ]
