"""A site's ClickHouse database: copies of its subtree's rows (masked), its read-only user, its figures.

A site's database `ioc_site_<unit>` holds one table per warehouse table it may read, named like it and
made `AS` it (same columns, engine, sorting key and partitioning, so duplicates collapse as in the
originals), and one MATERIALIZED VIEW per table, `<table>_feed_<fingerprint>`, that copies each block
inserted into the warehouse table into the site's table, keeping only the rows of the site's subtree
(`ioc.scope`, as the dashboards mean it) and masking personal data on the way (PERSONAL_SQL). A new table
is back-filled with INSERT ... SELECT after its feed exists, so no row falls between the two. The
operator's timer re-checks every table: a missing table or feed, a table whose columns changed, or a
feed whose SELECT changed (another scope, other masks) is rebuilt and back-filled (docs/warehouse.md,
"Site databases").

Why copies and not views: ClickHouse 18.16 checks a view's reader against the view's source database,
so a reader of plain views must be allowed `ioc` itself and reads the whole province from there
(issue 17); a copy's reader needs its own database only. The same layout runs on current servers (one
layout, tested on both engines; FINAL on a table works, on a view it does not). The price is one more
write of every row per site whose subtree holds it (docs/warehouse.md gives the measured figures).

The site's user is allowed its own database only, read-only, under a settings profile with memory,
time and result-size limits and a quota (`ioc.settings.SiteReaderLimits`): a users.d file on 18.16 (no
SQL users there), SQL users, profiles and quotas on current servers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

from ioc import units
from ioc.clients.clickhouse import Warehouse, render
from ioc.events import ACTIVE_STATES
from ioc.scope import Scope
from ioc.settings import SiteReaderLimits
from operators.names import SiteNames

__all__ = [
    "FOLLOW_KEYS",
    "PERSONAL_SQL",
    "SITE_TABLES",
    "UNPLACED",
    "Figures",
    "TablesReport",
    "WarehouseReport",
    "backfill_sql",
    "drop_site",
    "ensure_site",
    "ensure_tables",
    "feed_name",
    "feed_sql",
    "format_age",
    "read_figures",
    "scope_condition",
    "select_list",
    "table_condition",
    "user_sql",
    "users_d_file",
    "users_d_xml",
]

SITE_TABLES: Final[dict[str, tuple[str, ...]]] = {
    "readings": ("path",),
    "camera_events": ("path",),
    "device_status": ("path",),
    "unit_aggregates": ("path",),
    "aqi_hourly": ("path",),
    # docs/warehouse.md: a site sees an incident when its place or its responsible unit is in the subtree.
    "incidents": ("path", "responsible_path"),
    "incident_history": ("path", "responsible_path"),
    "citizen_reports": ("path",),
    "dossiers": ("path",),
    "indicators_766": ("path",),
    # The workers' refusals of commands about the site's incidents, for the dashboard that sent them.
    "command_refusals": ("path", "responsible_path"),
    # Notifications about the site's incidents (streams/agents/notifications.py), placed like them.
    "notification_deliveries": ("path", "responsible_path"),
    # Refused inputs from the subtree's device topics (never their bytes: PERSONAL_SQL blanks `payload`).
    "deadletters": ("path",),
}
"""Warehouse tables a site sees, with the path columns that place a row in the tree."""

UNPLACED: Final[frozenset[str]] = frozenset({"deadletters"})
"""Tables whose rows may have no path: placed by their `unit` where `path` is '' (dead letters stored before
migration 0011 have a unit computed from their source but no path), and held by the tree's root site only
when they name no unit either, as the dashboards' `include_unplaced` means it."""

FOLLOW_KEYS: Final[Mapping[str, str]] = {"incidents": "incident_id", "incident_history": "incident_id"}
"""Tables whose later rows follow an entity the site already holds, wherever they place it.

An incident reassigned to a unit outside the site still gets its new version in the site's copy, so
the copy's latest version is the warehouse's (the dashboards filter by scope after FINAL, as they did
on the views) rather than a stale one that would stay open there forever."""

