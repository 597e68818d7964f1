"""Shapes every contract shares: ids and codes (each pattern once, as msgspec and pydantic types), the base.

The events (`ioc.events`), the upward reports (`ioc.upward`), the topic layout (`ioc.topics`), the CRD
models (`operators.models`) and the simulators' scenario strings all check ids against these patterns.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Final

import msgspec
import pydantic

__all__ = [
    "DEVICE_ID",
    "DEVICE_ID_PATTERN",
    "UNIT_CODE",
    "UNIT_CODE_BODY",
    "UNIT_CODE_PATTERN",
    "VENDOR_ID",
    "VENDOR_ID_PATTERN",
    "AwareTime",
    "Contract",
    "DeviceId",
    "DeviceIdField",
    "Identifier",
    "Latitude",
    "Longitude",
    "Sequence",
    "ShortText",
    "UnitCode",
    "UnitCodeField",
    "VendorId",
    "VendorIdField",
]

UNIT_CODE_BODY: Final = r"[0-9]{2,5}"
"""A GSO administrative-unit code (province 2 digits, district 3, commune 5), to embed in larger patterns."""
UNIT_CODE_PATTERN: Final = f"^{UNIT_CODE_BODY}$"
VENDOR_ID_PATTERN: Final = r"^[a-z0-9][a-z0-9-]{0,62}$"
"""A vendor id the platform issues; also a Kubernetes object name, so lowercase and at most 63 characters."""
DEVICE_ID_PATTERN: Final = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
"""A device id, unique within its vendor; safe as an MQTT topic segment."""

UNIT_CODE: Final = re.compile(UNIT_CODE_PATTERN)
VENDOR_ID: Final = re.compile(VENDOR_ID_PATTERN)
DEVICE_ID: Final = re.compile(DEVICE_ID_PATTERN)

_UNIT_TEXT: Final = "GSO administrative-unit code (province 2 digits, district 3, commune 5), e.g. 25957."
_VENDOR_TEXT: Final = "Vendor id issued by the platform (lowercase letters, digits, '-'); the topic's vendor segment."
_DEVICE_TEXT: Final = "Device id, unique within its vendor; the MQTT topic's device segment."

# msgspec types, for the wire contracts.
UnitCode = Annotated[str, msgspec.Meta(pattern=UNIT_CODE_PATTERN, description=_UNIT_TEXT)]
VendorId = Annotated[str, msgspec.Meta(pattern=VENDOR_ID_PATTERN, description=_VENDOR_TEXT)]
DeviceId = Annotated[str, msgspec.Meta(pattern=DEVICE_ID_PATTERN, description=_DEVICE_TEXT)]

# pydantic types, for configuration and CRD models; the lengths repeat what the pattern allows so a
# generated OpenAPI schema states them for `kubectl explain`.
UnitCodeField = Annotated[str, pydantic.Field(pattern=UNIT_CODE_PATTERN, min_length=2, max_length=5)]
VendorIdField = Annotated[str, pydantic.Field(pattern=VENDOR_ID_PATTERN, min_length=1, max_length=63)]
DeviceIdField = Annotated[str, pydantic.Field(pattern=DEVICE_ID_PATTERN, min_length=1, max_length=128)]

AwareTime = Annotated[
    dt.datetime,
    msgspec.Meta(tz=True, description="RFC 3339 time with an explicit offset, e.g. 2025-06-01T08:00:00+07:00."),
]
Sequence = Annotated[
    int,
    msgspec.Meta(
        ge=0,
        description="Per-device message number, one more per message: loss and duplicates show as gaps and repeats.",
    ),
]
Latitude = Annotated[float, msgspec.Meta(ge=-90, le=90, description="WGS84 latitude, degrees.")]
Longitude = Annotated[float, msgspec.Meta(ge=-180, le=180, description="WGS84 longitude, degrees.")]
ShortText = Annotated[str, msgspec.Meta(max_length=4000)]
Identifier = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")]


class Contract(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, tag_field="schema"):
    """Base of every event: frozen, strict about unknown fields, tagged with its schema version."""
