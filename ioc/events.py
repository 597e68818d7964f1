"""The platform's event contracts: frozen, versioned wire models every component speaks.

Vendors publish `SensorReading` and `CameraEvent` over MQTT; the citizen API produces `CitizenReport`;
the one-stop portal connector produces `ServiceRecord`; the stream workers emit `Incident`s and consume
`IncidentCommand`s from dashboards. Each model carries a `schema` tag naming its version
("ioc.sensor-reading.v1"): a payload may omit it, and if present it must match. Models are msgspec
structs because decoding with validation costs about a microsecond (bench/bench_codecs.py); the JSON
Schemas vendors read are generated from these classes (`ioc schema export`).
"""

from __future__ import annotations

import enum
import math
from typing import Annotated, Final, Literal

import msgspec

# The shared field shapes live in ioc.fields; importing them here keeps `from ioc.events import UnitCode` working.
from ioc.citizens import CitizenReport, Contact, DossierChannel, DossierStatus, ServiceRecord
from ioc.fields import (
    UNIT_CODE_BODY,
    AwareTime,
    Contract,
    DeviceId,
    Identifier,
    Latitude,
    Longitude,
    Sequence,
    ShortText,
    UnitCode,
    VendorId,
)

__all__ = [
    "ACTIVE_STATES",
    "ASSIGNEE_PATTERN",
    "CAMERA_EVENT_TYPES",
    "DEAD_LETTER_PAYLOAD_BYTES",
    "EVIDENCE_KEY_PATTERN",
    "GRANT_PATTERN",
    "MAX_EVIDENCE",
    "MEASURES",
    "SNAPSHOT_KEY_PATTERN",
    "VIOLATION_TYPES",
    "Assignee",
    "AwareTime",
    "CameraEvent",
    "CameraEventType",
    "CitizenReport",
    "Contact",
    "DeadLetter",
    "DeadLetterReason",
    "Detection",
    "DeviceId",
    "DeviceMinute",
    "DeviceMinutes",
    "DossierChannel",
    "DossierStatus",
    "Event",
    "EvidenceKey",
    "Identifier",
    "Incident",
    "IncidentAction",
    "IncidentCommand",
    "IncidentState",
    "IngestBatch",
    "Ingested",
    "Latitude",
    "Longitude",
    "Measure",
    "MeasureStats",
    "Module",
    "SensorKind",
    "SensorReading",
    "Sequence",
    "ServiceRecord",
    "Severity",
    "ShortText",
    "SnapshotKey",
    "Tick",
    "UnitCode",
    "VendorId",
]


class SensorKind(enum.StrEnum):
    """What a sensor measures; the MQTT topic's kind segment."""

    AIR = "air"
    WATER = "water"
    NOISE = "noise"
    TRAFFIC = "traffic"


class Module(enum.StrEnum):
    """Domain modules of the IOC reference model; every rule and incident belongs to one."""

    ENVIRONMENT = "environment"
    TRAFFIC = "traffic"
    SECURITY = "security"
    PUBLIC_SERVICES = "public_services"
    CITIZEN_REPORTS = "citizen_reports"
    DATA_QUALITY = "data_quality"


class Measure(msgspec.Struct, frozen=True):
    """One measurement name a reading may carry: its kind, unit and physically possible range."""

    kind: SensorKind
    unit: str
    low: float
    high: float
    label_vi: str
    label_en: str


