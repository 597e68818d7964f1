"""Warehouse migrations: templates and statements, then the schema on chDB (26.x) and on the real ClickHouse 18.16.

Every behaviour in `_OnEveryEngine` runs twice, once per engine (`TestOnChdb`, `TestOnServer`); the
server variant uses the `clickhouse` fixture and so is marked slow automatically.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ioc.clients.clickhouse import Warehouse, connect, in_process
from ioc.events import IncidentState
from ioc.settings import ClickHouseEndpoint
from streams.warehouse import migrations, rows
from streams.warehouse.migrations import Migration, MigrationError
from streams.warehouse.sink import RowSink
from tests.streams.test_warehouse_sink import BASE, DISTRICT_PATH, PATH, dossier, incident, reading, sample_rows

ROOT = Path(__file__).parents[2]
VIEWS = {"incidents_current", "dossiers_current", "reports_current", "device_freshness"}


# --- pure: files, templates, statements ---------------------------------------------------------------------


def test_packaged_migrations_are_numbered_in_order() -> None:
    loaded = migrations.load_migrations()
    assert [m.version for m in loaded] == list(range(1, len(loaded) + 1))
    assert loaded[0].filename == "0001_observations.sql"
    assert all(re.fullmatch(r"[0-9a-f]{64}", m.checksum) for m in loaded)


def test_badly_named_or_duplicate_files_are_errors(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "notes.txt").write_text("ignored: not SQL")
    assert [m.name for m in migrations.load_migrations(tmp_path)] == ["0001_a"]
    (tmp_path / "0001_b.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match=r"0001_[ab]\.sql and 0001_[ab]\.sql share version 1"):
        migrations.load_migrations(tmp_path)
    (tmp_path / "0001_b.sql").unlink()
    (tmp_path / "2_c.sql").write_text("SELECT 3;")
    with pytest.raises(MigrationError, match=r"'2_c.sql' is not named NNNN_name.sql"):
        migrations.load_migrations(tmp_path)


def test_markers_render_current_features_only_on_modern_servers() -> None:
    text = "CREATE TABLE {{ database }}.t (a {{LowCardinality(String)}}, at DateTime) ORDER BY a {{TTL at}};"
    modern = migrations.render_sql(text, database="ioc", modern=True, retention_days=30)
    legacy = migrations.render_sql(text, database="ioc", modern=False, retention_days=30)
    assert modern == "CREATE TABLE ioc.t (a LowCardinality(String), at DateTime) ORDER BY a TTL at + INTERVAL 30 DAY;"
    assert legacy == "CREATE TABLE ioc.t (a String, at DateTime) ORDER BY a ;"


@pytest.mark.parametrize(
    ("text", "database", "days", "error", "message"),
    [
        (
            "{{Nullable(String)}}",
            "ioc",
            1,
            MigrationError,
            r"x.sql: unknown template marker \{\{Nullable\(String\)\}\}",
        ),
        ("a {{database}", "ioc", 1, MigrationError, "x.sql: unbalanced template marker"),
        ("{{database}}", "ioc; DROP", 1, ValueError, "not a plain identifier"),
        ("{{database}}", "ioc", 0, ValueError, "retention_days must be at least 1 day"),
    ],
)
def test_bad_templates_and_parameters_are_refused(
    text: str, database: str, days: int, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        migrations.render_sql(text, database=database, modern=True, retention_days=days, source="x.sql")


def test_statements_split_on_semicolons_outside_quotes_and_comments() -> None:
    sql = """
        -- a comment; not a statement
        CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory;
        /* block; comment */ SELECT 'it''s; fine', `odd;name`, "q;q"
        ;
        ;  -- empty statements vanish
        SELECT 2
    """
    assert migrations.split_statements(sql) == [
        "CREATE TABLE a (x String DEFAULT 'a;b') ENGINE = Memory",
        "SELECT 'it''s; fine', `odd;name`, \"q;q\"",
        "SELECT 2",
    ]
    with pytest.raises(ValueError, match="unterminated ' quote"):
        migrations.split_statements("SELECT 'open")
    with pytest.raises(ValueError, match="unterminated /\\* comment"):
        migrations.split_statements("SELECT 1 /* open")


def test_expired_partitions_are_whole_months_before_the_cutoff() -> None:
    cutoff = dt.datetime(2025, 6, 15, 12, tzinfo=dt.UTC)
    ids = ["202504", "202505", "202506", "202507", "202505"]
    assert migrations.expired_partitions(ids, cutoff) == ["202504", "202505"]
    assert migrations.expired_partitions(["202505"], dt.datetime(2025, 5, 31, 23, 59, 59, tzinfo=dt.UTC)) == []
    assert migrations.expired_partitions(["202412"], dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) == ["202412"]
    with pytest.raises(ValueError, match="partition 'all' is not a month"):
        migrations.expired_partitions(["all"], cutoff)
    with pytest.raises(ValueError, match="timezone-aware"):
        migrations.expired_partitions([], dt.datetime(2025, 1, 1))


def _documented_tables() -> dict[str, tuple[str, str]]:
    """docs/warehouse.md's table of tables: name → (identity, version or '')."""
    text = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8")
    found = {}
    for name, identity, version in re.findall(r"^\| `(\w+)` \| [^|]+ \| `\(([^)]*)\)` \| ([^|]+) \|$", text, re.M):
        found[name] = (identity, version.strip().strip("`") if version.strip() != "—" else "")
    return found


