"""Camera events: store them, de-duplicate per camera, raise safety incidents and violation hotspots.

Reads `ioc.camera-events.v1` (the bridge's batches, plus ticks) with per-camera state in the
`camera-state` table (streams/cameras.py holds the rules). Every event is stored, duplicates flagged, so
the Traffic page can count violations once; safety events and hotspots go to the incident workers.
"""

from __future__ import annotations

from typing import Any

from ioc import topics
from ioc.events import CameraEvent, Ingested, Tick
from streams import cameras as camera_rules
from streams.agents.common import detection_messages, fail_fast
from streams.pipeline import PartitionBuffer
from streams.runtime import CAMERA_EVENTS, Runtime, batch_or_tick
from streams.warehouse import rows

__all__ = ["register"]


def register(rt: Runtime) -> None:
    rules = camera_rules.camera_rules(rt.model)
    table = rt.table("camera-state", CAMERA_EVENTS.partitions)
    pipeline = rt.pipeline("cameras")
    cache: dict[int, dict[str, camera_rules.CameraState]] = {}
    dirty: dict[int, set[str]] = {}
    latest: dict[int, dict[str, tuple[Ingested, int]]] = {}
    loaded: set[int] = set()

    def state_for(partition: int, key: str, event: CameraEvent) -> camera_rules.CameraState:
        states = cache.setdefault(partition, {})
        state = states.get(key)
        if state is None:
            raw = table.get(key.encode())
            state = camera_rules.CameraState.decode(raw) if raw else camera_rules.CameraState.first(event)
            states[key] = state
        return state

    def load_partition(partition: int) -> None:
        if partition in loaded:
            return
        states = cache.setdefault(partition, {})
        for raw_key, raw in list(table.items()):
            key = raw_key.decode()
            if key not in states and topics.partition_for(key, CAMERA_EVENTS.partitions) == partition:
                states[key] = camera_rules.CameraState.decode(raw)
        loaded.add(partition)

    def save(partition: int, buffer: PartitionBuffer) -> None:
        states = cache.get(partition, {})
        for key in dirty.pop(partition, set()):
            table[key.encode()] = states[key].encode()
        buffer.add_rows(
            "device_status",
            [rows.device_status_row(item, readings=n) for item, n in latest.pop(partition, {}).values()],
        )

    @rt.app.agent(rt.topic(CAMERA_EVENTS.name), name="streams.cameras")
    @fail_fast
    async def camera_events(stream: Any) -> None:
        async for event in stream.noack().events():
            partition = event.message.partition
            buffer = pipeline.buffer(partition)
            buffer.events.append(event)
            value = batch_or_tick.decode(event.value)
            changed = dirty.setdefault(partition, set())
            if isinstance(value, Tick):
                load_partition(partition)
                now = value.at.timestamp()
                for key, state in cache.get(partition, {}).items():
                    found = camera_rules.check_silence(state, now, rules)
                    if found:
                        changed.add(key)
                        buffer.messages.extend(detection_messages(found))
                        buffer.urgent = True
            else:
                newest = latest.setdefault(partition, {})
                for item in value.items:
                    camera = item.event
                    if not isinstance(camera, CameraEvent):
                        continue
                    key = topics.device_key(camera.vendor, camera.device)
                    state = state_for(partition, key, camera)
                    outcome = camera_rules.observe(state, camera, item.received_at.timestamp(), rules)
                    if outcome.applied:
                        changed.add(key)
                        buffer.messages.extend(detection_messages(outcome.detections))
                        buffer.urgent = buffer.urgent or bool(outcome.detections)
                    buffer.add_rows("camera_events", [rows.camera_row(item, outcome.duplicate, "")])
                    previous = newest.get(key)
                    newest[key] = (item, (previous[1] if previous else 0) + 1)
            if isinstance(value, Tick) or pipeline.due(partition):
                save(partition, buffer)
                await pipeline.flush(partition)