# Names follow Smart Data Models (AirQualityObserved, WaterObserved/FloodMonitoring, NoiseLevelObserved,
# TrafficFlowObserved). Ranges are physical plausibility limits, not alert levels (those are in the
# reference model); a value outside them is refused at the bridge with reason `implausible-value`.
MEASURES: Final[dict[str, Measure]] = {
    "pm25": Measure(SensorKind.AIR, "µg/m³", 0.0, 2000.0, "Bụi PM2.5", "PM2.5"),
    "pm10": Measure(SensorKind.AIR, "µg/m³", 0.0, 3000.0, "Bụi PM10", "PM10"),
    "no2": Measure(SensorKind.AIR, "µg/m³", 0.0, 10000.0, "NO₂", "NO₂"),
    "o3": Measure(SensorKind.AIR, "µg/m³", 0.0, 5000.0, "O₃", "O₃"),
    "co": Measure(SensorKind.AIR, "µg/m³", 0.0, 500000.0, "CO", "CO"),
    "so2": Measure(SensorKind.AIR, "µg/m³", 0.0, 10000.0, "SO₂", "SO₂"),
    "temperature": Measure(SensorKind.AIR, "°C", -20.0, 60.0, "Nhiệt độ", "Temperature"),
    "relativeHumidity": Measure(SensorKind.AIR, "%", 0.0, 100.0, "Độ ẩm", "Relative humidity"),
    "waterLevel": Measure(SensorKind.WATER, "m", -5.0, 30.0, "Mực nước", "Water level"),
    "rainfall": Measure(SensorKind.WATER, "mm/h", 0.0, 500.0, "Lượng mưa", "Rainfall"),
    "LAeq": Measure(SensorKind.NOISE, "dB(A)", 0.0, 160.0, "Độ ồn LAeq", "Noise LAeq"),
    "LAmax": Measure(SensorKind.NOISE, "dB(A)", 0.0, 180.0, "Độ ồn LAmax", "Noise LAmax"),
    "intensity": Measure(SensorKind.TRAFFIC, "vehicles/interval", 0.0, 100000.0, "Lưu lượng xe", "Vehicle count"),
    "averageVehicleSpeed": Measure(SensorKind.TRAFFIC, "km/h", 0.0, 250.0, "Tốc độ trung bình", "Average speed"),
    "occupancy": Measure(SensorKind.TRAFFIC, "ratio", 0.0, 1.0, "Độ chiếm dụng", "Occupancy"),
}


# --- observations --------------------------------------------------------------------------------------


class SensorReading(Contract, tag="ioc.sensor-reading.v1", frozen=True):
    """One observation from one sensor: a set of named measurements at one instant."""

    vendor: VendorId
    device: DeviceId
    unit: UnitCode
    kind: SensorKind
    seq: Sequence
    observed_at: AwareTime
    values: Annotated[
        dict[str, float],
        msgspec.Meta(
            min_length=1,
            max_length=32,
            description="Measurement name → value, in the unit the platform defines for the name (see MEASURES).",
        ),
    ]
    lat: Latitude | None = None
    lon: Longitude | None = None

    def __post_init__(self) -> None:
        for name, value in self.values.items():
            measure = MEASURES.get(name)
            if measure is None:
                raise ValueError(f"unknown measurement {name!r} - at `$.values`")
            if measure.kind is not self.kind:
                raise ValueError(
                    f"measurement {name!r} belongs to kind {measure.kind.value!r}, not {self.kind.value!r}"
                )
            if not math.isfinite(value):
                raise ValueError(f"measurement {name!r} is not a finite number - at `$.values.{name}`")


class CameraEventType(enum.StrEnum):
    """What an AI camera (or its gateway) detected."""

    RED_LIGHT = "red_light"
    WRONG_LANE = "wrong_lane"
    NO_HELMET = "no_helmet"
    SPEEDING = "speeding"
    ACCIDENT = "accident"
    OBSTRUCTION = "obstruction"
    FIRE_SMOKE = "fire_smoke"
    CROWD = "crowd"
    INTRUSION = "intrusion"


VIOLATION_TYPES: Final[frozenset[CameraEventType]] = frozenset(
    {
        CameraEventType.RED_LIGHT,
        CameraEventType.WRONG_LANE,
        CameraEventType.NO_HELMET,
        CameraEventType.SPEEDING,
    }
)
CAMERA_EVENT_TYPES: Final[tuple[CameraEventType, ...]] = tuple(CameraEventType)


SNAPSHOT_KEY_PATTERN: Final = r"^[0-9a-f]{64}\.(jpg|png)$"
"""A camera snapshot in the snapshot store (`ioc.snapshots`): the SHA-256 of the image's bytes, and its type."""
SnapshotKey = Annotated[
    str,
    msgspec.Meta(
        pattern=SNAPSHOT_KEY_PATTERN,
        description="The detection's image in the platform's snapshot store: hex SHA-256 of its bytes, then .jpg or "
        ".png. Never the image itself: events stay small.",
    ),
]


