"""Sensor readings: store them, run each device's rules, and pass closed minutes up the unit tree.

Reads `ioc.readings.v1` (the bridge's batches, plus ticks). For each reading: rows for `readings`;
the device's rules (streams/rules.py) with state in the `device-state` table; detections to the incident
workers; each closed minute to `ioc.aggregates.v1` once for every unit on the device's path (commune,
district, province); each finished hour's VN_AQI to `aqi_hourly`. Ticks check for silent devices and
flush. See streams/pipeline.py for when rows are written and offsets committed.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ioc import codecs, topics
from ioc.events import DeviceMinute, Ingested, SensorReading, Tick
from streams import rules as device_rules
from streams.agents.common import detection_messages, fail_fast
from streams.pipeline import Outgoing, PartitionBuffer
from streams.runtime import AGGREGATES, READINGS, Runtime, batch_or_tick
from streams.warehouse import rows

__all__ = ["register"]


def register(rt: Runtime) -> None:
    rules = device_rules.sensor_rules(rt.model)
    table = rt.table("device-state", READINGS.partitions)
    pipeline = rt.pipeline("readings")
    cache: dict[int, dict[str, device_rules.DeviceState]] = {}
    dirty: dict[int, set[str]] = {}
    latest: dict[int, dict[str, tuple[Ingested, int]]] = {}
    loaded: set[int] = set()

    def state_for(partition: int, key: str, reading: SensorReading) -> device_rules.DeviceState:
        states = cache.setdefault(partition, {})
        state = states.get(key)
        if state is None:
            raw = table.get(key.encode())
            state = device_rules.DeviceState.decode(raw) if raw else device_rules.DeviceState.first(reading)
            states[key] = state
        return state

    def load_partition(partition: int) -> None:
        # After a restart or rebalance, devices that never send again must still be checked for silence.
        if partition in loaded:
            return
        states = cache.setdefault(partition, {})
        for raw_key, raw in list(table.items()):
            key = raw_key.decode()
            if key not in states and topics.partition_for(key, READINGS.partitions) == partition:
                states[key] = device_rules.DeviceState.decode(raw)
        loaded.add(partition)

    def emit(buffer: PartitionBuffer, state: device_rules.DeviceState, outcome: device_rules.Outcome) -> None:
        if outcome.detections:
            buffer.messages.extend(detection_messages(outcome.detections))
            buffer.urgent = True
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
                buffer.messages.append(
                    Outgoing(
                        AGGREGATES.name,
                        target.encode(),
                        codecs.encode(minute),
                        topics.partition_for(target, AGGREGATES.partitions),
                    )
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

    def save(partition: int, buffer: PartitionBuffer) -> None:
        states = cache.get(partition, {})
        for key in dirty.pop(partition, set()):
            table[key.encode()] = states[key].encode()
        buffer.add_rows(
            "device_status",
            [rows.device_status_row(item, readings=n) for item, n in latest.pop(partition, {}).values()],
        )

    @rt.app.agent(rt.topic(READINGS.name), name="streams.readings")
    @fail_fast
    async def readings(stream: Any) -> None:
        async for event in stream.noack().events():
            partition = event.message.partition
            buffer = pipeline.buffer(partition)
            buffer.events.append(event)
            value = batch_or_tick.decode(event.value)
            if isinstance(value, Tick):
                load_partition(partition)
                now = value.at.timestamp()
                for key, state in cache.get(partition, {}).items():
                    outcome = device_rules.check_silence(state, now, rules)
                    if outcome.detections or outcome.minutes:
                        dirty.setdefault(partition, set()).add(key)
                        emit(buffer, state, outcome)
            else:
                changed = dirty.setdefault(partition, set())
                newest = latest.setdefault(partition, {})
                for item in value.items:
                    reading = item.event
                    if not isinstance(reading, SensorReading):
                        continue
                    buffer.add_rows("readings", rows.reading_rows(item))
                    key = topics.device_key(reading.vendor, reading.device)
                    state = state_for(partition, key, reading)
                    outcome = device_rules.observe(state, reading, item.received_at.timestamp(), rules)
                    if outcome.applied:
                        changed.add(key)
                        emit(buffer, state, outcome)
                    previous = newest.get(key)
                    newest[key] = (item, (previous[1] if previous else 0) + 1)
            if isinstance(value, Tick) or pipeline.due(partition):
                save(partition, buffer)
                await pipeline.flush(partition)
