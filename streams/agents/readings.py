"""Sensor readings: store them, run each device's rules, and pass closed minutes up the unit tree."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from typing import Any, Final

from ioc import topics
from ioc.events import DeviceMinute, DeviceMinutes, IngestBatch, SensorReading, Tick
from streams import rules as device_rules
from streams import siteconfig
from streams.agents.common import DevicesHeard, add_detections, fail_fast, kept_state
from streams.pipeline import Outgoing, PartitionBuffer
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["MINUTES_PER_MESSAGE", "register"]

MINUTES_PER_MESSAGE: Final = 1000
"""Device minutes per aggregates message: about 200 KB, well under Kafka's 1 MB default."""

YIELD_EVERY: Final = 50
"""Readings of a batch handled between turns of the event loop. A bridge batch holds up to 500 readings,
tens of milliseconds of work: without a turn in between, each step of every flush in flight (its insert
done, its messages sent, Kafka's answer) waited that long, and the agent waited for the flushes."""


def register(rt: Runtime) -> None:
    """Read `ioc.readings.v1` (the bridge's batches, plus ticks); ticks check for silent devices.

    For each reading: rows for `readings`; the device's rules (streams/rules.py) with state in the `device-state` table;
    detections to the incident workers; each closed minute to `ioc.aggregates.v1` once for every unit on the device's
    path (commune, district, province), gathered into one message per aggregates partition per flush; each finished
    hour's VN_AQI to `aqi_hourly`. See streams/pipeline.py for when rows are written and offsets committed.
    """
    # Per-site thresholds and isolation (streams/siteconfig.py): which readings this worker handles, with which rules.
    sites = siteconfig.SiteConfigReader(rt.settings, rt.model.rules)
    pipeline = rt.pipeline("readings", topics.READINGS.name)
    states = kept_state(
        rt,
        pipeline,
        "device-state",
        topics.READINGS,
        decode=device_rules.DeviceState.decode,
        encode=device_rules.DeviceState.encode,
    )
    heard = DevicesHeard()

    def emit(buffer: PartitionBuffer, state: device_rules.DeviceState, outcome: device_rules.Outcome) -> None:
        if outcome.detections:
            add_detections(buffer, outcome.detections)
        if not outcome.minutes and not outcome.aqi_hours:
            return  # most readings: the device's minute goes on
        path = rt.path(state.unit)
        for closed in outcome.minutes:
            for target in path.split("/"):
                minute = DeviceMinute(
                    device_key=state.device_key,
                    unit=state.unit,
                    target_unit=target,
                    minute=dt.datetime.fromtimestamp(closed.minute, dt.UTC),
                    measures=closed.measures,
                )
                buffer.gathered.setdefault(topics.partition_for(target, topics.AGGREGATES.partitions), []).append(
                    minute
                )
        version = int(rt.now() * 1000)
        buffer.add_rows(
            "aqi_hourly",
            [
                rows.aqi_row(
                    device_key=state.device_key,
                    unit=state.unit,
                    path=path,
                    hour=dt.datetime.fromtimestamp(hour, dt.UTC),
                    result=result,
                    version=version,
                )
                for hour, result in outcome.aqi_hours
            ],
        )

    def send_minutes(buffer: PartitionBuffer) -> None:
        """The flush's closed minutes, one message per aggregates partition (in chunks under Kafka's limit)."""
        for target_partition, minutes in sorted(buffer.gathered.items()):
            for start in range(0, len(minutes), MINUTES_PER_MESSAGE):
                buffer.messages.append(
                    Outgoing(
                        topics.AGGREGATES.name,
                        b"minutes",
                        topics.AGGREGATES.encode(DeviceMinutes(items=minutes[start : start + MINUTES_PER_MESSAGE])),
                        target_partition,
                    )
                )
        buffer.gathered.clear()

    def check_silence(partition: int, buffer: PartitionBuffer, now: float) -> None:
        index = sites.current()
        for key, state in states.load(partition).items():
            if index.handles(state.unit):  # else its site is isolated (or no longer is): another worker watches it
                outcome = device_rules.check_silence(state, now, index.rules_for(state.unit))
                if outcome.detections or outcome.minutes:
                    states.mark(partition, key)
                    emit(buffer, state, outcome)

    async def handle(partition: int, buffer: PartitionBuffer, value: IngestBatch | Tick) -> None:
        if isinstance(value, Tick):
            check_silence(partition, buffer, value.at.timestamp())
            return
        sites_now = sites.current()
        for index, item in enumerate(value.items):
            if index and not index % YIELD_EVERY:
                await asyncio.sleep(0)
                if not pipeline.holds(partition, buffer):
                    return  # revoked meanwhile: the event comes again to the partition's owner
            reading = item.event
            if not isinstance(reading, SensorReading) or not sites_now.handles(reading.unit):
                continue
            buffer.add_rows("readings", rows.reading_rows(item))
            key = topics.device_key(reading.vendor, reading.device)
            state = states.get(partition, key, functools.partial(device_rules.DeviceState.first, reading))
            outcome = device_rules.observe(
                state, reading, item.received_at.timestamp(), sites_now.rules_for(state.unit)
            )
            if outcome.applied:
                states.mark(partition, key)
                emit(buffer, state, outcome)
            heard.heard(partition, key, item)

    def prepare(partition: int, buffer: PartitionBuffer) -> None:
        states.save(partition)
        buffer.add_rows("device_status", heard.take_rows(partition))
        send_minutes(buffer)

    @rt.app.agent(rt.topic(topics.READINGS.name), name="streams.readings")
    @fail_fast
    async def readings(stream: Any) -> None:
        await pipeline.consume(stream, lambda event: topics.READINGS.decode(event.value), handle, prepare)
