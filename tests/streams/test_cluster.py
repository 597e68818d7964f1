"""The warehouse on a ClickHouse 18.16 cluster: 2 shards x 2 replicas over ZooKeeper, the schema ON CLUSTER.

The same migrations as on one server (rewritten by streams/warehouse/cluster.py), the same dashboards' reads giving
the same answers through the Distributed tables, the sink writing through a replica SIGKILLed and restarted with
nothing lost or doubled, and a retried batch deduplicated (docs/warehouse.md, "Cluster").
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import math
import os
import signal
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from dashboards.audit import AuditLog
from dashboards.data import SiteData, warehouse_for
from dashboards.sites import Site
from ioc.clients.clickhouse import Warehouse, connect
from ioc.events import Ingested, SensorKind, SensorReading
from ioc.settings import ClickHouseEndpoint
from iocctl.localstack.install import Installer, MissingPrerequisite
from iocctl.localstack.process import is_alive
from iocctl.localstack.stack import Stack, default_cache_dir
from streams.warehouse import migrations, rows
from streams.warehouse.sink import RowSink
from tests.dashboards import seed
from tests.dashboards.conftest import chdb_settings
from tests.dashboards.test_queries import every_read
from tests.streams.worker import Worker, reading

pytestmark = [pytest.mark.slow, pytest.mark.clickhouse]

PATH = "74/724/25957"
BASE = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(days=1)


@pytest.fixture(scope="module")
def cluster_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own whose ClickHouse is the cluster `ioc` (2 x 2 servers) over a one-node ZooKeeper."""
    installer = Installer(default_cache_dir())
    try:
        installer.zookeeper()
    except MissingPrerequisite as exc:
        pytest.skip(f"ZooKeeper cannot be installed on this machine, so no ClickHouse cluster can run: {exc}")
    stack = Stack(tmp_path_factory.mktemp("cluster"), installer, clickhouse_shards=2, clickhouse_replicas=2)
    try:
        stack.up(["clickhouse"])
        yield stack
    finally:
        stack.down()


def cluster_info(stack: Stack) -> dict[str, Any]:
    return dict(stack.status()["services"]["clickhouse"])


def endpoint_of(info: dict[str, Any], database: str, server: dict[str, Any] | None = None) -> ClickHouseEndpoint:
    where = server or info
    return ClickHouseEndpoint(
        host=where["host"],
        port=where["port"],
        http_port=where["http_port"],
        user=info["user"],
        password=SecretStr(info["password"]),
        database=database,
        cluster=info.get("cluster", ""),
    )


def admin(endpoint: ClickHouseEndpoint) -> Warehouse:
    return connect(endpoint.model_copy(update={"database": "default"}))


def drop(endpoint: ClickHouseEndpoint) -> None:
    with admin(endpoint) as warehouse:
        on = f" ON CLUSTER {endpoint.cluster}" if endpoint.cluster else ""
        warehouse.command(f"DROP DATABASE IF EXISTS {endpoint.database}{on}")


def local_counts(info: dict[str, Any], database: str, table: str) -> dict[tuple[int, int], int]:
    """Rows of `table`'s shard-local part on every server, by (shard, replica)."""
    counts = {}
    for server in info["servers"]:
        with admin(endpoint_of(info, database, server)) as replica:
            found = replica.query(f"SELECT count() AS n FROM {database}.{table}_local")
            counts[(int(server["shard"]), int(server["replica"]))] = int(found[0]["n"])
    return counts


def sync_replicas(info: dict[str, Any], database: str) -> None:
    """Wait until every replica holds what its shard was given: an insert returns once one replica of each shard has
    the rows, and a query through a Distributed table reads any replica, so a test reads only after this."""
    for server in info["servers"]:
        with admin(endpoint_of(info, database, server)) as replica:
            tables = replica.query(
                "SELECT name FROM system.tables WHERE database = %(database)s AND engine LIKE 'Replicated%%'",
                {"database": database},
            )
            for table in tables:
                replica.command(f"SYSTEM SYNC REPLICA {database}.{table['name']}")


