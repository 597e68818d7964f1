"""The Data quality page shows a site the dead letters of its own units' devices, as the bridge really writes them.

End to end on the real services: a vendor publishes refused payloads over Mosquitto for two sibling wards, the
real bridge dead-letters them onto Kafka (their source is whatever the bridge writes), the worker's own row
function turns them into `deadletters` rows on the real ClickHouse (the warehouse schema from the migrations),
and the page's query functions (`SiteData.rejections`, `SiteData.rejections_recent`) of each site read them:
a ward sees its own letters and not its sibling's, the district and the province see both.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from dashboards.data import SiteData, warehouse_for
from dashboards.sites import Site
from ioc import topics
from ioc.clients import clickhouse as ch
from ioc.events import DeadLetter
from ioc.settings import ClickHouseEndpoint
from streams.warehouse import migrate, rows
from tests.dashboards.conftest import chdb_settings
from tests.sensors import conftest as ingestion

vendor = ingestion.vendor
run_bridge = ingestion.run_bridge
tail = ingestion.tail

WARD = "25957"  # phường Đông Hòa, Dĩ An
SIBLING = "25951"  # phường Bình An, Dĩ An
DISTRICT = "724"  # thành phố Dĩ An
PROVINCE = "74"


@pytest.fixture
def letters_database(clickhouse: dict[str, Any]) -> Iterator[ClickHouseEndpoint]:
    """A fresh warehouse database on the real server, made by the migrations the stream workers run."""
    endpoint = ClickHouseEndpoint.from_service(clickhouse).model_copy(
        update={"database": f"dlq_{uuid.uuid4().hex[:10]}"}
    )
    admin = ch.connect(endpoint.model_copy(update={"database": "default"}))
    try:
        migrate(admin, endpoint.database)
        yield endpoint
    finally:
        admin.command(f"DROP DATABASE IF EXISTS {endpoint.database}")
        admin.close()


def _bridge_letters(mosquitto: dict[str, Any], vendor: tuple[str, str], letters: Any) -> list[tuple[DeadLetter, bytes]]:
    """Refused payloads published for the ward and its sibling, as the bridge dead-letters them onto Kafka."""
    name = vendor[0]
    login = ingestion.vendor_endpoint(mosquitto, vendor)
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=uuid.uuid4().hex[:10], protocol=mqtt.MQTTv5)
    client.username_pw_set(login.username, login.password.get_secret_value() if login.password else None)
    client.connect(login.host, login.port)
    client.loop_start()
    try:
        for unit in (WARD, SIBLING):
            refused = json.dumps({"vendor": name, "device": f"wl-{unit}", "unit": unit, "kind": "water"}).encode()
            client.publish(topics.mqtt_topic(unit, "water", name, f"wl-{unit}"), refused, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()
    found: list[tuple[DeadLetter, bytes]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(found) < 2:
        for message in letters.poll(0.5):
            letter = topics.DEADLETTER.decode(message.value())
            if letter.vendor == name:
                found.append((letter, bytes(message.value())))
    assert len(found) == 2, f"the bridge dead-lettered {len(found)} of the 2 refused payloads"
    return found


def test_each_site_sees_its_own_units_dead_letters_as_the_bridge_writes_them(
    mosquitto: dict[str, Any],
    vendor: tuple[str, str],
    run_bridge: Callable[..., Any],
    tail: Callable[[str], Any],
    letters_database: ClickHouseEndpoint,
) -> None:
    letters = tail(topics.DEADLETTER.name)
    run_bridge()
    written = _bridge_letters(mosquitto, vendor, letters)
    warehouse = ch.connect(letters_database)
    try:
        warehouse.insert(f"{letters_database.database}.deadletters", [rows.deadletter_row(*w) for w in written])
    finally:
        warehouse.close()

    def site_reads(site: str, unit: str) -> tuple[set[str], dict[str, int]]:
        settings = chdb_settings(Path("unused"), site).model_copy(
            update={"chdb_path": None, "clickhouse": letters_database}
        )
        data = SiteData(warehouse_for(settings), Site.from_settings(settings), live_ttl_s=0, slow_ttl_s=0)
        recent = {r["device"] for r in data.rejections_recent(unit) if r["vendor"] == vendor[0]}
        by_vendor = {r["reason"]: int(r["letters"]) for r in data.rejections(unit) if r["vendor"] == vendor[0]}
        return recent, by_vendor

    ward, ward_counts = site_reads(WARD, WARD)
    assert ward == {f"wl-{WARD}"}, [w[0].source for w in written]
    assert sum(ward_counts.values()) == 1
    assert site_reads(SIBLING, SIBLING)[0] == {f"wl-{SIBLING}"}
    district, district_counts = site_reads(DISTRICT, DISTRICT)
    assert district == {f"wl-{WARD}", f"wl-{SIBLING}"} and sum(district_counts.values()) == 2
    assert site_reads(DISTRICT, WARD)[0] == {f"wl-{WARD}"}  # the district drilled down to the ward
    assert site_reads(PROVINCE, PROVINCE)[0] == {f"wl-{WARD}", f"wl-{SIBLING}"}
