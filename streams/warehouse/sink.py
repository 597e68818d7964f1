"""The warehouse writer the Faust agents await: one batched insert per call, retried until ClickHouse takes it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from ioc.clients.clickhouse import Warehouse, WarehouseError
from streams.warehouse.rows import (
    TABLES,
    aggregate_row,
    aqi_row,
    camera_row,
    deadletter_row,
    device_status_row,
    dossier_row,
    history_row,
    incident_row,
    indicator_rows,
    reading_rows,
    report_row,
)

__all__ = [
    "RowSink",
    "aggregate_row",
    "aqi_row",
    "backoff_delays",
    "camera_row",
    "deadletter_row",
    "device_status_row",
    "dossier_row",
    "history_row",
    "incident_row",
    "indicator_rows",
    "reading_rows",
    "report_row",
]

log = logging.getLogger(__name__)

INITIAL_BACKOFF_S: Final = 0.5
MAX_BACKOFF_S: Final = 30.0
"""Longest pause between attempts: short enough that a restarted ClickHouse is used within half a minute."""


def backoff_delays(initial_s: float = INITIAL_BACKOFF_S, max_s: float = MAX_BACKOFF_S) -> Iterator[float]:
    """Seconds to wait before each retry: doubling from `initial_s`, then `max_s` forever."""
    if not 0 < initial_s <= max_s:
        raise ValueError(f"backoff needs 0 < initial_s <= max_s, got {initial_s} and {max_s}")
    delay = initial_s
    while True:
        yield delay
        delay = min(delay * 2, max_s)


class RowSink:
    """Writes row batches into one database of a warehouse; `write` returns once the rows are stored.

    An agent builds rows with the pure builders (streams/warehouse/rows.py, re-exported here so an agent imports its
    writer and its rows from one place) and awaits `write(table, rows)` before its Kafka offsets may advance. `write`
    never gives up: while ClickHouse is down or timing out it logs and retries with capped exponential backoff, so an
    outage pauses consumption and, once ClickHouse is back, the batch goes in and consumption resumes, losing nothing. A
    retry after a timeout may insert a batch the server had in fact stored; that duplicate collapses, because every
    table is a ReplacingMergeTree keyed on the row's identity (docs/warehouse.md).

    The same patience applies to a refusal that will not heal by waiting (a table missing because migrations did not
    run, a schema older than the code): the partition stalls loudly in the log rather than dropping rows, and resumes
    once the schema is fixed. Mistakes in the call itself (an unknown table, rows with different columns) raise at once,
    before anything is sent.
    """

    def __init__(
        self,
        warehouse: Warehouse,
        database: str,
        *,
        initial_backoff_s: float = INITIAL_BACKOFF_S,
        max_backoff_s: float = MAX_BACKOFF_S,
    ) -> None:
        if not database.isidentifier():
            raise ValueError(f"database name {database!r} is not a plain identifier")
        next(backoff_delays(initial_backoff_s, max_backoff_s))  # validate the pair now, not at the first outage
        self.warehouse = warehouse
        self.database = database
        self._initial_backoff_s = initial_backoff_s
        self._max_backoff_s = max_backoff_s
        # Failed attempts since this sink was made: a gauge for health checks and tests.
        self.failures = 0

    async def write(self, table: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert `rows` into `table` as one batch, retrying until it succeeds; nothing to do for no rows.

        The blocking driver call runs in a worker thread, so the event loop (other agents, Kafka
        heartbeats) keeps running during a long outage.
        """
        if table not in TABLES:
            raise ValueError(f"{table!r} is not a warehouse table; known: {', '.join(sorted(TABLES))}")
        if not rows:
            return
        columns = _columns(table, rows)
        target = f"{self.database}.{table}"
        delays = backoff_delays(self._initial_backoff_s, self._max_backoff_s)
        failing_since: float | None = None
        attempt = 0
        while True:
            attempt += 1
            try:
                await asyncio.to_thread(self.warehouse.insert, target, rows, columns)
            except WarehouseError as exc:
                self.failures += 1
                failing_since = failing_since or time.monotonic()
                delay = next(delays)
                log.warning(
                    "insert of %d rows into %s failed (attempt %d, failing for %.0f s), retrying in %.1f s: %s",
                    len(rows),
                    target,
                    attempt,
                    time.monotonic() - failing_since,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                continue
            if attempt > 1:
                log.info("insert of %d rows into %s succeeded after %d attempts", len(rows), target, attempt)
            return


def _columns(table: str, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    # One INSERT has one column list: a row with other keys is a builder bug, caught before any I/O.
    columns = list(rows[0].keys())
    expected = set(columns)
    for index, row in enumerate(rows):
        if row.keys() != expected:
            missing, extra = sorted(expected - row.keys()), sorted(row.keys() - expected)
            raise ValueError(f"row {index} for {table} has other columns than row 0 (missing {missing}, extra {extra})")
    return columns
