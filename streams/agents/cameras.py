"""Camera events: store them, de-duplicate per camera, raise safety incidents and violation hotspots."""

from __future__ import annotations

import functools
from typing import Any

from ioc import topics
from ioc.events import CameraEvent, IngestBatch, Tick
from streams import cameras as camera_rules
from streams import siteconfig
from streams.agents.common import DevicesHeard, add_detections, fail_fast, kept_state
from streams.pipeline import PartitionBuffer
from streams.runtime import Runtime
from streams.warehouse import rows

__all__ = ["register"]


def register(rt: Runtime) -> None:
    """Read `ioc.camera-events.v1` (the bridge's batches, plus ticks) with per-camera state in `camera-state`.

    streams/cameras.py holds the rules. Every event is stored, duplicates flagged, so the Traffic page can count
    violations once; safety events and hotspots go to the incident workers.
    """
    # Per-site overrides of the camera rules (streams/siteconfig.py); camera events stay in the shared pool.
    sites = siteconfig.SiteConfigReader(rt.settings, rt.model.rules)
    pipeline = rt.pipeline("cameras", topics.CAMERA_EVENTS.name)
    states = kept_state(
        rt,
        pipeline,
        "camera-state",
        topics.CAMERA_EVENTS,
        decode=camera_rules.CameraState.decode,
        encode=camera_rules.CameraState.encode,
    )
    heard = DevicesHeard()

    async def handle(partition: int, buffer: PartitionBuffer, value: IngestBatch | Tick) -> None:
        if isinstance(value, Tick):
            now, index = value.at.timestamp(), sites.current()
            for key, state in states.load(partition).items():
                found = camera_rules.check_silence(state, now, index.camera_rules_for(state.unit))
                if found:
                    states.mark(partition, key)
                    add_detections(buffer, found)
            return
        index = sites.current()
        for item in value.items:
            camera = item.event
            if not isinstance(camera, CameraEvent):
                continue
            key = topics.device_key(camera.vendor, camera.device)
            state = states.get(partition, key, functools.partial(camera_rules.CameraState.first, camera))
            outcome = camera_rules.observe(
                state, camera, item.received_at.timestamp(), index.camera_rules_for(state.unit)
            )
            if outcome.applied:
                states.mark(partition, key)
                add_detections(buffer, outcome.detections)
            buffer.add_rows("camera_events", [rows.camera_row(item, outcome.duplicate, "")])
            heard.heard(partition, key, item)

    def prepare(partition: int, buffer: PartitionBuffer) -> None:
        states.save(partition)
        buffer.add_rows("device_status", heard.take_rows(partition))

    @rt.app.agent(rt.topic(topics.CAMERA_EVENTS.name), name="streams.cameras")
    @fail_fast
    async def camera_events(stream: Any) -> None:
        await pipeline.consume(stream, lambda event: topics.CAMERA_EVENTS.decode(event.value), handle, prepare)