def _documented_columns(table: str) -> set[str]:
    """Every `name` or `name Type` mentioned in the paragraphs of docs/warehouse.md that describe `table`."""
    text = (ROOT / "docs" / "warehouse.md").read_text(encoding="utf-8").split("### Columns", 1)[1]
    names: set[str] = set()
    for paragraph in text.split("\n\n"):
        head = paragraph.split(":", 1)[0]
        if f"`{table}`" in head:
            names |= {m.split()[0] for m in re.findall(r"`([^`]+)`", paragraph)}
    return names


def test_docs_list_every_table_the_sink_writes() -> None:
    assert set(_documented_tables()) == rows.TABLES | {"schema_migrations"}


# --- on both engines ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chdb_warehouse(chdb_path: Path) -> Iterator[Warehouse]:
    # One chDB session per process at a time: this module's, closed before the next module opens one.
    warehouse = in_process(str(chdb_path))
    yield warehouse
    warehouse.close()


@pytest.fixture(scope="module")
def server_warehouse(clickhouse: dict[str, Any]) -> Iterator[Warehouse]:
    warehouse = connect(ClickHouseEndpoint.from_service(clickhouse))
    yield warehouse
    warehouse.close()


def _fresh_database(warehouse: Warehouse) -> Iterator[str]:
    name = f"t_{uuid.uuid4().hex[:10]}"
    yield name
    warehouse.command(f"DROP DATABASE IF EXISTS {name}")


def _count(warehouse: Warehouse, sql: str) -> int:
    return int(warehouse.query(sql)[0]["n"])


async def _write_all(warehouse: Warehouse, database: str, tables: dict[str, list[dict[str, Any]]]) -> None:
    writer = RowSink(warehouse, database, initial_backoff_s=0.05, max_backoff_s=0.1)
    for table, batch in tables.items():
        await writer.write(table, batch)


