"""Point maps drawn as inline SVG: places at their coordinates, coloured and sized, labelled, with tooltips."""

from __future__ import annotations

import dataclasses
import html
import math
from collections.abc import Sequence
from typing import Final

# An IOC often runs without internet, where a tile map shows dots on an empty background, and a WebGL
# map costs the browser a large script and software rendering on every first view. The overview and the
# environment, traffic and public pages need places relative to each other, their names and a colour, so
# the map is an SVG the page's own markdown renders: an equirectangular projection (longitude scaled by
# the cosine of the mean latitude, which at Bình Dương's 11°N keeps shapes true to within a fraction of a
# percent), circles sized in metres on the ground, a name beside each point when there are few enough to
# read, and a tooltip (SVG `<title>`) on every point.

__all__ = ["MapPoint", "svg_map"]

WIDTH: Final = 720
METRES_PER_DEGREE: Final = 111_320.0
MIN_RADIUS_PX: Final = 6.0
MAX_RADIUS_PX: Final = 22.0
LABEL_LIMIT: Final = 16
"""Names are written beside the points only up to this many points (beyond, the tooltips carry them)."""
_PAD: Final = 28.0
_MIN_SPAN_DEG: Final = 0.02


@dataclasses.dataclass(frozen=True, slots=True)
class MapPoint:
    """One place: where, its colour (`#RRGGBB`), its radius on the ground in metres, its name and tooltip."""

    lat: float
    lon: float
    colour: str
    radius_m: float
    label: str = ""
    tooltip: str = ""


def svg_map(points: Sequence[MapPoint], *, height: int = 380, caption: str = "") -> str:
    """The points as one line of SVG (no blank lines, so markdown passes it through untouched)."""
    if not points:
        return ""
    mean_lat = sum(p.lat for p in points) / len(points)
    squeeze = math.cos(math.radians(mean_lat))
    xs = [p.lon * squeeze for p in points]
    ys = [-p.lat for p in points]
    span_x = max(max(xs) - min(xs), _MIN_SPAN_DEG)
    span_y = max(max(ys) - min(ys), _MIN_SPAN_DEG)
    scale = min((WIDTH - 2 * _PAD) / span_x, (height - 2 * _PAD) / span_y)  # px per degree
    left = (WIDTH - scale * (max(xs) + min(xs))) / 2
    top = (height - scale * (max(ys) + min(ys))) / 2
    metres_per_px = METRES_PER_DEGREE / scale
    labelled = len(points) <= LABEL_LIMIT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" '
        f'style="max-height:{height}px;background:#F5F7FA;border-radius:0.5rem" role="img" '
        f'aria-label="{html.escape(caption, quote=True)}">'
    ]
    # Biggest first, so a small point is never hidden under a big one.
    order = sorted(range(len(points)), key=lambda i: -points[i].radius_m)
    for i in order:
        point = points[i]
        x, y = left + scale * xs[i], top + scale * ys[i]
        radius = min(max(point.radius_m / metres_per_px, MIN_RADIUS_PX), MAX_RADIUS_PX)
        tip = html.escape(point.tooltip or point.label)
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{radius:.1f}" fill="{html.escape(point.colour, quote=True)}" '
            f'fill-opacity="0.8" stroke="#FFFFFF" stroke-width="1.5"><title>{tip}</title></circle>'
        )
    if labelled:
        for i, point in enumerate(points):
            if not point.label:
                continue
            x, y = left + scale * xs[i], top + scale * ys[i]
            anchor = "end" if x > WIDTH * 0.75 else "start"
            offset = -8 if anchor == "end" else 8
            parts.append(
                f'<text x="{x + offset:.1f}" y="{y + 4:.1f}" font-size="12" fill="#263238" '
                f'text-anchor="{anchor}" style="paint-order:stroke;stroke:#F5F7FA;stroke-width:3px">'
                f"{html.escape(point.label)}</text>"
            )
    parts.append("</svg>")
    return "".join(parts)
