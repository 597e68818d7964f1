"""The Reports page's PAKN desk: deadlines shown, a reject without a reason refused, a reason sent as a command.

Real Kafka and the real ClickHouse server of the local stack. The test plays the stream workers by writing the
report incident's next version the way they do (tests/streams/test_report_links.py runs the real workers).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.data import close_senders, command_partition
from ioc import pakn, topics
from ioc.events import IncidentAction
from ioc.settings import ClickHouseEndpoint, DashboardSettings, KafkaEndpoint
from ioc.workdays import default_calendar
from iocctl.localstack.kafka import site_endpoint
from tests.dashboards import seed
from tests.dashboards.conftest import OIDC, app, claims, clickhouse_admin, page_text
from tests.dashboards.test_incident_commands import _command_topic, _end_offset, _read_from

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.clickhouse]


@pytest.fixture(autouse=True)
def _drop_producers() -> Iterator[None]:
    yield
    close_senders()


def _report_incident(seeded: seed.Seeded, incident_id: str, version: int, detail: dict[str, str], state: str) -> Any:
    row = seed.incident_row(
        incident_id=incident_id,
        version=version,
        now=seeded.now,
        rule=pakn.REPORT_RULE,
        module="environment",
        unit=seed.FLOOD_WARD,
        state=state,
        severity="high",
        title="Ngập úng: nước ngập trước trường học",
        reports=[incident_id.rsplit(":", 2)[1]],
    )
    return {**row, "detail": json.dumps(detail, ensure_ascii=False, sort_keys=True)}


def test_the_desk_shows_deadlines_refuses_a_reject_without_reason_and_sends_one_with_it(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded],
    kafka: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, seeded = server_seeded
    report_id = f"r-{uuid.uuid4().hex[:8]}"
    incident_id = f"citizen-report:{seed.FLOOD_WARD}:{report_id}:20250601T0810"
    submitted = seeded.now - dt.timedelta(minutes=20)
    deadlines = pakn.deadlines(default_calendar(), submitted, 2)
    detail = {"source": "open311", pakn.DETAIL_STATE: "received", **deadlines.as_detail()}
    first = _report_incident(seeded, incident_id, 1, detail, "open")
    with clickhouse_admin(endpoint) as admin:
        admin.insert(f"{endpoint.database}.incidents", [first])
        admin.insert(f"{endpoint.database}.incident_history", [{**first, "action": "opened", "actor": ""}])
        admin.insert(
            f"{endpoint.database}.citizen_reports",
            [
                {
                    "report_id": report_id,
                    "source": "open311",
                    "category": "flooding",
                    "unit": seed.FLOOD_WARD,
                    "path": "74/724/25957",
                    "submitted_at": submitted,
                    "text": "Nước ngập trước trường học",
                    "lat": None,
                    "lon": None,
                    "address": "",
                    "media_urls": [],
                    "contact_name": "",
                    "contact_phone": "",
                    "contact_email": "",
                    "incident_id": incident_id,
                    "linked_incident_id": seed.FLOOD_INCIDENT,
                    "state": "open",
                    "version": 1,
                }
            ],
        )
    site_kafka, admin_kafka = site_endpoint(kafka, seed.DISTRICT), KafkaEndpoint.from_service(kafka)
    topic, partition = _command_topic(site_kafka), command_partition(incident_id)
    start = _end_offset(admin_kafka, topic, partition)
    settings = DashboardSettings(
        site_unit=seed.DISTRICT, clickhouse=endpoint, kafka=site_kafka, audit_log=tmp_path / "audit.jsonl", **OIDC
    )
    at = app(monkeypatch, settings, claims(["operator@724"], login="op724"))
    at.run()
    at.switch_page("screens/reports.py").run()
    assert not at.exception, at.exception
    table = at.dataframe[0].value
    mine = table[table["Sự cố liên quan"] == incident_id]
    assert list(mine["Trạng thái PAKN"]) == ["Đã tiếp nhận, chờ xem xét"]
    assert list(mine["Gắn với sự cố"]) == [seed.FLOOD_INCIDENT]

    at.selectbox(key="report-desk-select").set_value(incident_id).run()
    text = page_text(at)
    assert "Hạn từ chối" in text and "Hạn trả lời" in text and seed.FLOOD_INCIDENT in text
    # Without a reason, rejecting is refused on the page and nothing is sent.
    at.button(key=f"report-act-{IncidentAction.REJECT.value}").click().run()
    assert any("reject needs a note: the reason the citizen reads" in w.value for w in at.warning), at.warning
    assert _end_offset(admin_kafka, topic, partition) == start

    at.text_area(key="report-desk-note").input("Phản ánh trùng với phản ánh đã tiếp nhận trước đó")
    at.button(key=f"report-act-{IncidentAction.REJECT.value}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [message] = _read_from(admin_kafka, topic, partition, start)
    command = topics.INCIDENT_COMMANDS.decode(message.value())
    assert command.action is IncidentAction.REJECT and command.incident_id == incident_id
    assert command.note == "Phản ánh trùng với phản ánh đã tiếp nhận trước đó"
    audit = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
    assert '"incident-reject"' in audit and incident_id in audit

    # The workers carry it out (written as they write it): the page shows the report rejected, with its reason.
    rejected = _report_incident(
        seeded,
        incident_id,
        2,
        {**detail, pakn.DETAIL_STATE: "rejected", pakn.DETAIL_NOTE: command.note or ""},
        "closed",
    )
    with clickhouse_admin(endpoint) as admin:
        admin.insert(f"{endpoint.database}.incidents", [rejected])
        admin.insert(
            f"{endpoint.database}.incident_history", [{**rejected, "action": "reject", "actor": command.actor}]
        )
    at.run()
    table = at.dataframe[0].value
    mine = table[table["Sự cố liên quan"] == incident_id]
    assert list(mine["Trạng thái PAKN"]) == ["Từ chối tiếp nhận"]
    assert list(mine["Trả lời / lý do"]) == ["Phản ánh trùng với phản ánh đã tiếp nhận trước đó"]
