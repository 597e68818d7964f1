"""Retention of the shared warehouse: drop the month partitions of raw observations no site keeps any longer.

Every site reads the warehouse's tables, so a partition there can go only when no site wants it: they keep
readings as long as the longest `spec.retention.readingsDays` any site asks for (streams/siteconfig.py); a
site database holding copies of its subtree's rows keeps them as long as that site asks. Both in whole months
(streams/warehouse/migrations.py). ClickHouse 18.16
has no TTL, and on current servers the TTL is fixed when a table is made; dropping partitions works on both.
The job runs on the stream workers' leader (streams/agents/retention.py).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Final

from ioc.clients import clickhouse
from ioc.reference import Rule
from ioc.settings import StreamsSettings
from streams import siteconfig
from streams.warehouse import migrations

__all__ = ["RAW_TABLES", "enforce", "plan", "run_once"]

log = logging.getLogger(__name__)

RAW_TABLES: Final = tuple(sorted(migrations.MONTHLY_PARTITIONED))
"""The tables `readingsDays` governs: readings and camera events, partitioned by the month they were observed."""


def enforce(
    warehouse: clickhouse.Warehouse, database: str, readings_days: int | None, now: dt.datetime
) -> dict[str, list[str]]:
    """Drop each raw table's months entirely older than `readings_days` (None: no site asks, keep everything)."""
    if readings_days is None:
        return {}
    dropped = {
        table: migrations.drop_partitions_older_than(warehouse, table, readings_days, database=database, now=now)
        for table in RAW_TABLES
    }
    return {table: ids for table, ids in dropped.items() if ids}


def plan(index: siteconfig.SiteIndex, database: str) -> dict[str, int]:
    """Days of raw observations each database keeps: the warehouse the longest any site asks, each site its own."""
    days = index.readings_days()
    wanted = {} if days is None else {database: days}
    for site in index.sites:
        if site.database is not None and site.readings_days is not None and site.database != database:
            wanted[site.database] = site.readings_days
    return wanted


def run_once(settings: StreamsSettings, model: Sequence[Rule], now: dt.datetime) -> dict[str, dict[str, list[str]]]:
    """Read the sites' retention from `ioc.site-config.v1` and enforce it on every database that holds readings.

    A site database whose tables are views (or that does not exist yet) has no parts: nothing to drop there.
    """
    wanted = plan(siteconfig.read_sites(settings, model), settings.database)
    dropped: dict[str, dict[str, list[str]]] = {}
    warehouse = clickhouse.connect(settings.clickhouse)
    try:
        for database, days in sorted(wanted.items()):
            try:
                found = enforce(warehouse, database, days, now)
            except (clickhouse.WarehouseError, ValueError) as exc:  # one database's trouble stops no other
                log.warning("retention of %s: %s", database, exc)
                continue
            if found:
                dropped[database] = found
                log.info("retention: dropped %s of %s (older than %d days)", found, database, days)
    finally:
        warehouse.close()
    return dropped
