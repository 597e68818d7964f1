"""Hotspots by distance (ioc.hotspots): hand-placed cameras grouped into discs of the rule's radius."""

from __future__ import annotations

import math
import random

import pytest

from ioc.hotspots import WeightedPoint, clusters
from ioc.units import distance_m

LAT = 10.98
METRE_LAT = 1 / 111_195.0  # degrees of latitude per metre on the haversine's sphere
METRE_LON = METRE_LAT / math.cos(math.radians(LAT))


def at(key: str, east_m: float, north_m: float, weight: float) -> WeightedPoint:
    """A camera `east_m`, `north_m` metres from a junction in Thủ Dầu Một."""
    return WeightedPoint(key, LAT + north_m * METRE_LAT, 106.65 + east_m * METRE_LON, weight)


def test_cameras_within_the_radius_make_one_hotspot_and_a_far_one_stays_apart() -> None:
    points = [at("a", 0, 0, 3), at("b", 120, 0, 2), at("c", 0, -250, 1), at("far", 2000, 0, 9)]
    found = clusters(points, radius_m=300, min_weight=5)
    assert [(c.seed, sorted(c.members), c.weight) for c in found] == [("far", ["far"], 9), ("a", ["a", "b", "c"], 6)]
    junction = found[1]
    # The weighted centre: (3·0 + 2·120 + 1·0) / 6 = 40 m east, (1·-250) / 6 ≈ -41.7 m north.
    assert distance_m(junction.lat, junction.lon, LAT, 106.65 + 40 * METRE_LON) == pytest.approx(41.67, abs=0.5)
    assert junction.radius_m == 300


def test_too_few_violations_make_no_hotspot() -> None:
    assert clusters([at("a", 0, 0, 2), at("b", 100, 0, 2)], radius_m=300, min_weight=5) == []
    assert clusters([], radius_m=300, min_weight=1) == []


def test_a_chain_along_a_road_is_not_one_long_hotspot() -> None:
    # Five cameras 250 m apart: single linkage would join all 1 km of them; discs of 300 m do not.
    road = [at(f"k{i}", 250 * i, 0, 2) for i in range(5)]
    found = clusters(road, radius_m=300, min_weight=4)
    for cluster in found:
        seed = next(p for p in road if p.key == cluster.seed)
        for member in cluster.members:
            point = next(p for p in road if p.key == member)
            assert distance_m(seed.lat, seed.lon, point.lat, point.lon) <= 300
    assert all(len(c.members) <= 3 for c in found)
    assert len({m for c in found for m in c.members}) == sum(len(c.members) for c in found)  # each camera once


def test_the_heaviest_disc_wins_and_ties_go_to_the_smaller_key() -> None:
    # b sits between a and c (200 m each side): its disc holds all three.
    found = clusters([at("a", 0, 0, 1), at("b", 200, 0, 1), at("c", 400, 0, 1)], radius_m=250, min_weight=1)
    assert [(c.seed, c.members) for c in found] == [("b", ("a", "b", "c"))]
    tie = clusters([at("y", 0, 0, 1), at("x", 1000, 0, 1)], radius_m=100, min_weight=1)
    assert [c.seed for c in tie] == ["x", "y"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="radius_m must be positive"):
        clusters([at("a", 0, 0, 1)], radius_m=0, min_weight=1)
    with pytest.raises(ValueError, match="distinct keys"):
        clusters([at("a", 0, 0, 1), at("a", 5, 0, 1)], radius_m=10, min_weight=1)


def _disc(free: list[WeightedPoint], seed: WeightedPoint, radius_m: float) -> list[WeightedPoint]:
    return [p for p in free if distance_m(seed.lat, seed.lon, p.lat, p.lon) <= radius_m]


def _reference(points: list[WeightedPoint], radius_m: float, min_weight: float) -> list[tuple[str, tuple[str, ...]]]:
    """The rule's words, slowly: every round, the unclaimed disc holding the most weight (ties: smaller key)."""
    free = sorted(points, key=lambda p: p.key)
    found = []
    while free:
        seed = max(free, key=lambda s: (sum(p.weight for p in _disc(free, s, radius_m)), [-ord(c) for c in s.key]))
        members = _disc(free, seed, radius_m)
        if sum(p.weight for p in members) < min_weight:
            break
        found.append((seed.key, tuple(p.key for p in members)))
        free = [p for p in free if p not in members]
    return found


def test_the_fast_grouping_agrees_with_the_rules_words_on_a_random_province() -> None:
    rng = random.Random(766)
    points = [at(f"cam-{i:03d}", rng.uniform(0, 6000), rng.uniform(0, 6000), rng.randint(0, 6)) for i in range(150)]
    fast = [(c.seed, c.members) for c in clusters(points, radius_m=400, min_weight=5)]
    assert fast == _reference(points, 400, 5)
    assert len(fast) > 5
