"""The shapes the citizen API answers with: Open311 GeoReport v2 records and open-data pages."""

from __future__ import annotations

import datetime as dt
from typing import Any, Generic, Literal, TypeVar

import pydantic

# These pydantic models are the OpenAPI spec's schemas (FastAPI generates it from them) and the only way
# the routes build a body, so what is documented is what is sent: schemathesis checks every response
# against them (tests/api/test_openapi.py). Field names follow Open311 (`long`, `service_request_id`)
# where Open311 defines them; the `ioc_*` fields and everything under /open-data are this platform's.

__all__ = [
    "AirStation",
    "AqiBand",
    "Camera",
    "Discovery",
    "DiscoveryEndpoint",
    "FloodWarning",
    "GroupPoints",
    "HistoryEntry",
    "Open311Error",
    "Page",
    "RequestCreated",
    "ScorePage",
    "Service",
    "ServiceAttribute",
    "ServiceDefinition",
    "ServiceRequest",
    "UnitInfo",
    "UnitScore",
    "ngsi_schema",
]

T = TypeVar("T")


class _Model(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(frozen=True, extra="forbid")


# --- errors -----------------------------------------------------------------------------------------------


class Open311Error(_Model):
    """One Open311 error (the body is a list of them): an HTTP status and what was wrong."""

    code: int = pydantic.Field(description="The HTTP status code.")
    description: str = pydantic.Field(description="What was wrong, naming the field.")


# --- Open311 ------------------------------------------------------------------------------------------------


class Service(_Model):
    """One Open311 service: a category of citizen report from the reference model."""

    service_code: str
    service_name: str = pydantic.Field(description="In the language asked for (vi by default).")
    description: str
    metadata: bool = pydantic.Field(description="True: GET services/{code}.json lists its attributes.")
    type: Literal["realtime", "batch", "blackbox"]
    keywords: str
    group: str = pydantic.Field(description="The IOC domain module handling it.")
    name_vi: str
    name_en: str


class ServiceAttribute(_Model):
    """An extra field a request may carry (`attribute[code]=value`)."""

    variable: bool
    code: str
    datatype: Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
    required: bool
    datatype_description: str
    order: int
    description: str


class ServiceDefinition(_Model):
    service_code: str
    attributes: list[ServiceAttribute]


class RequestCreated(_Model):
    """The answer to a submitted request (Open311 sends a list of one)."""

    service_request_id: str
    service_notice: str
    account_id: str | None = None
    token: str | None = None


class HistoryEntry(_Model):
    """One step of the request's handling, as the incident lifecycle recorded it (never who, nor notes)."""

    at: dt.datetime
    action: str = pydantic.Field(description="opened, acknowledge, dispatch, resolve, close, reopen, escalate, ...")
    ioc_state: str
    status: Literal["open", "closed"]
    label_vi: str
    label_en: str
    responsible_unit: str
    responsible_name: str
    escalation_level: int


class ServiceRequest(_Model):
    """An Open311 service request: a citizen report and where its handling stands (no personal data)."""

    service_request_id: str
    status: Literal["open", "closed"]
    status_notes: str | None = None
    service_name: str | None = None
    service_code: str
    description: str | None = None
    agency_responsible: str | None = None
    service_notice: str | None = None
    requested_datetime: dt.datetime
    updated_datetime: dt.datetime | None = None
    expected_datetime: dt.datetime | None = pydantic.Field(None, description="When the current SLA runs out.")
    address: str | None = None
    address_id: str | None = None
    zipcode: str | None = None
    lat: float | None = None
    long: float | None = None
    media_url: str | None = None
    ioc_state: str = pydantic.Field(description="received (not yet processed), open, acknowledged, dispatched, ...")
    pakn_state: str | None = pydantic.Field(
        None,
        description="Where the report stands as PAKN (ioc.pakn): received, rejected, info_requested, info_supplied, "
        "in_progress, answered; `status_notes` says it in words, with the reason, request or answer.",
    )
    answer_by: dt.datetime | None = pydantic.Field(
        None, description="When the answer is due (working days from submission, paused while waiting for you)."
    )
    ioc_state_vi: str
    ioc_state_en: str
    unit: str
    unit_name: str
    history: list[HistoryEntry] | None = pydantic.Field(None, description="Only when one request is asked for.")


class VendorRejection(_Model):
    """One input of the vendor's that the platform refused, and why (docs/vendors.md, "Refusals")."""

    received_at: dt.datetime
    device: str = pydantic.Field(description="The device the topic named ('' when the topic was unreadable).")
    reason: str = pydantic.Field(description="A stable code: too-large, not-json, schema, topic-mismatch, ...")
    detail: str = pydantic.Field(description="What exactly was wrong, naming the field where there is one.")
    source: str = pydantic.Field(description="Where it arrived: the MQTT topic.")
    size: int = pydantic.Field(description="The refused payload's length in bytes.")
    count: int = pydantic.Field(description="How many refusals this stands for (a flood is summarised).")


class VendorRejections(_Model):
    vendor: str
    since: dt.datetime
    items: list[VendorRejection]


class DiscoveryEndpoint(_Model):
    specification: str
    url: str
    changeset: dt.datetime
    type: Literal["production", "test"]
    formats: list[str]


class Discovery(_Model):
    changeset: dt.datetime
    contact: str
    key_service: str
    endpoints: list[DiscoveryEndpoint]


# --- open data ----------------------------------------------------------------------------------------------


class Page(_Model, Generic[T]):
    """One page of items; `total` counts every item, `page` starts at 1."""

    items: list[T]
    page: int
    page_size: int
    total: int
    generated_at: dt.datetime


class AqiBand(_Model):
    """A VN_AQI band (Decision 1459/QĐ-TCMT): 1 good … 6 hazardous."""

    level: int
    label_vi: str
    label_en: str
    colour: str = pydantic.Field(description="Hex RGB of the band, as the decision colours it.")


class AirStation(_Model):
    station: str
    unit: str
    unit_name: str
    lat: float | None
    lon: float | None
    aqi: int
    band: AqiBand
    dominant_pollutant: str
    observed_hour: dt.datetime = pydantic.Field(description="Start (UTC) of the hour the AQI is for.")


class FloodWarning(_Model):
    """A gauge above its watch level, or an active flood incident."""

    kind: Literal["gauge", "incident"]
    id: str
    unit: str
    unit_name: str
    lat: float | None
    lon: float | None
    status: Literal["watch", "alert", "active"]
    severity: str | None = None
    title_vi: str
    title_en: str
    level_m: float | None = None
    alert_level_m: float | None = None
    clear_level_m: float | None = None
    since: dt.datetime


class Camera(_Model):
    device: str
    unit: str
    unit_name: str
    lat: float | None
    lon: float | None
    last_seen: dt.datetime
    online: bool


class GroupPoints(_Model):
    code: str
    label_vi: str
    label_en: str
    points: float
    max_points: float


class UnitScore(_Model):
    """One unit's Decision 766 score: out of 100 on the points measured (`coverage`), ranked only against units
    measured on the same indicators (docs/decision-766.md)."""

    rank: int | None = pydantic.Field(description="1 = best; null when the unit lacks data its rivals have.")
    standing: Literal["ranked", "insufficient", "no_data"]
    unit: str
    unit_name: str
    level: str
    score: float | None = pydantic.Field(description="Points earned re-based to 100 on `coverage`; null: no data.")
    coverage: float = pydantic.Field(description="Points the measured indicators are worth (of 100).")
    points: float = pydantic.Field(description="Points earned on the measured indicators.")
    max_points: float
    groups: list[GroupPoints]


class ScorePage(_Model):
    """Decision 766 scores of the site's units for one period (none yet: `period` is null)."""

    period_kind: Literal["month", "day"]
    period: dt.date | None
    scheme: str
    items: list[UnitScore]
    page: int
    page_size: int
    total: int
    generated_at: dt.datetime


class UnitInfo(_Model):
    code: str
    name: str
    level: str
    parent: str | None
    lat: float
    lon: float


def ngsi_schema() -> dict[str, Any]:
    """The JSON Schema of an NGSI-LD entity as the API sends it (normalized or keyValues)."""
    return {
        "type": "object",
        "required": ["id", "type"],
        "properties": {"id": {"type": "string"}, "type": {"type": "string"}},
        "additionalProperties": True,
    }
