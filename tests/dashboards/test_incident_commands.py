"""An incident action from the page reaches the command topic, and the new state shows once it is processed.

Real Kafka and the real ClickHouse server of the local stack. The stream workers that consume commands
are not part of this test (yet): the test plays their part by writing the incident's next version the
way they do, and checks that the page waits for it and then shows the new state.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from dashboards.data import close_senders, command_partition
from ioc import kafka_access, topics
from ioc.events import IncidentAction
from ioc.settings import ClickHouseEndpoint, DashboardSettings, KafkaEndpoint
from iocctl.localstack.kafka import site_endpoint
from tests.dashboards import seed
from tests.dashboards.conftest import OIDC, app, claims, clickhouse_admin, page_text


def _command_topic(endpoint: KafkaEndpoint) -> str:
    """Where the district's dashboard commands: its site's topic on an authenticated broker, else the shared one."""
    return kafka_access.site_command_topic(seed.DISTRICT).name if endpoint.uses_sasl else topics.INCIDENT_COMMANDS.name


def _end_offset(admin: KafkaEndpoint, topic: str, partition: int) -> int:
    consumer = Consumer({**admin.client_config(), "group.id": f"probe-{uuid.uuid4().hex}"})
    try:
        _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return int(high)
    finally:
        consumer.close()


def _read_from(admin: KafkaEndpoint, topic: str, partition: int, offset: int, timeout: float = 20.0) -> list[Any]:
    consumer = Consumer({**admin.client_config(), "group.id": f"test-{uuid.uuid4().hex}", "enable.auto.commit": False})
    consumer.assign([TopicPartition(topic, partition, offset)])
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not found:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                found.append(message)
    finally:
        consumer.close()
    return found


@pytest.fixture(autouse=True)
def _drop_producers() -> Iterator[None]:
    # The dashboards' producer lives as long as the process; drop it before the test's Kafka stops.
    yield
    close_senders()


def test_acknowledge_reaches_the_topic_and_the_new_state_shows(
    server_seeded: tuple[ClickHouseEndpoint, seed.Seeded],
    kafka: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    endpoint, seeded = server_seeded
    # The dashboard commands as its site's principal (`ioc dashboard` does the same); the test reads as the admin.
    site_kafka, admin = site_endpoint(kafka, seed.DISTRICT), KafkaEndpoint.from_service(kafka)
    topic = _command_topic(site_kafka)
    settings = DashboardSettings(
        site_unit=seed.DISTRICT,
        clickhouse=endpoint,
        kafka=site_kafka,
        audit_log=tmp_path / "audit.jsonl",
        **OIDC,
    )
    partition = command_partition(seed.FLOOD_INCIDENT)
    start = _end_offset(admin, topic, partition)

    at = app(monkeypatch, settings, claims(["operator@724"], login="op724"))
    at.run()
    at.switch_page("screens/incidents.py").run()
    at.selectbox(key="incident-select").set_value(seed.FLOOD_INCIDENT).run()
    at.button(key=f"act-{IncidentAction.ACKNOWLEDGE.value}").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]

    # The command is on the topic, on the partition of the incident's episode, keyed by the incident.
    [message] = _read_from(admin, topic, partition, start)
    assert message.key() == seed.FLOOD_INCIDENT.encode()
    command = topics.INCIDENT_COMMANDS.decode(message.value())
    assert command.action is IncidentAction.ACKNOWLEDGE
    assert (command.actor, command.site_unit) == ("op724@binhduong.gov.vn", seed.DISTRICT)

    # Until a newer version exists the page says it is waiting and still shows the old state.
    at.run()
    assert any("Đang chờ xử lý" in i.value for i in at.info)

    # The stream workers process it: version 3, acknowledged (written as they write it).
    with clickhouse_admin(endpoint) as admin:
        row = seed.incident_row(
            incident_id=seed.FLOOD_INCIDENT,
            version=3,
            now=seeded.now,
            rule="flood-level",
            module="environment",
            unit=seed.FLOOD_WARD,
            state="acknowledged",
            severity="high",
            title="Ngập: mực nước vượt mức báo động [25957]",
        )
        admin.insert(f"{endpoint.database}.incidents", [row])
        admin.insert(
            f"{endpoint.database}.incident_history", [{**row, "action": "acknowledge", "actor": command.actor}]
        )
    at.run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]  # app.py turns a crash into an error
    assert not any("Đang chờ xử lý" in i.value for i in at.info)
    queue = at.dataframe[0].value  # the queue is the page's first table
    flood = queue[queue["Nội dung"] == "Ngập: mực nước vượt mức báo động [25957]"]
    assert list(flood["Trạng thái"]) == ["Đã tiếp nhận"] and list(flood["Phiên bản"]) == [3]
    text = page_text(at)
    assert "op724@binhduong.gov.vn" in text  # the history shows who acknowledged it
