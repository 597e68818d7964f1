"""The flood story's notifications on the real services: Kafka, ClickHouse, a real stream worker, an SMTP server
(aiosmtpd, the demo mailbox's handler) and a webhook receiver on loopback.

A flood opens in Đông Hòa → the ward's on-duty person gets an e-mail and the ops webhook a signed call (after two
refused attempts: retried); a citizen's report links to it; nobody acknowledges → it escalates to Dĩ An and the
district's on-duty person is told; the version redelivered sends nothing twice; the district cannot resolve without
a note, then resolves with one → the district is told and the citizen who left an e-mail gets the answer.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from confluent_kafka import Consumer, TopicPartition

from ioc import codecs, topics
from ioc.events import CitizenReport, Contact, IncidentAction
from ioc.signing import SIGNATURE_HEADER, verify_webhook
from ioc.units import load_tree
from iocctl.localstack.mailbox import SavingHandler, read_mailbox
from iocctl.localstack.process import free_port
from tests.streams.worker import Worker, open_flood, send_command

pytestmark = [pytest.mark.slow, pytest.mark.kafka, pytest.mark.clickhouse]

TREE = load_tree("2024")
DONG_HOA = TREE.get("25957")
SECRET = "test-webhook-secret"
WARD_ON_DUTY = "truc.ban@donghoa.example"
DISTRICT_ON_DUTY = "truc.ban@dian.example"
CITIZEN = "nguoi.dan@example.vn"
WARD_OFFICER = "hien.le@donghoa.example"
PHOTO_KEY = "ab" * 32 + ".jpg"  # a photo in the site's evidence store (the dashboard put it there)


class Receiver(http.server.ThreadingHTTPServer):
    """A webhook endpoint that refuses its first `failures` calls with 503, then records and accepts them."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.refused = 0
        self.calls: list[tuple[dict[str, str], bytes]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: Receiver

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.server.refused < self.server.failures:
            self.server.refused += 1
            self.send_response(503)
        else:
            self.server.calls.append(({k: v for k, v in self.headers.items()}, body))
            self.send_response(200)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


class NotifyingWorker(Worker):
    """The harness's worker with its notifier pointed at the test's SMTP server."""

    smtp_port = 0

    def env(self) -> dict[str, str]:
        return {
            **super().env(),
            "IOC_STREAMS_NOTIFY__SMTP_HOST": "127.0.0.1",
            "IOC_STREAMS_NOTIFY__SMTP_PORT": str(self.smtp_port),
            "IOC_STREAMS_NOTIFY__WEBHOOK_SECRETS": json.dumps({"ops": SECRET}),
            "IOC_STREAMS_NOTIFY__BACKOFF_S": "0.2",
            "IOC_STREAMS_SITE_CONFIG_WAIT_S": "20",
        }


def _site(key: str, unit: str, roster: list[dict[str, Any]], rules: list[dict[str, Any]], hook: str) -> dict[str, Any]:
    """The parts of an effective configuration (operators.config.effective_config) the workers read."""
    return {
        "site": {"unit": unit, "key": key},
        "scope": {"units": sorted(TREE.subtree(unit))},
        "rules": [],
        "workers": {"isolated": False},
        "retention": {},
        "roster": roster,
        "notifications": {
            "rules": rules,
            "webhooks": [{"name": "ops", "url": hook, "secretName": "ops"}],
        },
    }


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    directory, port = tmp_path / "mailbox", free_port()
    controller = Controller(SavingHandler(directory), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield directory, port
    finally:
        controller.stop()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver(failures=2)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def worker(
    kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path, mailbox: tuple[Path, int], receiver: Receiver
) -> Iterator[NotifyingWorker]:
    w = NotifyingWorker(kafka, clickhouse, tmp_path)
    w.smtp_port = mailbox[1]
    hook = f"http://127.0.0.1:{receiver.server_address[1]}/hook"
    run = uuid.uuid4().hex[:6]
    citizens = {"name": "citizens", "events": ["report-state"], "toReporters": True}
    sites = {
        f"test-{run}/ward-25957": _site(
            f"test-{run}/ward-25957",
            "25957",
            [{"name": "Trực ban Đông Hòa", "email": WARD_ON_DUTY, "roles": ["on-duty"]}],
            [{"name": "flood", "events": ["opened"], "toRoles": ["on-duty"], "channels": ["email", "ops"]}, citizens],
            hook,
        ),
        f"test-{run}/district-724": _site(
            f"test-{run}/district-724",
            "724",
            [
                {"name": "Trực ban Dĩ An", "email": DISTRICT_ON_DUTY, "roles": ["on-duty"]},
                {"name": "Lê Văn Hiện", "email": WARD_OFFICER, "roles": ["officer"], "unit": "25957"},
            ],
            [
                {"name": "district", "events": ["escalated", "resolved"], "toRoles": ["on-duty"]},
                {"name": "assigned", "events": ["assigned"], "toAssignee": True},
                citizens,
            ],
            hook,
        ),
    }
    for key, document in sites.items():
        w.send(topics.SITE_CONFIG, key, json.dumps(document).encode(), 0)
    w.start()
    try:
        w.wait_live()
        yield w
    finally:
        w.close()
        for key in sites:  # tombstones: no later test's worker reads these sites
            w.producer.produce(topics.SITE_CONFIG.name, key=key.encode(), value=None, partition=0)
        w.producer.flush(10)


def _delivered(worker: Worker, incident_id: str, event: str, recipient: str) -> dict[str, Any]:
    return worker.wait_for(
        f"SELECT * FROM {worker.database}.notification_deliveries FINAL "
        "WHERE incident_id = %(i)s AND event = %(e)s AND recipient = %(r)s",
        lambda rows: bool(rows) and rows[0]["status"] in ("sent", "failed"),
        timeout=90,
        i=incident_id,
        e=event,
        r=recipient,
    )[0]


def _mails(directory: Path, delivery_id: str) -> list[Any]:
    return [m for m in read_mailbox(directory) if m["X-IOC-Delivery"] == delivery_id]


def _version_one(kafka_admin: Worker, incident_id: str) -> tuple[int, bytes]:
    """The first version of the incident as the workers published it on ioc.incidents.v1: (partition, bytes)."""
    partition = topics.partition_for(incident_id, topics.INCIDENTS.partitions)
    consumer = Consumer({**kafka_admin.admin.client_config(), "group.id": f"t-{uuid.uuid4().hex[:6]}"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topics.INCIDENTS.name, partition), timeout=10)
        consumer.assign([TopicPartition(topics.INCIDENTS.name, partition, low)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            message = consumer.poll(1)
            if message is None or message.error() is not None:
                continue
            if message.key() == incident_id.encode() and b'"version":1,' in message.value():
                return partition, message.value()
            if message.offset() >= high - 1:
                break
    finally:
        consumer.close()
    raise AssertionError(f"version 1 of {incident_id} not found on {topics.INCIDENTS.name}")


def _committed_past(worker: Worker, partition: int, timeout: float = 60) -> None:
    """Until the workers have committed everything now on `ioc.incidents.v1[partition]` (so they handled it)."""
    consumer = Consumer({**worker.admin.client_config(), "group.id": worker.app_id})
    try:
        offset = consumer.get_watermark_offsets(TopicPartition(topics.INCIDENTS.name, partition), timeout=10)[1] - 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = consumer.committed([TopicPartition(topics.INCIDENTS.name, partition)], timeout=10)[0]
            if done.offset > offset:
                return
            worker.tick(worker.now)
            time.sleep(0.5)
    finally:
        consumer.close()
    raise AssertionError(f"the workers did not get past offset {offset} of {topics.INCIDENTS.name}[{partition}]")


def test_the_flood_story_tells_the_ward_the_district_and_the_citizen(
    worker: NotifyingWorker, mailbox: tuple[Path, int], receiver: Receiver
) -> None:
    directory = mailbox[0]
    db = worker.database
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    opened = now - dt.timedelta(minutes=20)
    worker.now = opened
    flood_id = open_flood(worker, DONG_HOA, opened)

    # The ward's on-duty person: an e-mail in the SMTP server, recorded on the incident.
    mail = _delivered(worker, flood_id, "opened", WARD_ON_DUTY)
    assert (mail["status"], mail["channel"], mail["attempts"], mail["path"]) == ("sent", "email", 1, "74/724/25957")
    [message] = _mails(directory, mail["delivery_id"])
    assert message["To"] == WARD_ON_DUTY and "Sự cố mới" in message["Subject"]
    assert flood_id in message.get_content() and "phường Đông Hòa" in message.get_content()

    # The webhook: refused twice (503), retried with backoff, then a call signed with the site's secret.
    hook = _delivered(worker, flood_id, "opened", "ops")
    assert (hook["status"], hook["attempts"]) == ("sent", 3)
    assert receiver.refused == 2
    headers, body = next((h, b) for h, b in receiver.calls if h["X-IOC-Delivery"] == hook["delivery_id"])
    verify_webhook(headers[SIGNATURE_HEADER], body, [SECRET], now=time.time())
    call = json.loads(body)
    assert call["event"] == "opened" and call["incident"]["incident_id"] == flood_id
    assert call["recipients"] == [WARD_ON_DUTY]

    # A citizen reports the flood nearby and leaves an e-mail: the report links to it.
    report = CitizenReport(
        report_id=f"r-{uuid.uuid4().hex[:10]}",
        source="open311",
        category="flooding",
        unit=DONG_HOA.code,
        submitted_at=now - dt.timedelta(minutes=2),
        text="Nước ngập ngang gối ở khu phố Đông A",
        lat=DONG_HOA.lat,
        lon=DONG_HOA.lon,
        contact=Contact(name="Nguyễn Văn Dân", email=CITIZEN),
    )
    worker.send(topics.CITIZEN_REPORTS, report.report_id, codecs.encode(report))
    own = worker.wait_for(
        f"SELECT incident_id, linked_incident_id FROM {db}.citizen_reports FINAL WHERE report_id = %(r)s",
        bool,
        r=report.report_id,
    )[0]
    assert own["linked_incident_id"] == flood_id

    # Nobody acknowledges within the 30 minutes of a high alarm: Dĩ An takes it over and its on-duty person is told.
    worker.tick(opened + dt.timedelta(minutes=31))
    escalated = _delivered(worker, flood_id, "escalated", DISTRICT_ON_DUTY)
    assert escalated["status"] == "sent" and escalated["responsible_unit"] == "724"
    [told] = _mails(directory, escalated["delivery_id"])
    assert "Chuyển cấp trên" in told["Subject"] and "thành phố Dĩ An" in told.get_content()

    # The first version delivered again (a producer's retry, a replay): nobody is told twice.
    partition, first = _version_one(worker, flood_id)
    worker.producer.produce(topics.INCIDENTS.name, key=flood_id.encode(), value=first, partition=partition)
    worker.producer.flush(10)
    _committed_past(worker, partition)
    assert len(_mails(directory, mail["delivery_id"])) == 1
    assert sum(1 for h, _ in receiver.calls if h["X-IOC-Delivery"] == hook["delivery_id"]) == 1

    # The district acknowledges and assigns the ward's officer, who is told.
    send_command(worker, flood_id, IncidentAction.ACKNOWLEDGE, now, None)
    send_command(worker, flood_id, IncidentAction.ASSIGN, now + dt.timedelta(seconds=10), None, assignee=WARD_OFFICER)
    assigned = _delivered(worker, flood_id, "assigned", WARD_OFFICER)
    assert assigned["status"] == "sent" and len(_mails(directory, assigned["delivery_id"])) == 1

    # Resolving needs a note: refused without one, with a clear reason; then it is resolved with one and a photo.
    refused = send_command(worker, flood_id, IncidentAction.RESOLVE, now + dt.timedelta(seconds=20), None)
    refusal = worker.wait_for(
        f"SELECT reason, detail FROM {db}.command_refusals FINAL WHERE command_id = %(c)s", bool, c=refused
    )[0]
    assert refusal["reason"] == "note-required" and "note" in refusal["detail"]
    note = "Đã bơm thoát nước, nước rút"
    send_command(worker, flood_id, IncidentAction.RESOLVE, now + dt.timedelta(minutes=1), note, evidence=(PHOTO_KEY,))
    resolved = _delivered(worker, flood_id, "resolved", DISTRICT_ON_DUTY)
    assert resolved["status"] == "sent"
    final = worker.query(
        f"SELECT assignee, evidence, note FROM {db}.incidents FINAL WHERE incident_id = %(i)s", i=flood_id
    )
    assert final == [{"assignee": WARD_OFFICER, "evidence": [PHOTO_KEY], "note": note}]
    history = worker.query(
        f"SELECT action FROM {db}.incident_history FINAL WHERE incident_id = %(i)s ORDER BY version", i=flood_id
    )
    assert [h["action"] for h in history if h["action"] != "linked"] == [
        "opened",
        "escalate",
        "acknowledge",
        "assign",
        "resolve",
    ]

    # The citizen is told their report was answered, with the resolution's note; their address is not recorded.
    answer = _delivered(worker, own["incident_id"], "report-state", f"citizen:{report.report_id}")
    assert answer["status"] == "sent"
    [letter] = _mails(directory, answer["delivery_id"])
    assert letter["To"] == CITIZEN and "Phản ánh của bạn" in letter["Subject"]
    assert "Đã bơm thoát nước, nước rút" in letter.get_content()
    recorded = worker.query(f"SELECT recipient FROM {db}.notification_deliveries FINAL")
    assert not any(CITIZEN in r["recipient"] for r in recorded)
