"""The MQTT topic layout and the Kafka topic registry: the single place any topic name is spelled.

MQTT: devices publish on `ioc/v1/{unit}/{kind}/{vendor}/{device}`; the bridge reads them all through a
shared subscription, and a vendor's ACL allows only its own vendor segment.
Kafka: every topic is `ioc.<name>.v1`, with its key, partition count and cleanup policy listed here;
workers, the bridge, the operator and the local stack all create and name topics from this registry, each
with the `Replication` of the cluster it is created on (one broker locally, three in the chart).
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Any, Final, Generic

from typing_extensions import TypeVar

from ioc import codecs
from ioc.events import (
    CitizenReport,
    DeadLetter,
    Detection,
    DeviceMinute,
    DeviceMinutes,
    Incident,
    IncidentCommand,
    IngestBatch,
    SensorKind,
    ServiceRecord,
    Tick,
)
from ioc.fields import DEVICE_ID, UNIT_CODE, VENDOR_ID
from ioc.upward import SignedReport

__all__ = [
    "AGGREGATES",
    "CAMERA_EVENTS",
    "CAMERA_KIND",
    "CITIZEN_REPORTS",
    "CLUSTER_REPLICATION",
    "DEADLETTER",
    "INCIDENTS",
    "INCIDENT_COMMANDS",
    "INCIDENT_SIGNALS",
    "KAFKA_TOPICS",
    "MQTT_KINDS",
    "MQTT_PREFIX",
    "READINGS",
    "REPORTS_OUTBOX",
    "SERVICE_RECORDS",
    "SINGLE_BROKER",
    "SITE_CONFIG",
    "SITE_CONFIG_READERS",
    "KafkaTopic",
    "MqttTopic",
    "Replication",
    "TopicError",
    "device_key",
    "episode_of",
    "incident_partition",
    "mqtt_shared_subscription",
    "mqtt_topic",
    "mqtt_vendor_pattern",
    "parse_mqtt_topic",
    "partition_for",
    "site_topic",
]

MQTT_PREFIX: Final = "ioc/v1"
CAMERA_KIND: Final = "camera"
"""The MQTT kind segment (and warehouse `kind`) of AI cameras; sensors use their SensorKind value."""
MQTT_KINDS: Final[frozenset[str]] = frozenset({*(k.value for k in SensorKind), CAMERA_KIND})


class TopicError(ValueError):
    """An MQTT topic that does not follow the layout; the message says which segment is wrong."""


@dataclasses.dataclass(frozen=True, slots=True)
class MqttTopic:
    """A parsed device topic."""

    unit: str
    kind: str
    vendor: str
    device: str

    def __str__(self) -> str:
        return mqtt_topic(self.unit, self.kind, self.vendor, self.device)


def mqtt_topic(unit: str, kind: str, vendor: str, device: str) -> str:
    """The topic a device publishes on; refuses segments that would break the layout."""
    parsed = MqttTopic(unit, kind, vendor, device)
    _check(parsed)
    return f"{MQTT_PREFIX}/{unit}/{kind}/{vendor}/{device}"


def parse_mqtt_topic(topic: str) -> MqttTopic:
    """Split a device topic into its segments, or raise `TopicError` naming the bad one."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != MQTT_PREFIX:
        raise TopicError(f"topic {topic!r} is not {MQTT_PREFIX}/{{unit}}/{{kind}}/{{vendor}}/{{device}}")
    parsed = MqttTopic(*parts[2:])
    _check(parsed)
    return parsed


def _check(topic: MqttTopic) -> None:
    if not UNIT_CODE.match(topic.unit):
        raise TopicError(f"unit segment {topic.unit!r} is not a GSO unit code")
    if topic.kind not in MQTT_KINDS:
        raise TopicError(f"kind segment {topic.kind!r} is not one of {sorted(MQTT_KINDS)}")
    if not VENDOR_ID.match(topic.vendor):
        raise TopicError(f"vendor segment {topic.vendor!r} is not a vendor id")
    if not DEVICE_ID.match(topic.device):
        raise TopicError(f"device segment {topic.device!r} is not a device id")


def mqtt_shared_subscription(group: str = "ioc-bridge") -> str:
    """What every bridge replica subscribes to; the broker spreads messages across the group."""
    return f"$share/{group}/{MQTT_PREFIX}/#"


