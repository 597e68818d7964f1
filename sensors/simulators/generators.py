"""Plausible values for one device at one instant: pure functions of its parameters, the time and a seeded RNG.

Each function takes a device's parameters (`fleet.DeviceSpec.params`), the local time of day and a
`random.Random` the caller seeds per device (`seeded`), and returns values in the units that
`ioc.events.MEASURES` defines (µg/m³, m, dB(A), vehicles per interval, km/h). Patterns follow a Vietnamese town's
day: rush hours around 07:15 and 17:30, ozone in the early afternoon, a night-time inversion that holds
dust near the ground, a semi-diurnal tide on the Sài Gòn and Đồng Nai rivers. Scenario episodes
(`scenarios`) bend these values; the planner (`plan`) chooses when they are taken.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import random
from collections.abc import Mapping, Sequence
from typing import Final, TypeVar

from ioc.events import CameraEventType

__all__ = [
    "LOCAL_TZ",
    "PLATE_PATTERN",
    "Detection",
    "air_values",
    "camera_detection",
    "daylight",
    "local_hour",
    "night",
    "noise_values",
    "rush",
    "seeded",
    "speeding_detection",
    "tide_hours",
    "traffic_values",
    "vietnamese_plate",
    "violation_detection",
    "water_values",
]

# Vietnam keeps UTC+7 all year (no daylight saving): a fixed offset is exact and needs no tz database.
LOCAL_TZ: Final = dt.timezone(dt.timedelta(hours=7), "ICT")

# What the plates look like: "61A-123.45" for a car, "61B1-234.56" for a motorbike.
PLATE_PATTERN: Final = r"^[0-9]{2}[A-Z]{1,2}[0-9]?-[0-9]{3}\.[0-9]{2}$"


def seeded(*parts: object) -> random.Random:
    """A generator seeded from `parts` ("766", "values", "aq-25957-01"): the same parts, the same numbers.

    Seeding with a string is stable across processes and platforms (unlike `hash()` of a str), so every
    device, scenario and dossier draws from its own reproducible stream.
    """
    return random.Random("/".join(map(str, parts)))  # noqa: S311 - reproducible simulation, not secrets


_TIDE_EPOCH: Final = dt.datetime(2024, 1, 1, tzinfo=LOCAL_TZ)
_TIDE_PERIOD_H: Final = 12.42  # the principal lunar semi-diurnal tide (M2)


def local_hour(at: dt.datetime) -> float:
    """Hours since local midnight (UTC+7), e.g. 17.5 at 17:30."""
    local = at.astimezone(LOCAL_TZ)
    return local.hour + local.minute / 60 + local.second / 3600


def _bump(hour: float, centre: float, width: float) -> float:
    return math.exp(-0.5 * ((hour - centre) / width) ** 2)


def rush(hour: float) -> float:
    """0 at night, 1 at the peak of the morning (07:15) and evening (17:30) rush hours."""
    return max(_bump(hour, 7.25, 0.9), _bump(hour, 17.5, 1.0))


def daylight(hour: float) -> float:
    """Sunlight's strength, 0 at night and 1 at about 13:00 (drives ozone and temperature)."""
    return _bump(hour, 13.0, 2.6) if 5.5 <= hour <= 19.0 else 0.0


def night(hour: float) -> float:
    """1 from 22:00 to 05:00, 0 from 07:00 to 20:00, smooth between: quiet streets and a low mixing layer."""
    if hour >= 22.0 or hour < 5.0:
        return 1.0
    if 5.0 <= hour < 7.0:
        return 1.0 - (hour - 5.0) / 2.0
    if 20.0 <= hour < 22.0:
        return (hour - 20.0) / 2.0
    return 0.0


def _noisy(rng: random.Random, value: float, sigma: float) -> float:
    # Multiplicative noise: concentrations are skewed and never negative.
    return value * math.exp(rng.gauss(0.0, sigma))


