"""Open data as NGSI-LD entities (FIWARE Smart Data Models), for tools that speak FIWARE. Pure."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Final

# Air stations become `AirQualityObserved` (dataModel.Environment), public warnings (active flood and
# bad-air incidents) become `Alert` (dataModel.Alert), cameras become `Device` (dataModel.Device). Each is
# built in NGSI-LD's normalized form (`{"type": "Property", "value": ...}`) or, with `options=keyValues`,
# the simplified one. Ids are URNs that stay the same for the same station, incident or camera, so a
# consumer can upsert them. Errors are NGSI-LD ProblemDetails (`BadRequestData`, `ResourceNotFound`).

__all__ = [
    "CONTEXT",
    "ENTITY_TYPES",
    "ERROR_BAD_REQUEST",
    "ERROR_NOT_FOUND",
    "LINK_REL",
    "air_quality_observed",
    "alert",
    "camera_device",
    "entity_urn",
    "simplified",
]

CONTEXT: Final[tuple[str, ...]] = (
    "https://smartdatamodels.org/context.jsonld",
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld",
)
"""The JSON-LD @context of every entity: Smart Data Models' terms, then the NGSI-LD core."""

LINK_REL: Final = "http://www.w3.org/ns/json-ld#context"

ENTITY_TYPES: Final[tuple[str, ...]] = ("AirQualityObserved", "Alert", "Device")

ERROR_BAD_REQUEST: Final = "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
ERROR_NOT_FOUND: Final = "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"

_PROVIDER: Final = "IOC Platform"


def entity_urn(entity_type: str, local_id: str) -> str:
    """`urn:ngsi-ld:<Type>:<local id>`, with the id's '/' (vendor/device) turned into ':'."""
    return f"urn:ngsi-ld:{entity_type}:{local_id.replace('/', ':')}"


def _property(value: Any) -> dict[str, Any]:
    return {"type": "Property", "value": value}


def _datetime(value: dt.datetime) -> dict[str, Any]:
    text = value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"type": "Property", "value": {"@type": "DateTime", "@value": text}}


def _location(lat: float | None, lon: float | None) -> dict[str, Any] | None:
    if lat is None or lon is None:
        return None
    return {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [lon, lat]}}


def _entity(entity_id: str, entity_type: str, attrs: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": entity_id, "type": entity_type, **{k: v for k, v in attrs.items() if v is not None}}


# Smart Data Models' airQualityLevel values, by VN_AQI band (1459's six bands onto its enumeration).
_AQ_LEVEL: Final[Mapping[int, str]] = {
    1: "good",
    2: "moderate",
    3: "unhealthyForSensitiveGroups",
    4: "unhealthy",
    5: "veryUnhealthy",
    6: "hazardous",
}


def air_quality_observed(
    *,
    station: str,
    unit_name: str,
    lat: float | None,
    lon: float | None,
    aqi: int,
    band: int,
    band_label_vi: str,
    dominant: str,
    hour: dt.datetime,
) -> dict[str, Any]:
    """One air station's latest hourly VN_AQI as an AirQualityObserved entity."""
    return _entity(
        entity_urn("AirQualityObserved", station),
        "AirQualityObserved",
        {
            "dateObserved": _datetime(hour),
            "location": _location(lat, lon),
            "airQualityIndex": _property(aqi),
            "airQualityLevel": _property(_AQ_LEVEL.get(band, "good")),
            "description": _property(f"VN_AQI {aqi} ({band_label_vi}); chất ô nhiễm chính / dominant: {dominant}"),
            "areaServed": _property(unit_name),
            "typeofLocation": _property("outdoor"),
            "dataProvider": _property(_PROVIDER),
            "source": _property("https://www.vea.gov.vn (VN_AQI, QĐ 1459/QĐ-TCMT)"),
            "refDevice": {"type": "Relationship", "object": entity_urn("Device", station)},
        },
    )


def alert(
    *,
    incident_id: str,
    rule: str,
    severity: str,
    title: str,
    unit_name: str,
    lat: float | None,
    lon: float | None,
    opened_at: dt.datetime,
) -> dict[str, Any]:
    """An active public warning (a flood or bad-air incident) as an Alert entity."""
    flood = rule.startswith("flood")
    return _entity(
        entity_urn("Alert", incident_id),
        "Alert",
        {
            "category": _property("naturalDisaster" if flood else "environment"),
            "subCategory": _property("flood" if flood else "airPollution"),
            "severity": _property(severity if severity in {"low", "medium", "high", "critical"} else "informational"),
            "description": _property(title),
            "dateIssued": _datetime(opened_at),
            "validFrom": _datetime(opened_at),
            "location": _location(lat, lon),
            "areaServed": _property(unit_name),
            "alertSource": _property(f"urn:ngsi-ld:IOCRule:{rule}"),
            "dataProvider": _property(_PROVIDER),
        },
    )


def camera_device(
    *,
    device: str,
    unit_name: str,
    lat: float | None,
    lon: float | None,
    last_seen: dt.datetime,
    online: bool,
) -> dict[str, Any]:
    """A traffic or security camera as a Device entity: where it is and whether it is reporting."""
    return _entity(
        entity_urn("Device", device),
        "Device",
        {
            "category": _property(["sensor"]),
            "controlledProperty": _property(["image", "trafficFlow"]),
            "deviceCategory": _property(["camera"]),
            "location": _location(lat, lon),
            "areaServed": _property(unit_name),
            "dateLastValueReported": _datetime(last_seen),
            "deviceState": _property("ok" if online else "unreachable"),
            "dataProvider": _property(_PROVIDER),
        },
    )


def simplified(entity: Mapping[str, Any]) -> dict[str, Any]:
    """The keyValues form: each attribute's value (or a relationship's object) in place of the attribute."""
    out: dict[str, Any] = {}
    for key, attr in entity.items():
        if isinstance(attr, Mapping) and attr.get("type") in {"Property", "GeoProperty"}:
            value = attr["value"]
            out[key] = value["@value"] if isinstance(value, Mapping) and "@value" in value else value
        elif isinstance(attr, Mapping) and attr.get("type") == "Relationship":
            out[key] = attr["object"]
        else:
            out[key] = attr
    return out
