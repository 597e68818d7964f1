"""Placing a simulated fleet of sensors and AI cameras on real 2024 communes: pure and seeded.

`build_fleet(seed, tree)` decides which devices exist, who makes them, where they stand and how each one
behaves (its baseline, its alert level, its speed limit); the value generators (`generators`) and the
planner (`plan`) read those parameters and never invent devices of their own. The same seed gives the
same fleet byte for byte (`Fleet.to_json`). The placement tells the stories of /work/shared/SCENARIOS.md:
gauges in the low-lying wards of Dĩ An and Thuận An, air stations by the Thuận An industrial area,
cameras along Đại lộ Bình Dương and Xa lộ Hà Nội.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Mapping
from typing import Final, Literal

import msgspec

from ioc import topics
from ioc.events import SensorKind
from ioc.reference import ThresholdRule, default_reference_model
from ioc.units import Level, UnitTree, distance_m
from sensors.simulators import generators

__all__ = [
    "BASE_INTERVAL_S",
    "CAMERA_STORY_WARDS",
    "CORRIDOR_WARDS",
    "DEFAULT_PER_COMMUNE",
    "FLEET_KINDS",
    "FLOOD_WARDS",
    "LOW_LYING_DISTRICTS",
    "POLLUTION_WARDS",
    "VENDORS",
    "DeviceSpec",
    "DossierProfile",
    "Fleet",
    "FleetUnit",
    "Vendor",
    "build_fleet",
    "distance_km",
]

CAMERA: Final = topics.CAMERA_KIND
FLEET_KINDS: Final[tuple[str, ...]] = (
    SensorKind.AIR.value,
    SensorKind.WATER.value,
    SensorKind.NOISE.value,
    SensorKind.TRAFFIC.value,
    CAMERA,
)

# Nominal reporting interval per kind, in simulated seconds, before the planner scales every interval
# to reach the run's target message rate.
BASE_INTERVAL_S: Final[Mapping[str, float]] = {"air": 60.0, "water": 60.0, "noise": 60.0, "traffic": 60.0, CAMERA: 45.0}

DEFAULT_PER_COMMUNE: Final[Mapping[str, int]] = {"air": 1, "water": 1, "noise": 1, "traffic": 1}

# SCENARIOS.md story 1: the flood wards of Dĩ An; story 2: the wards by the Thuận An industrial area;
# story 3: the cameras on the main road through Thủ Dầu Một and Thuận An.
FLOOD_WARDS: Final = ("25957", "25951", "25942")  # Đông Hòa, Bình An, Dĩ An
POLLUTION_WARDS: Final = ("25987", "25966")  # Bình Hòa, Lái Thiêu
CAMERA_STORY_WARDS: Final = ("25747", "25741", "25972")  # Phú Cường, Hiệp Thành, Thuận Giao

# Dĩ An and Thuận An lie low by the Sài Gòn and Đồng Nai rivers and flood in heavy rain: one more gauge
# per ward there.
LOW_LYING_DISTRICTS: Final = ("724", "725")

# Communes along the two camera corridors, with the road the cameras watch.
_DAI_LO: Final = "Đại lộ Bình Dương"
_XA_LO: Final = "Xa lộ Hà Nội"
CORRIDOR_WARDS: Final[Mapping[str, str]] = {
    # Đại lộ Bình Dương (QL13), south to north: Thuận An, Thủ Dầu Một, Bến Cát.
    "25990": _DAI_LO,  # Vĩnh Phú
    "25966": _DAI_LO,  # Lái Thiêu
    "25972": _DAI_LO,  # Thuận Giao
    "25963": _DAI_LO,  # An Thạnh
    "25978": _DAI_LO,  # Hưng Định
    "25753": _DAI_LO,  # Phú Thọ
    "25747": _DAI_LO,  # Phú Cường
    "25756": _DAI_LO,  # Chánh Nghĩa
    "25741": _DAI_LO,  # Hiệp Thành
    "25750": _DAI_LO,  # Phú Hòa
    "25759": _DAI_LO,  # Định Hoà
    "25846": _DAI_LO,  # Thới Hòa
    "25813": _DAI_LO,  # Mỹ Phước
    # Xa lộ Hà Nội and QL1K through Dĩ An, where the flood story's camera stands.
    "25957": _XA_LO,  # Đông Hòa
    "25951": _XA_LO,  # Bình An
    "25954": _XA_LO,  # Bình Thắng
    "25942": "Quốc lộ 1K",  # Dĩ An
}

# SCENARIOS.md story 4: some wards are deliberately late or offline-heavy so the 766 scorecard ranks them.
_LATE_WARDS: Final = frozenset({"25945", "25819", "25780"})  # Tân Bình (Dĩ An), Cây Trường II, Minh Hoà
_OFFLINE_WARDS: Final = frozenset({"25981", "25807", "25864"})  # An Sơn, Thanh An, Phước Sang

DossierProfile = Literal["typical", "late", "offline"]


class Vendor(msgspec.Struct, frozen=True, kw_only=True):
    """A fictional device maker whose credentials publish its devices' data."""

    id: str
    name: str


