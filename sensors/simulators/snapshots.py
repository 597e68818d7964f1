"""Camera snapshots for simulated detections: a small generated JPEG per event (Pillow), deterministic.

The runner puts each into the snapshot store (`ioc.snapshots`) and sends its key in `CameraEvent.snapshot`,
as a real gateway uploads its evidence frame and references it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
from typing import Final

from PIL import Image, ImageDraw

from ioc.events import VIOLATION_TYPES, CameraEvent, CameraEventType

# What an operator needs to see that the link works and which detection it is: a road scene in a few flat
# shapes (no photo, nothing to license), the event's type as a coloured box, the plate when there is one,
# and a caption strip with the camera, the time and the type, as camera overlays print them. The same
# event always draws the same bytes (colours come from its identity), so a re-sent event has the same key.
# About 4-6 KB at 320×180 and JPEG quality 70.

__all__ = ["HEIGHT", "WIDTH", "render"]

WIDTH: Final = 320
HEIGHT: Final = 180
QUALITY: Final = 70
_BOX: Final[dict[CameraEventType, tuple[int, int, int]]] = {
    CameraEventType.ACCIDENT: (198, 40, 40),
    CameraEventType.FIRE_SMOKE: (230, 81, 0),
    CameraEventType.OBSTRUCTION: (249, 168, 37),
    CameraEventType.CROWD: (106, 27, 154),
    CameraEventType.INTRUSION: (69, 39, 160),
}
_VIOLATION_BOX: Final = (21, 101, 192)


def _shade(event: CameraEvent) -> tuple[int, int, int]:
    digest = hashlib.sha256(f"{event.vendor}/{event.device}#{event.seq}".encode()).digest()
    return (60 + digest[0] % 150, 60 + digest[1] % 150, 60 + digest[2] % 150)


def render(event: CameraEvent) -> bytes:
    """The event's snapshot as JPEG bytes."""
    image = Image.new("RGB", (WIDTH, HEIGHT), (120, 144, 156))
    draw = ImageDraw.Draw(image)
    draw.polygon([(0, HEIGHT), (WIDTH, HEIGHT), (WIDTH * 0.62, 60), (WIDTH * 0.38, 60)], fill=(66, 66, 66))
    for y in range(70, HEIGHT, 22):  # lane markings
        draw.line([(WIDTH / 2, y), (WIDTH / 2, y + 10)], fill=(250, 250, 250), width=2)
    left = 70 + (event.seq * 37) % 150
    draw.rectangle([left, 100, left + 70, 150], fill=_shade(event))  # the vehicle or object
    box = _VIOLATION_BOX if event.event_type in VIOLATION_TYPES else _BOX.get(event.event_type, (255, 255, 255))
    draw.rectangle([left - 6, 94, left + 76, 156], outline=box, width=3)
    if event.plate:
        draw.rectangle([left + 8, 136, left + 62, 148], fill=(255, 255, 255))
        draw.text((left + 10, 137), event.plate, fill=(0, 0, 0))
    draw.rectangle([0, 0, WIDTH, 16], fill=(0, 0, 0))
    caption = f"{event.device} {event.observed_at.astimezone(dt.UTC):%Y-%m-%d %H:%M:%S}Z {event.event_type.value}"
    draw.text((4, 3), caption, fill=(255, 255, 255))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=QUALITY, optimize=True)
    return out.getvalue()
