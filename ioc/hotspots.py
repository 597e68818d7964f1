"""Hotspots by distance: cameras and their violations grouped into discs of the hotspot rule's radius.

The reference model's `HotspotRule` says "at least `min_events` violations within `radius_m`"; `clusters`
finds such discs among points, pure and deterministic, for the Traffic page and anything else that asks.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from typing import Final

from ioc.units import distance_m

__all__ = ["Cluster", "WeightedPoint", "clusters"]

# Greedy and exact about the rule's words: each round takes the point whose disc of `radius_m` holds the
# most weight still unclaimed (ties: the smaller key), makes the unclaimed points of that disc one
# cluster, and repeats. Every member is within the radius of the cluster's seed, so a chain of cameras
# 300 m apart along a road never becomes one 3 km "hotspot" as single-linkage clustering would make it.
# Points are cameras, a few hundred per site at most: the quadratic cost is nothing beside the query.

_NO_WEIGHT: Final = 0.0


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


def clusters(points: Sequence[WeightedPoint], *, radius_m: float, min_weight: float) -> list[Cluster]:
    """The discs of `radius_m` holding at least `min_weight`, heaviest first; a point belongs to one at most."""
    if radius_m <= 0:
        raise ValueError(f"radius_m must be positive, got {radius_m}")
    ordered = sorted(points, key=lambda p: p.key)
    keys: list[Hashable] = [p.key for p in ordered]
    if len(set(keys)) != len(keys):
        raise ValueError("points must have distinct keys")
    near = [
        [j for j, other in enumerate(ordered) if distance_m(p.lat, p.lon, other.lat, other.lon) <= radius_m]
        for p in ordered
    ]
    free = set(range(len(ordered)))
    found: list[Cluster] = []
    while free:
        best, best_weight = -1, _NO_WEIGHT
        for i in sorted(free):
            weight = sum(ordered[j].weight for j in near[i] if j in free)
            if weight > best_weight:
                best, best_weight = i, weight
        if best < 0 or best_weight < min_weight:
            break
        members = [j for j in near[best] if j in free]
        free.difference_update(members)
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