def test_the_stack_runs_the_cluster_with_macros_and_zookeeper(cluster_stack: Stack) -> None:
    info = cluster_info(cluster_stack)
    assert info["cluster"] == "ioc" and len(info["servers"]) == 4
    with admin(endpoint_of(info, "default")) as warehouse:
        hosts = warehouse.query("SELECT shard_num, replica_num, port FROM system.clusters WHERE cluster = 'ioc'")
        assert sorted((h["shard_num"], h["replica_num"]) for h in hosts) == [(1, 1), (1, 2), (2, 1), (2, 2)]
        assert warehouse.query("SELECT count() AS n FROM system.zookeeper WHERE path = '/'")[0]["n"] > 0
        macros = warehouse.query("SELECT substitution FROM cluster('ioc', system.macros) WHERE macro = 'shard'")
        assert {m["substitution"] for m in macros} == {"1", "2"}
    # Idempotent: a second `up` keeps the running cluster (same servers, same ports).
    again = cluster_stack.up(["clickhouse"])["clickhouse"]
    assert [s["port"] for s in again["servers"]] == [s["port"] for s in info["servers"]]


# --- (a) the dashboards' reads: the same answers on one server and through the Distributed tables ---------------


class _Recorder:
    """A warehouse that remembers its inserts, so a test can deliver them again."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        self.inserts: list[tuple[str, list[dict[str, Any]]]] = []

    def insert(self, table: str, rows: list[dict[str, Any]], columns: list[str] | None = None) -> None:
        self.inserts.append((table, list(rows)))
        self.warehouse.insert(table, rows, columns)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.warehouse, name)


def _canonical(value: Any) -> Any:
    """A comparable form: floats rounded (shards sum in another order), rows of unordered results sorted."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_canonical(v) for v in value]
        return sorted(items, key=repr)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _canonical(dataclasses.asdict(value))
    return value


def test_the_dashboards_reads_give_the_same_answers_on_the_cluster(
    cluster_stack: Stack, clickhouse: dict[str, Any], tmp_path: Path
) -> None:
    database = f"clq_{uuid.uuid4().hex[:8]}"
    single = endpoint_of(clickhouse, database)
    on_cluster = endpoint_of(cluster_info(cluster_stack), database)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    seeded = {}
    try:
        for endpoint in (single, on_cluster):
            with admin(endpoint) as warehouse:
                migrations.migrate(warehouse, database)
                recorder = _Recorder(warehouse)
                seeded[endpoint.port] = seed.seed(recorder, database, now=now)  # type: ignore[arg-type]
                # Every row delivered again, in other blocks (reversed): what FINAL and argMax must collapse. On the
                # cluster each copy must land on the shard holding the first, or the answers differ from one server's.
                for table, batch in recorder.inserts:
                    warehouse.insert(table, list(reversed(batch)))
        sync_replicas(cluster_info(cluster_stack), database)
        # The seed went through the Distributed tables onto both shards (each shard's replicas alike).
        spread = local_counts(cluster_info(cluster_stack), database, "incident_history")
        assert spread[(1, 1)] > 0 and spread[(2, 1)] > 0
        audit = AuditLog(tmp_path / "audit.jsonl")
        answers: dict[int, dict[str, Any]] = {}
        for endpoint in (single, on_cluster):
            reads: dict[str, Any] = {}
            for unit in (seed.PROVINCE, seed.DISTRICT, seed.FLOOD_WARD):
                settings = chdb_settings(Path("unused"), unit).model_copy(
                    update={"chdb_path": None, "clickhouse": endpoint}
                )
                data = SiteData(warehouse_for(settings), Site.from_settings(settings), audit=audit)
                reads |= {f"{unit}:{k}": v for k, v in every_read(data, unit, seeded[endpoint.port]).items()}
            answers[endpoint.port] = reads
        one, many = answers[single.port], answers[on_cluster.port]
        assert sum(1 for v in one.values() if v) > 40  # the seed answers most reads: the comparison is not empty
        differing = [name for name in one if _canonical(one[name]) != _canonical(many[name])]
        assert differing == []
    finally:
        drop(single)
        drop(on_cluster)


# --- (b) the sink writes through a replica killed and restarted ------------------------------------------------


