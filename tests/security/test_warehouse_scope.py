"""Attack: a site's ClickHouse login reaches past its subtree (issue 17, item 1), on the real ClickHouse 18.16.

The operator runs as a process and provisions a district (Bàu Bàng, 719) and two of its communes (Trừ Văn
Thố 25816, Cây Trường II 25819) against a warehouse made by the real migrations. Every attack uses the
commune's credential exactly as the operator issued it (its site Secret) with the ordinary native client,
and asserts ClickHouse's refusal and that legitimate traffic (the writer's inserts, the sibling's reads,
the commune's own reads) kept flowing.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import kubernetes
import pytest
from clickhouse_driver import Client
from clickhouse_driver.errors import ServerException

from dashboards.data.site import SiteData
from dashboards.sites import Site, UnitOutsideSite
from ioc.clients.clickhouse import Warehouse, WarehouseError, connect
from ioc.settings import ClickHouseEndpoint, DashboardSettings, KafkaEndpoint
from streams.warehouse import migrations
from tests.operators.conftest import (
    OperatorProcess,
    api_client,
    clickhouse_admin,
    crds_installed,  # noqa: F401 - a fixture, used through module_namespace
    kubectl,
    module_namespace,  # noqa: F401 - a fixture
    operator_env,
    ready,
    site,
    wait_for,
)
from tests.operators.test_sitedb import SAMPLES, masked_in_python, masked_in_sql

pytestmark = [pytest.mark.slow, pytest.mark.clickhouse, pytest.mark.kube, pytest.mark.kafka, pytest.mark.mqtt]

DISTRICT, COMMUNE, SIBLING, UNSERVED, FAR = "719", "25816", "25819", "25822", "25963"
PATHS = {
    COMMUNE: f"74/{DISTRICT}/{COMMUNE}",
    SIBLING: f"74/{DISTRICT}/{SIBLING}",
    UNSERVED: f"74/{DISTRICT}/{UNSERVED}",
    FAR: f"74/725/{FAR}",
}
SOURCE_DB = f"ioc_sec_{uuid.uuid4().hex[:8]}"
LIMITS = {
    "MAX_RESULT_ROWS": "1000",
    "MAX_RESULT_BYTES": "5000000",
    "MAX_MEMORY_USAGE": "200000000",
    "MAX_EXECUTION_TIME_S": "3",
    "QUOTA_QUERIES": "300",
    "QUOTA_INTERVAL_S": "3600",
}
PHONE, NAME, EMAIL, PLATE, ADDRESS = (
    "0912 345 678",
    "Nguyễn Văn An",
    "an.nguyen@example.vn",
    "61A-123.45",
    "12 Đường 30/4",
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


T0 = _now()


def reading(unit: str, device: str, seq: int = 1) -> dict[str, Any]:
    now = T0  # one time for all: the same reading written twice is a duplicate
    return {
        "device_key": f"v/{device}",
        "vendor": "v",
        "device": device,
        "unit": unit,
        "path": PATHS[unit],
        "kind": "water",
        "seq": seq,
        "measure": "waterLevel",
        "value": 1.5,
        "observed_at": now,
        "received_at": now,
        "lat": None,
        "lon": None,
    }


def report(unit: str, report_id: str) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "source": "app",
        "category": "flooding",
        "unit": unit,
        "path": PATHS[unit],
        "submitted_at": _now(),
        "text": "Ngập sâu trước chợ",
        "lat": 11.2,
        "lon": 106.6,
        "address": ADDRESS,
        "media_urls": [],
        "contact_name": NAME,
        "contact_phone": PHONE,
        "contact_email": EMAIL,
        "incident_id": "",
        "state": "open",
        "version": 1,
    }


def camera_event(unit: str, device: str) -> dict[str, Any]:
    now = _now()
    return {
        "device_key": f"cam/{device}",
        "vendor": "cam",
        "device": device,
        "unit": unit,
        "path": PATHS[unit],
        "seq": 1,
        "event_type": "red_light",
        "confidence": 0.9,
        "plate": PLATE,
        "speed_kmh": None,
        "speed_limit_kmh": None,
        "object_count": None,
        "lat": None,
        "lon": None,
        "image_url": f"https://gw.example.vn/snap/{device}.jpg",
        "observed_at": now,
        "received_at": now,
        "duplicate": 0,
        "incident_id": "",
    }


@pytest.fixture(scope="module")
def admin(clickhouse: dict[str, Any]) -> Iterator[Warehouse]:
    """The writer's account (the stream workers'), with the warehouse made by the real migrations."""
    with clickhouse_admin(clickhouse) as warehouse:
        migrations.migrate(warehouse, SOURCE_DB)
        # Rows written before the sites exist reach them through the back-fill.
        warehouse.insert(f"{SOURCE_DB}.readings", [reading(u, f"{u}-old") for u in PATHS])
        warehouse.insert(f"{SOURCE_DB}.citizen_reports", [report(u, f"r-{u}-old") for u in (COMMUNE, FAR)])
        warehouse.insert(f"{SOURCE_DB}.camera_events", [camera_event(u, f"{u}-old") for u in (COMMUNE, FAR)])
        yield warehouse
        warehouse.command(f"DROP DATABASE IF EXISTS {SOURCE_DB}")


@pytest.fixture(scope="module")
def sites(
    kube: dict[str, Any],
    clickhouse: dict[str, Any],
    kafka: dict[str, Any],
    mosquitto: dict[str, Any],
    module_namespace: str,  # noqa: F811 - the fixture imported above
    admin: Warehouse,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, dict[str, str]]]:
    """The three sites Ready, provisioned by the operator; their Secrets as the operator wrote them."""
    ns = module_namespace
    env = operator_env(
        kube,
        clickhouse,
        kafka,
        mosquitto,
        namespace=ns,
        IOC_OPERATOR_CLICKHOUSE__DATABASE=SOURCE_DB,
        **{f"IOC_OPERATOR_SITE_READER__{k}": v for k, v in LIMITS.items()},
    )
    operator = OperatorProcess(env, tmp_path_factory.mktemp("operator") / "operator.log").start()
    manifests = [
        site("bau-bang", DISTRICT, "district"),
        # Each commune with its own login, as a commune may ask (by default Bàu Bàng's dashboard serves them).
        site("tru-van-tho", COMMUNE, "commune", ("bau-bang", "district"), dashboard={"servedBy": "Own"}),
        site("cay-truong", SIBLING, "commune", ("bau-bang", "district"), dashboard={"servedBy": "Own"}),
    ]
    for manifest in manifests:
        kubectl(kube, "apply", "-n", ns, "-f", "-", stdin=json.dumps(manifest))
    core = kubernetes.client.CoreV1Api(api_client(kube["kubeconfig"]))
    secrets = {}
    try:
        for manifest in manifests:
            name = manifest["metadata"]["name"]
            wait_for(lambda name=name: ready(kube, ns, name), 90, f"{name} Ready\n{operator.text()[-3000:]}")
            data = core.read_namespaced_secret(f"{name}-clickhouse", ns).data
            secrets[name] = {k: base64.b64decode(v).decode() for k, v in data.items()}
        yield secrets
    finally:
        for manifest in manifests:
            kubectl(kube, "delete", "iocsite", manifest["metadata"]["name"], "-n", ns, "--wait=false", check=False)
        for unit in (COMMUNE, SIBLING, DISTRICT):
            wait_for(lambda unit=unit: not _exists(admin, f"ioc_site_{unit}"), 60, f"ioc_site_{unit} dropped")
        operator.stop()


def _exists(admin: Warehouse, database: str) -> bool:
    return bool(admin.query("SELECT name FROM system.databases WHERE name = %(d)s", {"d": database}))


def login(clickhouse: dict[str, Any], secret: dict[str, str]) -> Warehouse:
    """A connection with a site's credential, as its dashboard would open it."""
    endpoint = ClickHouseEndpoint(
        host=clickhouse["host"], port=int(secret["port"]), user=secret["user"], password=secret["password"]
    )
    return wait_for(lambda: connect(endpoint, database=secret["database"]), 15, f"login as {secret['user']}")


