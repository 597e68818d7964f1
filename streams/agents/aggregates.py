"""Unit windows: combine devices' minutes into 1-minute and 15-minute statistics for every unit.

Reads `ioc.aggregates.v1` (DeviceMinute records keyed by the unit they roll up into, plus ticks); each
unit's recent minutes live in the `unit-windows` table (streams/windows.py); rebuilt windows are written
to `unit_aggregates` with a version, so the newest rebuild of a window is the one queries see.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ioc import topics
from ioc.events import Tick
from streams.agents.common import fail_fast
from streams.pipeline import PartitionBuffer
from streams.runtime import AGGREGATES, Runtime, minute_or_tick
from streams.warehouse import rows
from streams.windows import UnitWindows

__all__ = ["register"]


def register(rt: Runtime) -> None:
    table = rt.table("unit-windows", AGGREGATES.partitions)
    pipeline = rt.pipeline("aggregates")
    cache: dict[int, dict[str, UnitWindows]] = {}
    dirty: dict[int, set[str]] = {}

    def windows_for(partition: int, unit: str) -> UnitWindows:
        units = cache.setdefault(partition, {})
        state = units.get(unit)
        if state is None:
            raw = table.get(unit.encode())
            state = units[unit] = UnitWindows.decode(raw) if raw else UnitWindows(unit)
        return state

    def save(partition: int, buffer: PartitionBuffer) -> None:
        units = cache.get(partition, {})
        version = int(rt.now() * 1000)
        for unit in dirty.pop(partition, set()):
            state = units[unit]
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
            table[unit.encode()] = state.encode()

    @rt.app.agent(rt.topic(AGGREGATES.name), name="streams.aggregates")
    @fail_fast
    async def aggregates(stream: Any) -> None:
        async for event in stream.noack().events():
            partition = event.message.partition
            buffer = pipeline.buffer(partition)
            buffer.events.append(event)
            value = minute_or_tick.decode(event.value)
            if (
                not isinstance(value, Tick)
                and topics.partition_for(value.target_unit, AGGREGATES.partitions) == partition
            ):
                windows_for(partition, value.target_unit).add(value)
                dirty.setdefault(partition, set()).add(value.target_unit)
            if isinstance(value, Tick) or pipeline.due(partition):
                save(partition, buffer)
                await pipeline.flush(partition)