def _readings(device: int, first_seq: int, count: int) -> list[dict[str, Any]]:
    batch: list[dict[str, Any]] = []
    for seq in range(first_seq, first_seq + count):
        at = BASE + dt.timedelta(seconds=seq)
        event = SensorReading(
            vendor="sawaco",
            device=f"aq-{device:02d}",
            unit="25957",
            kind=SensorKind.AIR,
            seq=seq,
            observed_at=at,
            values={"pm25": 30.0 + seq % 7},
        )
        batch += rows.reading_rows(Ingested(event=event, path=PATH, received_at=at + dt.timedelta(seconds=1)))
    return batch


def _count(warehouse: Warehouse, database: str) -> int:
    return int(warehouse.query(f"SELECT count() AS n FROM {database}.readings")[0]["n"])


def _counts(warehouse: Warehouse, database: str) -> dict[str, tuple[int, int]]:
    """Per device: rows the dashboards would count (FINAL) and distinct sequences, through the Distributed table."""
    found = warehouse.query(
        f"SELECT device, count() AS n, uniqExact(seq) AS seqs FROM {database}.readings FINAL GROUP BY device"
    )
    return {r["device"]: (int(r["n"]), int(r["seqs"])) for r in found}


async def test_the_sink_writes_through_a_replica_killed_and_restarted(cluster_stack: Stack) -> None:
    info = cluster_info(cluster_stack)
    database = f"clk_{uuid.uuid4().hex[:8]}"
    endpoint = endpoint_of(info, database)
    victim = next(s for s in info["servers"] if (s["shard"], s["replica"]) == (2, 1))  # not the entry server
    devices, batches, per_batch = 8, 30, 25
    try:
        with admin(endpoint) as warehouse:
            migrations.migrate(warehouse, database)
            writer = RowSink(warehouse, database, initial_backoff_s=0.1, max_backoff_s=0.5)
            killed_at = restarted_at = None
            for number in range(batches):
                batch = [r for d in range(devices) for r in _readings(d, number * per_batch, per_batch)]
                await writer.write("readings", batch)
                if number == 8:
                    os.kill(int(victim["pid"]), signal.SIGKILL)
                    killed_at = time.monotonic()
                if 8 < number < 20:
                    assert not is_alive(int(victim["pid"]))  # these batches are written with the replica down
                if number == 20:
                    await asyncio.to_thread(cluster_stack.resume_service, "clickhouse")
                    restarted_at = time.monotonic()
            assert killed_at and restarted_at
            restarted = cluster_info(cluster_stack)
            assert (
                next(s for s in restarted["servers"] if s["shard"] == 2 and s["replica"] == 1)["pid"] != victim["pid"]
            )
            # Both replicas of each shard come to hold the same rows, the restarted one included: it fetches the
            # parts it missed in the background once its ZooKeeper session is back (SYNC REPLICA may return before).
            sync_replicas(restarted, database)
            deadline = time.monotonic() + 60
            held = local_counts(restarted, database, "readings")
            while not (held[(1, 1)] == held[(1, 2)] and held[(2, 1)] == held[(2, 2)]) and time.monotonic() < deadline:
                await asyncio.sleep(1)
                held = local_counts(restarted, database, "readings")
            assert held[(1, 1)] == held[(1, 2)] and held[(2, 1)] == held[(2, 2)]
            assert held[(1, 1)] + held[(2, 1)] == devices * batches * per_batch
            # What the dashboards' queries see through the Distributed table, whichever replica answers.
            counts = _counts(warehouse, database)
            expected = batches * per_batch
            lost = {d: expected - seqs for d, (_, seqs) in counts.items() if seqs != expected}
            duplicated = {d: n - seqs for d, (n, seqs) in counts.items() if n != seqs}
            assert len(counts) == devices and lost == {} and duplicated == {}
    finally:
        drop(endpoint)


