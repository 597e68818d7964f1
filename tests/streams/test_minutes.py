"""Closed device minutes travel to the unit workers in one message per aggregates partition."""

from __future__ import annotations

import datetime as dt

from ioc import codecs, topics
from ioc.events import DeviceMinute, DeviceMinutes, MeasureStats, Tick
from streams.agents.readings import MINUTES_PER_MESSAGE

AT = dt.datetime(2025, 6, 1, 1, 0, tzinfo=dt.UTC)


def _minute(device: str, target: str) -> DeviceMinute:
    return DeviceMinute(
        device_key=f"acme/{device}",
        unit="25957",
        target_unit=target,
        minute=AT,
        measures={"waterLevel": MeasureStats(count=2, sum=1.0, min=0.4, max=0.6)},
    )


def test_the_aggregates_agent_reads_a_batch_a_single_minute_and_a_tick() -> None:
    batch = DeviceMinutes(items=[_minute("g1", "25957"), _minute("g2", "724")])
    assert topics.AGGREGATES.decode(codecs.encode(batch)) == batch
    single = _minute("g1", "74")
    assert topics.AGGREGATES.decode(codecs.encode(single)) == single  # what a worker of the previous version sent
    assert isinstance(topics.AGGREGATES.decode(codecs.encode(Tick(at=AT))), Tick)


def test_a_full_batch_stays_well_under_kafkas_message_limit() -> None:
    batch = DeviceMinutes(items=[_minute(f"gauge-{i:05}", "25957") for i in range(MINUTES_PER_MESSAGE)])
    assert len(codecs.encode(batch)) < 512 * 1024
