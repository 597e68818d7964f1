"""Hotspots by distance: cameras and their violations grouped into discs of the hotspot rule's radius.

The reference model's `HotspotRule` says "at least `min_events` violations within `radius_m`"; `clusters`
finds such discs among points, pure and deterministic, for the Traffic page and anything else that asks.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections.abc import Hashable, Sequence
from typing import Final

from ioc.units import distance_m

__all__ = ["Cluster", "WeightedPoint", "clusters"]

# Greedy and exact about the rule's words: each round takes the point whose disc of `radius_m` holds the
# most weight still unclaimed (ties: the smaller key), makes the unclaimed points of that disc one
# cluster, and repeats. Every member is within the radius of the cluster's seed, so a chain of cameras
# 300 m apart along a road never becomes one 3 km "hotspot" as single-linkage clustering would make it.
# Distances are computed between points of neighbouring grid cells only, and each disc's unclaimed weight
# is updated as points are claimed, so a province's cameras cluster in milliseconds.

_NO_WEIGHT: Final = 0.0
_METRES_PER_DEGREE: Final = 111_195.0
"""Metres per degree of latitude on `ioc.units.distance_m`'s sphere (6,371 km)."""


@dataclasses.dataclass(frozen=True, slots=True)
class WeightedPoint:
    """A place with a weight (a camera and its violations); `key` identifies it and breaks ties."""

    key: str
    lat: float
    lon: float
    weight: float


@dataclasses.dataclass(frozen=True, slots=True)
class Cluster:
    """Points within `radius_m` of the seed, their total weight and their weighted centre."""

    seed: str
    members: tuple[str, ...]
    weight: float
    lat: float
    lon: float
    radius_m: float


def _neighbours(points: Sequence[WeightedPoint], radius_m: float) -> list[list[int]]:
    """For each point, the points within `radius_m` of it (itself included), comparing neighbouring cells only."""
    # Cells at least `radius_m` wide in both directions (longitude measured at the points' highest latitude),
    # so two points within the radius are always in the same or adjacent cells.
    lat_cell = radius_m / _METRES_PER_DEGREE
    widest = max((abs(p.lat) for p in points), default=0.0)
    lon_cell = lat_cell / max(math.cos(math.radians(min(widest, 89.0))), 1e-6)
    cells: dict[tuple[int, int], list[int]] = {}
    keys = [(math.floor(p.lat / lat_cell), math.floor(p.lon / lon_cell)) for p in points]
    for i, key in enumerate(keys):
        cells.setdefault(key, []).append(i)
    near: list[list[int]] = []
    for i, (row, column) in enumerate(keys):
        p = points[i]
        found = [
            j
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
            for j in cells.get((row + dr, column + dc), ())
            if distance_m(p.lat, p.lon, points[j].lat, points[j].lon) <= radius_m
        ]
        near.append(sorted(found))
    return near


def clusters(points: Sequence[WeightedPoint], *, radius_m: float, min_weight: float) -> list[Cluster]:
    """The discs of `radius_m` holding at least `min_weight`, heaviest first; a point belongs to one at most."""
    if radius_m <= 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    ordered = sorted(points, key=lambda p: p.key)
    keys: list[Hashable] = [p.key for p in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("points must have distinct keys")
    near = _neighbours(ordered, radius_m)
    # The weight still unclaimed in each point's disc, kept up to date as clusters claim points.
    held = [sum(ordered[j].weight for j in near[i]) for i in range(len(ordered))]
    free = [True] * len(ordered)
    # The heaviest disc first, the smaller key on a tie: a heap of (-weight, index), stale entries skipped.
    heap = [(-weight, i) for i, weight in enumerate(held) if weight > _NO_WEIGHT]
    heapq.heapify(heap)
    found: list[Cluster] = []
    while heap:
        negative, best = heapq.heappop(heap)
        if not free[best] or -negative != held[best]:
            continue
        best_weight = held[best]
        if best_weight < min_weight:
            break
        members = [j for j in near[best] if free[j]]
        touched: set[int] = set()
        for j in members:
            free[j] = False
            for k in near[j]:
                held[k] -= ordered[j].weight
                touched.add(k)
        for k in sorted(touched):
            if free[k] and held[k] > _NO_WEIGHT:
                heapq.heappush(heap, (-held[k], k))
        lat = sum(ordered[j].lat * ordered[j].weight for j in members) / best_weight
        lon = sum(ordered[j].lon * ordered[j].weight for j in members) / best_weight
        found.append(
            Cluster(
                seed=ordered[best].key,
                members=tuple(ordered[j].key for j in members),
                weight=best_weight,
                lat=lat,
                lon=lon,
                radius_m=radius_m,
            )
        )
    return found
