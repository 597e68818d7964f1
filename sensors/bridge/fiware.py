"""Normalising FIWARE Smart Data Models payloads (NGSI-LD or NGSI v2, normalized or keyValues) to readings.

Vendors who already speak FIWARE publish entities such as AirQualityObserved on their device topic; the
bridge turns them into `SensorReading`s instead of refusing them. Vendor, device and unit come from the
topic. NGSI entities carry no sequence number, so the observation time in milliseconds stands in for it:
monotonic per device and the same for a re-sent observation, which keeps duplicates detectable.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

from ioc.events import MEASURES, SensorKind, SensorReading
from ioc.topics import MqttTopic

__all__ = ["FIWARE_TYPES", "NotFiware", "is_fiware", "normalise"]

FIWARE_TYPES: Final[dict[str, SensorKind]] = {
    "AirQualityObserved": SensorKind.AIR,
    "WaterObserved": SensorKind.WATER,
    "FloodMonitoring": SensorKind.WATER,
    "NoiseLevelObserved": SensorKind.NOISE,
    "TrafficFlowObserved": SensorKind.TRAFFIC,
}

# Smart Data Models attribute → platform measure, with a factor to the platform's unit.
_ALIASES: Final[dict[str, tuple[str, float]]] = {
    "pm2_5": ("pm25", 1.0),
    "pm25": ("pm25", 1.0),
    "pm10": ("pm10", 1.0),
    "no2": ("no2", 1.0),
    "o3": ("o3", 1.0),
    "co": ("co", 1.0),
    "so2": ("so2", 1.0),
    "temperature": ("temperature", 1.0),
    # SDM's relativeHumidity is a 0..1 fraction; the platform's is a percentage.
    "relativeHumidity": ("relativeHumidity", 100.0),
    "height": ("waterLevel", 1.0),
    "waterLevel": ("waterLevel", 1.0),
    "currentLevel": ("waterLevel", 1.0),
    "precipitation": ("rainfall", 1.0),
    "LAeq": ("LAeq", 1.0),
    "LAmax": ("LAmax", 1.0),
    "intensity": ("intensity", 1.0),
    "averageVehicleSpeed": ("averageVehicleSpeed", 1.0),
    "occupancy": ("occupancy", 1.0),
}
# UN/CEFACT unit codes SDM payloads may carry: to µg/m³ for gases and particles.
_UNIT_FACTORS: Final[dict[str, float]] = {"GQ": 1.0, "GP": 1000.0, "M1": 1.0}


class NotFiware(ValueError):
    """The payload claims to be FIWARE but cannot be normalised; the message says why."""


def is_fiware(document: Mapping[str, Any]) -> bool:
    """Whether a decoded JSON object looks like an NGSI entity (has a Smart Data Models `type`)."""
    return isinstance(document.get("type"), str) and ("id" in document or "@context" in document)


def _value(attribute: Any) -> Any:
    # normalized NGSI-LD / NGSI v2: {"type": "Property", "value": ...}; keyValues: the bare value.
    if isinstance(attribute, Mapping) and "value" in attribute:
        return attribute["value"]
    return attribute


def _unit_factor(attribute: Any) -> float:
    if isinstance(attribute, Mapping):
        code = attribute.get("unitCode")
        if isinstance(code, str):
            if code not in _UNIT_FACTORS:
                raise NotFiware(f"unsupported unitCode {code!r}; use one of {sorted(_UNIT_FACTORS)}")
            return _UNIT_FACTORS[code]
    return 1.0


def _observed_at(document: Mapping[str, Any]) -> dt.datetime:
    raw = _value(document.get("dateObserved"))
    if isinstance(raw, Mapping):  # NGSI-LD DateTime: {"@type": "DateTime", "@value": "..."}
        raw = raw.get("@value")
    if not isinstance(raw, str):
        raise NotFiware("dateObserved is missing")
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise NotFiware(f"dateObserved {raw!r} is not an ISO 8601 time") from None
    if parsed.tzinfo is None:
        raise NotFiware("dateObserved has no UTC offset")
    return parsed


def _location(document: Mapping[str, Any]) -> tuple[float | None, float | None]:
    geometry = _value(document.get("location"))
    if isinstance(geometry, Mapping) and geometry.get("type") == "Point":
        coordinates = geometry.get("coordinates")
        if isinstance(coordinates, list) and len(coordinates) >= 2:
            return float(coordinates[1]), float(coordinates[0])  # GeoJSON is [lon, lat]
    return None, None


def normalise(document: Mapping[str, Any], topic: MqttTopic) -> SensorReading:
    """The `SensorReading` an NGSI entity describes; raises NotFiware or ValueError (from the model)."""
    entity_type = document.get("type")
    kind = FIWARE_TYPES.get(str(entity_type))
    if kind is None:
        raise NotFiware(f"entity type {entity_type!r} is not one of {sorted(FIWARE_TYPES)}")
    if kind.value != topic.kind:
        raise NotFiware(f"a {entity_type} entity was published on a {topic.kind!r} topic")
    observed_at = _observed_at(document)
    values: dict[str, float] = {}
    for attribute, (measure, factor) in _ALIASES.items():
        if attribute not in document or MEASURES[measure].kind is not kind:
            continue
        raw = _value(document[attribute])
        if isinstance(raw, bool) or not isinstance(raw, int | float):
            raise NotFiware(f"attribute {attribute!r} is not a number")
        gas = measure in ("pm25", "pm10", "no2", "o3", "co", "so2")
        values[measure] = float(raw) * factor * (_unit_factor(document[attribute]) if gas else 1.0)
    if not values:
        raise NotFiware(f"the {entity_type} entity carries no attribute the platform measures")
    lat, lon = _location(document)
    return SensorReading(
        vendor=topic.vendor,
        device=topic.device,
        unit=topic.unit,
        kind=kind,
        seq=int(observed_at.timestamp() * 1000),
        observed_at=observed_at,
        values=values,
        lat=lat,
        lon=lon,
    )
