"""Where a province can be: a bounding box per province of the units tree, to refuse readings placed elsewhere.

Pure. The packaged units data (ioc/data/SOURCES.md) gives each unit an approximate centre point, not a
boundary, so a province's box is the box around its units' points widened by `MARGIN_DEG` on each side.
For Bình Dương (2024 edition) the points span lat 10.894..11.448, lon 106.393..106.911; with the margin the
box is lat 10.794..11.548, lon 106.293..107.011, which contains the province's published extent
(10°52′..11°30′ N, 106°20′..106°58′ E, Cổng thông tin điện tử tỉnh Bình Dương, "Vị trí địa lý"; a test
checks it) and excludes Hà Nội, Hồ Chí Minh City's centre and the neighbouring countries' capitals.
A box is coarse by design: it refuses places that cannot be true, not places a few km over a border.
"""

from __future__ import annotations

import dataclasses
from typing import Final

from ioc.units import Level, UnitTree

__all__ = ["MARGIN_DEG", "Box", "ProvinceBounds"]

MARGIN_DEG: Final = 0.1
"""Degrees added on each side of a province's unit points (≈11 km): a commune's centre is up to about that
far from its edge, so a device near a border is not refused."""


@dataclasses.dataclass(frozen=True, slots=True)
class Box:
    province: str
    south: float
    north: float
    west: float
    east: float

    def contains(self, lat: float, lon: float) -> bool:
        return self.south <= lat <= self.north and self.west <= lon <= self.east


class ProvinceBounds:
    """`of(unit)` is the box of the province that unit lies in (the unit itself when it is a province)."""

    def __init__(self, tree: UnitTree, *, margin_deg: float = MARGIN_DEG) -> None:
        self._tree = tree
        self._margin = margin_deg
        self._boxes: dict[str, Box] = {}
        self._province_of: dict[str, str] = {}

    def province(self, unit: str) -> str:
        found = self._province_of.get(unit)
        if found is None:
            chain = [*self._tree.ancestors(unit), self._tree.get(unit)]
            provinces = [u.code for u in chain if u.level == Level.PROVINCE]
            found = self._province_of[unit] = provinces[0] if provinces else chain[0].code
        return found

    def of(self, unit: str) -> Box:
        province = self.province(unit)
        box = self._boxes.get(province)
        if box is None:
            units = [self._tree.get(code) for code in self._tree.subtree(province)]
            m = self._margin
            box = self._boxes[province] = Box(
                province,
                round(min(u.lat for u in units) - m, 4),
                round(max(u.lat for u in units) + m, 4),
                round(min(u.lon for u in units) - m, 4),
                round(max(u.lon for u in units) + m, 4),
            )
        return box