@pytest.fixture(scope="module")
def commune(clickhouse: dict[str, Any], sites: dict[str, dict[str, str]]) -> Iterator[Warehouse]:
    warehouse = login(clickhouse, sites["tru-van-tho"])
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def sibling(clickhouse: dict[str, Any], sites: dict[str, dict[str, str]]) -> Iterator[Warehouse]:
    warehouse = login(clickhouse, sites["cay-truong"])
    yield warehouse
    warehouse.close()


def devices(warehouse: Warehouse, table: str = "readings") -> set[str]:
    return {r["device_key"] for r in warehouse.query(f"SELECT DISTINCT device_key FROM {table}")}


# --- the attacks ----------------------------------------------------------------------------------------------


def test_the_credential_is_the_one_the_operator_issued(sites: dict[str, dict[str, str]]) -> None:
    secret = sites["tru-van-tho"]
    assert secret["user"] == secret["database"] == f"ioc_site_{COMMUNE}"
    assert len(secret["password"]) >= 32


@pytest.mark.parametrize("table", ["readings", "citizen_reports", "camera_events", "incidents"])
def test_the_warehouse_tables_are_refused(commune: Warehouse, table: str) -> None:
    for database in (SOURCE_DB, "ioc"):
        with pytest.raises(WarehouseError, match=f"Access denied to database {database} for user ioc_site_{COMMUNE}"):
            commune.query(f"SELECT * FROM {database}.{table} LIMIT 1")
    # ... while its own copy answers.
    assert commune.query(f"SELECT count() AS n FROM {table}")[0]["n"] >= 0


