"""Versioned, idempotent schema migrations for the ClickHouse warehouse, rendered for 18.16 or current servers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import importlib.resources
import logging
import re
from collections.abc import Iterable, Sequence
from importlib.resources.abc import Traversable
from typing import Final, Literal

from ioc.clients.clickhouse import Warehouse, WarehouseError
from streams.warehouse.cluster import LOCAL_SUFFIX, ClusterSchema, ClusterSchemaError, EachShard, bookkeeping_engine

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_RETENTION_DAYS",
    "MONTHLY_PARTITIONED",
    "Migration",
    "MigrationError",
    "MigrationStatus",
    "drop_partitions_older_than",
    "expired_partitions",
    "load_migrations",
    "migrate",
    "render_sql",
    "split_statements",
    "status",
]

log = logging.getLogger(__name__)

DEFAULT_DATABASE: Final = "ioc"
DEFAULT_RETENTION_DAYS: Final = 400
"""Days of raw observations (readings, camera events) a current server keeps: a year and a season back."""

MONTHLY_PARTITIONED: Final[frozenset[str]] = frozenset({"readings", "camera_events"})
"""Tables partitioned by `toYYYYMM(observed_at)`: the ones `drop_partitions_older_than` can trim."""

_FILE_NAME: Final = re.compile(r"^(?P<version>[0-9]{4})_(?P<slug>[a-z0-9_]+)\.sql$")
_DATABASE_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MARKER: Final = re.compile(r"\{\{\s*(?P<body>[^{}]*?)\s*\}\}")
_LOW_CARDINALITY: Final = re.compile(r"^LowCardinality\((?P<inner>[A-Za-z0-9_]+)\)$")
_TTL: Final = re.compile(r"^TTL (?P<column>[A-Za-z_][A-Za-z0-9_]*)$")
_MONTH_PARTITION: Final = re.compile(r"^(?P<year>[0-9]{4})(?P<month>0[1-9]|1[0-2])$")

# The runner's own bookkeeping, created before any migration is read: it has to exist to know which
# migrations have been applied, so it cannot be one of them.
_BOOKKEEPING: Final = """
CREATE TABLE IF NOT EXISTS {database}.schema_migrations
(
    version UInt32,
    name String,
    checksum String,
    server_version String,
    applied_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY version
"""


class MigrationError(WarehouseError):
    """A migration file is malformed, was edited after it was applied, or one of its statements failed."""


@dataclasses.dataclass(frozen=True, slots=True)
class Migration:
    """One numbered SQL file: `NNNN_name.sql`, its template text and the checksum recorded when applied."""

    version: int
    name: str
    text: str

    @property
    def filename(self) -> str:
        return f"{self.name}.sql"

    @property
    def checksum(self) -> str:
        """SHA-256 of the template text (not the rendering, which depends on the server and parameters)."""
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def statements(
        self, *, database: str, modern: bool, retention_days: int, cluster: ClusterSchema | None = None
    ) -> list[str]:
        """The statements to run, rendered for a server with (`modern`) or without current features.

        With `cluster`, each statement is rewritten for the cluster (streams/warehouse/cluster.py), which also
        learns the tables this migration makes: render every migration in order through one `ClusterSchema`.
        """
        rendered = render_sql(
            self.text, database=database, modern=modern, retention_days=retention_days, source=self.filename
        )
        try:
            statements = split_statements(rendered)
        except ValueError as exc:
            raise MigrationError(f"{self.filename}: {exc}") from None
        if cluster is None:
            return statements
        try:
            return [rewritten for statement in statements for rewritten in cluster.rewrite(statement)]
        except ClusterSchemaError as exc:
            raise MigrationError(f"{self.filename}: {exc}") from None


@dataclasses.dataclass(frozen=True, slots=True)
class MigrationStatus:
    """Where one migration stands in a database.

    `state`: applied; pending (in the code, not in the database); changed (applied, but the file differs
    from what was applied); unknown (recorded in the database, not in this code: a newer version of the
    platform applied it).
    """

    version: int
    name: str
    state: Literal["applied", "pending", "changed", "unknown"]
    applied_at: dt.datetime | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Record:
    name: str
    checksum: str
    applied_at: dt.datetime


# --- pure: files, templates, statements -------------------------------------------------------------------


def load_migrations(source: Traversable | None = None) -> tuple[Migration, ...]:
    """The migrations in `source` (default: the packaged `sql/` folder), sorted by version.

    Every `.sql` file must be named `NNNN_name.sql` with a version used once; anything else is an error
    rather than a file silently skipped.
    """
    folder = source if source is not None else importlib.resources.files("streams.warehouse").joinpath("sql")
    found: dict[int, Migration] = {}
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _FILE_NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file {entry.name!r} is not named NNNN_name.sql (e.g. 0007_add_x.sql)")
        version = int(match["version"])
        if version in found:
            raise MigrationError(f"migration files {found[version].filename} and {entry.name} share version {version}")
        found[version] = Migration(version, entry.name.removesuffix(".sql"), entry.read_text(encoding="utf-8"))
    return tuple(found[v] for v in sorted(found))


def render_sql(text: str, *, database: str, modern: bool, retention_days: int, source: str = "<sql>") -> str:
    """`text` with its `{{...}}` markers replaced for a current (`modern`) server or for 18.16."""
    _check_database(database)
    _check_days(retention_days, "retention_days")

    def substitute(match: re.Match[str]) -> str:
        body = match["body"]
        if body == "database":
            return database
        if low := _LOW_CARDINALITY.match(body):
            return body if modern else low["inner"]
        if ttl := _TTL.match(body):
            return f"TTL {ttl['column']} + INTERVAL {retention_days} DAY" if modern else ""
        raise MigrationError(
            f"{source}: unknown template marker {match.group(0)}; "
            "known: {{database}}, {{LowCardinality(Type)}}, {{TTL column}}"
        )

    rendered = _MARKER.sub(substitute, text)
    if "{{" in rendered or "}}" in rendered:
        raise MigrationError(f"{source}: unbalanced template marker (a '{{{{' or '}}}}' left after rendering)")
    return rendered


def split_statements(sql: str) -> list[str]:
    """The `;`-separated statements of `sql`, without comments; quotes and comments may contain `;`."""
    statements: list[str] = []
    current: list[str] = []

    def flush() -> None:
        text = "".join(current).strip()
        if text:
            statements.append(text)
        current.clear()

    i, end = 0, len(sql)
    while i < end:
        char = sql[i]
        if sql.startswith("--", i):
            newline = sql.find("\n", i)
            i = end if newline < 0 else newline
        elif sql.startswith("/*", i):
            close = sql.find("*/", i + 2)
            if close < 0:
                raise ValueError(f"unterminated /* comment at offset {i}")
            current.append(" ")
            i = close + 2
        elif char in "'\"`":
            after = _end_of_quoted(sql, i)
            current.append(sql[i:after])
            i = after
        elif char == ";":
            flush()
            i += 1
        else:
            current.append(char)
            i += 1
    flush()
    return statements


def _end_of_quoted(sql: str, start: int) -> int:
    quote, i = sql[start], start + 1
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
        elif sql[i] == quote:
            if sql.startswith(quote * 2, i):  # a doubled quote is an escaped one
                i += 2
            else:
                return i + 1
        else:
            i += 1
    raise ValueError(f"unterminated {quote} quote starting at offset {start}")


def expired_partitions(partition_ids: Iterable[str], cutoff: dt.datetime) -> list[str]:
    """The month partitions (`YYYYMM` ids) whose whole month is before `cutoff`, sorted.

    A month is expired only when its last second is before the cutoff, so no row younger than the
    retention is ever dropped; rows of the cutoff's own month wait for the next month's run.
    """
    if cutoff.utcoffset() is None:
        raise ValueError(f"cutoff must be timezone-aware, got {cutoff.isoformat()}")
    expired = []
    for partition_id in set(partition_ids):
        match = _MONTH_PARTITION.match(partition_id)
        if match is None:
            raise ValueError(
                f"partition {partition_id!r} is not a month (YYYYMM): the table is not partitioned by month"
            )
        year, month = int(match["year"]), int(match["month"])
        month_end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=dt.UTC)
        if month_end <= cutoff:
            expired.append(partition_id)
    return sorted(expired)


def _check_database(database: str) -> None:
    if not _DATABASE_NAME.match(database):
        raise ValueError(f"database name {database!r} is not a plain identifier (letters, digits, '_')")


def _check_days(days: int, what: str) -> None:
    if days < 1:
        raise ValueError(f"{what} must be at least 1 day, got {days}")


# --- I/O: applying and inspecting -----------------------------------------------------------------------


def migrate(
    warehouse: Warehouse,
    database: str = DEFAULT_DATABASE,
    *,
    retention_days: int = DEFAULT_RETENTION_DAYS,
    migrations: Sequence[Migration] | None = None,
) -> list[str]:
    """Apply the migrations `database` has not recorded yet; returns their names (empty when up to date).

    Raises `MigrationError` naming the file and the statement when a statement fails, or when an applied
    file has been edited since.

    The schema is the contract in docs/warehouse.md, written as numbered SQL files in `sql/` (packaged with
    `streams.warehouse`). The stream workers run this at start-up, `ioc warehouse migrate` runs it by hand, and the
    operator's per-site views (operators/) and the dashboards (dashboards/data) read the tables it creates.

    The SQL is written for ClickHouse 18.16, the only server on these machines, with small template markers for what
    only current ClickHouse has (chDB 26.x, and production):

    - `{{database}}`: the database name (default `ioc`).
    - `{{LowCardinality(String)}}`: `LowCardinality(String)` on current servers, plain `String` on 18.16 (same values,
      only the storage differs).
    - `{{TTL column}}`: `TTL column + INTERVAL <retention_days> DAY` on current servers, nothing on 18.16. 18.16 has no
      TTL: there the operator keeps retention by dropping whole month partitions with `drop_partitions_older_than`,
      which works on both engines. The retention is fixed when a table is created; changing it later takes a new
      migration (`ALTER TABLE ... MODIFY TTL`).

    On a cluster (the connection's `ClickHouseEndpoint.cluster`) the same files are rewritten statement by statement
    into ON CLUSTER DDL: replicated shard-local tables `<name>_local` and Distributed tables `<name>` over them, sharded
    by the sorting key (streams/warehouse/cluster.py); authors keep writing for one server.

    A migration file must be safe to run again (`CREATE ... IF NOT EXISTS`): it is recorded only after all of its
    statements succeeded, so a run interrupted half-way re-runs the whole file next time, and two runners starting
    together may both apply it (their records collapse: `schema_migrations` is itself a ReplacingMergeTree on
    `version`). An applied file must never be edited: its SHA-256 is recorded and a changed file stops `migrate` with an
    error; add a new migration instead.
    """
    plan = load_migrations() if migrations is None else tuple(sorted(migrations, key=lambda m: m.version))
    _check_database(database)
    _check_days(retention_days, "retention_days")
    # On a cluster every migration is rendered, applied or not, so the rewrite knows each table it made.
    try:
        cluster = ClusterSchema(warehouse.cluster) if warehouse.cluster else None
    except ClusterSchemaError as exc:
        raise MigrationError(str(exc)) from None
    _bootstrap(warehouse, database)
    applied = _applied(warehouse, database)
    _refuse_changed(plan, applied, database)
    done: list[str] = []
    for migration in plan:
        statements = migration.statements(
            database=database, modern=warehouse.modern, retention_days=retention_days, cluster=cluster
        )
        if migration.version in applied:
            continue
        _apply(warehouse, migration, database, statements)
        done.append(migration.name)
    return done


def status(
    warehouse: Warehouse, database: str = DEFAULT_DATABASE, *, migrations: Sequence[Migration] | None = None
) -> list[MigrationStatus]:
    """Every migration known to this code or recorded in `database`, by version, with where it stands."""
    plan = load_migrations() if migrations is None else tuple(migrations)
    _check_database(database)
    exists = warehouse.query(
        "SELECT count() AS n FROM system.tables WHERE database = %(database)s AND name = 'schema_migrations'",
        {"database": database},
    )
    applied = _applied(warehouse, database) if exists and int(exists[0]["n"]) else {}
    known = {m.version: m for m in plan}
    report: list[MigrationStatus] = []
    for version in sorted(known.keys() | applied.keys()):
        record, migration = applied.get(version), known.get(version)
        if record is None:
            assert migration is not None
            report.append(MigrationStatus(version, migration.name, "pending"))
        elif migration is None:
            report.append(MigrationStatus(version, record.name, "unknown", record.applied_at))
        else:
            state: Literal["applied", "changed"] = "applied" if record.checksum == migration.checksum else "changed"
            report.append(MigrationStatus(version, migration.name, state, record.applied_at))
    return report


def drop_partitions_older_than(
    warehouse: Warehouse,
    table: str,
    days: int,
    *,
    database: str = DEFAULT_DATABASE,
    now: dt.datetime | None = None,
) -> list[str]:
    """Drop `table`'s month partitions entirely older than `days`; returns the dropped partition ids.

    The retention of 18.16, which has no TTL (run it daily from the operator); harmless on current servers,
    where the TTL usually got there first.
    """
    if table not in MONTHLY_PARTITIONED:
        raise ValueError(f"{table!r} is not partitioned by month; these are: {', '.join(sorted(MONTHLY_PARTITIONED))}")
    _check_database(database)
    _check_days(days, "days")
    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=days)
    # On a cluster the partitions are the shard-local table's, on every shard: listed through the cluster.
    local, parts_of = table, "system.parts"
    if warehouse.cluster:
        local, parts_of = table + LOCAL_SUFFIX, f"cluster('{warehouse.cluster}', system.parts)"
    parts = warehouse.query(
        f"SELECT DISTINCT partition_id FROM {parts_of} "  # noqa: S608 - a checked identifier, values as parameters
        "WHERE database = %(database)s AND table = %(table)s AND active",
        {"database": database, "table": local},
    )
    expired = expired_partitions((str(p["partition_id"]) for p in parts), cutoff)
    for partition_id in expired:
        if warehouse.cluster:
            # 18.16 forwards DROP PARTITION from a replica to its shard's leader without credentials (refused when
            # `default` has a password); a mutation is replicated through ZooKeeper instead, and empties the month
            # in the background (the partition key of these tables is toYYYYMM(observed_at)). Once per shard, not
            # ON CLUSTER (streams/warehouse/cluster.py, `EachShard`).
            warehouse.command_on_each_shard(
                f"ALTER TABLE {database}.{local} DELETE WHERE toYYYYMM(observed_at) = %(month)s",
                {"month": int(partition_id)},
            )
            continue
        warehouse.command(f"ALTER TABLE {database}.{local} DROP PARTITION ID %(id)s", {"id": partition_id})
        log.info("dropped partition %s of %s.%s (older than %d days)", partition_id, database, table, days)
    return expired


def _bootstrap(warehouse: Warehouse, database: str) -> None:
    statements = [f"CREATE DATABASE IF NOT EXISTS {database}", _BOOKKEEPING.format(database=database)]
    if warehouse.cluster:  # one replicated copy on every server, so any of them knows what was applied
        on = f" ON CLUSTER {warehouse.cluster}"
        statements = [
            statements[0] + on,
            statements[1]
            .replace(f"{database}.schema_migrations", f"{database}.schema_migrations{on}")
            .replace("ReplacingMergeTree()", bookkeeping_engine(database)),
        ]
    for statement in statements:
        try:
            warehouse.command(statement)
        except WarehouseError as exc:
            raise MigrationError(
                f"cannot prepare {database}.schema_migrations ({_first_line(statement)}): {exc}"
            ) from exc


def _applied(warehouse: Warehouse, database: str) -> dict[int, _Record]:
    # The database name is checked to be a plain identifier (_check_database); only values take parameters.
    sql = f"SELECT version, name, checksum, applied_at FROM {database}.schema_migrations FINAL ORDER BY version"  # noqa: S608
    rows = warehouse.query(sql)
    return {int(r["version"]): _Record(str(r["name"]), str(r["checksum"]), r["applied_at"]) for r in rows}


def _refuse_changed(plan: Sequence[Migration], applied: dict[int, _Record], database: str) -> None:
    for migration in plan:
        record = applied.get(migration.version)
        if record is not None and record.checksum != migration.checksum:
            raise MigrationError(
                f"{migration.filename} was changed after it was applied to {database} on "
                f"{record.applied_at:%Y-%m-%d %H:%M} UTC: put the change in a new migration instead"
            )


def _apply(warehouse: Warehouse, migration: Migration, database: str, statements: list[str]) -> None:
    for number, statement in enumerate(statements, start=1):
        try:
            if isinstance(statement, EachShard):
                warehouse.command_on_each_shard(statement)
            else:
                warehouse.command(statement)
        except WarehouseError as exc:
            raise MigrationError(
                f"{migration.filename}, statement {number} of {len(statements)} ({_first_line(statement)}): {exc}"
            ) from exc
    record = {
        "version": migration.version,
        "name": migration.name,
        "checksum": migration.checksum,
        "server_version": ".".join(str(p) for p in warehouse.server_version),
        "applied_at": dt.datetime.now(dt.UTC).replace(microsecond=0),
    }
    try:
        warehouse.insert(f"{database}.schema_migrations", [record])
    except WarehouseError as exc:
        # Harmless to re-run: the statements are idempotent, and the next run records it.
        raise MigrationError(f"{migration.filename} was applied but could not be recorded: {exc}") from exc
    log.info("applied migration %s to %s (%d statements)", migration.filename, database, len(statements))


def _first_line(statement: str) -> str:
    line = statement.strip().splitlines()[0]
    return line if len(line) <= 100 else line[:97] + "..."