def mqtt_vendor_pattern(vendor: str, unit: str = "+", kind: str = "+") -> str:
    """The ACL pattern that lets `vendor` publish under its own segment (optionally one unit/kind)."""
    if not VENDOR_ID.match(vendor):
        raise TopicError(f"vendor {vendor!r} is not a vendor id")
    return f"{MQTT_PREFIX}/{unit}/{kind}/{vendor}/#"


@dataclasses.dataclass(frozen=True, slots=True)
class Replication:
    """How many brokers hold a copy of each partition, and how many must hold a record before it is acknowledged.

    With `acks=all` (every producer of the platform), a write succeeds once `min_insync` replicas have it: 3 and 2
    let one broker die (or restart) with nothing acknowledged lost and writes going on; a lone local broker is 1/1.
    """

    factor: int = 1
    min_insync: int = 1

    def __post_init__(self) -> None:
        if self.factor < 1 or not 1 <= self.min_insync <= self.factor:
            raise ValueError(
                f"replication factor {self.factor} with min.insync.replicas {self.min_insync}: need "
                "1 <= min.insync.replicas <= replication factor"
            )

    @property
    def config(self) -> dict[str, str]:
        """The topic-level configuration it adds at creation."""
        return {"min.insync.replicas": str(self.min_insync)}


SINGLE_BROKER: Final = Replication(1, 1)
"""The local stack's default: one broker, nothing to replicate to."""
CLUSTER_REPLICATION: Final = Replication(3, 2)
"""The chart's default (and `ioc stack up --kafka-brokers 3`): survives one broker lost, writes included."""


# Defaults to Any so a bare `KafkaTopic` annotation (changelogs, site copies) stays valid.
V = TypeVar("V", default=Any)


# No slots: a generic alias's call sets `__orig_class__`, which a slotted frozen dataclass cannot take.
@dataclasses.dataclass(frozen=True)
class KafkaTopic(Generic[V]):
    """One Kafka topic: its name, what its key is, how it is laid out, and what its values are.

    `decode` and `encode` are the one way to read and write its values, so no consumer re-declares them.
    """

    name: str
    key: str
    partitions: int
    description: str
    compacted: bool = False
    retention_hours: int = 7 * 24
    # A type expression (a union for topics that also carry ticks), so `Any`: the V of the handle says it.
    value_type: Any = dataclasses.field(default=bytes, kw_only=True, repr=False, compare=False)
    _codec: codecs.Codec[V] = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # No payload limit: the brokers bound a message's size, and the bridge's batches exceed MQTT's limit.
        object.__setattr__(self, "_codec", codecs.Codec(self.value_type, max_bytes=None))

    @property
    def short(self) -> str:
        """The registry name without its `ioc.` prefix and `.v1` suffix, e.g. `readings`."""
        return self.name.removeprefix("ioc.").removesuffix(".v1")

    @property
    def config(self) -> dict[str, str]:
        """Topic-level configuration for creation."""
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_hours * 3600 * 1000)}

    def decode(self, data: bytes | bytearray | memoryview | str) -> V:
        """A value read from this topic; raises `codecs.ContractError` (reason `schema` or `not-json`)."""
        return self._codec.decode(data)

    def encode(self, value: V) -> bytes:
        """The bytes to produce for `value`."""
        return self._codec.encode(value)


def _name(short: str) -> str:
    return f"ioc.{short}.v1"  # `KafkaTopic.short` undoes this