def test_siblings_and_parents_databases_are_refused(commune: Warehouse, sibling: Warehouse) -> None:
    for unit in (SIBLING, DISTRICT):
        with pytest.raises(WarehouseError, match=f"Access denied to database ioc_site_{unit}"):
            commune.query(f"SELECT device_key FROM ioc_site_{unit}.readings")
    with pytest.raises(WarehouseError, match=f"Access denied to database ioc_site_{COMMUNE}"):
        sibling.query(f"SELECT device_key FROM ioc_site_{COMMUNE}.readings")
    assert devices(sibling) >= {f"v/{SIBLING}-old"}


def test_each_site_sees_exactly_its_subtree_including_rows_written_after_it_was_made(
    clickhouse: dict[str, Any], admin: Warehouse, sites: dict[str, dict[str, str]], commune: Warehouse
) -> None:
    assert devices(commune) == {f"v/{COMMUNE}-old"}  # back-filled when the site was made
    admin.insert(f"{SOURCE_DB}.readings", [reading(u, f"{u}-new") for u in PATHS])
    wait_for(lambda: f"v/{COMMUNE}-new" in devices(commune), 10, "the new reading in the commune's copy")
    assert devices(commune) == {f"v/{COMMUNE}-old", f"v/{COMMUNE}-new"}
    with login(clickhouse, sites["bau-bang"]) as district:
        expected = {f"v/{u}-{age}" for u in (COMMUNE, SIBLING, UNSERVED) for age in ("old", "new")}
        assert devices(district) == expected  # the whole district, never Thuận An's FAR commune
    # Duplicates collapse in the copy as in the warehouse (same engine and sorting key).
    admin.insert(f"{SOURCE_DB}.readings", [reading(COMMUNE, f"{COMMUNE}-new")])
    rows = commune.query("SELECT count() AS n FROM readings FINAL WHERE device_key = %(d)s", {"d": f"v/{COMMUNE}-new"})
    assert rows == [{"n": 1}]
    reports = commune.query("SELECT report_id FROM citizen_reports FINAL")
    assert [r["report_id"] for r in reports] == [f"r-{COMMUNE}-old"]


def test_no_personal_data_reaches_a_sites_copy(admin: Warehouse, commune: Warehouse) -> None:
    admin.insert(f"{SOURCE_DB}.citizen_reports", [report(COMMUNE, f"r-{COMMUNE}-new")])
    admin.insert(f"{SOURCE_DB}.camera_events", [camera_event(COMMUNE, f"{COMMUNE}-new")])
    wait_for(lambda: len(commune.query("SELECT report_id FROM citizen_reports")) == 2, 10, "the new report")
    reports = commune.query("SELECT * FROM citizen_reports")
    assert {(r["contact_name"], r["contact_phone"], r["contact_email"], r["address"]) for r in reports} == {
        ("N. V. A.", "•••••••678", "a•••@example.vn", "")
    }
    assert {r["text"] for r in reports} == {"Ngập sâu trước chợ"}
    events = commune.query("SELECT plate, image_url FROM camera_events")
    assert len(events) == 2 and {(e["plate"], e["image_url"]) for e in events} == {("61A-•••.••", "")}
    # Nothing anywhere in the commune's database holds the raw values.
    for value in (PHONE, "0912345678", NAME, EMAIL, PLATE, ADDRESS, "snap/"):
        for table in ("citizen_reports", "camera_events"):
            hits = commune.query(
                f"SELECT count() AS n FROM {table} WHERE position(arrayStringConcat("
                f"arrayMap(x -> toString(x), [{', '.join(_string_columns(commune, table))}]), '|'), %(v)s) > 0",
                {"v": value},
            )
            assert hits == [{"n": 0}], (table, value)


