"""Warehouse inserts on one ClickHouse 18.16 server and on the 2 x 2 cluster, through the same sink and schema.

Two local stacks of their own: one server, and the cluster `ioc` (2 shards of 2 replicas over ZooKeeper, all on
this machine). The same migrations (rewritten ON CLUSTER for the cluster), then `READINGS` readings of
`DEVICES` devices written by the stream workers' sink (`RowSink`) in `BATCH`-row inserts, one at a time, as a
worker does; the cluster's inserts are synchronous through the Distributed table (each shard's rows on one of
its replicas before the insert returns; the other replica fetches them). Figures: readings/s per layout and the
cluster's share of the one server's rate. Every server shares the machine's 2 cores, so the cluster's figure is
what the extra hops and replication cost, not what 4 machines would give.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import tempfile
import time
from pathlib import Path
from typing import Any, Final

from ioc.clients import clickhouse
from ioc.events import Ingested, SensorKind, SensorReading
from ioc.settings import ClickHouseEndpoint
from iocctl.localstack import Stack
from streams.warehouse import migrate, rows
from streams.warehouse.sink import RowSink

READINGS: Final = 200_000
DEVICES: Final = 200
BATCH: Final = 5_000
DATABASE: Final = "bench_cluster"


def _batches() -> list[list[dict[str, Any]]]:
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
    built: list[dict[str, Any]] = []
    for n in range(READINGS):
        device, seq = n % DEVICES, n // DEVICES
        at = start + dt.timedelta(seconds=seq)
        event = SensorReading(
            vendor="bench",
            device=f"aq-{device:03d}",
            unit="25957",
            kind=SensorKind.AIR,
            seq=seq,
            observed_at=at,
            values={"pm25": 20.0 + n % 50},
        )
        built += rows.reading_rows(Ingested(event=event, path="74/724/25957", received_at=at))
    return [built[i : i + BATCH] for i in range(0, len(built), BATCH)]


def _measure(info: dict[str, Any], batches: list[list[dict[str, Any]]]) -> float:
    endpoint = ClickHouseEndpoint.from_service(info, database=DATABASE)
    with clickhouse.connect(endpoint.model_copy(update={"database": "default"})) as warehouse:
        migrate(warehouse, DATABASE)
        sink = RowSink(warehouse, DATABASE)
        started = time.monotonic()
        for batch in batches:
            asyncio.run(sink.write("readings", batch))
        seconds = time.monotonic() - started
        # A query reads any replica of a shard: the one that did not take the insert may lag for a moment.
        deadline = time.monotonic() + 60
        while (
            stored := int(warehouse.query(f"SELECT count() AS n FROM {DATABASE}.readings FINAL")[0]["n"])
        ) != READINGS:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{stored} readings stored of {READINGS}: the measurement is void")
            time.sleep(1)
    return READINGS / seconds


def run() -> dict[str, float]:
    batches = _batches()
    figures: dict[str, float] = {}
    for label, shards, replicas in (("one_server", 1, 1), ("cluster_2x2", 2, 2)):
        with tempfile.TemporaryDirectory(prefix=f"ioc-bench-{label}-") as root:
            stack = Stack(Path(root), clickhouse_shards=shards, clickhouse_replicas=replicas)
            try:
                info = stack.up(["clickhouse"])["clickhouse"]
                figures[f"{label}_readings_per_s"] = round(_measure(info, batches))
            finally:
                stack.down()
    figures["cluster_share_of_one_server"] = round(
        figures["cluster_2x2_readings_per_s"] / figures["one_server_readings_per_s"], 2
    )
    return figures
