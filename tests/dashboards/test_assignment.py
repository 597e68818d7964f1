"""Assigning incidents to the roster's people and showing who was told: pure rules, then the page on real services.

The page test runs the dashboard under AppTest against the local stack's Kafka and ClickHouse: the operator
assigns the flood to a roster officer (the command on the topic names them), and the notifications recorded for
the incident show on it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from dashboards import actions, auth, evidence, people
from dashboards.data import close_senders, command_partition
from dashboards.sites import Site
from ioc import kafka_access, topics
from ioc.authz import CommandRefusal
from ioc.events import IncidentAction
from ioc.people import Person
from ioc.settings import ClickHouseEndpoint, DashboardSettings, KafkaEndpoint
from ioc.units import load_tree
from iocctl.localstack.kafka import site_endpoint
from tests.dashboards import seed
from tests.dashboards.conftest import OIDC, app, claims, clickhouse_admin, page_text

TREE = load_tree("2024")
ROSTER = (
    Person(name="Nguyễn Văn Điều", email="truc.ban@dian.example", roles=["on-duty"], team="dieu-hanh"),
    Person(name="Lê Văn Hiện", email="hien.le@donghoa.example", roles=["officer"], team="dong-hoa", unit="25957"),
    Person(name="Đỗ Thị Bình", email="binh.do@binhan.example", roles=["officer"], unit="25951"),
)
INCIDENT = {
    "incident_id": "flood-level:25957:20250601T0810",
    "unit": "25957",
    "responsible_unit": "25957",
    "state": "open",
    "version": 2,
}


def _site(unit: str = "724") -> Site:
    return Site.from_settings(DashboardSettings(site_unit=unit))


def test_assign_needs_an_assignee_and_carries_it() -> None:
    access = auth.access_for({"sub": "a", "email": "op@dian.example", "ioc_grants": ["operator@724"]}, _site())
    assert IncidentAction.ASSIGN in actions.allowed_actions("open")
    assert IncidentAction.ASSIGN not in actions.allowed_actions("resolved")
    with pytest.raises(actions.ActionRefused) as refused:
        actions.build_command(access, INCIDENT, IncidentAction.ASSIGN)
    assert refused.value.reason is CommandRefusal.ASSIGNEE_REQUIRED
    command = actions.build_command(access, INCIDENT, IncidentAction.ASSIGN, assignee="hien.le@donghoa.example")
    assert (command.assignee, command.action) == ("hien.le@donghoa.example", IncidentAction.ASSIGN)
    # Resolving still needs a note, whatever else it carries.
    with pytest.raises(actions.ActionRefused) as unnoted:
        actions.build_command(access, INCIDENT, IncidentAction.RESOLVE, note="  ")
    assert unnoted.value.reason is CommandRefusal.NOTE_REQUIRED


def test_options_put_the_incidents_people_first_then_teams() -> None:
    me = (Person(name="Cán bộ trực", email="op@dian.example", roles=["on-duty"], unit="724"),)
    options = people.assignment_options(ROSTER, me, TREE, ["25957", "25957"])
    assert list(options) == [
        "op@dian.example",
        "hien.le@donghoa.example",
        "truc.ban@dian.example",
        "binh.do@binhan.example",  # serves the sibling ward: offered, last
        "team:dieu-hanh",
        "team:dong-hoa",
    ]
    assert options["hien.le@donghoa.example"] == "Lê Văn Hiện <hien.le@donghoa.example> (officer)"
    assert people.assignee_label("team:dong-hoa", ROSTER) == "Tổ / Team dong-hoa"
    assert people.assignee_label("hien.le@donghoa.example", ROSTER) == "Lê Văn Hiện <hien.le@donghoa.example>"


def test_roster_from_the_site_file_and_from_the_sign_in(tmp_path: Path) -> None:
    path = tmp_path / "site.json"
    path.write_text(json.dumps({"roster": [p.model_dump(mode="json", by_alias=True) for p in ROSTER]}), "utf-8")
    assert people.load_roster(path) == ROSTER
    assert people.load_roster(tmp_path / "missing.json") == ()
    assert people.load_roster(None) == ()
    signed_in = {
        "sub": "x",
        "email": "hien.le@donghoa.example",
        "name": "Lê Văn Hiện",
        "ioc_grants": ["operator@25957"],
        "ioc_roster": ["officer@25957", "on-duty@25747", "bogus"],  # 25747 is not in Dĩ An's site
    }
    access = auth.access_for(signed_in, _site())
    assert [(p.email, p.unit, [r.value for r in p.roles]) for p in access.roster] == [
        ("hien.le@donghoa.example", "25957", ["officer"])
    ]


PHOTO = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415478da63f8cfc0000003010100"
    "c9fe92ef0000000049454e44ae426082"
)


def test_evidence_is_kept_by_content_and_rides_on_the_resolution(tmp_path: Path) -> None:
    store = evidence.DirectoryStore(tmp_path / "evidence")
    key = store.put(PHOTO)
    assert key.endswith(".png") and store.put(PHOTO) == key and store.get(key) == PHOTO
    with pytest.raises(evidence.EvidenceError, match="JPEG or PNG photos and PDF"):
        store.put(b"MZ\x90\x00 not a photo")
    with pytest.raises(evidence.EvidenceError, match="not an evidence key"):
        store.get("../../etc/passwd")
    assert store.get("0" * 64 + ".png") is None
    access = auth.access_for({"sub": "a", "email": "op@dian.example", "ioc_grants": ["operator@724"]}, _site())
    command = actions.build_command(access, INCIDENT, IncidentAction.RESOLVE, note="Đã bơm nước", evidence=[key])
    assert command.evidence == (key,)


# --- the page, on the local stack's Kafka and ClickHouse ------------------------------------------------------


@pytest.fixture(autouse=True)
def _drop_producers() -> Iterator[None]:
    yield
    close_senders()


@pytest.mark.slow
@pytest.mark.kafka
@pytest.mark.clickhouse
def test_the_page_assigns_to_a_roster_officer_and_lists_the_notifications(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded],
    kafka: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, seeded = server_seeded
    site_kafka, admin = site_endpoint(kafka, seed.DISTRICT), KafkaEndpoint.from_service(kafka)
    topic = (
        kafka_access.site_command_topic(seed.DISTRICT).name if site_kafka.uses_sasl else topics.INCIDENT_COMMANDS.name
    )
    config = tmp_path / "site.json"
    config.write_text(json.dumps({"roster": [p.model_dump(mode="json", by_alias=True) for p in ROSTER]}), "utf-8")
    with clickhouse_admin(endpoint) as warehouse:
        warehouse.insert(
            f"{endpoint.database}.notification_deliveries",
            [
                {
                    "delivery_id": uuid.uuid4().hex,
                    "incident_id": seed.FLOOD_INCIDENT,
                    "event": "opened",
                    "rule": "phuong-truc-ban",
                    "recipient": "truc.ban@donghoa.example",
                    "channel": "email",
                    "status": "sent",
                    "attempts": 2,
                    "detail": "accepted by 127.0.0.1:2525",
                    "unit": seed.FLOOD_WARD,
                    "path": "74/724/25957",
                    "responsible_unit": seed.FLOOD_WARD,
                    "responsible_path": "74/724/25957",
                    "created_at": seeded.now.replace(microsecond=0),
                    "updated_at": seeded.now.replace(microsecond=0),
                }
            ],
        )
    settings = DashboardSettings(
        site_unit=seed.DISTRICT,
        clickhouse=endpoint,
        kafka=site_kafka,
        audit_log=tmp_path / "audit.jsonl",
        site_config=config,
        evidence_dir=tmp_path / "evidence",
        **OIDC,
    )
    partition = command_partition(seed.FLOOD_INCIDENT)
    consumer = Consumer({**admin.client_config(), "group.id": f"t-{uuid.uuid4().hex}", "enable.auto.commit": False})
    try:
        start = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)[1]
        at = app(monkeypatch, settings, claims(["operator@724"], login="op724"))
        at.run()
        at.switch_page("screens/incidents.py").run()
        at.selectbox(key="incident-select").set_value(seed.FLOOD_INCIDENT).run()
        text = page_text(at)
        assert "Thông báo đã gửi" in text and "truc.ban@donghoa.example" in text  # who was told, on the incident
        at.selectbox(key="incident-assignee").set_value("hien.le@donghoa.example").run()
        at.button(key=f"act-{IncidentAction.ASSIGN.value}").click().run()
        assert not at.exception and not at.error, [e.value for e in at.error]

        consumer.assign([TopicPartition(topic, partition, start)])
        deadline, found = time.monotonic() + 20, None
        while found is None and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                found = message
    finally:
        consumer.close()
    assert found is not None, "no command on the topic"
    command = topics.INCIDENT_COMMANDS.decode(found.value())
    assert (command.action, command.assignee) == (IncidentAction.ASSIGN, "hien.le@donghoa.example")
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text("utf-8").splitlines()]
    assigned = [e for e in audit if e["action"] == "incident-assign"]
    assert assigned and assigned[0]["detail"]["assignee"] == "hien.le@donghoa.example"
    assert dt.datetime.fromisoformat(assigned[0]["at"]).tzinfo is not None

    # The workers carried it out and the officer sent a photo from the field with the dispatch: the page shows the
    # assignee, and the photo to this operator (the view audited).
    key = evidence.DirectoryStore(tmp_path / "evidence").put(PHOTO)
    with clickhouse_admin(endpoint) as warehouse:
        row = seed.incident_row(
            incident_id=seed.FLOOD_INCIDENT,
            version=5,
            now=seeded.now,
            rule="flood-level",
            module="environment",
            unit=seed.FLOOD_WARD,
            state="dispatched",
            severity="high",
            title="Ngập: mực nước vượt mức báo động [25957]",
        )
        row.update(assignee="hien.le@donghoa.example", evidence=[key], note="Đang bơm thoát nước")
        warehouse.insert(f"{endpoint.database}.incidents", [row])
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "Người được giao: Lê Văn Hiện <hien.le@donghoa.example>" in page_text(at)
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text("utf-8").splitlines()]
    assert any(e["action"] == "view-evidence" and e["targets"] == [key] for e in audit)
