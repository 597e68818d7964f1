"""Public-service dossiers: store each snapshot, and keep the Decision 766 indicators of every unit current."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

from ioc import topics
from ioc.citizens import ServiceRecord
from ioc.decision766 import default_scheme
from streams import indicators
from streams.agents.common import fail_fast
from streams.pipeline import PartitionBuffer
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["recompute", "register"]

log = logging.getLogger(__name__)


async def recompute(rt: Runtime, periods: set[indicators.Period]) -> int:
    """Rewrite the indicators of these periods for every unit; returns the rows written."""
    scheme = default_scheme()
    now = dt.datetime.fromtimestamp(rt.now(), dt.UTC)
    written = 0
    for period in sorted(periods, key=lambda p: (p.kind, p.first_day)):
        found = await asyncio.to_thread(
            rt.sink.warehouse.query,
            f"SELECT * FROM {rt.database}.dossiers FINAL"  # noqa: S608 - database name validated by RowSink
            " WHERE received_at < %(end)s AND (received_at >= %(start)s OR finished_at >= %(start)s)",
            {"start": period.start, "end": period.end},
        )
        records = [indicators.record_from_row(r) for r in found]
        result = await asyncio.to_thread(indicators.scorecards, records, scheme, rt.tree, period, as_of=now)
        await rt.sink.write("indicators_766", result)
        written += len(result)
    return written


def register(rt: Runtime) -> None:
    """Read `ioc.service-records.v1` into `dossiers`; a leader timer rewrites the changed periods' indicators.

    The latest snapshot per dossier wins by status_version, so replays and out-of-order events do not double-count; the
    records are read through a pipeline (streams.pipeline: offsets committed only over stored rows, in order, through
    rebalances and restarts), and one that cannot be read is dead-lettered (`undecodable`) and the agent goes on. The
    timer recomputes the scorecards of the periods that changed (and today's and this month's) from the warehouse, the
    source of truth, and writes `indicators_766`, each lost point traceable to its dossiers.
    """
    changed: set[indicators.Period] = set()

    pipeline = rt.pipeline("dossiers", topics.SERVICE_RECORDS.name, flush_when_idle=True)

    async def handle(_partition: int, buffer: PartitionBuffer, record: ServiceRecord) -> None:
        buffer.add_rows("dossiers", [rows.dossier_row(record, rt.path(record.unit))])
        for kind in ("day", "month"):
            changed.add(indicators.period_of(kind, record.received_at))

    @rt.app.agent(rt.topic(topics.SERVICE_RECORDS.name), name="streams.dossiers")
    @fail_fast
    async def dossiers(stream: Any) -> None:
        await pipeline.consume(
            stream, lambda event: topics.SERVICE_RECORDS.decode(event.value), handle, lambda _partition, _buffer: None
        )

    @rt.app.timer(interval=rt.settings.indicators_every_s, on_leader=True)  # type: ignore[untyped-decorator]
    async def refresh_indicators() -> None:
        now = dt.datetime.fromtimestamp(rt.now(), dt.UTC)
        periods = {indicators.period_of("day", now), indicators.period_of("month", now), *changed}
        changed.clear()
        try:
            await recompute(rt, periods)
        except Exception:
            log.exception("recomputing Decision 766 indicators failed; retrying at the next interval")
            changed.update(periods)