# Personal data never reaches a site's copy (docs/security.md): the same masks as the dashboards'
# dashboards/data/privacy.py, in SQL that runs on 18.16 and on current servers (tests/operators check
# that both give the same strings). Plates and phone digits are matched as ASCII (what plates and
# Vietnamese numbers are made of). Free-text addresses and camera snapshots (which show the plate) are
# left out entirely; the report's text stays, as the content an operator acts on.
_DIGITS: Final = "replaceRegexpAll(contact_phone, '[^0-9]', '')"
PERSONAL_SQL: Final[Mapping[str, str]] = {
    "plate": "concat(substringUTF8(plate, 1, 3), "
    "replaceRegexpAll(substringUTF8(plate, 4, 1000000), '[A-Za-z0-9]', '•'))",
    "contact_name": "arrayStringConcat(arrayMap(w -> concat(substringUTF8(w, 1, 1), '.'), arrayFilter(w -> w != '', "
    "splitByChar(' ', replaceRegexpAll(contact_name, '[[:space:]]', ' ')))), ' ')",
    # 18.16 wants constant offsets and lengths in substring functions: hence reverse() and splitByChar().
    "contact_phone": "concat(arrayStringConcat(arrayMap(i -> '•', "
    f"range(toUInt64(greatest(toInt64(length({_DIGITS})) - 3, 0))))), reverse(substring(reverse({_DIGITS}), 1, 3)))",
    "contact_email": "if(position(contact_email, '@') = 0, if(contact_email = '', '', '•••'), "
    "concat(substringUTF8(splitByChar('@', contact_email)[1], 1, 1), '•••@', "
    "arrayStringConcat(arrayPopFront(splitByChar('@', contact_email)), '@')))",
    "address": "''",
    "image_url": "''",
    # A refused message's bytes may hold anything a device sent (plates, names): the reason and size stay.
    "payload": "''",
}
"""Per personal column of the warehouse: the SQL expression a site's copy holds instead of the value."""

_UNIT_COLUMN: Final = {"path": "unit", "responsible_path": "responsible_unit"}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_FEED = re.compile(r"^(?P<table>[a-z0-9_]+)_feed_[0-9a-f]{10}$")


def _ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a ClickHouse database or user name the operator issues")
    return name


# --- pure: the SQL of a site's copies -------------------------------------------------------------------