class _OnEveryEngine:
    @pytest.fixture
    def warehouse(self) -> Warehouse:
        raise NotImplementedError  # each engine's class provides it

    @pytest.fixture
    def db(self, warehouse: Warehouse) -> Iterator[str]:
        yield from _fresh_database(warehouse)

    @pytest.fixture
    def migrated(self, warehouse: Warehouse, db: str) -> tuple[Warehouse, str]:
        migrations.migrate(warehouse, db)
        return warehouse, db

    def test_migrate_applies_everything_once(self, warehouse: Warehouse, db: str) -> None:
        every = [m.name for m in migrations.load_migrations()]
        assert migrations.status(warehouse, db) == [
            migrations.MigrationStatus(m.version, m.name, "pending") for m in migrations.load_migrations()
        ]
        assert migrations.migrate(warehouse, db) == every
        assert migrations.migrate(warehouse, db) == []
        assert [s.state for s in migrations.status(warehouse, db)] == ["applied"] * len(every)
        assert _count(warehouse, f"SELECT count() AS n FROM {db}.schema_migrations FINAL") == len(every)
        names = {r["name"] for r in warehouse.query(f"SELECT name FROM system.tables WHERE database = '{db}'")}
        assert names == rows.TABLES | VIEWS | {"schema_migrations"}

    def test_tables_follow_the_documented_identity_version_and_columns(self, migrated: tuple[Warehouse, str]) -> None:
        warehouse, db = migrated
        tables = {
            r["name"]: r
            for r in warehouse.query(
                f"SELECT name, engine, sorting_key, engine_full FROM system.tables WHERE database = '{db}'"
            )
        }
        for name, (identity, version) in _documented_tables().items():
            assert tables[name]["engine"] == "ReplacingMergeTree", name
            assert tables[name]["sorting_key"] == identity, name
            engine_version = re.match(r"ReplacingMergeTree(?:\((\w*)\))?", tables[name]["engine_full"])
            assert engine_version is not None and (engine_version[1] or "") == version, name
            if name != "schema_migrations":
                columns = warehouse.query(
                    f"SELECT name FROM system.columns WHERE database = '{db}' AND table = '{name}'"
                )
                undocumented = {c["name"] for c in columns} - _documented_columns(name)
                assert not undocumented, f"{name}: columns missing from docs/warehouse.md: {undocumented}"

    def test_builders_produce_exactly_each_tables_columns(self, migrated: tuple[Warehouse, str]) -> None:
        warehouse, db = migrated
        for table, batch in sample_rows().items():
            columns = warehouse.query(
                "SELECT name FROM system.columns WHERE database = %(db)s AND table = %(table)s",
                {"db": db, "table": table},
            )
            assert list(batch[0]) == [c["name"] for c in columns], table

    def test_modern_features_are_gated_on_the_server_version(self, migrated: tuple[Warehouse, str]) -> None:
        warehouse, db = migrated
        create = str(warehouse.query(f"SHOW CREATE TABLE {db}.readings")[0]["statement"])
        if warehouse.modern:
            assert "LowCardinality(String)" in create and "TTL observed_at + toIntervalDay(400)" in create
        else:
            assert warehouse.server_version[:2] == (18, 16)
            assert "LowCardinality" not in create and "TTL" not in create

    async def test_every_table_takes_builder_rows_and_collapses_duplicates(
        self, migrated: tuple[Warehouse, str]
    ) -> None:
        warehouse, db = migrated
        sample = sample_rows()
        await _write_all(warehouse, db, sample)
        await _write_all(warehouse, db, sample_rows())  # at-least-once: the same rows again
        for table, batch in sample.items():
            assert _count(warehouse, f"SELECT count() AS n FROM {db}.{table} FINAL") == len(batch), table
        for view, table in [
            ("incidents_current", "incidents"),
            ("dossiers_current", "dossiers"),
            ("reports_current", "citizen_reports"),
            ("device_freshness", "device_status"),
        ]:
            assert _count(warehouse, f"SELECT count() AS n FROM {db}.{view}") == len(sample[table]), view
        stored = warehouse.query(f"SELECT * FROM {db}.readings FINAL ORDER BY seq, measure")
        assert stored == sorted(sample["readings"], key=lambda r: (r["seq"], r["measure"]))

    async def test_a_restarted_sequence_is_a_new_row_and_a_replay_still_collapses(
        self, migrated: tuple[Warehouse, str]
    ) -> None:
        warehouse, db = migrated
        first_life = reading(0, at=dt.datetime(2026, 12, 1, 8, 0, tzinfo=dt.UTC))
        after_reboot = reading(0, at=dt.datetime(2026, 12, 1, 9, 30, tzinfo=dt.UTC))  # seq back at 0
        writer = RowSink(warehouse, db, initial_backoff_s=0.05, max_backoff_s=0.1)
        for ingested in (first_life, after_reboot, first_life, after_reboot):  # each delivered twice
            await writer.write("readings", rows.reading_rows(ingested))
        stored = warehouse.query(f"SELECT seq, observed_at FROM {db}.readings FINAL ORDER BY observed_at")
        assert [(r["seq"], r["observed_at"].hour) for r in stored] == [
            (0, 8),
            (0, 8),
            (0, 9),
            (0, 9),
        ]  # 2 measures each

    async def test_the_newest_version_wins_whatever_the_arrival_order(self, migrated: tuple[Warehouse, str]) -> None:
        warehouse, db = migrated
        writer = RowSink(warehouse, db)
        states = {1: IncidentState.OPEN, 2: IncidentState.ACKNOWLEDGED, 3: IncidentState.RESOLVED}
        for version in (2, 3, 1):
            row = rows.incident_row(incident(version, states[version]), PATH, DISTRICT_PATH)
            await writer.write("incidents", [row])
            await writer.write("dossiers", [rows.dossier_row(dossier(version), PATH)])
        current = warehouse.query(f"SELECT version, state, is_open FROM {db}.incidents_current")
        assert current == [{"version": 3, "state": "resolved", "is_open": 0}]
        by_argmax = warehouse.query(f"SELECT argMax(state, version) AS state FROM {db}.incidents GROUP BY incident_id")
        assert by_argmax == [{"state": "resolved"}]
        assert warehouse.query(f"SELECT status_version, status FROM {db}.dossiers_current") == [
            {"status_version": 3, "status": "processed"}
        ]
        reopened = rows.incident_row(incident(4, IncidentState.OPEN), PATH, DISTRICT_PATH)
        await writer.write("incidents", [reopened])
        assert warehouse.query(f"SELECT state, is_open FROM {db}.incidents_current") == [
            {"state": "open", "is_open": 1}
        ]

    async def test_device_freshness_keeps_the_latest_sighting(self, migrated: tuple[Warehouse, str]) -> None:
        warehouse, db = migrated
        writer = RowSink(warehouse, db)
        late = reading(9, at=BASE + dt.timedelta(hours=1))
        for latest in (late, reading(3)):  # an older flush replayed after a newer one
            await writer.write("device_status", [rows.device_status_row(latest, readings=1)])
        (fresh,) = warehouse.query(f"SELECT last_seq, last_seen, seconds_since_seen FROM {db}.device_freshness")
        assert fresh["last_seq"] == 9
        since = (dt.datetime.now(dt.UTC) - fresh["last_seen"]).total_seconds()
        assert abs(fresh["seconds_since_seen"] - since) < 5

    async def test_old_month_partitions_can_be_dropped(self, migrated: tuple[Warehouse, str]) -> None:
        warehouse, db = migrated
        old, recent = BASE - dt.timedelta(days=200), BASE
        await RowSink(warehouse, db).write(
            "readings", [*rows.reading_rows(reading(1, at=old)), *rows.reading_rows(reading(2, at=recent))]
        )
        dropped = migrations.drop_partitions_older_than(warehouse, "readings", 60, database=db)
        assert dropped == [f"{old:%Y%m}"]
        assert _count(warehouse, f"SELECT count() AS n FROM {db}.readings FINAL") == 2
        assert migrations.drop_partitions_older_than(warehouse, "readings", 60, database=db) == []
        with pytest.raises(ValueError, match="'incidents' is not partitioned by month"):
            migrations.drop_partitions_older_than(warehouse, "incidents", 60, database=db)

    def test_a_failing_statement_names_its_file_and_is_not_recorded(self, warehouse: Warehouse, db: str) -> None:
        broken = Migration(
            1,
            "0001_broken",
            "CREATE TABLE IF NOT EXISTS {{database}}.fine (x UInt8) ENGINE = Memory;\n"
            "CREATE TABLE IF NOT EXISTS {{database}}.bad (x NoSuchType) ENGINE = Memory;",
        )
        with pytest.raises(MigrationError, match=r"0001_broken.sql, statement 2 of 2 \(CREATE TABLE IF NOT EXISTS t_"):
            migrations.migrate(warehouse, db, migrations=[broken])
        assert [s.state for s in migrations.status(warehouse, db, migrations=[broken])] == ["pending"]

    def test_an_applied_migration_edited_later_is_refused(self, warehouse: Warehouse, db: str) -> None:
        first = Migration(1, "0001_t", "CREATE TABLE IF NOT EXISTS {{database}}.t (x UInt8) ENGINE = Memory;")
        assert migrations.migrate(warehouse, db, migrations=[first]) == ["0001_t"]
        edited = Migration(1, "0001_t", first.text.replace("UInt8", "UInt16"))
        with pytest.raises(MigrationError, match=r"0001_t\.sql was changed after it was applied"):
            migrations.migrate(warehouse, db, migrations=[edited])
        later = Migration(2, "0002_u", "CREATE TABLE IF NOT EXISTS {{database}}.u (x UInt8) ENGINE = Memory;")
        assert [s.state for s in migrations.status(warehouse, db, migrations=[edited, later])] == [
            "changed",
            "pending",
        ]
        assert [s.state for s in migrations.status(warehouse, db, migrations=[later])] == ["unknown", "pending"]


