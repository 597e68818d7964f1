"""Stream workers' drain with the Bình Dương tree's site databases provisioned on the warehouse (ClickHouse 18.16).

On 18.16 a site's login can only be scoped by copies of its subtree, fed by one materialized view per site
and table (operators/sitedb.py), so every insert into a warehouse table runs every site's feeds. This runs
`bench streams`' drain (400,000 readings, one worker) back to back on its own local stack (Kafka with the
stack's default authentication, SCRAM over TLS) with: no site database; the databases of the sites that
run their own dashboard by default (province and districts: communes are served by their district's,
`spec.dashboard.servedBy`); and one database per site of the tree (every commune `servedBy: Own`). Before
the drains, each case's cost of one insert alone (a 5,000-row block spread over the province), which the
machine's load moves far less than the drain.
"""

from __future__ import annotations

import secrets
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from unittest import mock

from bench import bench_streams
from ioc.clients import clickhouse
from ioc.reference import default_reference_model
from ioc.scope import site_scope
from ioc.settings import ClickHouseEndpoint
from ioc.units import load_tree
from iocctl.localstack import Stack
from operators import config, province, sitedb
from operators.names import SiteNames
from streams.warehouse import migrate

TREE = load_tree("2024")


def _sites(every_commune: bool) -> list[SiteNames]:
    """The 2024 tree's sites that get a warehouse database: those with their own dashboard."""
    model = default_reference_model()
    chosen = []
    for site in province.province_sites("2024", "bench"):
        spec = site["spec"]
        parent = spec.get("parentRef")
        own = every_commune or config.served_by(spec["tier"], parent, None, model) == "Own"
        if own:
            chosen.append(SiteNames(site["metadata"]["name"], "bench", spec["unit"], "2024"))
    return chosen


def _drain(
    info: dict[str, Any], warehouse: clickhouse.Warehouse, root: Path, sites: list[SiteNames]
) -> dict[str, float]:
    """`bench streams`' drain, with `sites`' databases (copies and feeds) made on its database after migrating."""
    users_d = Path(info["clickhouse"]["users_d"])

    def migrate_then_provision(target: clickhouse.Warehouse, database: str) -> None:
        migrate(target, database)
        for names in sites:
            sitedb.ensure_site(
                target,
                names,
                site_scope(names.unit, names.edition),
                secrets.token_hex(16),
                source_db=database,
                users_d=users_d,
            )

    # The drain makes its own database: provision the sites right after its migration, before the worker starts.
    try:
        with mock.patch.object(bench_streams, "migrate", migrate_then_provision):
            return bench_streams._throughput(info, warehouse, root)
    finally:
        for names in sites:
            sitedb.drop_site(warehouse, names, users_d=users_d)


def _insert_seconds(warehouse: clickhouse.Warehouse, users_d: Path, sites: list[SiteNames]) -> dict[str, float]:
    """One insert's cost, apart from the worker: INSERT ... SELECT of INSERT_ROWS readings spread over the
    province's communes (as a province-wide flush is) into a fresh warehouse database with `sites`' copies and
    feeds; the median wall time of INSERT_REPEATS inserts, and the rows per second one insert at a time allows."""
    database = f"ic{uuid.uuid4().hex[:6]}"
    migrate(warehouse, database)
    communes = sorted(TREE.at_level("commune"), key=lambda u: u.code)
    params = {"units": [u.code for u in communes], "paths": [TREE.path(u.code) for u in communes], "n": len(communes)}
    try:
        for names in sites:
            scope = site_scope(names.unit, names.edition)
            sitedb.ensure_site(warehouse, names, scope, secrets.token_hex(16), source_db=database, users_d=users_d)
        times = []
        for repeat in range(INSERT_REPEATS):
            started = time.monotonic()
            warehouse.command(
                f"INSERT INTO {database}.readings (device_key, vendor, device, unit, path, kind, seq, measure, "
                "value, observed_at, received_at, lat, lon) "
                "SELECT concat('v/d', toString(number %% 500)), 'v', concat('d', toString(number %% 500)), "
                "arrayElement(%(units)s, number %% %(n)s + 1), arrayElement(%(paths)s, number %% %(n)s + 1), "
                f"'water', {repeat * INSERT_ROWS} + number, 'waterLevel', 0.5, now() - 3600, now(), NULL, NULL "
                f"FROM numbers({INSERT_ROWS})",
                params,
            )
            times.append(time.monotonic() - started)
    finally:
        for names in sites:
            sitedb.drop_site(warehouse, names, users_d=users_d)
        warehouse.command(f"DROP DATABASE IF EXISTS {database}")
    median = statistics.median(times)
    return {"insert_s": round(median, 3), "insert_ceiling_readings_per_s": round(INSERT_ROWS / median)}


def run() -> dict[str, float]:
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="ioc-bench-site-copies-") as tmp:
        root = Path(tmp)
        stack = Stack(root / "stack")
        try:
            info = stack.up(["kafka", "clickhouse"])
            warehouse = clickhouse.connect(ClickHouseEndpoint.from_service(info["clickhouse"]))
            users_d = Path(info["clickhouse"]["users_d"])
            cases: list[tuple[str, list[SiteNames]]] = [
                ("none", []),
                ("default", _sites(False)),
                ("every_commune", _sites(True)),
            ]
            for label, sites in cases:
                figures[f"{label}_site_databases"] = len(sites)
                costs = _insert_seconds(warehouse, users_d, sites)
                figures.update({f"{label}_{k}": v for k, v in costs.items()})
            # The drains in the other order than the inserts: on a shared machine the load drifts, and a case
            # measured last both times would always run in the same part of it.
            for label, sites in reversed(cases):
                drained = _drain(info, warehouse, root, sites)
                figures.update({f"{label}_{k}": v for k, v in drained.items() if k in _KEPT})
            warehouse.close()
        finally:
            stack.down()
    return figures


INSERT_ROWS = 5_000
"""Rows per timed insert: the workers' default sink batch (StreamsSettings.sink_batch_rows)."""
INSERT_REPEATS = 5

_KEPT = ("readings_per_s", "worker_cores", "clickhouse_cores", "kafka_cores", "drained_readings")
