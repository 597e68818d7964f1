"""One small ClickHouse client for every component: a server over the native protocol, or chDB in-process.

The stream workers' sink and migrations, the operator's per-site databases and the dashboards' data layer
all talk to ClickHouse through `Warehouse`, so the same SQL runs against the local stack's server
(ClickHouse 18.16) and against chDB (26.x) for tests and quick looks. Queries take named parameters
(`%(unit)s`) which the driver's own escaping substitutes; SQL is never built by string formatting of
values. Results come back as dicts with UTC-aware datetimes on both engines.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from typing import Any, Final

import msgspec
from clickhouse_driver import Client
from clickhouse_driver.util.escape import escape_params

from ioc.settings import ClickHouseEndpoint

__all__ = ["MODERN_VERSION", "Warehouse", "WarehouseError", "connect", "in_process", "render"]

MODERN_VERSION: Final = (20, 1)
"""From this server version on, TTL, LowCardinality and SQL users exist; 18.16 gets the fallbacks."""

log = logging.getLogger(__name__)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


class WarehouseError(RuntimeError):
    """ClickHouse refused a statement or could not be reached; the message carries the server's words."""


class _Context:
    # clickhouse_driver's escaping wants a context with server info; UTC is the warehouse's zone.
    class _ServerInfo:
        timezone = "UTC"

        @staticmethod
        def get_timezone() -> str:
            return "UTC"

    server_info = _ServerInfo()
    settings: Mapping[str, Any] = {}
    client_settings: Mapping[str, Any] = {"strings_as_bytes": False}


def _utc_naive(value: Any) -> Any:
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    if isinstance(value, list | tuple):
        return type(value)(_utc_naive(v) for v in value)
    return value


def render(sql: str, params: Mapping[str, Any] | None = None) -> str:
    """`sql` with `%(name)s` placeholders replaced by escaped literals (the driver's own escaping)."""
    if not params:
        return sql
    escaped = escape_params({k: _utc_naive(v) for k, v in params.items()}, _Context())
    return str(sql % escaped)


def _server_words(exc: Exception) -> str:
    # 18.16 appends its C++ stack trace (some 20 lines) to every error: logs and CLI errors want one line.
    return " ".join(str(exc).split("Stack trace:", 1)[0].split())


def _identifier(name: str) -> str:
    if not _IDENTIFIER.match(name):
        raise WarehouseError(f"{name!r} is not a table or column name")
    return name