def _string_columns(warehouse: Warehouse, table: str) -> list[str]:
    rows = warehouse.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = %(t)s AND type = 'String'",
        {"t": table},
    )
    return [r["name"] for r in rows]


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_the_masks_on_18_16_are_the_dashboards_masks(admin: Warehouse, index: int) -> None:
    assert masked_in_sql(admin, SAMPLES[index]) == masked_in_python(SAMPLES[index])


@pytest.mark.parametrize(
    "statement",
    [
        f"INSERT INTO ioc_site_{COMMUNE}.readings (device_key, unit, path) VALUES ('forged', '{COMMUNE}', 'x')",
        f"ALTER TABLE ioc_site_{COMMUNE}.readings DELETE WHERE 1",
        f"ALTER TABLE ioc_site_{COMMUNE}.readings ADD COLUMN forged String",
        f"DROP TABLE ioc_site_{COMMUNE}.readings",
        f"TRUNCATE TABLE ioc_site_{COMMUNE}.citizen_reports",
        f"CREATE TABLE ioc_site_{COMMUNE}.forged (x UInt8) ENGINE = Memory",
        "CREATE DATABASE forged",
        f"RENAME TABLE ioc_site_{COMMUNE}.readings TO ioc_site_{COMMUNE}.gone",
        "SET max_result_rows = 0",
    ],
    ids=["insert", "alter-delete", "alter-add", "drop", "truncate", "create-table", "create-db", "rename", "set"],
)
def test_the_credential_is_read_only(commune: Warehouse, statement: str) -> None:
    with pytest.raises(WarehouseError, match=r"(?i)readonly mode"):
        commune.command(statement)
    assert devices(commune) >= {f"v/{COMMUNE}-old"}  # still there and still readable


@pytest.mark.parametrize(
    "source",
    [
        f"remote('127.0.0.1', {SOURCE_DB}.readings)",  # the warehouse through a loop-back connection
        "url('http://127.0.0.1:1/', CSV, 'x String')",  # the server as a proxy into the cluster
        "file('../users.xml', CSV, 'x String')",
    ],
    ids=["remote", "url", "file"],
)
def test_table_functions_are_refused(commune: Warehouse, source: str) -> None:
    with pytest.raises(WarehouseError, match="Table functions are forbidden in readonly mode"):
        commune.query(f"SELECT * FROM {source} LIMIT 1")
    assert devices(commune) >= {f"v/{COMMUNE}-old"}


def test_limits_cannot_be_raised_from_the_client(clickhouse: dict[str, Any], sites: dict[str, dict[str, str]]) -> None:
    secret = sites["tru-van-tho"]
    # The driver sends these with every query; the server keeps the profile's values all the same.
    client = Client(
        host=clickhouse["host"],
        port=int(secret["port"]),
        user=secret["user"],
        password=secret["password"],
        database=secret["database"],
        settings={"max_result_rows": 0, "readonly": 0, "max_memory_usage": 0},
    )
    try:
        with pytest.raises(ServerException, match="Limit for result exceeded"):
            client.execute("SELECT arrayJoin(range(5000))")
        effective = dict(client.execute("SELECT name, value FROM system.settings WHERE changed"))
        assert effective["readonly"] == "1" and effective["max_result_rows"] == LIMITS["MAX_RESULT_ROWS"]
        assert effective["max_memory_usage"] == LIMITS["MAX_MEMORY_USAGE"]
    finally:
        client.disconnect()