class CameraEvent(Contract, tag="ioc.camera-event.v1", frozen=True):
    """One detection from an AI camera: a traffic violation (with plate) or a safety event."""

    vendor: VendorId
    device: DeviceId
    unit: UnitCode
    seq: Sequence
    observed_at: AwareTime
    event_type: CameraEventType
    confidence: Annotated[float, msgspec.Meta(ge=0, le=1, description="Detector confidence, 0..1.")]
    plate: Annotated[str, msgspec.Meta(pattern=r"^[0-9A-Z][0-9A-Z.\- ]{3,14}$")] | None = None
    speed_kmh: Annotated[float, msgspec.Meta(ge=0, le=400)] | None = None
    speed_limit_kmh: Annotated[float, msgspec.Meta(ge=0, le=200)] | None = None
    object_count: (
        Annotated[int, msgspec.Meta(ge=0, description="People or vehicles in view (crowd, obstruction).")] | None
    ) = None
    lat: Latitude | None = None
    lon: Longitude | None = None
    image_url: Annotated[str, msgspec.Meta(max_length=2048)] | None = None
    snapshot: SnapshotKey | None = None

    def __post_init__(self) -> None:
        if self.event_type in VIOLATION_TYPES and self.plate is None:
            raise ValueError(f"a {self.event_type.value} violation needs `plate` - at `$.plate`")
        if self.event_type is CameraEventType.SPEEDING and self.speed_kmh is None:
            raise ValueError("a speeding violation needs `speed_kmh` - at `$.speed_kmh`")


# --- incidents -------------------------------------------------------------------------------------------


ASSIGNEE_PATTERN: Final = r"^(team:[a-z0-9][a-z0-9-]{0,62}|[^@\s]{1,64}@[^@\s]{1,190})$"
"""Who an incident is assigned to: a roster person's e-mail, or `team:<name>` for one of the roster's teams."""
Assignee = Annotated[str, msgspec.Meta(pattern=ASSIGNEE_PATTERN, max_length=255)]

EVIDENCE_KEY_PATTERN: Final = r"^[0-9a-f]{64}(\.[a-z0-9]{1,8})?$"
"""A file in a site's evidence store: the SHA-256 of its bytes and its extension (streams never hold the bytes)."""
EvidenceKey = Annotated[str, msgspec.Meta(pattern=EVIDENCE_KEY_PATTERN)]
MAX_EVIDENCE: Final = 20


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class IncidentState(enum.StrEnum):
    """Lifecycle: open → acknowledged → dispatched → resolved → closed; reopen returns to open."""

    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    DISPATCHED = "dispatched"
    RESOLVED = "resolved"
    CLOSED = "closed"


ACTIVE_STATES: Final[tuple[IncidentState, ...]] = (
    IncidentState.OPEN,
    IncidentState.ACKNOWLEDGED,
    IncidentState.DISPATCHED,
)
"""States of an incident someone still has to act on: its SLA clock runs and it counts as open.
A tuple in lifecycle order (StrEnum members are strings, so it binds as a SQL parameter as it is)."""


class Incident(Contract, tag="ioc.incident.v1", frozen=True):
    """Something an IOC must act on, as of one version of its history.

    `incident_id` is deterministic (rule + unit + window start), so a re-detected condition maps to the
    same incident; `version` increases with every change and lets storage keep the newest.
    """

    incident_id: Identifier
    version: Annotated[int, msgspec.Meta(ge=1)]
    rule: Annotated[str, msgspec.Meta(max_length=128)]
    module: Module
    unit: UnitCode
    severity: Severity
    state: IncidentState
    title: Annotated[str, msgspec.Meta(max_length=300)]
    opened_at: AwareTime
    updated_at: AwareTime
    sla_due_at: AwareTime | None = None
    responsible_unit: UnitCode | None = None
    escalation_level: Annotated[int, msgspec.Meta(ge=0)] = 0
    vendor: VendorId | None = None
    devices: list[str] = msgspec.field(default_factory=list)
    reports: list[str] = msgspec.field(default_factory=list)
    detail: dict[str, str] = msgspec.field(default_factory=dict)
    lat: Latitude | None = None
    lon: Longitude | None = None
    note: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    assignee: Assignee | None = None
    evidence: Annotated[list[EvidenceKey], msgspec.Meta(max_length=MAX_EVIDENCE)] = msgspec.field(default_factory=list)