class Warehouse:
    """Base of the two engines; use `connect()` or `in_process()`."""

    server_version: tuple[int, ...] = (0,)
    cluster: str = ""
    """The cluster the warehouse spans ('' for one server): streams.warehouse.migrations writes ON CLUSTER DDL then."""

    @property
    def modern(self) -> bool:
        """Whether TTL, LowCardinality, DateTime64 and SQL users are available."""
        return self.server_version[:2] >= MODERN_VERSION

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        raise NotImplementedError

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        raise NotImplementedError

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
        raise NotImplementedError

    def command_on_each_shard(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run `sql` once per shard of the cluster, on the first replica of it that answers, without ON CLUSTER.

        For an ALTER of a replicated table (a column change, a mutation): the replica that runs it writes it to its
        shard's replication log, which the shard's other replicas apply. ON CLUSTER would hand it to every server's
        DDL worker, and on 18.16 both replicas of a shard may then run it; the second fails ("Node exists ...
        /executed") and its DDL worker stops for good, so every later ON CLUSTER statement waits out its timeout.
        """
        raise WarehouseError("this warehouse is one server, not a cluster: run the statement with command()")

    def close(self) -> None:
        """Release the connection."""

    def __enter__(self) -> Warehouse:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _aware(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    if isinstance(value, list):
        return [_aware(v) for v in value]
    return value


_lines_encoder: Final = msgspec.json.Encoder()


def _json_lines(rows: Sequence[Mapping[str, Any]], names: list[str]) -> bytes:
    """Rows as JSONEachRow: datetimes as Unix seconds (every server version reads those), dates as ISO."""
    first = rows[0]
    times = [n for n in names if isinstance(first[n], dt.datetime)]
    dates = [n for n in names if isinstance(first[n], dt.date) and n not in times]
    nullable_times = [n for n in names if first[n] is None]
    if not times and not dates and not nullable_times:
        return _lines_encoder.encode_lines([{n: row[n] for n in names} for row in rows])
    converted = []
    # Rows with exactly the insert's columns (what RowSink checks) are copied in C, not key by key.
    same = list(first.keys()) == names
    width = len(names)
    for row in rows:
        item = dict(row) if same and len(row) == width else {n: row[n] for n in names}
        for n in times:
            value = row[n]
            item[n] = int(value.timestamp()) if value is not None else None
        for n in dates:
            item[n] = row[n].isoformat()
        for n in nullable_times:
            value = row[n]
            if isinstance(value, dt.datetime):
                item[n] = int(value.timestamp())
        converted.append(item)
    return _lines_encoder.encode_lines(converted)


class _Native(Warehouse):
    def __init__(self, endpoint: ClickHouseEndpoint, *, database: str | None = None) -> None:
        self._endpoint = endpoint
        self._client = Client(
            host=endpoint.host,
            port=endpoint.port,
            user=endpoint.user,
            password=endpoint.password.get_secret_value(),
            database=database or "default",
            connect_timeout=5,
            # On a cluster, ON CLUSTER DDL waits for every server (distributed_ddl_task_timeout, 180 s): outwait it,
            # so a slow one ends with the server's error naming the hosts that did not answer, not a socket timeout.
            send_receive_timeout=200 if endpoint.cluster else 60,
            settings={"use_client_time_zone": False, **_cluster_settings(endpoint.cluster)},
        )
        self.cluster = endpoint.cluster
        # clickhouse_driver.Client is not thread-safe; Faust tasks and Streamlit sessions share one.
        self._lock = threading.Lock()
        self._http = True
        self._http_unproven = True
        try:
            version = self.query("SELECT version() AS v")[0]["v"]
        except WarehouseError:
            self._client.disconnect()  # refused (a wrong password, an unknown user): leave no socket open
            raise
        self.server_version = tuple(int(p) for p in str(version).split(".")[:3] if p.isdigit())

    def _execute(self, sql: str, params: Any = None, **kw: Any) -> Any:
        try:
            with self._lock:
                return self._client.execute(sql, params, **kw)
        except Exception as exc:
            raise WarehouseError(f"{type(exc).__name__}: {_server_words(exc)}") from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        rows, columns = self._execute(render(sql, params), with_column_types=True)
        names = [c[0] for c in columns]
        return [{n: _aware(v) for n, v in zip(names, row, strict=True)} for row in rows]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._execute(render(sql, params))

    def command_on_each_shard(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        if not self.cluster:
            super().command_on_each_shard(sql, params)
        servers = self.query(
            "SELECT shard_num, host_name, port FROM system.clusters WHERE cluster = %(cluster)s "
            "ORDER BY shard_num, replica_num",
            {"cluster": self.cluster},
        )
        if not servers:
            raise WarehouseError(f"cluster {self.cluster!r} is not in this server's remote_servers (system.clusters)")
        shards: dict[int, list[tuple[str, int]]] = {}
        for server in servers:
            shards.setdefault(int(server["shard_num"]), []).append((str(server["host_name"]), int(server["port"])))
        for shard, replicas in shards.items():
            failures = []
            for host, port in replicas:
                try:
                    replica = connect(self._endpoint.model_copy(update={"host": host, "port": port}))
                except WarehouseError as exc:  # down: the shard's next replica runs it, this one catches up later
                    failures.append(f"{host}:{port}: {exc}")
                    continue
                with replica:
                    replica.command(sql, params)
                break
            else:
                raise WarehouseError(f"no replica of shard {shard} of {self.cluster!r} answers: {'; '.join(failures)}")

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
        """One insert of all `rows`: over HTTP as JSONEachRow (msgspec encodes in C; the server parses in
        C++), about ten times cheaper per row than the native driver's Python column encoding, which would
        otherwise cost the stream workers most of a core at 20,000 readings/s."""
        if not rows:
            return
        names = list(columns or rows[0].keys())
        cols = ", ".join(_identifier(c) for c in names)
        if not self._http:
            data = [[_utc_naive(row[c]) for row in rows] for c in names]
            self._execute(f"INSERT INTO {_identifier(table)} ({cols}) VALUES", data, columnar=True)
            return
        body = _json_lines(rows, names)
        query = f"INSERT INTO {_identifier(table)} ({cols}) FORMAT JSONEachRow"
        params = {"query": query, **_cluster_settings(self.cluster)}
        request = urllib.request.Request(
            f"http://{self._endpoint.host}:{self._endpoint.http_port}/?{urllib.parse.urlencode(params)}",
            data=body,
            method="POST",
            headers={
                "X-ClickHouse-User": self._endpoint.user,
                "X-ClickHouse-Key": self._endpoint.password.get_secret_value(),
                "Content-Type": "application/x-ndjson",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", "replace")
            raise WarehouseError(f"insert into {table} refused: {_server_words(RuntimeError(detail))}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError) and self._http_unproven:
                # No HTTP interface where the endpoint says: use the native protocol from now on.
                log.warning(
                    "ClickHouse HTTP port %s refused; inserting over the native protocol (slower)",
                    self._endpoint.http_port,
                )
                self._http = False
                self.insert(table, rows, names)
                return
            raise WarehouseError(f"insert into {table} failed: {exc}") from exc
        except OSError as exc:
            raise WarehouseError(f"insert into {table} failed: {exc}") from exc
        self._http_unproven = False

    def close(self) -> None:
        with self._lock:
            self._client.disconnect()


def _cluster_settings(cluster: str) -> dict[str, Any]:
    """Session settings for a warehouse of Distributed tables (none for one server)."""
    if not cluster:
        return {}
    return {
        # An insert returns once every shard has its rows (not queued on the server first asked): the stream
        # workers commit Kafka offsets after it, and a retry of a failed one is deduplicated on its shard.
        "insert_distributed_sync": 1,
        # A query whose IN or JOIN reads a Distributed table inside another runs the inner one once, on all shards.
        "distributed_product_mode": "global",
    }


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return _utc_naive(value).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot store {type(value).__name__} in ClickHouse")


_DATETIME = re.compile(r"^(Nullable\()?DateTime")


def _convert(value: Any, type_name: str) -> Any:
    if value is None:
        return None
    inner = type_name.removeprefix("Nullable(").removesuffix(")") if type_name.startswith("Nullable(") else type_name
    inner = inner.removeprefix("LowCardinality(").removesuffix(")") if inner.startswith("LowCardinality(") else inner
    if inner.startswith("Array(") and isinstance(value, list):
        return [_convert(v, inner[6:-1]) for v in value]
    if inner.startswith("DateTime"):
        text = str(value)
        return dt.datetime.fromisoformat(text[:19]).replace(tzinfo=dt.UTC)
    if inner in {"Date", "Date32"}:
        return dt.date.fromisoformat(str(value))
    if inner.startswith(("UInt", "Int")):
        return int(value)
    if inner.startswith("Float") or inner.startswith("Decimal"):
        return float(value)
    return value


class _InProcess(Warehouse):
    def __init__(self, path: str | None) -> None:
        # chDB is a test and quick-look dependency, not a runtime one: imported only when asked for.
        sessions: Any = importlib.import_module("chdb.session")
        self._session: Any = sessions.Session(path) if path else sessions.Session()
        self._lock = threading.Lock()
        version = self.query("SELECT version() AS v")[0]["v"]
        self.server_version = tuple(int(p) for p in str(version).split(".")[:3] if p.isdigit())

    def _run(self, sql: str, fmt: str = "CSV") -> Any:
        try:
            with self._lock:
                return self._session.query(sql, fmt)
        except Exception as exc:
            raise WarehouseError(f"{type(exc).__name__}: {_server_words(exc)}") from exc

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        result = self._run(render(sql, params), "JSONCompact")
        text = result.data() if hasattr(result, "data") else str(result)
        if not text.strip():
            return []
        parsed = json.loads(text)
        meta = [(m["name"], m["type"]) for m in parsed["meta"]]
        return [{name: _convert(v, kind) for (name, kind), v in zip(meta, row, strict=True)} for row in parsed["data"]]

    def command(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._run(render(sql, params))

    def insert(self, table: str, rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> None:
        if not rows:
            return
        names = list(columns or rows[0].keys())
        cols = ", ".join(_identifier(c) for c in names)
        lines = "\n".join(json.dumps({c: row[c] for c in names}, default=_json_default) for row in rows)
        self._run(f"INSERT INTO {_identifier(table)} ({cols}) FORMAT JSONEachRow\n{lines}")

    def close(self) -> None:
        with self._lock:
            self._session.close()


def connect(endpoint: ClickHouseEndpoint, *, database: str | None = None) -> Warehouse:
    """A connection to a ClickHouse server over the native protocol."""
    try:
        return _Native(endpoint, database=database)
    except WarehouseError:
        raise
    except Exception as exc:
        raise WarehouseError(f"cannot connect to ClickHouse at {endpoint.host}:{endpoint.port}: {exc}") from exc


def in_process(path: str | None = None) -> Warehouse:
    """chDB in this process (one process per data path at a time; it locks the directory)."""
    try:
        return _InProcess(path)
    except WarehouseError:
        raise
    except ModuleNotFoundError as exc:
        raise WarehouseError(f"chDB is not installed ({exc}): install the dev extra, pip install -e '.[dev]'") from exc
    except Exception as exc:
        # chDB refuses a second data path in one process, or a directory another process has locked.
        raise WarehouseError(f"cannot open chDB at {path or '(in memory)'}: {_server_words(exc)}") from exc
