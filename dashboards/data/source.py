"""Where dashboard data comes from: one warehouse connection per process and a TTL cache for query results.

A dashboard reads either the ClickHouse server (the local stack's 18.16, or production's current
release) through the site's read-only credential, or a chDB data directory in-process (tests and quick
looks). Connections are opened once per process and shared by every Streamlit session, never mutated
afterwards (`ioc.clients.clickhouse.Warehouse` serialises calls itself). `TtlCache` keeps query results for a
query's lifetime; it is ours rather than `st.cache_data` because lifetimes come from the site's settings
at run time, and because the benchmark and the tests call the data layer outside a Streamlit runtime.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Final, TypeVar

from ioc.clients import clickhouse
from ioc.settings import DashboardSettings

__all__ = ["SourceError", "TtlCache", "close_all", "warehouse_for"]

T = TypeVar("T")


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


class TtlCache:
    """Results by key, each kept for the lifetime its caller gives; safe to share between sessions."""

    MAX_ENTRIES: Final = 2000
    """Past this many entries, expired ones are dropped on the next store (parameters vary, keys pile up)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[Hashable, tuple[float, float, Any]] = {}

    def get_or_load(self, key: Hashable, ttl_s: float, load: Callable[[], T]) -> T:
        """The cached value for `key` if younger than `ttl_s`, otherwise `load()` (stored unless ttl_s is 0)."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
        if entry is not None and now - entry[0] < ttl_s:
            value: T = entry[2]
            return value
        # Loaded outside the lock: two sessions may both load an expired entry, which is cheaper than
        # making every session wait for one slow query.
        loaded = load()
        if ttl_s > 0:
            with self._lock:
                if len(self._entries) >= self.MAX_ENTRIES:
                    for stale in [k for k, (at, ttl, _) in self._entries.items() if now - at >= ttl]:
                        del self._entries[stale]
                self._entries[key] = (now, ttl_s, loaded)
        return loaded

    def invalidate(self, match: Callable[[Hashable], bool] | None = None) -> int:
        """Drop the entries whose key matches (all when no matcher); returns how many went."""
        with self._lock:
            gone = [k for k in self._entries if match is None or match(k)]
            for k in gone:
                del self._entries[k]
        return len(gone)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)