def scope_condition(scope: Scope, path_columns: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The WHERE condition selecting a site's rows: any of the path columns in its subtree."""
    parts, params = [], {}
    for i, column in enumerate(path_columns):
        sql, values = scope.predicate(path_column=column, unit_column=_UNIT_COLUMN[column], name=f"s{i}")
        parts.append(sql)
        params.update(values)
    return (parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"), params


def table_condition(scope: Scope, table: str) -> tuple[str, dict[str, Any]]:
    """The WHERE condition selecting a site's rows of `table`, unplaced rows included where UNPLACED says."""
    condition, params = scope_condition(scope, SITE_TABLES[table])
    if table not in UNPLACED:
        return condition, params
    parts = [condition, "(path = '' AND unit IN %(unplaced_units)s)"]
    params = {**params, "unplaced_units": tuple(sorted(scope.units))}
    if units.load_tree(scope.edition).get(scope.unit).parent is None:  # the tree's root holds what has no place
        parts.append("(path = '' AND unit = '')")
    return "(" + " OR ".join(parts) + ")", params


def select_list(columns: list[str]) -> str:
    """The copy's columns in the source's order, personal ones replaced by their mask."""
    return ", ".join(f"{PERSONAL_SQL[c]} AS {c}" if c in PERSONAL_SQL else _ident(c) for c in columns)


def feed_sql(source_db: str, site_db: str, table: str, scope: Scope, columns: list[str]) -> str:
    """CREATE MATERIALIZED VIEW copying the site's new rows of `table` into its copy (values rendered in)."""
    condition, params = table_condition(scope, table)
    site, source = f"{_ident(site_db)}.{_ident(table)}", f"{_ident(source_db)}.{_ident(table)}"
    follow = FOLLOW_KEYS.get(table)
    if follow is not None:
        condition = f"{condition} OR {follow} IN (SELECT {follow} FROM {site})"  # noqa: S608 - checked names
    feed = f"{_ident(site_db)}.{feed_name(source_db, site_db, table, scope, columns)}"
    # Identifiers are checked by _ident; the scope's values are rendered as escaped literals: a view's
    # SELECT is stored with the view, so it cannot keep parameters.
    select = f"SELECT {select_list(columns)} FROM {source} WHERE {condition}"  # noqa: S608
    return render(f"CREATE MATERIALIZED VIEW IF NOT EXISTS {feed} TO {site} AS {select}", params)


def feed_name(source_db: str, site_db: str, table: str, scope: Scope, columns: list[str]) -> str:
    """`<table>_feed_<fingerprint>`: the fingerprint changes with the feed's SELECT, so a stale feed shows."""
    condition, params = table_condition(scope, table)
    text = "\n".join((source_db, site_db, table, render(condition, params), select_list(columns)))
    return f"{_ident(table)}_feed_{hashlib.sha256(text.encode('utf-8')).hexdigest()[:10]}"


def backfill_sql(
    source_db: str, site_db: str, table: str, scope: Scope, columns: list[str]
) -> tuple[str, dict[str, Any]]:
    """INSERT ... SELECT of the site's rows already in `table` (run once its feed exists)."""
    condition, params = table_condition(scope, table)
    source = f"{_ident(source_db)}.{_ident(table)}"
    follow = FOLLOW_KEYS.get(table)
    if follow is not None:
        condition = f"{condition} OR {follow} IN (SELECT {follow} FROM {source} WHERE {condition})"  # noqa: S608
    names = ", ".join(_ident(c) for c in columns)
    select = f"SELECT {select_list(columns)} FROM {source} WHERE {condition}"  # noqa: S608 - checked names
    return f"INSERT INTO {_ident(site_db)}.{_ident(table)} ({names}) {select}", params


# --- pure: the site's user ------------------------------------------------------------------------------


def users_d_file(users_d: Path, names: SiteNames) -> Path:
    return users_d / f"{names.clickhouse_user}.xml"


def _profile_settings(limits: SiteReaderLimits) -> dict[str, int | str]:
    return {
        "readonly": 1,
        "max_memory_usage": limits.max_memory_usage,
        "max_execution_time": limits.max_execution_time_s,
        "max_result_rows": limits.max_result_rows,
        "max_result_bytes": limits.max_result_bytes,
        "result_overflow_mode": "throw",
    }


def users_d_xml(names: SiteNames, password: str, limits: SiteReaderLimits) -> str:
    """A users.d file declaring the site's user, its profile and its quota (18.16: no SQL users)."""
    digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
    user = escape(_ident(names.clickhouse_user))
    settings = "\n".join(f"            <{k}>{escape(str(v))}</{k}>" for k, v in _profile_settings(limits).items())
    networks = "".join(f"<ip>{escape(n)}</ip>" for n in limits.networks)
    return f"""<?xml version="1.0"?>
<!-- Written by the IOC operator for IOCSite {escape(names.namespace)}/{escape(names.name)}; removed with it. -->
<yandex>
    <profiles>
        <{user}>
{settings}
        </{user}>
    </profiles>
    <quotas>
        <{user}>
            <interval>
                <duration>{limits.quota_interval_s}</duration>
                <queries>{limits.quota_queries}</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </{user}>
    </quotas>
    <users>
        <{user}>
            <password_sha256_hex>{digest}</password_sha256_hex>
            <networks>{networks}</networks>
            <profile>{user}</profile>
            <quota>{user}</quota>
            <!-- Its own database only: its tables are copies, so it never needs the warehouse's. -->
            <allow_databases>
                <database>{escape(_ident(names.database))}</database>
            </allow_databases>
        </{user}>
    </users>
</yandex>
"""


def user_sql(names: SiteNames, password: str, limits: SiteReaderLimits) -> list[tuple[str, dict[str, Any]]]:
    """The statements making (or repairing) the site's SQL user, profile and quota on a current server."""
    user, database = _ident(names.clickhouse_user), _ident(names.database)
    settings = ", ".join(
        f"{k} = {v!r}" if isinstance(v, str) else f"{k} = {v}" for k, v in _profile_settings(limits).items()
    )
    hosts = ", ".join(f"IP '{_network(n)}'" for n in limits.networks)
    quota = f"FOR INTERVAL {limits.quota_interval_s} SECOND MAX queries = {limits.quota_queries} TO {user}"
    identified = "IDENTIFIED WITH sha256_password BY %(password)s"
    secret = {"password": password}
    return [
        (f"CREATE SETTINGS PROFILE IF NOT EXISTS {user} SETTINGS {settings}", {}),
        (f"ALTER SETTINGS PROFILE {user} SETTINGS {settings}", {}),
        (f"CREATE USER IF NOT EXISTS {user} {identified} HOST {hosts} SETTINGS PROFILE '{user}'", secret),
        (f"ALTER USER {user} {identified} HOST {hosts} SETTINGS PROFILE '{user}'", secret),
        (f"CREATE QUOTA IF NOT EXISTS {user} {quota}", {}),
        (f"ALTER QUOTA {user} {quota}", {}),
        # Whatever else it was granted by hand goes: its own database, read-only, is all it has.
        (f"REVOKE ALL ON *.* FROM {user}", {}),
        (f"GRANT SELECT ON {database}.* TO {user}", {}),
    ]


def _network(network: str) -> str:
    if not re.fullmatch(r"[0-9a-fA-F:./]+", network):
        raise ValueError(f"{network!r} is not an IP address or CIDR range")
    return network


# --- I/O: making and repairing a site ---------------------------------------------------------------------


def _write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    # Written beside and renamed: ClickHouse reloads users.d on change and must never see half a file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.chmod(0o640)
    tmp.replace(path)
    return True


@dataclasses.dataclass(frozen=True, slots=True)
class TablesReport:
    """What `ensure_tables` found and did: tables made, rebuilt (changed or stale), or not in the warehouse yet."""

    created: list[str]
    recreated: list[str]
    missing_tables: list[str]


@dataclasses.dataclass(frozen=True, slots=True)
class WarehouseReport:
    """What `ensure_site` found and did."""

    created: list[str]
    recreated: list[str]
    missing_tables: list[str]
    user_written: bool


def _columns(warehouse: Warehouse, database: str) -> dict[str, list[tuple[str, str]]]:
    # 18.16's system.columns has no `position`; rows come in the tables' column order on both engines.
    rows = warehouse.query("SELECT table, name, type FROM system.columns WHERE database = %(db)s", {"db": database})
    found: dict[str, list[tuple[str, str]]] = {}
    for row in rows:
        found.setdefault(row["table"], []).append((row["name"], row["type"]))
    return found


def ensure_tables(warehouse: Warehouse, database: str, scope: Scope, *, source_db: str) -> TablesReport:
    """Create or repair the site's copies and their feeds; idempotent and cheap when all is in place."""
    database, source_db = _ident(database), _ident(source_db)
    warehouse.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    sources = _columns(warehouse, source_db)
    copies = _columns(warehouse, database)
    tables = warehouse.query(
        "SELECT database, name, engine, engine_full FROM system.tables WHERE database IN (%(site)s, %(source)s)",
        {"site": database, "source": source_db},
    )
    engines = {r["name"]: r["engine"] for r in tables if r["database"] == database}
    # The whole engine clause: a copy collapses duplicates exactly as its source only with the same key.
    clauses = {(r["database"], r["name"]): r["engine_full"] for r in tables}
    feeds: dict[str, list[str]] = {}
    for name in engines:
        if match := _FEED.match(name):
            feeds.setdefault(match["table"], []).append(name)
    created, recreated, missing = [], [], []
    for table in SITE_TABLES:
        source = sources.get(table)
        if source is None:
            missing.append(table)
            continue
        columns = [name for name, _ in source]
        feed = feed_name(source_db, database, table, scope, columns)
        table_ok = (
            engines.get(table, "View") != "View"
            and sorted(copies.get(table, [])) == sorted(source)
            and clauses.get((database, table)) == clauses.get((source_db, table))
        )
        if table_ok and feeds.get(table) == [feed]:
            continue
        # Stale feeds go first, so nothing copies into a table that is about to be rebuilt.
        for old in feeds.get(table, []):
            warehouse.command(f"DROP TABLE IF EXISTS {database}.{_ident(old)}")
        if not table_ok:
            if table in engines:
                # A view of the old layout, or a copy whose columns or engine (a migration rebuilt the
                # warehouse's table with another sorting key) no longer match the warehouse's.
                warehouse.command(f"DROP TABLE IF EXISTS {database}.{_ident(table)}")
                recreated.append(table)
            else:
                created.append(table)
            warehouse.command(f"CREATE TABLE {database}.{_ident(table)} AS {source_db}.{_ident(table)}")
        else:
            recreated.append(table)
        warehouse.command(feed_sql(source_db, database, table, scope, columns))
        # After the feed exists: a row inserted meanwhile arrives twice and collapses like any duplicate.
        sql, params = backfill_sql(source_db, database, table, scope, columns)
        warehouse.command(sql, params)
    return TablesReport(created, recreated, missing)


def ensure_site(
    warehouse: Warehouse,
    names: SiteNames,
    scope: Scope,
    password: str,
    *,
    source_db: str,
    users_d: Path | None,
    limits: SiteReaderLimits | None = None,
) -> WarehouseReport:
    """Create or repair the site's database, copies and user; idempotent and cheap when all is in place."""
    report = ensure_tables(warehouse, names.database, scope, source_db=source_db)
    user_written = _ensure_user(warehouse, names, password, limits or SiteReaderLimits(), users_d=users_d)
    return WarehouseReport(report.created, report.recreated, report.missing_tables, user_written)


def _ensure_user(
    warehouse: Warehouse, names: SiteNames, password: str, limits: SiteReaderLimits, *, users_d: Path | None
) -> bool:
    if not warehouse.modern:
        if users_d is None:
            raise FileNotFoundError(
                "ClickHouse 18.16 has no SQL users and no users.d directory is configured "
                "(IOC_OPERATOR_CLICKHOUSE_USERS_D)"
            )
        return _write_if_changed(users_d_file(users_d, names), users_d_xml(names, password, limits))
    for sql, params in user_sql(names, password, limits):
        warehouse.command(sql, params)
    return False


def drop_site(warehouse: Warehouse, names: SiteNames, *, users_d: Path | None) -> None:
    """Remove the site's database (copies and feeds) and user; nothing happens for parts already gone."""
    database = _ident(names.database)
    # Feeds first: a feed whose copy is gone makes every insert into its warehouse table fail, for every
    # site, and DROP DATABASE may drop a copy before its feed.
    rows = warehouse.query("SELECT name FROM system.tables WHERE database = %(db)s", {"db": database})
    for name in sorted(r["name"] for r in rows if _FEED.match(r["name"])):
        warehouse.command(f"DROP TABLE IF EXISTS {database}.{_ident(name)}")
    warehouse.command(f"DROP DATABASE IF EXISTS {database}")
    if warehouse.modern:
        user = _ident(names.clickhouse_user)
        for kind in ("USER", "QUOTA", "SETTINGS PROFILE"):
            warehouse.command(f"DROP {kind} IF EXISTS {user}")
    elif users_d is not None:
        users_d_file(users_d, names).unlink(missing_ok=True)


# --- I/O: the site's status figures -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    """A site's status figures; None where the table is missing or holds nothing yet."""

    open_incidents: int | None
    last_data_at: dt.datetime | None
    score766: float | None
    score766_period: str | None
    missing: list[str]
    score766_coverage: float | None = None
    """Points measured behind `score766` (of 100): the score is re-based on them (docs/decision-766.md)."""


def _present(warehouse: Warehouse, database: str) -> set[str]:
    rows = warehouse.query("SELECT name FROM system.tables WHERE database = %(db)s", {"db": database})
    return {row["name"] for row in rows}


def read_figures(warehouse: Warehouse, names: SiteNames, scope: Scope, *, database: str | None = None) -> Figures:
    """Open incidents, newest data and the latest monthly 766 score of `scope`, read from the site's own copies
    or, for a site served by an ancestor's dashboard, from that ancestor's `database` (which holds its subtree)."""
    database = _ident(database or names.database)
    present = _present(warehouse, database)
    missing = [t for t in ("incidents", "device_status", "indicators_766") if t not in present]
    open_incidents = None
    if "incidents" in present:
        # FINAL, then the scope: an incident reassigned out of the site keeps its rows in the copy.
        condition, params = scope_condition(scope, SITE_TABLES["incidents"])
        rows = warehouse.query(
            f"SELECT count() AS n FROM {database}.incidents FINAL WHERE state IN %(states)s AND {condition}",  # noqa: S608
            {"states": ACTIVE_STATES, **params},
        )
        open_incidents = int(rows[0]["n"])
    last = None
    for table, column in (("device_status", "last_seen"), ("readings", "received_at")):
        if table in present:
            # Scoped: an ancestor's database holds its siblings' rows too.
            where, params = scope_condition(scope, SITE_TABLES[table])
            sql = f"SELECT max({column}) AS last FROM {database}.{table} WHERE {where}"  # noqa: S608 - checked names
            value = warehouse.query(sql, params)[0]["last"]
            # An empty table answers the epoch (18.16) or NULL: no data yet.
            if isinstance(value, dt.datetime) and value.timestamp() > 0:
                last = value
            break
    score = period = coverage = None
    if "indicators_766" in present and _has_column(warehouse, database, "indicators_766", "measured"):
        # Only measured indicators count, re-based to 100 on their points; nothing measured is no score, not 0.
        # (A copy made before migration 0010 lacks `measured` until the drift repair rebuilds it: no score then.)
        sql = (
            "SELECT toString(period_start) AS period, sumIf(points, measured = 1) AS earned, "  # noqa: S608 - checked name
            f"sumIf(max_points, measured = 1) AS measured_max FROM {database}.indicators_766 FINAL "
            "WHERE unit = %(unit)s AND period_kind = 'month' GROUP BY period_start ORDER BY period_start DESC LIMIT 1"
        )
        rows = warehouse.query(sql, {"unit": names.unit})
        if rows:
            measured_max = float(rows[0]["measured_max"])
            period, coverage = str(rows[0]["period"]), round(measured_max, 1)
            score = round(float(rows[0]["earned"]) * 100 / measured_max, 1) if measured_max > 0 else None
    return Figures(open_incidents, last, score, period, missing, coverage)


def _has_column(warehouse: Warehouse, database: str, table: str, column: str) -> bool:
    rows = warehouse.query(
        "SELECT count() AS n FROM system.columns WHERE database = %(db)s AND table = %(table)s AND name = %(column)s",
        {"db": database, "table": table, "column": column},
    )
    return int(rows[0]["n"]) > 0


def format_age(seconds: float) -> str:
    """A short age for a printer column: 42s, 5m, 3h, 2d."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
