"""A site's ClickHouse database: views of the warehouse limited to its subtree, its read-only user, its figures.

The tables belong to the warehouse migrations (docs/warehouse.md); a site's database `ioc_site_<unit>`
holds one VIEW per table, named like it, filtered by `ioc.scope.site_scope` (the same "subtree" the
dashboards use). Views are created only for tables that exist and re-checked by the operator's timer, so
a site created before the migrations ran, a dropped view, or a table that gained columns is repaired.

Each view reads with FINAL inside: ClickHouse 18.16 silently ignores FINAL on a view, so a reader could
not collapse the ReplacingMergeTree duplicates through it otherwise.

Users: servers with SQL users get CREATE USER and a grant on the site database; on servers of 24.4 and
later the views run as their definer (SQL SECURITY DEFINER), so that grant is all the user has. ClickHouse
18.16 has no SQL users: the operator writes a users.d file, and because 18.16 checks a view's reader
against the view's source database, that user must also be allowed the warehouse database itself. On
18.16 the site login therefore keeps a site's dashboards to their subtree by construction, not by
enforcement; other sites' databases stay refused.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
import re
from pathlib import Path
from typing import Any, Final
from xml.sax.saxutils import escape

from ioc.clients.clickhouse import Warehouse
from ioc.events import ACTIVE_STATES
from ioc.scope import Scope
from operators.names import SiteNames

__all__ = [
    "DEFINER_VERSION",
    "SITE_TABLES",
    "Figures",
    "WarehouseReport",
    "drop_site",
    "ensure_site",
    "format_age",
    "read_figures",
    "scope_condition",
    "users_d_file",
    "users_d_xml",
    "view_sql",
]

DEFINER_VERSION: Final = (24, 4)
"""From here views can run as their definer, so a site user needs no grant on the warehouse tables."""

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
}
"""Warehouse tables a site sees, with the path columns that place a row in the tree."""

_UNIT_COLUMN: Final = {"path": "unit", "responsible_path": "responsible_unit"}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def _ident(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise ValueError(f"{name!r} is not a ClickHouse database or user name the operator issues")
    return name


def scope_condition(scope: Scope, path_columns: tuple[str, ...]) -> tuple[str, dict[str, Any]]:
    """The WHERE condition selecting a site's rows: any of the path columns in its subtree."""
    parts, params = [], {}
    for i, column in enumerate(path_columns):
        sql, values = scope.predicate(path_column=column, unit_column=_UNIT_COLUMN[column], name=f"s{i}")
        parts.append(sql)
        params.update(values)
    return (parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"), params


def view_sql(
    source_db: str, site_db: str, table: str, scope: Scope, *, definer: bool = False
) -> tuple[str, dict[str, Any]]:
    """CREATE VIEW for one table of the site, with its parameters."""
    condition, params = scope_condition(scope, SITE_TABLES[table])
    security = " DEFINER = CURRENT_USER SQL SECURITY DEFINER" if definer else ""
    view, source = f"{_ident(site_db)}.{_ident(table)}", f"{_ident(source_db)}.{_ident(table)}"
    # Identifiers are checked by _ident; values travel as parameters.
    sql = f"CREATE VIEW IF NOT EXISTS {view}{security} AS SELECT * FROM {source} FINAL WHERE {condition}"  # noqa: S608
    return sql, params


def users_d_file(users_d: Path, names: SiteNames) -> Path:
    return users_d / f"{names.clickhouse_user}.xml"


def users_d_xml(names: SiteNames, password: str, source_db: str) -> str:
    """A users.d file declaring the site's read-only user (ClickHouse 18.16: no SQL users)."""
    digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
    user = escape(_ident(names.clickhouse_user))
    return f"""<?xml version="1.0"?>
<!-- Written by the IOC operator for IOCSite {escape(names.namespace)}/{escape(names.name)}; removed with it. -->
<yandex>
    <users>
        <{user}>
            <password_sha256_hex>{digest}</password_sha256_hex>
            <networks><ip>::/0</ip></networks>
            <profile>readonly</profile>
            <quota>default</quota>
            <allow_databases>
                <database>{escape(_ident(names.database))}</database>
                <!-- 18.16 checks a view's reader against the view's source database too. -->
                <database>{escape(_ident(source_db))}</database>
            </allow_databases>
        </{user}>
    </users>
</yandex>
"""


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
class WarehouseReport:
    """What `ensure_site` found and did."""

    created: list[str]
    recreated: list[str]
    missing_tables: list[str]
    user_written: bool


def _columns(warehouse: Warehouse, databases: tuple[str, str]) -> dict[tuple[str, str], set[str]]:
    # Compared as sets: 18.16's system.columns has no `position`, and order does not change what a view shows.
    rows = warehouse.query(
        "SELECT database, table, name FROM system.columns WHERE database IN %(dbs)s", {"dbs": databases}
    )
    found: dict[tuple[str, str], set[str]] = {}
    for row in rows:
        found.setdefault((row["database"], row["table"]), set()).add(row["name"])
    return found


def ensure_site(
    warehouse: Warehouse,
    names: SiteNames,
    scope: Scope,
    password: str,
    *,
    source_db: str,
    users_d: Path | None,
) -> WarehouseReport:
    """Create or repair the site's database, views and user; idempotent and cheap when all is in place."""
    database = _ident(names.database)
    definer = warehouse.server_version[:2] >= DEFINER_VERSION
    warehouse.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    columns = _columns(warehouse, (source_db, database))
    created, recreated, missing = [], [], []
    for table in SITE_TABLES:
        source = columns.get((source_db, table))
        if source is None:
            missing.append(table)
            continue
        view = columns.get((database, table))
        if view is not None and view != source:
            # The table gained or lost columns since the view was made: a view's columns are fixed.
            warehouse.command(f"DROP TABLE IF EXISTS {database}.{_ident(table)}")
            recreated.append(table)
        elif view is None:
            created.append(table)
        else:
            continue
        sql, params = view_sql(source_db, database, table, scope, definer=definer)
        warehouse.command(sql, params)
    user_written = _ensure_user(warehouse, names, password, source_db=source_db, users_d=users_d, definer=definer)
    return WarehouseReport(created, recreated, missing, user_written)


def _ensure_user(
    warehouse: Warehouse, names: SiteNames, password: str, *, source_db: str, users_d: Path | None, definer: bool
) -> bool:
    user = _ident(names.clickhouse_user)
    if not warehouse.modern:
        if users_d is None:
            raise FileNotFoundError(
                "ClickHouse 18.16 has no SQL users and no users.d directory is configured "
                "(IOC_OPERATOR_CLICKHOUSE_USERS_D)"
            )
        return _write_if_changed(users_d_file(users_d, names), users_d_xml(names, password, source_db))
    warehouse.command(
        f"CREATE USER IF NOT EXISTS {user} IDENTIFIED WITH sha256_password BY %(password)s SETTINGS readonly = 1",
        {"password": password},
    )
    warehouse.command(f"ALTER USER {user} IDENTIFIED WITH sha256_password BY %(password)s", {"password": password})
    warehouse.command(f"GRANT SELECT ON {_ident(names.database)}.* TO {user}")
    if not definer:
        for table in SITE_TABLES:
            warehouse.command(f"GRANT SELECT ON {_ident(source_db)}.{_ident(table)} TO {user}")
    return False


def drop_site(warehouse: Warehouse, names: SiteNames, *, users_d: Path | None) -> None:
    """Remove the site's database and user; nothing happens for parts already gone."""
    warehouse.command(f"DROP DATABASE IF EXISTS {_ident(names.database)}")
    if warehouse.modern:
        warehouse.command(f"DROP USER IF EXISTS {_ident(names.clickhouse_user)}")
    elif users_d is not None:
        users_d_file(users_d, names).unlink(missing_ok=True)


@dataclasses.dataclass(frozen=True, slots=True)
class Figures:
    """A site's status figures; None where the table is missing or holds nothing yet."""

    open_incidents: int | None
    last_data_at: dt.datetime | None
    score766: float | None
    score766_period: str | None
    missing: list[str]


def _present(warehouse: Warehouse, database: str) -> set[str]:
    rows = warehouse.query("SELECT name FROM system.tables WHERE database = %(db)s", {"db": database})
    return {row["name"] for row in rows}


def read_figures(warehouse: Warehouse, names: SiteNames) -> Figures:
    """Open incidents, newest data and the latest monthly 766 score, read through the site's own views."""
    database = _ident(names.database)
    present = _present(warehouse, database)
    missing = [t for t in ("incidents", "device_status", "indicators_766") if t not in present]
    open_incidents = None
    if "incidents" in present:
        rows = warehouse.query(
            f"SELECT count() AS n FROM {database}.incidents WHERE state IN %(states)s",  # noqa: S608 - name checked
            {"states": ACTIVE_STATES},
        )
        open_incidents = int(rows[0]["n"])
    last = None
    for table, column in (("device_status", "last_seen"), ("readings", "received_at")):
        if table in present:
            sql = f"SELECT max({column}) AS last FROM {database}.{table}"  # noqa: S608 - fixed and checked names
            value = warehouse.query(sql)[0]["last"]
            # An empty table answers the epoch (18.16) or NULL: no data yet.
            if isinstance(value, dt.datetime) and value.timestamp() > 0:
                last = value
            break
    score = period = None
    if "indicators_766" in present:
        rows = warehouse.query(
            f"SELECT toString(period_start) AS period, sum(points) AS score FROM {database}.indicators_766 "  # noqa: S608
            "WHERE unit = %(unit)s AND period_kind = 'month' GROUP BY period_start ORDER BY period_start DESC LIMIT 1",
            {"unit": names.unit},
        )
        if rows:
            score, period = round(float(rows[0]["score"]), 1), str(rows[0]["period"])
    return Figures(open_incidents, last, score, period, missing)


def format_age(seconds: float) -> str:
    """A short age for a printer column: 42s, 5m, 3h, 2d."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