def air_values(params: Mapping[str, float], hour: float, rng: random.Random) -> dict[str, float]:
    """An air-quality station's reading (µg/m³, °C, %), AirQualityObserved names."""
    r, n, sun = rush(hour), night(hour), daylight(hour)
    exposure, industrial = params["traffic_exposure"], params["industrial"]
    pm25 = _noisy(rng, params["pm25_base"] * (0.75 + 0.6 * exposure * r + 0.35 * n + 0.1 * industrial), 0.08)
    return {
        "pm25": round(pm25, 1),
        "pm10": round(_noisy(rng, pm25 * params["pm10_ratio"], 0.05), 1),
        "no2": round(_noisy(rng, params["no2_base"] * (0.7 + 0.9 * exposure * r), 0.1), 1),
        "o3": round(_noisy(rng, params["o3_base"] * (0.35 + 1.2 * sun), 0.1), 1),
        "co": round(_noisy(rng, params["co_base"] * (0.7 + 0.8 * exposure * r + 0.2 * n), 0.08)),
        "so2": round(_noisy(rng, params["so2_base"] * (0.85 + 0.3 * industrial * (1 - n)), 0.1), 1),
        "temperature": round(26.5 + 6.0 * sun - 1.5 * n + rng.gauss(0.0, 0.3), 1),
        "relativeHumidity": round(min(98.0, max(40.0, 86.0 - 24.0 * sun + rng.gauss(0.0, 2.0)))),
    }


def tide_hours(at: dt.datetime) -> float:
    """Hours since a fixed epoch: the tide's phase depends on the instant, not on when a run started."""
    return (at - _TIDE_EPOCH).total_seconds() / 3600.0


def water_values(
    params: Mapping[str, float], tide_h: float, rng: random.Random, *, rain_mm_h: float = 0.0
) -> dict[str, float]:
    """A gauge's water level (m) on the tide, and the rainfall it measures (mm/h)."""
    phase = 2 * math.pi * tide_h / _TIDE_PERIOD_H + params["tide_phase"]
    level = params["datum_m"] + params["tide_amp_m"] * math.sin(phase) + rng.gauss(0.0, 0.008)
    return {"waterLevel": round(level, 3), "rainfall": round(max(0.0, rain_mm_h), 1)}


def noise_values(params: Mapping[str, float], hour: float, rng: random.Random) -> dict[str, float]:
    """A noise meter's LAeq and LAmax over its interval (dB(A)): quieter by about 9 dB at night."""
    laeq = params["laeq_day"] - 9.0 * night(hour) + 5.0 * params["traffic_exposure"] * rush(hour)
    laeq += rng.gauss(0.0, 1.2)
    return {"LAeq": round(laeq, 1), "LAmax": round(laeq + 11.0 + abs(rng.gauss(0.0, 4.0)), 1)}


def traffic_values(params: Mapping[str, float], hour: float, interval_s: float, rng: random.Random) -> dict[str, float]:
    """A counter's vehicles in its interval, their average speed (dips in rush hours) and occupancy."""
    activity = 0.55 * (1.0 - night(hour)) + 0.08
    demand = min(1.0, max(activity, rush(hour)))
    flow_per_h = _noisy(rng, params["flow_peak_per_h"] * demand, 0.1)
    speed = _noisy(rng, params["free_speed_kmh"] * (1.0 - 0.6 * demand**2), 0.06)
    return {
        "intensity": float(round(flow_per_h * interval_s / 3600.0)),
        "averageVehicleSpeed": round(max(3.0, speed), 1),
        "occupancy": round(min(0.95, 0.04 + 0.55 * demand**2), 3),
    }


# --- cameras ------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Detection:
    """What an AI camera saw, before the planner numbers it and stamps it with device and time."""

    event_type: CameraEventType
    confidence: float
    plate: str | None = None
    speed_kmh: float | None = None
    speed_limit_kmh: float | None = None
    object_count: int | None = None


# Plates seen in Bình Dương: mostly its own 61, then Hồ Chí Minh City (50-59) and the neighbours.
_PROVINCES: Final[tuple[tuple[str, float], ...]] = (
    ("61", 0.74),
    ("51", 0.06),
    ("59", 0.05),
    ("50", 0.03),
    ("60", 0.05),
    ("93", 0.04),
    ("70", 0.03),
)
_CAR_SERIES: Final = ("A", "A", "A", "C", "D", "E", "F", "G", "H", "K", "LD")
_BIKE_SERIES: Final = ("B", "C", "D", "E", "F", "G", "H", "K", "L", "M", "N", "P")