READINGS: Final = KafkaTopic[IngestBatch | Tick](
    _name("readings"),
    "vendor/device",
    8,
    "Validated SensorReadings (batches per device), enriched with the unit path.",
    value_type=IngestBatch | Tick,
)
CAMERA_EVENTS: Final = KafkaTopic[IngestBatch | Tick](
    _name("camera-events"),
    "vendor/device",
    4,
    "Validated CameraEvents, enriched with the unit path.",
    value_type=IngestBatch | Tick,
)
CITIZEN_REPORTS: Final = KafkaTopic[CitizenReport](
    _name("citizen-reports"),
    "report_id",
    4,
    "CitizenReports from the citizen API and hotline.",
    value_type=CitizenReport,
)
SERVICE_RECORDS: Final = KafkaTopic[ServiceRecord](
    _name("service-records"),
    "dossier_id",
    4,
    "ServiceRecords (dossier status snapshots) from the one-stop portal.",
    value_type=ServiceRecord,
)
INCIDENTS: Final = KafkaTopic[Incident | Tick](
    _name("incidents"),
    "incident_id",
    4,
    "Every version of every Incident, as the stream workers change it, and ticks (the notifier's clock).",
    value_type=Incident | Tick,
)
INCIDENT_COMMANDS: Final = KafkaTopic[IncidentCommand](
    _name("incident-commands"),
    "episode",
    4,
    "IncidentCommands from dashboards, on their incident's episode partition.",
    value_type=IncidentCommand,
)
INCIDENT_SIGNALS: Final = KafkaTopic[Detection | Tick](
    _name("incident-signals"),
    "episode",
    4,
    "Detections from rule workers, on their episode's partition, and ticks.",
    value_type=Detection | Tick,
)
AGGREGATES: Final = KafkaTopic[DeviceMinute | DeviceMinutes | Tick](
    _name("aggregates"),
    "unit",
    4,
    "Windowed aggregates per device and per unit.",
    value_type=DeviceMinute | DeviceMinutes | Tick,
)
DEADLETTER: Final = KafkaTopic[DeadLetter](
    _name("deadletter"),
    "source",
    2,
    "Refused input with its reason and the original bytes.",
    retention_hours=30 * 24,
    value_type=DeadLetter,
)
SITE_CONFIG: Final = KafkaTopic[dict[str, Any]](
    _name("site-config"),
    "unit",
    1,
    "Each IOCSite's effective configuration (latest per site).",
    compacted=True,
    value_type=dict[str, Any],
)
SITE_CONFIG_READERS: Final = "-site-config-reader-"
"""In the consumer-group id each stream worker commits its `SITE_CONFIG` position under (`<app id>` before it,
the worker's host and process after), with the time in the commit's metadata: how the operator counts the
workers that hold a site's configuration (streams/siteconfig.py, operators/siteconfig.py)."""
REPORTS_OUTBOX: Final = KafkaTopic[SignedReport](
    _name("reports-outbox"),
    "report_id",
    2,
    "Signed upward reports waiting to be pushed to the parent IOC.",
    value_type=SignedReport,
)

KAFKA_TOPICS: Final[dict[str, KafkaTopic[Any]]] = {
    t.name: t
    for t in (
        READINGS,
        CAMERA_EVENTS,
        CITIZEN_REPORTS,
        SERVICE_RECORDS,
        INCIDENTS,
        INCIDENT_COMMANDS,
        INCIDENT_SIGNALS,
        AGGREGATES,
        DEADLETTER,
        SITE_CONFIG,
        REPORTS_OUTBOX,
    )
}


def partition_for(key: str, partitions: int) -> int:
    """The partition a key goes to, the same in every producer (bridge, gateways, simulators, tests).

    CRC-32 rather than Kafka's murmur2 because producers choose partitions explicitly when they batch
    several devices into one message; any stable hash works as long as everyone uses this one.
    """
    return zlib.crc32(key.encode("utf-8")) % partitions


def episode_of(incident_id: str) -> str:
    """An incident id is "<episode>:<start>"; its episode decides its partition."""
    episode, separator, _start = incident_id.rpartition(":")
    if not separator or not episode:
        raise ValueError(f"incident id {incident_id!r} is not <episode>:<start>")
    return episode


def incident_partition(incident_id_or_episode: str, partitions: int, *, is_episode: bool = False) -> int:
    """The partition of `ioc.incident-signals.v1` and `ioc.incident-commands.v1` that owns an incident.

    Signals and commands about one incident meet in one partition, where its state lives; producers
    (rule workers, dashboards, the citizen API) choose the partition explicitly with this function.
    """
    episode = incident_id_or_episode if is_episode else episode_of(incident_id_or_episode)
    return partition_for(episode, partitions)


def device_key(vendor: str, device: str) -> str:
    """The Kafka key of a device's data: `vendor/device`."""
    return f"{vendor}/{device}"


def site_topic(unit: str, short: str) -> str:
    """A topic owned by one site (isolated sites get their own copies): `ioc.site-<unit>.<short>.v1`."""
    if not UNIT_CODE.match(unit):
        raise TopicError(f"unit {unit!r} is not a GSO unit code")
    return f"ioc.site-{unit}.{short}.v1"
