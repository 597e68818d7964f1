"""The sites' side of Kafka: the compacted site-config topic the stream workers read, and isolated topics.

The stream workers learn each site's effective configuration from `ioc.site-config.v1` (compacted: the
latest document per site key; a tombstone when the site is deleted) and apply its thresholds, isolation and
retention (streams/siteconfig.py). An isolated site's dedicated worker reads the shared topics and keeps its
subtree's readings; the per-site copies of the registry topics (`ioc.site-<unit>.<name>.v1`) that earlier
versions made for it carried nothing, so they are no longer made, only deleted with the site.
Topic names and layouts come from `ioc.topics` only.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from typing import Any, Final

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from ioc import topics
from ioc.clients import kafka_admin
from ioc.settings import KafkaEndpoint
from operators.manifests import isolated_topics
from operators.models import IOCSiteSpec
from operators.names import SiteNames

__all__ = [
    "LIVE_S",
    "ConfigPublisher",
    "PublishError",
    "ReportCache",
    "WorkerReport",
    "cached_reports",
    "delete_isolated_topics",
    "settings_applied",
    "settings_effects",
    "worker_reports",
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

    def publish(self, key: str, document: str | None) -> int:
        """Publish a site's configuration (None: a tombstone), wait until Kafka has it; returns its offset."""
        done = threading.Event()
        outcome: list[Any] = []
        offsets: list[int] = []

        def delivered(error: KafkaError | None, message: Any) -> None:
            outcome.append(error)
            if error is None:
                offsets.append(message.offset())
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
        return offsets[0]

    def close(self) -> None:
        self._producer.flush(self._timeout)


def settings_effects(names: SiteNames, spec: IOCSiteSpec) -> str:
    """What the stream workers do with a site's published settings, for its Streams condition (no more, no less).

    Whether they hold it is the SettingsApplied condition's (`settings_applied`), from what they report.
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
        f"the stream workers read it and run {rules} on the readings and camera events of the units it is the "
        f"deepest site of, the readings {worker}; their leader drops months of readings and camera events older "
        f"than {days} days from the site's own copies, and from the shared warehouse once no site keeps them longer"
    )


@dataclasses.dataclass(frozen=True, slots=True)
class WorkerReport:
    """How far one stream worker has read `ioc.site-config.v1` (the next offset it will read), and when it said so."""

    group: str
    position: int
    at: float


LIVE_S: Final = 180.0
"""A worker that has not reported its position for this long (three of its reports) is not counted."""


def settings_applied(reports: Iterable[WorkerReport], offset: int | None, now: float) -> tuple[bool | None, str, str]:
    """The SettingsApplied condition (status, reason, message): how many live workers hold the configuration
    published at `offset` (or a later one). Pure: `worker_reports` reads the reports from Kafka."""
    if offset is None:
        return None, "NotPublished", "no configuration published by this operator yet"
    live = [r for r in reports if now - r.at <= LIVE_S]
    if not live:
        return False, "NoWorkers", f"no stream worker has reported within {LIVE_S:.0f} s: nothing applies the settings"
    holding = sum(1 for r in live if r.position > offset)
    if holding == len(live):
        return True, "Applied", f"applied by all {holding} live stream worker(s)"
    return (
        False,
        "Applying",
        f"applied by {holding} of {len(live)} live stream workers (the others have not read it yet)",
    )


def worker_reports(kafka: KafkaEndpoint | str, *, timeout: float = 10.0) -> list[WorkerReport]:
    """Every stream worker's reported position on `ioc.site-config.v1` (streams/siteconfig.py commits them)."""
    config: dict[str, Any] = {**kafka_admin.client_config(kafka), "logger": logging.getLogger("operators.kafka")}
    admin = AdminClient(config)
    listed = admin.list_consumer_groups(request_timeout=timeout).result()
    groups = [g.group_id for g in listed.valid if topics.SITE_CONFIG_READERS in g.group_id]
    reports = []
    for group in groups:
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topics.SITE_CONFIG.name, 0)])]
        answer = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group].result()
        for tp in answer.topic_partitions or []:
            if tp.error is None and tp.offset >= 0 and (tp.metadata or "").isdigit():
                reports.append(WorkerReport(group, tp.offset, float(tp.metadata)))
    return reports


class ReportCache:
    """Worker reports read at most every `ttl_s` for all sites' status refreshes together (thread-safe)."""

    def __init__(self, kafka: KafkaEndpoint | str, ttl_s: float = 20.0) -> None:
        self._kafka, self._ttl_s = kafka, ttl_s
        self._lock = threading.Lock()
        self._at = -ttl_s
        self._reports: list[WorkerReport] = []

    def get(self) -> list[WorkerReport]:
        with self._lock:
            if time.monotonic() - self._at >= self._ttl_s:
                self._reports = worker_reports(self._kafka)
                self._at = time.monotonic()
            return self._reports


_caches: dict[str, ReportCache] = {}
_caches_lock = threading.Lock()


def cached_reports(kafka: KafkaEndpoint) -> list[WorkerReport]:
    """`worker_reports`, read once per `ReportCache.ttl_s` for every site of this operator."""
    with _caches_lock:
        cache = _caches.setdefault(kafka.bootstrap, ReportCache(kafka))
    return cache.get()


def delete_isolated_topics(bootstrap: KafkaEndpoint | str, unit: str) -> None:
    """Delete the per-site topic copies earlier versions made for an isolated site (they carried nothing)."""
    existing = kafka_admin.list_topics(bootstrap)
    kafka_admin.delete_topics(bootstrap, [t.name for t in isolated_topics(unit) if t.name in existing])
