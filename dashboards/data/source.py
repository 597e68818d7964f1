"""Where dashboard data comes from: one warehouse connection per process, and a named query run on it.

Connections are shared by every session and never mutated (`ioc.clients.clickhouse.Warehouse` serialises calls).
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections.abc import Mapping
from typing import Any, Final

from dashboards.data.queries import TABLE_ENGINE, Query
from ioc.clients import clickhouse
from ioc.scope import Scope
from ioc.settings import DashboardSettings

__all__ = ["SourceError", "close_all", "run_scoped", "token", "warehouse_for"]


class SourceError(clickhouse.WarehouseError):
    """The warehouse cannot be opened as configured; the message says what to change."""


_lock: Final = threading.Lock()
_open: dict[tuple[Any, ...], clickhouse.Warehouse] = {}
_chdb_database: dict[str, str] = {}


def _key(settings: DashboardSettings) -> tuple[Any, ...]:
    endpoint = settings.clickhouse
    if settings.chdb_path is not None:
        return ("chdb", str(settings.chdb_path))
    return ("server", endpoint.host, endpoint.port, endpoint.user, endpoint.database)


def warehouse_for(settings: DashboardSettings) -> clickhouse.Warehouse:
    """The process's connection for these settings, opened on first use (server or chDB)."""
    key = _key(settings)
    with _lock:
        found = _open.get(key)
        if found is not None:
            return found
        database = settings.clickhouse.database
        if settings.chdb_path is not None:
            # chDB allows one data directory per process and keeps a current database per session, so a
            # second database on the same directory would silently change what the first one reads.
            path = str(settings.chdb_path)
            other = _chdb_database.get(path)
            if other is not None and other != database:
                raise SourceError(f"chDB at {path} already serves database {other!r}; one database per process")
            warehouse = clickhouse.in_process(path)
            warehouse.command(f"USE {_database_name(database)}")
            _chdb_database[path] = database
        else:
            warehouse = clickhouse.connect(settings.clickhouse, database=database)
        _open[key] = warehouse
        return warehouse


def _database_name(name: str) -> str:
    # An identifier cannot be a bound parameter; this is the only one spliced, and only after this check.
    if not name.replace("_", "").isalnum() or name[0].isdigit():
        raise SourceError(f"{name!r} is not a database name")
    return name


def close_all() -> None:
    """Close every connection this process opened (tests and the benchmark call it at the end)."""
    with _lock:
        for warehouse in _open.values():
            warehouse.close()
        _open.clear()
        _chdb_database.clear()


_ENGINES: dict[tuple[int, str], bool] = {}
"""Per connection and table name: whether it is a view (a site's database) rather than a table."""

_TOKENS: weakref.WeakKeyDictionary[clickhouse.Warehouse, int] = weakref.WeakKeyDictionary()
_NEXT_TOKEN: Final = itertools.count(1)


def token(warehouse: clickhouse.Warehouse) -> int:
    """A number for this connection object that no later object reuses (unlike `id()`)."""
    found = _TOKENS.get(warehouse)
    if found is None:
        found = _TOKENS[warehouse] = next(_NEXT_TOKEN)
    return found


def run_scoped(
    warehouse: clickhouse.Warehouse, query: Query, scope: Scope, params: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Rows of `query` on `warehouse`, narrowed to `scope` (its condition and units bound as parameters)."""
    condition, bound = scope.predicate()
    responsible, bound_responsible = scope.predicate("responsible_path", "responsible_unit", "responsible")
    text = query.sql.replace("{scope}", condition).replace("{responsible}", responsible)
    if query.window is not None:
        if _is_view(warehouse, query.table):
            text = text.replace("{prewhere}", "").replace("{window}", query.window)
        else:
            text = text.replace("{prewhere}", f"PREWHERE {query.window}").replace("{window}", "1")
    values = {**bound, **bound_responsible, "scope_units": tuple(sorted(scope.units)), **params}
    return warehouse.query(text, values)


def _is_view(warehouse: clickhouse.Warehouse, table: str) -> bool:
    key = (token(warehouse), table)
    found = _ENGINES.get(key)
    if found is None:
        rows = warehouse.query(TABLE_ENGINE, {"table": table})
        found = _ENGINES[key] = bool(rows) and rows[0]["engine"] == "View"
    return found