class IncidentAction(enum.StrEnum):
    ACKNOWLEDGE = "acknowledge"
    ASSIGN = "assign"
    DISPATCH = "dispatch"
    RESOLVE = "resolve"
    CLOSE = "close"
    REOPEN = "reopen"
    # The PAKN steps of a citizen report's incident (ioc.pakn says which apply when; each needs a note).
    REJECT = "reject"
    REQUEST_INFO = "request_info"
    SUPPLY_INFO = "supply_info"
    ANSWER = "answer"


GRANT_PATTERN: Final = f"^(viewer|operator)@{UNIT_CODE_BODY}$"
"""A grant an `IncidentCommand` carries: a role on a unit and everything under it (ioc.authz reads them)."""


class IncidentCommand(Contract, tag="ioc.incident-command.v1", frozen=True):
    """An operator's action on an incident, sent by a dashboard; `command_id` makes it idempotent."""

    command_id: Identifier
    incident_id: Identifier
    action: IncidentAction
    actor: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    site_unit: UnitCode
    issued_at: AwareTime
    target_unit: UnitCode | None = None
    note: Annotated[str, msgspec.Meta(max_length=4000)] | None = None
    assignee: Assignee | None = None
    evidence: Annotated[tuple[EvidenceKey, ...], msgspec.Meta(max_length=MAX_EVIDENCE)] = ()
    grants: Annotated[
        tuple[Annotated[str, msgspec.Meta(pattern=GRANT_PATTERN)], ...],
        msgspec.Meta(
            max_length=64,
            description="The actor's grants on the site as `role@unit` (from their sign-in); the worker checks "
            "the command against them, cut to the site's subtree. None: refused.",
        ),
    ] = ()

    def __post_init__(self) -> None:
        if self.action is IncidentAction.DISPATCH and self.target_unit is None:
            raise ValueError("dispatch needs `target_unit` - at `$.target_unit`")
        if self.action is IncidentAction.ASSIGN and self.assignee is None:
            raise ValueError("assign needs `assignee` (a roster person's e-mail or team:<name>) - at `$.assignee`")


# --- what the ingestion edge writes to Kafka --------------------------------------------------------------


