"""The Data quality page shows a site the dead letters of its own units' devices, as the bridge really writes them.

End to end on the real services: a vendor publishes refused payloads over Mosquitto for two sibling wards, the
real bridge dead-letters them onto Kafka (their source is whatever the bridge writes), the worker's own placing
and row functions turn them into `deadletters` rows on the real ClickHouse 18.16 (the warehouse schema from the
migrations), and the page's query functions (`SiteData.rejections`, `SiteData.rejections_recent`) of each site
read them: a ward sees its own letters and not its sibling's, the district and the province see both. A site's
dashboard reads its own database (operators/sitedb.py): there the letters arrive through the site's feed, the
ward's in its district's copy and not in a sibling district's, the unplaced ones in the province's only, and
never with their bytes.
"""

from __future__ import annotations

import datetime as dt
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
from ioc.clients import mqttstop
from ioc.events import DeadLetter, DeadLetterReason
from ioc.scope import site_scope
from ioc.settings import ClickHouseEndpoint
from ioc.units import load_tree
from operators import sitedb
from streams.agents.deadletters import letter_place
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
OTHER_DISTRICT = "721"  # thành phố Thủ Dầu Một, the district's sibling


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
        mqttstop.stop(client)
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
        placed = [rows.deadletter_row(*w, place=letter_place(w[0].source, load_tree())) for w in written]
        warehouse.insert(f"{letters_database.database}.deadletters", placed)
    finally:
        warehouse.close()

    def site_reads(site: str, unit: str) -> tuple[set[str], dict[str, int]]:
        return _page_reads(letters_database, site, unit, vendor[0])

    ward, ward_counts = site_reads(WARD, WARD)
    assert ward == {f"wl-{WARD}"}, [w[0].source for w in written]
    assert sum(ward_counts.values()) == 1
    assert site_reads(SIBLING, SIBLING)[0] == {f"wl-{SIBLING}"}
    district, district_counts = site_reads(DISTRICT, DISTRICT)
    assert district == {f"wl-{WARD}", f"wl-{SIBLING}"} and sum(district_counts.values()) == 2
    assert site_reads(DISTRICT, WARD)[0] == {f"wl-{WARD}"}  # the district drilled down to the ward
    assert site_reads(PROVINCE, PROVINCE)[0] == {f"wl-{WARD}", f"wl-{SIBLING}"}


def _page_reads(endpoint: ClickHouseEndpoint, site: str, unit: str, vendor: str) -> tuple[set[str], dict[str, int]]:
    """Devices in the refusals list and letters per reason of `vendor`, as `site`'s page reads them from `endpoint`."""
    settings = chdb_settings(Path("unused"), site).model_copy(update={"chdb_path": None, "clickhouse": endpoint})
    data = SiteData(warehouse_for(settings), Site.from_settings(settings), live_ttl_s=0, slow_ttl_s=0)
    recent = {r["device"] for r in data.rejections_recent(unit) if r["vendor"] == vendor}
    by_vendor = {r["reason"]: int(r["letters"]) for r in data.rejections(unit) if r["vendor"] == vendor}
    return recent, by_vendor


def _letter(source: str, vendor: str, device: str, minutes_ago: int) -> tuple[DeadLetter, bytes]:
    at = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=minutes_ago)
    letter = DeadLetter(
        source=source,
        reason=DeadLetterReason.SCHEMA,
        detail="thiếu trường `seq`",
        received_at=at,
        payload=b'{"plate": "61A-123.45"}',
        vendor=vendor or None,
        device=device or None,
    )
    return letter, topics.DEADLETTER.encode(letter)


def _drop_site_databases(admin: ch.Warehouse, databases: list[str]) -> None:
    # Feeds first: a feed whose copy is gone would fail every insert into the warehouse table.
    for database in databases:
        for row in admin.query("SELECT name FROM system.tables WHERE database = %(db)s", {"db": database}):
            if "_feed_" in row["name"]:
                admin.command(f"DROP TABLE IF EXISTS {database}.{row['name']}")
        admin.command(f"DROP DATABASE IF EXISTS {database}")