# Fictional vendors; the ids are MQTT topic segments and broker usernames.
VENDORS: Final[Mapping[str, Vendor]] = {
    v.id: v
    for v in (
        Vendor(id="saigon-air", name="Công ty Quan trắc Không khí Sài Gòn"),
        Vendor(id="greenleaf-env", name="Môi trường Lá Xanh"),
        Vendor(id="mekong-hydro", name="Thủy văn Mekong"),
        Vendor(id="songbe-acoustics", name="Âm học Sông Bé"),
        Vendor(id="vietflow", name="Giao thông VietFlow"),
        Vendor(id="vnpt-cam", name="Camera AI VNPT"),
        Vendor(id="lotus-vision", name="Lotus Vision"),
    )
}

_URBAN_DISTRICTS: Final = frozenset({"718", "721", "723", "724", "725"})
_PREFIX: Final[Mapping[str, str]] = {"air": "aq", "water": "wl", "noise": "nm", "traffic": "tc", CAMERA: "cam"}
_LABEL: Final[Mapping[str, str]] = {
    "air": "Trạm quan trắc không khí",
    "water": "Trạm đo mực nước",
    "noise": "Thiết bị đo tiếng ồn",
    "traffic": "Thiết bị đếm lưu lượng xe",
    CAMERA: "Camera AI giao thông",
}
# About 900 m: devices of one ward spread around its marker point (many wards share a marker in the data).
_JITTER_DEG: Final = 0.008


class FleetUnit(msgspec.Struct, frozen=True, kw_only=True):
    """A commune the fleet covers, with what the simulators need to know about it."""

    code: str
    name: str  # full Vietnamese name, e.g. "phường Đông Hòa"
    district: str
    district_name: str
    lat: float
    lon: float
    low_lying: bool
    road: str | None  # the camera corridor through it, if any
    dossiers: DossierProfile


class DeviceSpec(msgspec.Struct, frozen=True, kw_only=True):
    """One simulated device: identity, place, nominal cadence and its behaviour parameters."""

    vendor: str
    device: str
    unit: str
    kind: str  # a SensorKind value or "camera": the MQTT topic's kind segment
    lat: float
    lon: float
    interval_s: float
    label: str
    params: dict[str, float]

    @property
    def key(self) -> str:
        """`vendor/device`, the key the platform uses for a device's data."""
        return topics.device_key(self.vendor, self.device)


class Fleet(msgspec.Struct, frozen=True, kw_only=True):
    """Every simulated device and the communes they stand in; the same seed gives the same fleet."""

    seed: int
    edition: str
    units: tuple[FleetUnit, ...]
    vendors: tuple[Vendor, ...]
    devices: tuple[DeviceSpec, ...]

    def to_json(self) -> bytes:
        """The fleet as canonical JSON bytes: equal bytes mean an equal fleet."""
        return msgspec.json.encode(self)

    def device(self, device_id: str) -> DeviceSpec:
        for spec in self.devices:
            if spec.device == device_id:
                return spec
        raise KeyError(f"no device {device_id!r} in this fleet")

    def unit(self, code: str) -> FleetUnit:
        for unit in self.units:
            if unit.code == code:
                return unit
        raise KeyError(f"unit {code!r} is not covered by this fleet")

    def has_unit(self, code: str) -> bool:
        return any(u.code == code for u in self.units)

    def in_unit(self, code: str, kind: str | None = None) -> list[DeviceSpec]:
        return [d for d in self.devices if d.unit == code and (kind is None or d.kind == kind)]

    def of_vendor(self, vendor: str) -> list[DeviceSpec]:
        return [d for d in self.devices if d.vendor == vendor]

    def of_kind(self, kind: str) -> list[DeviceSpec]:
        return [d for d in self.devices if d.kind == kind]

    @property
    def vendor_ids(self) -> tuple[str, ...]:
        return tuple(v.id for v in self.vendors)


