"""Simulated camera snapshots (sensors.simulators.snapshots): small JPEGs, one per detection, the same every time."""

from __future__ import annotations

import datetime as dt
import io

import msgspec
from PIL import Image

from ioc.events import CameraEvent, CameraEventType
from ioc.snapshots import MemoryStore
from sensors.simulators import snapshots

EVENT = CameraEvent(
    vendor="cam-vendor",
    device="cam-25747",
    unit="25747",
    seq=41,
    observed_at=dt.datetime(2026, 12, 7, 1, 2, 3, tzinfo=dt.UTC),
    event_type=CameraEventType.RED_LIGHT,
    confidence=0.93,
    plate="61A-123.45",
)


def test_a_snapshot_is_a_small_jpeg_of_the_cameras_frame() -> None:
    data = snapshots.render(EVENT)
    image = Image.open(io.BytesIO(data))
    assert image.format == "JPEG" and image.size == (snapshots.WIDTH, snapshots.HEIGHT)
    assert 1_000 < len(data) < 12_000  # a few KB


def test_the_same_detection_draws_the_same_bytes_and_another_draws_others() -> None:
    store = MemoryStore()
    key = store.put(snapshots.render(EVENT), "jpg")
    assert store.put(snapshots.render(EVENT), "jpg") == key  # a re-sent event names the same file
    accident = msgspec.structs.replace(EVENT, event_type=CameraEventType.ACCIDENT, plate=None)
    others = {
        store.put(snapshots.render(msgspec.structs.replace(EVENT, seq=42)), "jpg"),
        store.put(snapshots.render(accident), "jpg"),
    }
    assert key not in others and len(others) == 2
    assert len(store.items) == 3
