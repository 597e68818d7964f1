"""Citizen reports on the real stream worker: PAKN steps and their refusals, linking to the flood, answers on resolve.

Real Kafka and ClickHouse, a real `python -m streams worker` process (tests/streams/worker.py). The flood incident
is opened by the detection the rules agent would send; reports go in as the citizen API produces them.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from ioc import codecs, topics
from ioc.events import CitizenReport, IncidentAction
from ioc.units import load_tree
from tests.streams.worker import Worker, open_flood, send_command

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.clickhouse]

TREE = load_tree("2024")
DONG_HOA, DI_AN = TREE.get("25957"), TREE.get("25942")  # 4.8 km apart: only the first is near the gauge


@pytest.fixture
def worker(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path) -> Any:
    w = Worker(kafka, clickhouse, tmp_path)
    w.start()
    try:
        w.wait_live()
        yield w
    finally:
        w.close()


def _report(unit: Any, at: dt.datetime, text: str) -> CitizenReport:
    return CitizenReport(
        report_id=f"r-{uuid.uuid4().hex[:10]}",
        source="open311",
        category="flooding",
        unit=unit.code,
        submitted_at=at,
        text=text,
        lat=unit.lat,
        lon=unit.lon,
    )


def _incident(worker: Worker, incident_id: str, predicate: Any) -> dict[str, Any]:
    return worker.wait_for(
        f"SELECT * FROM {worker.database}.incidents FINAL WHERE incident_id = %(i)s",
        lambda rows: bool(rows) and predicate(rows[0]),
        i=incident_id,
    )[0]


def test_reports_link_to_the_flood_move_through_pakn_and_are_answered_when_it_is_resolved(worker: Worker) -> None:
    db = worker.database
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    opened = now - dt.timedelta(minutes=20)
    flood_id = open_flood(worker, DONG_HOA, opened)

    near = _report(DONG_HOA, now - dt.timedelta(minutes=2), "Nước ngập ngang gối ở khu phố Đông A")
    far = _report(DI_AN, now - dt.timedelta(minutes=1), "Nước ngập trước chợ Dĩ An")
    for report in (near, far):
        worker.send(topics.CITIZEN_REPORTS, report.report_id, codecs.encode(report))
    stored = worker.wait_for(
        f"SELECT report_id, incident_id, linked_incident_id FROM {db}.citizen_reports FINAL "
        "WHERE report_id IN %(ids)s ORDER BY report_id",
        lambda rows: len(rows) == 2,
        ids=(near.report_id, far.report_id),
    )
    links = {r["report_id"]: r["linked_incident_id"] for r in stored}
    assert links == {near.report_id: flood_id, far.report_id: ""}
    own = {r["report_id"]: r["incident_id"] for r in stored}

    # The flood lists the near report; the report's own incident is received, with its deadlines, and names the flood.
    linked_flood = _incident(worker, flood_id, lambda row: near.report_id in row["reports"])
    assert far.report_id not in linked_flood["reports"]
    near_incident = _incident(worker, own[near.report_id], lambda row: True)
    detail = json.loads(near_incident["detail"])
    assert detail["pakn"] == "received" and detail["linked_incident"] == flood_id
    assert {"reject_by", "request_info_by", "answer_by"} <= set(detail)

    # PAKN on the far report: a rejection without a reason is refused, a request for information waits, the answer
    # follows the information supplied.
    far_id = own[far.report_id]
    _incident(worker, far_id, lambda row: row["state"] == "open")
    refused = send_command(worker, far_id, IncidentAction.REJECT, now, None)
    refusal = worker.wait_for(
        f"SELECT reason, detail FROM {db}.command_refusals FINAL WHERE command_id = %(c)s", bool, c=refused
    )[0]
    assert refusal["reason"] == "note-required" and "reason" in refusal["detail"]
    send_command(worker, far_id, IncidentAction.REQUEST_INFO, now + dt.timedelta(minutes=1), "Xin địa chỉ cụ thể")
    waiting = _incident(worker, far_id, lambda row: json.loads(row["detail"]).get("pakn") == "info_requested")
    assert waiting["sla_due_at"] is None  # the clock is stopped while the citizen is asked
    send_command(worker, far_id, IncidentAction.SUPPLY_INFO, now + dt.timedelta(minutes=30), "Số 12 đường số 5")
    send_command(worker, far_id, IncidentAction.ANSWER, now + dt.timedelta(minutes=40), "Đã cử đội thoát nước")
    answered = _incident(worker, far_id, lambda row: row["state"] == "resolved")
    assert json.loads(answered["detail"])["pakn_note"] == "Đã cử đội thoát nước"
    history = worker.query(
        f"SELECT action FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version", i=far_id
    )
    assert [h["action"] for h in history] == ["opened", "request_info", "supply_info", "answer"]

    # The district resolves the flood with a note: the linked report is answered with it.
    send_command(
        worker, flood_id, IncidentAction.RESOLVE, now + dt.timedelta(minutes=50), "Đã bơm thoát nước, nước rút"
    )
    near_answered = _incident(worker, own[near.report_id], lambda row: row["state"] == "resolved")
    near_detail = json.loads(near_answered["detail"])
    assert near_detail["pakn"] == "answered" and "Đã bơm thoát nước, nước rút" in near_detail["pakn_note"]
    actions = worker.query(
        f"SELECT action, actor FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version",
        i=own[near.report_id],
    )
    assert [a["action"] for a in actions] == ["opened", "answer"]