class TestOnChdb(_OnEveryEngine):
    @pytest.fixture
    def warehouse(self, chdb_warehouse: Warehouse) -> Warehouse:
        return chdb_warehouse


class TestOnServer(_OnEveryEngine):
    @pytest.fixture
    def warehouse(self, server_warehouse: Warehouse) -> Warehouse:
        return server_warehouse


# --- one query, both engines, the same rows --------------------------------------------------------------------

_QUERIES = [
    "SELECT * FROM {db}.readings FINAL ORDER BY unit, device_key, measure, seq",
    "SELECT * FROM {db}.camera_events FINAL ORDER BY unit, device_key, seq",
    "SELECT * FROM {db}.unit_aggregates FINAL ORDER BY unit, window, measure, window_start",
    "SELECT * FROM {db}.aqi_hourly FINAL ORDER BY unit, device_key, hour",
    "SELECT * FROM {db}.incident_history FINAL ORDER BY incident_id, version",
    "SELECT * FROM {db}.indicators_766 FINAL ORDER BY unit, period_kind, period_start, code",
    "SELECT * FROM {db}.deadletters FINAL ORDER BY vendor, letter_id",
    "SELECT * FROM {db}.incidents_current ORDER BY incident_id",
    "SELECT * FROM {db}.dossiers_current ORDER BY dossier_id",
    "SELECT * FROM {db}.reports_current ORDER BY report_id",
    "SELECT * EXCEPT_NOW FROM {db}.device_freshness ORDER BY device_key",
    "SELECT unit, measure, count() AS n, round(avg(value), 3) AS mean FROM {db}.readings FINAL "
    "WHERE path = '74/724/25957' OR startsWith(path, '74/724/25957/') GROUP BY unit, measure ORDER BY unit, measure",
]


async def test_the_same_query_returns_the_same_rows_on_both_engines(
    chdb_warehouse: Warehouse, server_warehouse: Warehouse
) -> None:
    results: list[list[list[dict[str, Any]]]] = []
    for warehouse in (chdb_warehouse, server_warehouse):
        databases = _fresh_database(warehouse)
        db = next(databases)
        try:
            migrations.migrate(warehouse, db)
            await _write_all(warehouse, db, sample_rows())
            await _write_all(warehouse, db, sample_rows())
            answers = []
            for query in _QUERIES:
                # seconds_since_seen depends on when each engine is asked; every other column must match.
                sql = query.replace("* EXCEPT_NOW", "device_key, last_seen, last_seq, readings, lat, lon")
                answers.append(warehouse.query(sql.format(db=db)))
            results.append(answers)
        finally:
            next(databases, None)
    on_chdb, on_server = results
    for query, chdb_rows, server_rows in zip(_QUERIES, on_chdb, on_server, strict=True):
        assert chdb_rows, query
        assert chdb_rows == server_rows, query
