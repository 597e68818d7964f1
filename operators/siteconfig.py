"""The sites' side of Kafka: the compacted site-config topic the stream workers read, and isolated topics.

The stream workers learn each site's effective configuration from `ioc.site-config.v1` (compacted: the
latest document per site key; a tombstone when the site is deleted) and apply its thresholds, isolation and
retention (streams/siteconfig.py). An isolated site's dedicated worker reads the shared topics and keeps its
subtree's readings; the per-site copies of the registry topics (`ioc.site-<unit>.<name>.v1`) that earlier
versions made for it carried nothing, so they are no longer made, only deleted with the site.
Topic names and layouts come from `ioc.topics` only.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from confluent_kafka import KafkaError, Producer

from ioc import topics
from ioc.clients import kafka_admin
from ioc.settings import KafkaEndpoint
from operators.manifests import isolated_topics
from operators.models import IOCSiteSpec
from operators.names import SiteNames

__all__ = [
    "ConfigPublisher",
    "PublishError",
    "delete_isolated_topics",
    "settings_effects",
]


class PublishError(RuntimeError):
    """Kafka did not acknowledge a site's configuration."""


class ConfigPublisher:
    """One idempotent producer for every site's configuration; thread-safe (librdkafka's producer is)."""

    def __init__(self, kafka: KafkaEndpoint | str, *, timeout: float = 15.0) -> None:
        self.topic = topics.SITE_CONFIG.name
        self._timeout = timeout
        self._producer = Producer(
            {
                **kafka_admin.client_config(kafka),  # the operator's own principal, over TLS
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": int(timeout * 1000),
                "logger": logging.getLogger("operators.kafka"),
            }
        )
        self._lock = threading.Lock()

    def publish(self, key: str, document: str | None) -> None:
        """Publish a site's configuration (None: a tombstone) and wait until Kafka has it."""
        done = threading.Event()
        outcome: list[Any] = []

        def delivered(error: KafkaError | None, _message: Any) -> None:
            outcome.append(error)
            done.set()

        value = None if document is None else document.encode("utf-8")
        self._producer.produce(self.topic, key=key.encode("utf-8"), value=value, on_delivery=delivered)
        # librdkafka reports every message within message.timeout.ms; the margin covers a slow poll.
        deadline = time.monotonic() + self._timeout + 5
        while not done.wait(0.01):
            # Any thread's poll serves every pending callback, this message's included.
            self._producer.poll(0)
            if time.monotonic() > deadline:
                raise PublishError(f"{self.topic} key {key}: no acknowledgement within {self._timeout} s")
        if outcome[0] is not None:
            raise PublishError(f"{self.topic} key {key}: {outcome[0]}")

    def close(self) -> None:
        self._producer.flush(self._timeout)


def settings_effects(names: SiteNames, spec: IOCSiteSpec) -> str:
    """What the stream workers do with a site's published settings, for its Streams condition (no more, no less).

    The workers do not report back which configuration they hold, so this says what they are built to do
    with it, not that a given worker has done it (their log says "site-config: read to its end").
    """
    overrides = len(spec.thresholds)
    rules = f"{overrides} threshold override(s)" if overrides else "no threshold overrides (the model's rules)"
    worker = (
        f"in its dedicated worker {names.worker} (the shared pool skips them)"
        if spec.workers.isolated
        else "in the shared worker pool"
    )
    days = spec.retention.readings_days
    return (
        f"the stream workers read it and run {rules} on the sensor readings of the units it is the deepest site of, "
        f"{worker}; their leader drops months of readings and camera events older than {days} days from the "
        "site's own copies, and from the shared warehouse once no site keeps them longer"
    )


def delete_isolated_topics(bootstrap: KafkaEndpoint | str, unit: str) -> None:
    """Delete the per-site topic copies earlier versions made for an isolated site (they carried nothing)."""
    existing = kafka_admin.list_topics(bootstrap)
    kafka_admin.delete_topics(bootstrap, [t.name for t in isolated_topics(unit) if t.name in existing])