def test_result_size_memory_and_time_are_limited(admin: Warehouse, commune: Warehouse) -> None:
    admin.insert(f"{SOURCE_DB}.readings", [reading(COMMUNE, "bulk", seq) for seq in range(1500)])
    wait_for(lambda: commune.query("SELECT count() AS n FROM readings")[0]["n"] >= 1500, 10, "the bulk rows")
    with pytest.raises(WarehouseError, match=r"Limit for result exceeded, max rows: 1\.00 thousand"):
        commune.query("SELECT * FROM readings")
    assert commune.query("SELECT count() AS n FROM readings WHERE device_key = 'v/bulk'") == [{"n": 1500}]
    with pytest.raises(WarehouseError, match=r"Memory limit \(for query\) exceeded"):
        commune.query("SELECT groupArray(number) AS a FROM (SELECT number FROM system.numbers LIMIT 100000000)")
    started = time.monotonic()
    with pytest.raises(WarehouseError, match="Timeout exceeded: elapsed"):
        commune.query("SELECT count() AS n FROM system.numbers")
    assert time.monotonic() - started < 15
    assert devices(commune) >= {f"v/{COMMUNE}-old"}  # the connection still serves ordinary reads


def test_the_dashboards_reads_work_with_the_sites_own_login(commune: Warehouse) -> None:
    """What the commune's dashboard runs, through its own login, limits and copies: legitimate reads flow."""
    settings = DashboardSettings(site_unit=COMMUNE, kafka=KafkaEndpoint(bootstrap="127.0.0.1:1"))
    data = SiteData(commune, Site.from_settings(settings), live_ttl_s=0, slow_ttl_s=0)
    period = T0.date().replace(day=1)
    reads = {
        "headline": lambda: data.headline(COMMUNE),
        "children_figures": lambda: data.children_figures(COMMUNE),
        "water_levels": lambda: data.water_levels(COMMUNE),
        "water_trend": lambda: data.water_trend(COMMUNE),
        "aqi_stations": lambda: data.aqi_stations(COMMUNE),
        "violations": lambda: data.violations(COMMUNE),
        "hotspots": lambda: data.hotspots(COMMUNE),
        "camera_events": lambda: data.camera_events(COMMUNE),
        "incident_queue": lambda: data.incident_queue(COMMUNE),
        "reports_by_state": lambda: data.reports_by_state(COMMUNE),
        "reports": lambda: data.reports(COMMUNE),
        "escalations": lambda: data.escalations(COMMUNE),
        "scorecard": lambda: data.scorecard(COMMUNE, period),
        "devices_by_vendor": lambda: data.devices_by_vendor(COMMUNE),
        "silent_devices": lambda: data.silent_devices(COMMUNE),
    }
    found = {name: read() for name, read in reads.items()}
    assert {r["report_id"] for r in found["reports"]} == {f"r-{COMMUNE}-old", f"r-{COMMUNE}-new"}
    # The copy holds •••••••678; the data layer masks it again for a viewer: only the last 3 digits either way.
    assert {r["contact_phone"].replace("•", "") for r in found["reports"]} == {"678"}
    assert {e["plate"] for e in found["camera_events"]} == {"61A-•••.••"}
    with pytest.raises(UnitOutsideSite, match="not within site"):
        data.reports(FAR)  # outside the site: refused before any SQL runs


def test_the_quota_stops_a_flood_and_spares_everyone_else(
    admin: Warehouse, clickhouse: dict[str, Any], sites: dict[str, dict[str, str]], sibling: Warehouse
) -> None:
    # Its own connection: after this test the commune's login is spent for the hour.
    flooder = login(clickhouse, sites["tru-van-tho"])
    refused, sent = None, 0
    try:
        while sent <= int(LIMITS["QUOTA_QUERIES"]):
            sent += 1
            try:
                flooder.query("SELECT 1 AS ok")
            except WarehouseError as exc:
                refused = str(exc)
                break
    finally:
        flooder.close()
    assert refused is not None and f"Quota for user 'ioc_site_{COMMUNE}'" in refused and "has been exceeded" in refused
    assert sent <= int(LIMITS["QUOTA_QUERIES"]) + 1
    # The sibling still reads, and the writer's rows still reach the flooded commune's copy.
    assert f"v/{SIBLING}-old" in devices(sibling)
    admin.insert(f"{SOURCE_DB}.readings", [reading(COMMUNE, "after-flood")])
    copy = f"ioc_site_{COMMUNE}.readings"
    rows = admin.query(f"SELECT count() AS n FROM {copy} WHERE device_key = 'v/after-flood'")
    assert rows == [{"n": 1}]