def distance_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (ioc.units.distance_m) in km; good enough for "the nearest camera" within a province."""
    return distance_m(lat1, lon1, lat2, lon2) / 1000


def _communes(tree: UnitTree, units: Iterable[str] | None) -> list[str]:
    communes = {u.code for u in tree.at_level(Level.COMMUNE)}
    if units is None:
        return sorted(communes)
    chosen: set[str] = set()
    for code in units:
        chosen |= tree.subtree(code.strip()) & communes  # raises UnknownUnitError naming the code
    return sorted(chosen)


def _profiles(codes: list[str], rng: random.Random) -> dict[str, DossierProfile]:
    profiles: dict[str, DossierProfile] = {
        c: "late" if c in _LATE_WARDS else "offline" if c in _OFFLINE_WARDS else "typical" for c in codes
    }
    # Any scope of a few communes keeps one laggard of each kind, so its scorecard still has a ranking.
    typical = [c for c in codes if profiles[c] == "typical"]
    if len(codes) >= 3:
        for kind in ("late", "offline"):
            if kind not in profiles.values() and typical:
                picked = typical.pop(rng.randrange(len(typical)))
                profiles[picked] = "late" if kind == "late" else "offline"
    return profiles


def _counts(code: str, district: str, per_commune: Mapping[str, int], corridor_cameras: int) -> dict[str, int]:
    counts = {kind: max(0, int(per_commune.get(kind, 0))) for kind in FLEET_KINDS}
    if district in LOW_LYING_DISTRICTS and counts["water"] > 0:
        counts["water"] += 1
    if code in CORRIDOR_WARDS:
        counts[CAMERA] = max(counts[CAMERA], corridor_cameras)
    # The stories need their devices whatever the shape asked for.
    if code in FLOOD_WARDS:
        counts["water"] = max(counts["water"], 1)
    if code in POLLUTION_WARDS:
        counts["air"] = max(counts["air"], 1)
    if code in CAMERA_STORY_WARDS:
        counts[CAMERA] = max(counts[CAMERA], 1)
    return counts


def _vendor_for(kind: str, district: str) -> str:
    if kind == "air":
        return "saigon-air" if district in _URBAN_DISTRICTS else "greenleaf-env"
    if kind == CAMERA:
        return "lotus-vision" if district == "724" else "vnpt-cam"
    return {"water": "mekong-hydro", "noise": "songbe-acoustics", "traffic": "vietflow"}[kind]


def _r(rng: random.Random, low: float, high: float, digits: int = 3) -> float:
    return round(rng.uniform(low, high), digits)


def _params(kind: str, unit: FleetUnit, urban: bool, rng: random.Random, alert_m: float) -> dict[str, float]:
    corridor = unit.road is not None
    industrial = 1.0 if unit.code in POLLUTION_WARDS or unit.district == "725" else 0.0
    if kind == "air":
        # Bình Dương's annual PM2.5 is in the 20-35 µg/m³ range in towns, lower in the rubber country.
        return {
            "pm25_base": _r(rng, 17.0, 27.0) if urban else _r(rng, 11.0, 18.0),
            "pm10_ratio": _r(rng, 1.5, 1.9),
            "no2_base": _r(rng, 22.0, 45.0) if urban else _r(rng, 10.0, 22.0),
            "o3_base": _r(rng, 45.0, 75.0),
            "co_base": _r(rng, 700.0, 1300.0) if urban else _r(rng, 400.0, 700.0),
            "so2_base": _r(rng, 8.0, 18.0) + 8.0 * industrial,
            "traffic_exposure": _r(rng, 0.5, 0.9) if corridor else _r(rng, 0.2, 0.6),
            "industrial": industrial,
        }
    if kind == "water":
        # Normal levels stay well below the flood rule's clear level; only a scenario takes them above it.
        return {
            "datum_m": _r(rng, 0.30, 0.55) if unit.low_lying else _r(rng, 0.15, 0.40),
            "tide_amp_m": _r(rng, 0.18, 0.28) if unit.low_lying else _r(rng, 0.05, 0.15),
            "tide_phase": _r(rng, 0.0, 2 * math.pi, 4),
            "alert_m": alert_m,
        }
    if kind == "noise":
        day = _r(rng, 60.0, 67.0, 1) if urban else _r(rng, 50.0, 57.0, 1)
        return {"laeq_day": day + (3.0 if corridor else 0.0), "traffic_exposure": _r(rng, 0.4, 1.0)}
    if kind == "traffic":
        return {
            "flow_peak_per_h": _r(rng, 2500.0, 4200.0, 0)
            if corridor
            else (_r(rng, 900.0, 2200.0, 0) if urban else _r(rng, 250.0, 800.0, 0)),
            "free_speed_kmh": _r(rng, 45.0, 60.0, 1) if urban else _r(rng, 50.0, 70.0, 1),
        }
    return {
        "speed_limit_kmh": 80.0 if unit.road == _XA_LO else 60.0,
        # Share of detections on this camera that are violations rather than safety events.
        "violation_share": _r(rng, 0.99, 0.997, 4),
    }


def build_fleet(
    seed: int,
    tree: UnitTree,
    *,
    units: Iterable[str] | None = None,
    per_commune: Mapping[str, int] = DEFAULT_PER_COMMUNE,
    corridor_cameras: int = 2,
) -> Fleet:
    """Place a fleet on the communes of `tree` (all of them, or the subtrees of `units`).

    `per_commune` gives each commune's devices per kind ("air", "water", "noise", "traffic", "camera");
    low-lying wards of Dĩ An and Thuận An get one more gauge, corridor communes at least
    `corridor_cameras` cameras, and the scenario wards always keep the devices their stories need.
    Raises `ioc.units.UnknownUnitError` for a unit code not in the tree.
    """
    unknown = set(per_commune) - set(FLEET_KINDS)
    if unknown:
        raise ValueError(f"per_commune: unknown kind(s) {sorted(unknown)}; known: {list(FLEET_KINDS)}")
    flood_rule = default_reference_model().rule("flood-level")
    assert isinstance(flood_rule, ThresholdRule)
    codes = _communes(tree, units)
    profiles = _profiles(codes, generators.seeded(seed, "fleet", "profiles"))
    fleet_units: list[FleetUnit] = []
    devices: list[DeviceSpec] = []
    for code in codes:
        commune = tree.get(code)
        assert commune.parent is not None
        district = tree.get(commune.parent)
        unit = FleetUnit(
            code=code,
            name=commune.full_name,
            district=district.code,
            district_name=district.full_name,
            lat=commune.lat,
            lon=commune.lon,
            low_lying=district.code in LOW_LYING_DISTRICTS,
            road=CORRIDOR_WARDS.get(code),
            dossiers=profiles[code],
        )
        fleet_units.append(unit)
        urban = district.code in _URBAN_DISTRICTS
        for kind, count in _counts(code, district.code, per_commune, corridor_cameras).items():
            for n in range(1, count + 1):
                device_id = f"{_PREFIX[kind]}-{code}-{n:02d}"
                rng = generators.seeded(seed, "fleet", device_id)
                where = unit.road if kind == CAMERA and unit.road else unit.name
                devices.append(
                    DeviceSpec(
                        vendor=_vendor_for(kind, district.code),
                        device=device_id,
                        unit=code,
                        kind=kind,
                        lat=round(unit.lat + rng.uniform(-_JITTER_DEG, _JITTER_DEG), 6),
                        lon=round(unit.lon + rng.uniform(-_JITTER_DEG, _JITTER_DEG), 6),
                        interval_s=BASE_INTERVAL_S[kind],
                        label=f"{_LABEL[kind]} {n:02d} - {where}, {unit.name}",
                        params=_params(kind, unit, urban, rng, flood_rule.above),
                    )
                )
    used = sorted({d.vendor for d in devices})
    return Fleet(
        seed=seed,
        edition=tree.edition,
        units=tuple(fleet_units),
        vendors=tuple(VENDORS[v] for v in used),
        devices=tuple(devices),
    )
