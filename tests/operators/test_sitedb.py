"""A site's ClickHouse database (operators.sitedb): the SQL of its copies and user, then the copies on chDB.

The same statements run on ClickHouse 18.16 in tests/operators/test_operator.py and
tests/security/test_warehouse_scope.py; here they run on chDB (current ClickHouse, in process).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dashboards.data import privacy
from ioc import units
from ioc.clients import clickhouse
from ioc.scope import site_scope
from ioc.settings import SiteReaderLimits
from operators import sitedb
from operators.names import SiteNames
from streams.warehouse import migrations

LIMITS = SiteReaderLimits(max_result_rows=5000, quota_queries=120, networks=("10.0.0.0/8", "::1"))


def names(unit: str = "25942") -> SiteNames:
    return SiteNames("dong-hoa", "ns", unit, "2024")


# --- pure: SQL -----------------------------------------------------------------------------------------------


def test_feeds_filter_by_path_or_by_legacy_units_and_mask_personal_columns() -> None:
    columns = ["report_id", "unit", "path", "address", "contact_name", "contact_phone", "contact_email", "text"]
    sql = sitedb.feed_sql("ioc", "ioc_site_724", "citizen_reports", site_scope("724"), columns)
    assert sql.startswith("CREATE MATERIALIZED VIEW IF NOT EXISTS ioc_site_724.citizen_reports_feed_")
    assert " TO ioc_site_724.citizen_reports AS SELECT report_id, unit, path, '' AS address, " in sql
    assert sql.endswith("FROM ioc.citizen_reports WHERE (path = '74/724' OR path LIKE '74/724/%')")
    for column in ("contact_name", "contact_phone", "contact_email"):
        assert f"{sitedb.PERSONAL_SQL[column]} AS {column}" in sql
    assert ", text FROM" in sql  # the report's content stays: it is what an operator acts on

    reformed = sitedb.feed_sql("ioc", "s", "incidents", site_scope("25747", "2025"), ["incident_id", "unit"])
    legacy = ", ".join(f"'{u}'" for u in sorted(units.legacy_codes("25747")))
    assert f"unit IN ({legacy}) OR responsible_unit IN ({legacy})" in reformed
    # An incident the site holds keeps receiving its versions, wherever they place it.
    assert reformed.endswith("OR incident_id IN (SELECT incident_id FROM s.incidents)")


def test_dead_letters_reach_their_subtrees_copy_without_their_bytes_and_unplaced_ones_the_root_only() -> None:
    columns = ["letter_id", "source", "payload", "count", "unit", "path"]
    district = sitedb.feed_sql("ioc", "ioc_site_724", "deadletters", site_scope("724"), columns)
    assert " AS SELECT letter_id, source, '' AS payload, count, unit, path FROM ioc.deadletters WHERE " in district
    assert "(path = '74/724' OR path LIKE '74/724/%')" in district
    # Letters stored before the path column are placed by the unit computed from their source.
    subtree = ", ".join(f"'{u}'" for u in sorted(site_scope("724").units))
    assert f"(path = '' AND unit IN ({subtree}))" in district
    assert "unit = ''" not in district  # a letter naming no unit is not a district's
    province = sitedb.feed_sql("ioc", "ioc_site_74", "deadletters", site_scope("74"), columns)
    assert province.endswith(" OR (path = '' AND unit = ''))")
    reformed = sitedb.feed_sql("ioc", "s", "deadletters", site_scope("79", "2025"), columns)
    assert reformed.endswith(" OR (path = '' AND unit = ''))")  # HCMC is the 2025 tree's root
    # Other tables' feeds keep their SELECT, so no site's copy is rebuilt for this.
    readings = sitedb.feed_sql("ioc", "ioc_site_724", "readings", site_scope("724"), ["unit", "path"])
    assert readings.endswith("WHERE (path = '74/724' OR path LIKE '74/724/%')")


def test_a_feeds_name_changes_with_what_it_selects() -> None:
    cols = ["unit", "path", "value"]
    first = sitedb.feed_name("ioc", "ioc_site_724", "readings", site_scope("724"), cols)
    assert first == sitedb.feed_name("ioc", "ioc_site_724", "readings", site_scope("724"), list(cols))
    assert first.startswith("readings_feed_") and len(first) == len("readings_feed_") + 10
    assert first != sitedb.feed_name("ioc", "ioc_site_724", "readings", site_scope("721"), cols)
    assert first != sitedb.feed_name("ioc", "ioc_site_724", "readings", site_scope("724"), [*cols, "plate"])


def test_backfill_takes_the_subtree_and_the_incidents_that_were_in_it() -> None:
    sql, params = sitedb.backfill_sql("ioc", "ioc_site_724", "incidents", site_scope("724"), ["incident_id", "path"])
    assert sql.startswith("INSERT INTO ioc_site_724.incidents (incident_id, path) SELECT incident_id, path FROM")
    assert "OR incident_id IN (SELECT incident_id FROM ioc.incidents WHERE ((path = %(s0_path)s" in sql
    assert params["s0_path"] == "74/724" and params["s1_prefix"] == "74/724/%"
    with pytest.raises(ValueError, match="not a ClickHouse database"):
        sitedb.backfill_sql("ioc; DROP", "x", "readings", site_scope("724"), ["unit"])


def test_users_d_file_allows_the_site_database_only_with_limits_and_a_quota() -> None:
    xml = sitedb.users_d_xml(names(), "secret-password", LIMITS)
    assert "secret-password" not in xml and "<password_sha256_hex>" in xml
    assert xml.count("<database>") == 1 and "<database>ioc_site_25942</database>" in xml
    assert "<profile>ioc_site_25942</profile>" in xml and "<quota>ioc_site_25942</quota>" in xml
    for setting in (
        "<readonly>1</readonly>",
        "<max_memory_usage>2000000000</max_memory_usage>",
        "<max_execution_time>30</max_execution_time>",
        "<max_result_rows>5000</max_result_rows>",
        "<max_result_bytes>200000000</max_result_bytes>",
        "<result_overflow_mode>throw</result_overflow_mode>",
        "<duration>3600</duration>",
        "<queries>120</queries>",
        "<networks><ip>10.0.0.0/8</ip><ip>::1</ip></networks>",
    ):
        assert setting in xml


def test_sql_users_get_a_profile_a_quota_and_select_on_their_database_only() -> None:
    statements = sitedb.user_sql(names(), "secret-password", LIMITS)
    text = "\n".join(sql for sql, _ in statements)
    assert "secret-password" not in text and all(p in ({}, {"password": "secret-password"}) for _, p in statements)
    assert "readonly = 1" in text and "result_overflow_mode = 'throw'" in text and "max_result_rows = 5000" in text
    assert "HOST IP '10.0.0.0/8', IP '::1' SETTINGS PROFILE 'ioc_site_25942'" in text
    assert "FOR INTERVAL 3600 SECOND MAX queries = 120 TO ioc_site_25942" in text
    assert statements[-2:] == [
        ("REVOKE ALL ON *.* FROM ioc_site_25942", {}),
        ("GRANT SELECT ON ioc_site_25942.* TO ioc_site_25942", {}),
    ]
    with pytest.raises(ValueError, match="not an IP address"):
        sitedb.user_sql(names(), "pw", SiteReaderLimits(networks=("0.0.0.0/0' OR 1",)))


# --- chDB (current ClickHouse) -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chdb(chdb_path: Path) -> Iterator[clickhouse.Warehouse]:
    warehouse = clickhouse.in_process(str(chdb_path))
    try:
        yield warehouse
    finally:
        warehouse.close()


def test_sql_users_statements_parse_on_current_clickhouse(chdb: clickhouse.Warehouse) -> None:
    # chDB has no access storage to run them in; its parser still proves the syntax of the chart's path.
    for sql, params in sitedb.user_sql(names(), "pw", LIMITS):
        rendered = clickhouse.render(sql, params)
        assert chdb.query("SELECT formatQuery(%(q)s) AS q", {"q": rendered})[0]["q"]


SAMPLES: list[dict[str, str]] = [
    {
        "plate": "61A-123.45",
        "contact_name": "Nguyễn Văn An",
        "contact_phone": "0912 345 678",
        "contact_email": "an@x.vn",
    },
    {"plate": "", "contact_name": "  Trần\tThị  Bích ", "contact_phone": "+84 (274) 3822-111", "contact_email": ""},
    {"plate": "51F1-999.99", "contact_name": "", "contact_phone": "12", "contact_email": "no-at-sign"},
    {"plate": "72C", "contact_name": "Lê", "contact_phone": "", "contact_email": "@example.vn"},
    {"plate": "AB", "contact_name": "Đặng Ánh", "contact_phone": "abc", "contact_email": "a.b@c@d"},
]


def masked_in_sql(warehouse: clickhouse.Warehouse, sample: dict[str, str]) -> dict[str, str]:
    """The four masks of operators.sitedb applied by ClickHouse to one sample row."""
    columns = ", ".join(f"%({c})s AS {c}" for c in sample)
    exprs = ", ".join(f"{sitedb.PERSONAL_SQL[c]} AS {c}" for c in sample)
    rows = warehouse.query(f"SELECT {exprs} FROM (SELECT {columns})", sample)
    return {c: str(rows[0][c]) for c in sample}


def masked_in_python(sample: dict[str, str]) -> dict[str, str]:
    return {c: privacy.PERSONAL_FIELDS[c](v) for c, v in sample.items()}


@pytest.mark.parametrize("sample", SAMPLES, ids=range(len(SAMPLES)))
def test_copies_mask_like_the_dashboards(chdb: clickhouse.Warehouse, sample: dict[str, str]) -> None:
    assert masked_in_sql(chdb, sample) == masked_in_python(sample)


def _report(report_id: str, unit: str, path: str, version: int = 1) -> dict[str, Any]:
    return {
        "report_id": report_id,
        "source": "app",
        "category": "flooding",
        "unit": unit,
        "path": path,
        "submitted_at": dt.datetime(2026, 12, 1, 8, tzinfo=dt.UTC),
        "text": "Ngập sâu",
        "lat": None,
        "lon": None,
        "address": "12 Đường 30/4",
        "media_urls": [],
        "contact_name": "Nguyễn Văn An",
        "contact_phone": "0912 345 678",
        "contact_email": "an@example.vn",
        "incident_id": "",
        "state": "open",
        "version": version,
    }


def test_copies_on_current_clickhouse_backfill_follow_and_repair(chdb: clickhouse.Warehouse) -> None:
    source, site = f"src_{uuid.uuid4().hex[:8]}", f"site_{uuid.uuid4().hex[:8]}"
    migrations.migrate(chdb, source)
    try:
        chdb.insert(f"{source}.citizen_reports", [_report("old-in", "25942", "74/724/25942")])
        chdb.insert(f"{source}.citizen_reports", [_report("old-out", "25813", "74/721/25813")])
        report = sitedb.ensure_tables(chdb, site, site_scope("724"), source_db=source)
        assert report.created == list(sitedb.SITE_TABLES) and not report.recreated and not report.missing_tables
        engines = {
            r["name"]: (r["engine_full"].split(" SETTINGS")[0])
            for r in chdb.query(
                "SELECT database, name, engine_full FROM system.tables WHERE database IN (%(a)s, %(b)s)",
                {"a": source, "b": site},
            )
            if r["database"] == source
        }
        copies = {
            r["name"]: r["engine_full"].split(" SETTINGS")[0]
            for r in chdb.query("SELECT name, engine_full FROM system.tables WHERE database = %(b)s", {"b": site})
        }
        for table in sitedb.SITE_TABLES:
            assert copies[table] == engines[table]  # same engine, sorting key, partitions and TTL

        chdb.insert(f"{source}.citizen_reports", [_report("new-in", "25942", "74/724/25942")])
        chdb.insert(f"{source}.citizen_reports", [_report("new-out", "25942x", "74/7240/25942")])
        rows = chdb.query(f"SELECT * FROM {site}.citizen_reports FINAL ORDER BY report_id")
        assert [r["report_id"] for r in rows] == ["new-in", "old-in"]
        assert {(r["contact_name"], r["contact_phone"], r["contact_email"], r["address"]) for r in rows} == {
            ("N. V. A.", "•••••••678", "a•••@example.vn", "")
        }
        assert sitedb.ensure_tables(chdb, site, site_scope("724"), source_db=source) == sitedb.TablesReport([], [], [])

        # Drift: a dropped feed and a table that gained a column are rebuilt and back-filled.
        feed = next(r["name"] for r in chdb.query(f"SHOW TABLES FROM {site}") if r["name"].startswith("dossiers_feed_"))
        chdb.command(f"DROP TABLE {site}.{feed}")
        chdb.command(f"ALTER TABLE {source}.citizen_reports ADD COLUMN channel String DEFAULT 'app'")
        repaired = sitedb.ensure_tables(chdb, site, site_scope("724"), source_db=source)
        assert sorted(repaired.recreated) == ["citizen_reports", "dossiers"]
        # A migration that rebuilt a table with another sorting key (as 0007 did to readings) is followed too.
        chdb.command(f"RENAME TABLE {source}.dossiers TO {source}.dossiers_old")
        engine = "ENGINE = ReplacingMergeTree(status_version) ORDER BY (unit, dossier_id)"
        chdb.command(f"CREATE TABLE {source}.dossiers AS {source}.dossiers_old {engine}")
        assert sitedb.ensure_tables(chdb, site, site_scope("724"), source_db=source).recreated == ["dossiers"]
        chdb.command(f"DROP TABLE {source}.dossiers_old")
        rows = chdb.query(f"SELECT report_id, channel FROM {site}.citizen_reports FINAL ORDER BY report_id")
        assert rows == [{"report_id": "new-in", "channel": "app"}, {"report_id": "old-in", "channel": "app"}]
    finally:
        chdb.command(f"DROP DATABASE IF EXISTS {site}")
        chdb.command(f"DROP DATABASE IF EXISTS {source}")


def test_an_old_sites_views_become_copies(chdb: clickhouse.Warehouse) -> None:
    source, site = f"src_{uuid.uuid4().hex[:8]}", f"site_{uuid.uuid4().hex[:8]}"
    migrations.migrate(chdb, source)
    try:
        chdb.command(f"CREATE DATABASE {site}")
        chdb.command(f"CREATE VIEW {site}.readings AS SELECT * FROM {source}.readings")
        report = sitedb.ensure_tables(chdb, site, site_scope("724"), source_db=source)
        assert "readings" in report.recreated
        engine = chdb.query(f"SELECT engine FROM system.tables WHERE database = '{site}' AND name = 'readings'")
        assert engine == [{"engine": "ReplacingMergeTree"}]
    finally:
        chdb.command(f"DROP DATABASE IF EXISTS {site}")
        chdb.command(f"DROP DATABASE IF EXISTS {source}")