def test_site_databases_hold_their_subtrees_letters_and_the_page_reads_them_there(
    letters_database: ClickHouseEndpoint,
) -> None:
    source = letters_database.database
    vendor = f"v{uuid.uuid4().hex[:8]}"
    ward_topic = f"mqtt:{topics.mqtt_topic(WARD, 'water', vendor, 'wl-ward')}"
    old_topic = f"mqtt:{topics.mqtt_topic(SIBLING, 'air', vendor, 'aq-old')}"
    other_topic = f"mqtt:{topics.mqtt_topic('25813', 'air', vendor, 'aq-other')}"  # a ward of OTHER_DISTRICT
    sites = {unit: f"{source}_site_{unit}" for unit in (DISTRICT, OTHER_DISTRICT, PROVINCE)}
    admin = ch.connect(letters_database)
    try:
        # A letter stored before migration 0011 (no unit or path written): the copy places it by its source.
        old, old_raw = _letter(old_topic, vendor, "aq-old", 30)
        old_row = rows.deadletter_row(old, old_raw, place=("", ""))
        del old_row["unit"], old_row["path"]
        admin.insert(f"{source}.deadletters", [old_row])
        for unit, database in sites.items():
            sitedb.ensure_tables(admin, database, site_scope(unit), source_db=source)
        # After the feeds exist: the worker's placing and row functions, as the dead-letter agent runs them.
        tree = load_tree()
        written = [
            _letter(ward_topic, vendor, "wl-ward", 5),
            _letter(other_topic, vendor, "aq-other", 6),
            _letter("http:/portal/dossiers", vendor, "", 7),  # names no unit
        ]
        admin.insert(
            f"{source}.deadletters",
            [rows.deadletter_row(*w, place=letter_place(w[0].source, tree)) for w in written],
        )

        def copied(unit: str) -> dict[str, tuple[str, str, str]]:
            found = admin.query(f"SELECT source, unit, path, payload FROM {sites[unit]}.deadletters FINAL")
            assert {r["payload"] for r in found} <= {""}, "a site's copy must never hold a refused payload"
            return {r["source"]: (r["unit"], r["path"], r["payload"]) for r in found}

        assert copied(DISTRICT) == {
            ward_topic: (WARD, f"74/{DISTRICT}/{WARD}", ""),
            old_topic: (SIBLING, "", ""),
        }
        assert set(copied(OTHER_DISTRICT)) == {other_topic}
        assert set(copied(PROVINCE)) == {ward_topic, old_topic, other_topic, "http:/portal/dossiers"}
        stored = admin.query(f"SELECT payload FROM {source}.deadletters WHERE source = %(s)s", {"s": ward_topic})
        assert stored != [{"payload": ""}]  # the warehouse keeps the bytes for the platform's engineers

        # The page's queries against a site's own database, as its dashboard runs them.
        def on_site(unit: str, at: str) -> tuple[set[str], dict[str, int]]:
            return _page_reads(letters_database.model_copy(update={"database": sites[unit]}), unit, at, vendor)

        assert on_site(DISTRICT, DISTRICT) == ({"wl-ward", "aq-old"}, {"schema": 2})
        assert on_site(DISTRICT, WARD) == ({"wl-ward"}, {"schema": 1})
        assert on_site(OTHER_DISTRICT, OTHER_DISTRICT) == ({"aq-other"}, {"schema": 1})
        assert on_site(PROVINCE, PROVINCE) == ({"wl-ward", "aq-old", "aq-other", ""}, {"schema": 4})
        # Unplaced letters are the province's at its root only, not when it looks at one district.
        assert on_site(PROVINCE, DISTRICT) == ({"wl-ward", "aq-old"}, {"schema": 2})
    finally:
        _drop_site_databases(admin, list(sites.values()))
        admin.close()
