"""Sending operators' incident commands to the stream workers, on the partition of the incident's episode."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any, Final, Protocol

from confluent_kafka import KafkaException, Producer

from ioc import kafka_access, topics
from ioc.events import IncidentCommand
from ioc.settings import KafkaEndpoint

# An incident id is `<rule>:<unit>:<window start>`; the stream workers keep one episode's state (every
# window of the same rule and unit) on one partition, so commands go to the partition of the *episode
# key*: the incident id without its last ':'-separated segment (`flood-level:25957:20250601T0810` →
# `flood-level:25957`). The Kafka key stays the incident id, as the topic registry says. `KafkaCommandSender`
# waits for the broker's acknowledgement, so "sent" on screen means the command is durably on the topic.

__all__ = [
    "CommandError",
    "CommandSender",
    "Delivery",
    "KafkaCommandSender",
    "MemoryCommandSender",
    "close_senders",
    "command_partition",
    "episode_key",
    "sender_for",
]


class CommandError(RuntimeError):
    """The command could not be delivered; nothing was acknowledged by the broker."""


@dataclasses.dataclass(frozen=True, slots=True)
class Delivery:
    """Where an acknowledged command landed."""

    topic: str
    partition: int
    offset: int


def episode_key(incident_id: str) -> str:
    """The incident id without its last ':'-separated segment (the window start); itself when it has none."""
    head, sep, _ = incident_id.rpartition(":")
    return head if sep else incident_id


def command_partition(incident_id: str, partitions: int = topics.INCIDENT_COMMANDS.partitions) -> int:
    """The partition of the command topic that an incident's commands must go to."""
    return topics.partition_for(episode_key(incident_id), partitions)


class CommandSender(Protocol):
    """Delivers one command and says where it landed, or raises `CommandError`."""

    def send(self, command: IncidentCommand) -> Delivery: ...


class KafkaCommandSender:
    """Produces commands to `ioc.incident-commands.v1` with idempotence and `acks=all`."""

    def __init__(self, endpoint: KafkaEndpoint, *, timeout_s: float = 10.0) -> None:
        self._timeout_s = timeout_s
        self._producer = Producer(
            {
                **endpoint.client_config(),  # the site's own principal, over TLS
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": int(timeout_s * 1000),
                "client.id": "ioc-dashboard",
            }
        )
        # One producer per process is shared by every session; flush() below waits for its own message.
        self._lock = threading.Lock()
        self._per_site = endpoint.uses_sasl

    def _topic(self, command: IncidentCommand) -> str:
        # An authenticated dashboard is its site's principal and may write only its site's command topic (the
        # workers take the site from it); a development broker without authentication has the shared topic.
        if self._per_site:
            return kafka_access.site_command_topic(command.site_unit).name
        return topics.INCIDENT_COMMANDS.name

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued; the producer is destroyed with its last reference."""
        with self._lock:
            self._producer.flush(timeout_s)

    def send(self, command: IncidentCommand) -> Delivery:
        results: list[tuple[Any, Any]] = []
        partition = command_partition(command.incident_id)
        try:
            with self._lock:
                self._producer.produce(
                    self._topic(command),
                    key=command.incident_id.encode("utf-8"),
                    value=topics.INCIDENT_COMMANDS.encode(command),
                    partition=partition,
                    on_delivery=lambda err, msg: results.append((err, msg)),
                )
                self._producer.flush(self._timeout_s)
        except (KafkaException, BufferError) as exc:
            raise CommandError(f"cannot send the command: {exc}") from exc
        if not results:
            raise CommandError(f"the broker did not acknowledge the command within {self._timeout_s:.0f} s")
        error, message = results[0]
        if error is not None:
            raise CommandError(f"the broker refused the command: {error}")
        return Delivery(message.topic(), message.partition(), message.offset())


class MemoryCommandSender:
    """Keeps commands in a list (unit tests of the pages); partitions are computed as Kafka's would be."""

    def __init__(self) -> None:
        self.sent: list[IncidentCommand] = []

    def send(self, command: IncidentCommand) -> Delivery:
        self.sent.append(command)
        return Delivery(topics.INCIDENT_COMMANDS.name, command_partition(command.incident_id), len(self.sent) - 1)


_senders: dict[str, CommandSender] = {}
_senders_lock: Final = threading.Lock()


def sender_for(endpoint: KafkaEndpoint) -> CommandSender:
    """The process's command sender for a Kafka cluster, created on first use."""
    with _senders_lock:
        sender = _senders.get(endpoint.bootstrap)
        if sender is None:
            sender = _senders[endpoint.bootstrap] = KafkaCommandSender(endpoint)
        return sender


def close_senders() -> None:
    """Flush and drop the process's Kafka producers (tests and the benchmark call it before stopping Kafka)."""
    with _senders_lock:
        for sender in _senders.values():
            if isinstance(sender, KafkaCommandSender):
                sender.close()
        _senders.clear()