class Ingested(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A validated observation as the bridge passed it on: the event, its unit path and when it arrived."""

    event: SensorReading | CameraEvent
    path: Annotated[str, msgspec.Meta(description="The unit's path from the root, e.g. 74/724/25957.")]
    received_at: AwareTime


class IngestBatch(Contract, tag="ioc.ingest-batch.v1", frozen=True):
    """Several observations for one Kafka partition in one message, in arrival order per device.

    Faust's per-message overhead, not decoding, bounds a worker's throughput, so the bridge carries many
    readings per Kafka message; every item's device hashes to the partition the batch is written to.
    """

    items: Annotated[list[Ingested], msgspec.Meta(min_length=1)]


class DeadLetterReason(enum.StrEnum):
    """Why input was refused: the stable code on a dead letter, its Kafka header and the dashboards' label key."""

    TOO_LARGE = "too-large"
    NOT_JSON = "not-json"
    SCHEMA = "schema"
    BAD_TOPIC = "bad-topic"
    TOPIC_MISMATCH = "topic-mismatch"
    UNKNOWN_UNIT = "unknown-unit"
    IMPLAUSIBLE_VALUE = "implausible-value"
    UNSUPPORTED_FORMAT = "unsupported-format"
    RATE_LIMITED = "rate-limited"
    REFUSED_UPSTREAM = "refused-upstream"  # a parent IOC refused an upward report (streams.reporting)
    OBSERVED_TOO_OLD = "observed-too-old"  # observed_at further back than the bridge's window (days)
    OBSERVED_IN_FUTURE = "observed-in-future"  # observed_at ahead of the bridge's clock by more than allowed
    OUTSIDE_PROVINCE = "outside-province"  # lat/lon outside the province of the unit it claims
    INTERNAL_ERROR = "internal-error"  # judging or handling raised; the detail names the exception type only
    UNDECODABLE = "undecodable"  # a stream worker could not decode a Kafka record; it moved on
    UNDELIVERABLE = "undeliverable"  # Kafka refused the accepted event for good (e.g. too large)


DEAD_LETTER_PAYLOAD_BYTES: Final = 64 * 1024
"""Longest original payload a dead letter keeps; anything longer was refused as too large anyway."""


class DeadLetter(Contract, tag="ioc.dead-letter.v1", frozen=True):
    """Input the platform refused: where it came from, a machine-readable reason, and the original bytes."""

    source: Annotated[str, msgspec.Meta(description="Where it arrived: an MQTT topic, an HTTP route, a Kafka topic.")]
    reason: Annotated[DeadLetterReason, msgspec.Meta(description="Why it was refused: a stable code.")]
    detail: Annotated[str, msgspec.Meta(max_length=2000)]
    received_at: AwareTime
    payload: Annotated[bytes, msgspec.Meta(description="The original bytes (base64), cut at 64 KiB; see `size`.")]
    size: Annotated[int, msgspec.Meta(ge=0, description="Length of the original payload in bytes.")] = 0
    vendor: str | None = None
    device: str | None = None
    count: Annotated[
        int,
        msgspec.Meta(
            ge=1,
            description="How many refusals this letter stands for: 1, or in a flood's summary every refusal of "
            "this device and reason in the interval after the first (whose bytes `payload` keeps).",
        ),
    ] = 1


# --- between stream workers ----------------------------------------------------------------------------------


class Tick(Contract, tag="ioc.tick.v1", frozen=True):
    """The time, sent to every partition of a stream's topics so time-driven work (silence, SLA breaches,
    closing windows, flushing) happens inside the partition's own stream, where its state lives.

    Stream workers take `at` as "now": tests drive the clock by sending ticks.
    """

    at: AwareTime


class Detection(Contract, tag="ioc.detection.v1", frozen=True):
    """A rule's finding about one place, sent to the incident worker that owns its episode.

    `episode` is "<rule>:<unit>[:<subject>]": every detection of one rule about one place (and subject,
    e.g. a device) belongs to the same episode, and an episode has at most one incident that is not
    closed. `at` is event time; the first `open` of an episode names its incident.
    """

    episode: Identifier
    rule: Annotated[str, msgspec.Meta(max_length=128)]
    module: Module
    unit: UnitCode
    signal: Annotated[
        Literal["open", "update", "clear", "link", "answer"],
        msgspec.Meta(
            description="open/update/clear: the rule's finding. link: attach `reports` to the running incident "
            "named in detail['incident']. answer: that incident was resolved, so answer this report's incident "
            "with detail['note'] (streams.linking)."
        ),
    ]
    at: AwareTime
    severity: Severity
    title: Annotated[str, msgspec.Meta(max_length=300)]
    vendor: VendorId | None = None
    devices: list[str] = msgspec.field(default_factory=list)
    reports: list[str] = msgspec.field(default_factory=list)
    detail: dict[str, str] = msgspec.field(default_factory=dict)
    lat: Latitude | None = None
    lon: Longitude | None = None
    report_category: str | None = None
    auto_close: bool = False


class MeasureStats(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """count, sum, min and max of one measure over a window."""

    count: int
    sum: float
    min: float
    max: float


class DeviceMinute(Contract, tag="ioc.device-minute.v1", frozen=True):
    """One device's statistics for one minute, sent to each unit above it for rolling up.

    Deterministic (`device_key` + `minute`): a unit worker replaces, never adds, a device's contribution,
    so a re-sent minute changes nothing.
    """

    device_key: Annotated[str, msgspec.Meta(max_length=200)]
    unit: UnitCode
    target_unit: UnitCode
    minute: AwareTime
    measures: dict[str, MeasureStats]


class DeviceMinutes(Contract, tag="ioc.device-minutes.v1", frozen=True):
    """Device minutes for one partition of the aggregates topic, sent as one message.

    Devices report on the same clock, so their minutes close together: a message per minute and unit
    would be thousands of Kafka messages in a burst each minute, delaying everything behind them.
    """

    items: list[DeviceMinute]


Event = SensorReading | CameraEvent | CitizenReport | ServiceRecord | Incident | IncidentCommand
