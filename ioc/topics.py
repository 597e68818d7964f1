"""The MQTT topic layout and the Kafka topic registry: the single place any topic name is spelled.

MQTT: devices publish on `ioc/v1/{unit}/{kind}/{vendor}/{device}`; the bridge reads them all through a
shared subscription, and a vendor's ACL allows only its own vendor segment.
Kafka: every topic is `ioc.<name>.v1`, with its key, partition count and cleanup policy listed here;
workers, the bridge, the operator and the local stack all create and name topics from this registry.
"""

from __future__ import annotations

import dataclasses
import re
import zlib
from typing import Final

from ioc.events import SensorKind

__all__ = [
    "CAMERA_KIND",
    "KAFKA_TOPICS",
    "MQTT_KINDS",
    "MQTT_PREFIX",
    "KafkaTopic",
    "MqttTopic",
    "TopicError",
    "device_key",
    "episode_of",
    "incident_partition",
    "kafka_topic",
    "mqtt_shared_subscription",
    "mqtt_topic",
    "mqtt_vendor_pattern",
    "parse_mqtt_topic",
    "partition_for",
    "site_topic",
]

MQTT_PREFIX: Final = "ioc/v1"
CAMERA_KIND: Final = "camera"
MQTT_KINDS: Final[frozenset[str]] = frozenset({*(k.value for k in SensorKind), CAMERA_KIND})

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_UNIT = re.compile(r"^[0-9]{2,5}$")
_VENDOR = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


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
    if not _UNIT.match(topic.unit):
        raise TopicError(f"unit segment {topic.unit!r} is not a GSO unit code")
    if topic.kind not in MQTT_KINDS:
        raise TopicError(f"kind segment {topic.kind!r} is not one of {sorted(MQTT_KINDS)}")
    if not _VENDOR.match(topic.vendor):
        raise TopicError(f"vendor segment {topic.vendor!r} is not a vendor id")
    if not _SEGMENT.match(topic.device):
        raise TopicError(f"device segment {topic.device!r} is not a device id")


def mqtt_shared_subscription(group: str = "ioc-bridge") -> str:
    """What every bridge replica subscribes to; the broker spreads messages across the group."""
    return f"$share/{group}/{MQTT_PREFIX}/#"


def mqtt_vendor_pattern(vendor: str, unit: str = "+", kind: str = "+") -> str:
    """The ACL pattern that lets `vendor` publish under its own segment (optionally one unit/kind)."""
    if not _VENDOR.match(vendor):
        raise TopicError(f"vendor {vendor!r} is not a vendor id")
    return f"{MQTT_PREFIX}/{unit}/{kind}/{vendor}/#"


@dataclasses.dataclass(frozen=True, slots=True)
class KafkaTopic:
    """One Kafka topic: its name, what its key is, and how it is laid out."""

    name: str
    key: str
    partitions: int
    description: str
    compacted: bool = False
    retention_hours: int = 7 * 24

    @property
    def config(self) -> dict[str, str]:
        """Topic-level configuration for creation."""
        if self.compacted:
            return {"cleanup.policy": "compact", "min.compaction.lag.ms": "0"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_hours * 3600 * 1000)}


def _t(
    short: str,
    key: str,
    partitions: int,
    description: str,
    *,
    compacted: bool = False,
    retention_hours: int = 7 * 24,
) -> KafkaTopic:
    return KafkaTopic(f"ioc.{short}.v1", key, partitions, description, compacted, retention_hours)


KAFKA_TOPICS: Final[dict[str, KafkaTopic]] = {
    t.name: t
    for t in (
        _t(
            "readings",
            "vendor/device",
            8,
            "Validated SensorReadings (batches per device), enriched with the unit path.",
        ),
        _t("camera-events", "vendor/device", 4, "Validated CameraEvents, enriched with the unit path."),
        _t("citizen-reports", "report_id", 4, "CitizenReports from the citizen API and hotline."),
        _t(
            "service-records",
            "dossier_id",
            4,
            "ServiceRecords (dossier status snapshots) from the one-stop portal.",
        ),
        _t("incidents", "incident_id", 4, "Every version of every Incident, as the stream workers change it."),
        _t(
            "incident-commands",
            "episode",
            4,
            "IncidentCommands from dashboards, on their incident's episode partition.",
        ),
        _t("incident-signals", "episode", 4, "Detections from rule workers, on their episode's partition, and ticks."),
        _t("aggregates", "unit", 4, "Windowed aggregates per device and per unit."),
        _t(
            "deadletter",
            "source",
            2,
            "Refused input with its reason and the original bytes.",
            retention_hours=30 * 24,
        ),
        _t(
            "site-config",
            "unit",
            1,
            "Each IOCSite's effective configuration (latest per site).",
            compacted=True,
        ),
        _t("reports-outbox", "report_id", 2, "Signed upward reports waiting to be pushed to the parent IOC."),
    )
}


def kafka_topic(short: str) -> KafkaTopic:
    """The registry entry for `ioc.<short>.v1`; raises KeyError naming the known topics."""
    name = f"ioc.{short}.v1"
    try:
        return KAFKA_TOPICS[name]
    except KeyError:
        raise KeyError(f"no Kafka topic {name!r}; known: {sorted(KAFKA_TOPICS)}") from None


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
    if not _UNIT.match(unit):
        raise TopicError(f"unit {unit!r} is not a GSO unit code")
    return f"ioc.site-{unit}.{short}.v1"
