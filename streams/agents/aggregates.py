"""Unit windows: combine devices' minutes into 1-minute and 15-minute statistics for every unit."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from ioc import topics
from ioc.events import DeviceMinute, DeviceMinutes, Tick
from streams.agents.common import WindowStore, fail_fast, kept_state
from streams.pipeline import PartitionBuffer
from streams.runtime import Runtime
from streams.warehouse import rows
from streams.windows import UnitWindows

__all__ = ["register"]


def register(rt: Runtime) -> None:
    """Read `ioc.aggregates.v1` (closed device minutes for the units of one partition, plus ticks) into unit windows.

    Each unit's recent minutes live in the `unit-windows` table, a key per unit and per unit-minute (streams/windows.py
    write_unit); rebuilt windows are written to `unit_aggregates` with a version, so the newest rebuild of a window is
    the one queries see.
    """
    pipeline = rt.pipeline("aggregates", topics.AGGREGATES.name)
    windows = kept_state(
        rt,
        pipeline,
        "unit-windows",
        topics.AGGREGATES,
        decode=UnitWindows.decode,
        encode=UnitWindows.encode,
        store=WindowStore,
    )

    def save(partition: int, buffer: PartitionBuffer) -> None:
        version = int(rt.now() * 1000)
        for unit, state in windows.changed(partition):
            level = rt.tree.get(unit).level if unit in rt.tree else "commune"
            buffer.add_rows(
                "unit_aggregates",
                [
                    rows.aggregate_row(
                        unit=unit,
                        path=rt.path(unit),
                        level=level,
                        window=row.window,
                        window_start=dt.datetime.fromtimestamp(row.window_start, dt.UTC),
                        measure=row.measure,
                        count=row.count,
                        total=row.sum,
                        minimum=row.min,
                        maximum=row.max,
                        devices=row.devices,
                        version=version,
                    )
                    for row in state.take_rows()
                ],
            )
        windows.save(partition)  # after take_rows: the stored state no longer lists the windows written

    async def handle(partition: int, buffer: PartitionBuffer, value: DeviceMinute | DeviceMinutes | Tick) -> None:
        if isinstance(value, Tick):
            return  # a tick only lets a waiting buffer's flush come due
        for minute in value.items if isinstance(value, DeviceMinutes) else [value]:
            unit = minute.target_unit
            if topics.partition_for(unit, topics.AGGREGATES.partitions) == partition:
                windows.get(partition, unit, functools.partial(UnitWindows, unit)).add(minute)
                windows.mark(partition, unit)

    @rt.app.agent(rt.topic(topics.AGGREGATES.name), name="streams.aggregates")
    @fail_fast
    async def aggregates(stream: Any) -> None:
        await pipeline.consume(stream, lambda event: topics.AGGREGATES.decode(event.value), handle, save)