def test_the_stream_workers_write_through_a_replica_killed_and_restarted(
    cluster_stack: Stack, kafka: dict[str, Any], tmp_path: Path
) -> None:
    info = cluster_info(cluster_stack)
    victim = next(s for s in info["servers"] if (s["shard"], s["replica"]) == (1, 2))  # the entry server's sibling
    worker = Worker(kafka, info, tmp_path)  # migrates its database on the cluster; the process gets the cluster
    worker.start()
    try:
        worker.wait_live()
        vendor = f"cluster-{uuid.uuid4().hex[:6]}"
        devices = [f"d{i:02}" for i in range(10)]
        base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)

        def send(steps: range) -> None:
            for step in steps:
                worker.readings(
                    [
                        reading(vendor, d, "25942", step, {"waterLevel": 0.5}, base + dt.timedelta(seconds=step))
                        for d in devices
                    ]
                )
            worker.tick(dt.datetime.now(dt.UTC))

        send(range(0, 40))
        os.kill(int(victim["pid"]), signal.SIGKILL)
        send(range(40, 80))  # written while shard 1 has one replica
        time.sleep(2)
        assert not is_alive(int(victim["pid"]))
        cluster_stack.resume_service("clickhouse")
        send(range(80, 120))
        restarted = cluster_info(cluster_stack)
        sync_replicas(restarted, worker.database)
        rows = worker.wait_for(
            f"SELECT device, count() AS n, uniqExact(seq) AS u, min(seq) AS lo, max(seq) AS hi"
            f" FROM {worker.database}.readings FINAL WHERE vendor = %(v)s GROUP BY device ORDER BY device",
            lambda rows: len(rows) == 10 and all(r["n"] == 120 for r in rows),
            timeout=90,
            v=vendor,
        )
        # Lost 0 (every sequence 0..119), duplicated 0 (as many rows as sequences), for every device.
        assert all((r["n"], r["u"], r["lo"], r["hi"]) == (120, 120, 0, 119) for r in rows)
    finally:
        worker.close()
        drop(endpoint_of(info, worker.database))


# --- (c) a retried insert is deduplicated ----------------------------------------------------------------------


def test_a_retried_batch_is_deduplicated_and_old_months_dropped_on_the_cluster(cluster_stack: Stack) -> None:
    info = cluster_info(cluster_stack)
    database = f"cld_{uuid.uuid4().hex[:8]}"
    endpoint = endpoint_of(info, database)
    other_entry = next(s for s in info["servers"] if (s["shard"], s["replica"]) == (2, 2))
    batch = [r for d in range(4) for r in _readings(d, 0, 50)]
    try:
        with admin(endpoint) as warehouse:
            migrations.migrate(warehouse, database)
            warehouse.insert(f"{database}.readings", batch)
            warehouse.insert(f"{database}.readings", batch)  # the worker's retry after a lost acknowledgement
            sync_replicas(info, database)
            # Raw rows, before any merge or FINAL: replicated block deduplication dropped the retry on each shard.
            raw = warehouse.query(f"SELECT count() AS n FROM {database}.readings")[0]["n"]
            assert raw == len(batch)
        with admin(endpoint_of(info, database, other_entry)) as elsewhere:
            elsewhere.insert(f"{database}.readings", batch)  # a retry that reconnected to another server
            sync_replicas(info, database)
            raw = elsewhere.query(f"SELECT count() AS n FROM {database}.readings")[0]["n"]
            assert raw == len(batch)
            # And a batch retried in another order (another block) still collapses under FINAL on its shard.
            elsewhere.insert(f"{database}.readings", list(reversed(batch)))
            sync_replicas(info, database)
            final = elsewhere.query(f"SELECT count() AS n FROM {database}.readings FINAL")[0]["n"]
            assert final == len(batch)
            # Retention on 18.16 (no TTL) drops whole months of the shard-local tables, on every shard.
            old = [{**r, "observed_at": r["observed_at"] - dt.timedelta(days=500)} for r in batch]
            elsewhere.insert(f"{database}.readings", old)
            sync_replicas(info, database)
            dropped = migrations.drop_partitions_older_than(elsewhere, "readings", 400, database=database)
            assert dropped and all(p < BASE.strftime("%Y%m") for p in dropped)
            deadline = time.monotonic() + 60  # on a cluster the month is emptied by a mutation, in the background
            while (kept := _count(elsewhere, database)) != len(batch) and time.monotonic() < deadline:
                time.sleep(0.5)
            assert kept == len(batch)
    finally:
        drop(endpoint)