_VIOLATIONS: Final[tuple[tuple[CameraEventType, float], ...]] = (
    (CameraEventType.RED_LIGHT, 0.28),
    (CameraEventType.NO_HELMET, 0.27),
    (CameraEventType.WRONG_LANE, 0.25),
    (CameraEventType.SPEEDING, 0.20),
)
# Safety events are rare against violations: one in a few hundred detections province-wide.
_SAFETY: Final[tuple[tuple[CameraEventType, float], ...]] = (
    (CameraEventType.OBSTRUCTION, 0.35),
    (CameraEventType.CROWD, 0.3),
    (CameraEventType.ACCIDENT, 0.25),
    (CameraEventType.FIRE_SMOKE, 0.1),
)
# Share of motorbikes among offenders of each kind (Vietnam's traffic is mostly motorbikes).
_MOTORBIKE_SHARE: Final[Mapping[CameraEventType, float]] = {
    CameraEventType.RED_LIGHT: 0.6,
    CameraEventType.NO_HELMET: 1.0,
    CameraEventType.WRONG_LANE: 0.65,
    CameraEventType.SPEEDING: 0.3,
}


T = TypeVar("T")


def _choose(rng: random.Random, weighted: Sequence[tuple[T, float]]) -> T:
    return rng.choices([v for v, _ in weighted], weights=[w for _, w in weighted])[0]


def vietnamese_plate(rng: random.Random, *, motorbike: bool, province: str | None = None) -> str:
    """A Vietnamese plate: "61A-123.45" for a car, "61B1-234.56" for a motorbike (61 is Bình Dương)."""
    code = province or _choose(rng, _PROVINCES)
    digits = f"{rng.randrange(1000):03d}.{rng.randrange(100):02d}"
    if motorbike:
        return f"{code}{rng.choice(_BIKE_SERIES)}{rng.randrange(1, 10)}-{digits}"
    return f"{code}{rng.choice(_CAR_SERIES)}-{digits}"


def _confidence(rng: random.Random) -> float:
    # About one detection in twelve falls under the camera rule's minimum confidence (0.6).
    if rng.random() < 0.08:
        return round(rng.uniform(0.35, 0.59), 2)
    return round(rng.uniform(0.62, 0.99), 2)


def speeding_detection(rng: random.Random, limit_kmh: float, plate: str | None = None) -> Detection:
    over = rng.uniform(6.0, 35.0)
    return Detection(
        CameraEventType.SPEEDING,
        _confidence(rng),
        plate=plate or vietnamese_plate(rng, motorbike=rng.random() < _MOTORBIKE_SHARE[CameraEventType.SPEEDING]),
        speed_kmh=round(limit_kmh + over, 1),
        speed_limit_kmh=limit_kmh,
    )


def violation_detection(
    rng: random.Random, limit_kmh: float, *, kind: CameraEventType | None = None, plate: str | None = None
) -> Detection:
    """A traffic violation with its plate (and speed, for speeding)."""
    event_type = kind or _choose(rng, _VIOLATIONS)
    if event_type is CameraEventType.SPEEDING:
        return speeding_detection(rng, limit_kmh, plate)
    motorbike = rng.random() < _MOTORBIKE_SHARE[event_type]
    return Detection(event_type, _confidence(rng), plate=plate or vietnamese_plate(rng, motorbike=motorbike))


def camera_detection(params: Mapping[str, float], hour: float, rng: random.Random) -> Detection:
    """An ordinary detection: mostly violations, now and then a crowd, an obstruction or an accident."""
    if rng.random() < params["violation_share"]:
        return violation_detection(rng, params["speed_limit_kmh"])
    event_type = _choose(rng, _SAFETY)
    if event_type is CameraEventType.CROWD:
        count = rng.randint(30, 150) if 6.0 <= hour <= 21.0 else rng.randint(20, 50)
    elif event_type is CameraEventType.FIRE_SMOKE:
        count = None
    else:
        count = rng.randint(2, 6)
    return Detection(event_type, round(rng.uniform(0.7, 0.97), 2), object_count=count)
