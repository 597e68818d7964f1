"""The IOCSites' effective configurations as the stream workers apply them: rules per unit, isolation, retention.

The operator (operators/siteconfig.py) publishes each site's document on the compacted `ioc.site-config.v1`;
`SiteConfigReader` reads the whole topic at start-up, then every update, into a `SiteIndex` — pure, and what
the readings and camera agents (streams/agents/) and the retention job (streams/retention.py) ask.

Which site decides for a unit (docs/operators.md, "Per-site settings"):

- Rules: for each rule id, the deepest site whose subtree holds the unit and whose document has the rule (a
  site lists only the rules of the modules it runs); rules no site holds come from the worker's own model.
  Nested sites' subtrees nest, so "deepest" is the smallest subtree.
- Isolation: a unit belongs to the deepest isolated site holding it; that site's dedicated worker handles its
  readings and the shared pool skips them. A unit under no isolated site is the shared pool's.
- Retention: the warehouse's tables are shared, so they keep readings as long as the longest `readingsDays`
  any site asks for; a site's own database (where it holds copies of its subtree's rows) keeps its own.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import pydantic
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from ioc import topics
from ioc.people import NotificationsSpec, Person
from ioc.reference import Rule
from ioc.settings import StreamsSettings
from streams.cameras import CameraRules, camera_rules_from
from streams.rules import SensorRules, sensor_rules_from

__all__ = ["SiteConfigReader", "SiteIndex", "SiteSettings", "parse_site", "read_sites"]

log = logging.getLogger(__name__)

_RULE: Final = pydantic.TypeAdapter[Rule](Rule)
RETRY_S: Final = 5.0
"""Seconds between attempts to read the topic when Kafka does not answer."""
REPORT_EVERY_S: Final = 60.0
"""Seconds between reports of the position read while nothing changes (the operator's liveness window is 3×)."""


@dataclasses.dataclass(frozen=True, slots=True)
class SiteSettings:
    """What the workers take from one site's published configuration."""

    key: str
    units: frozenset[str]
    rules: tuple[Rule, ...]
    isolated: bool
    readings_days: int | None
    database: str | None = None
    """The site's own ClickHouse database (its copies of the subtree's rows, where the operator makes copies)."""
    unit: str = ""
    roster: tuple[Person, ...] = ()
    notifications: NotificationsSpec = dataclasses.field(default_factory=NotificationsSpec)
    """Who is told what about the site's incidents (streams/notify.py decides with the deepest site that has rules)."""


def parse_site(key: str, document: Mapping[str, Any]) -> SiteSettings:
    """A site's settings from its published document; ValueError when the document cannot be used."""
    try:
        units = frozenset(str(u) for u in document["scope"]["units"])
        rules = tuple(_RULE.validate_python(r) for r in document.get("rules", []))
        workers = document.get("workers") or {}
        retention = document.get("retention") or {}
        days = retention.get("readingsDays")
        isolated = bool(workers.get("isolated", False))
        database = workers.get("database")
        return SiteSettings(
            key,
            units,
            rules,
            isolated,
            None if days is None else int(days),
            None if database is None else str(database),
            unit=str((document.get("site") or {}).get("unit") or ""),
            roster=tuple(Person.model_validate(p) for p in document.get("roster") or []),
            notifications=NotificationsSpec.model_validate(document.get("notifications") or {}),
        )
    except (KeyError, TypeError, pydantic.ValidationError) as exc:
        raise ValueError(f"site configuration {key!r} is not usable: {exc}") from None


class SiteIndex:
    """Every known site's settings, and the answers per unit (cached: a unit's answer is asked per reading)."""

    def __init__(self, sites: Iterable[SiteSettings], model: Sequence[Rule], dedicated_to: str | None = None) -> None:
        # Deepest (smallest subtree) first, so the first site holding a unit is the one that decides.
        self.sites: tuple[SiteSettings, ...] = tuple(sorted(sites, key=lambda s: (len(s.units), s.key)))
        self.model = tuple(model)
        self.dedicated_to = dedicated_to
        self._default = (sensor_rules_from(self.model), camera_rules_from(self.model))
        self._rules: dict[str, tuple[SensorRules, CameraRules]] = {}
        self._owners: dict[str, str | None] = {}

    def rules_for(self, unit: str) -> SensorRules:
        """The sensor rules that apply to readings of `unit`."""
        return self._decided(unit)[0]

    def camera_rules_for(self, unit: str) -> CameraRules:
        """The camera rules that apply to camera events of `unit`."""
        return self._decided(unit)[1]

    def _decided(self, unit: str) -> tuple[SensorRules, CameraRules]:
        found = self._rules.get(unit)
        if found is None:
            holding = [s for s in self.sites if unit in s.units]
            if not holding:
                found = self._default
            else:
                decided: dict[str, Rule] = {}
                for site in holding:  # deepest first: the first site with a rule decides it
                    for rule in site.rules:
                        decided.setdefault(rule.id, rule)
                merged = [decided.pop(r.id, r) for r in self.model]
                merged += decided.values()
                found = (sensor_rules_from(merged), camera_rules_from(merged))
            self._rules[unit] = found
        return found

    def isolated_owner(self, unit: str) -> str | None:
        """The key of the deepest isolated site holding `unit`; None when the shared pool handles it."""
        if unit not in self._owners:
            self._owners[unit] = next((s.key for s in self.sites if s.isolated and unit in s.units), None)
        return self._owners[unit]

    def handles(self, unit: str) -> bool:
        """Whether this worker handles readings of `unit`: it is dedicated to the unit's isolated site, or it is
        one of the shared pool (`dedicated_to` None) and no isolated site holds the unit."""
        return self.isolated_owner(unit) == self.dedicated_to

    def site(self, key: str) -> SiteSettings | None:
        return next((s for s in self.sites if s.key == key), None)

    def readings_days(self) -> int | None:
        """How long the shared warehouse keeps readings: the longest any site asks for (None: no site asks)."""
        return max((s.readings_days for s in self.sites if s.readings_days is not None), default=None)


class SiteConfigReader:
    """Reads `ioc.site-config.v1` from its beginning in a thread and keeps the latest `SiteIndex`.

    A plain consumer with every partition assigned (no group membership: every worker needs every site),
    so the Faust consumer group's partition split does not apply. `wait_ready` returns once the topic has
    been read up to where it ended when the reader started: the workers then decide with every site known.
    From then on it commits its position, with the time, under a group of its own after every update and
    every minute: the operator counts the workers that have read past a site's configuration from those.
    """

    def __init__(self, settings: StreamsSettings, model: Sequence[Rule], *, poll_s: float = 0.5) -> None:
        self._config = {
            **settings.kafka.client_config(),
            # Its own group, under the workers' ACL prefix: the position it commits tells the operator what
            # this worker holds (`report`).
            "group.id": f"{settings.app_id}{topics.SITE_CONFIG_READERS}{socket.gethostname()}-{os.getpid()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "logger": logging.getLogger("streams.kafka"),
        }
        self._model = tuple(model)
        self._dedicated_to = settings.site
        self._wait_s = settings.site_config_wait_s
        self._poll_s = poll_s
        self._documents: dict[str, SiteSettings] = {}
        self._index = SiteIndex((), self._model, self._dedicated_to)
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._waited = False
        self.updates = 0

    @property
    def index(self) -> SiteIndex:
        return self._index

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="site-config", daemon=True)
            self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        self.start()
        return self._ready.wait(timeout)

    def current(self) -> SiteIndex:
        """The latest index; the first call starts the reader and waits (`site_config_wait_s`) for the topic's end.

        That first wait blocks the worker's event loop (well under a second on a live broker): no reading is
        judged before the sites are known. A broker that does not answer costs `wait_s` once, and the worker
        goes on with the worker's own model until the sites arrive.
        """
        if not self._ready.is_set() and not self._waited:
            self._waited = True
            if not self.wait_ready(self._wait_s):
                log.warning("site-config: not read to its end in %.0f s; going on with what is known", self._wait_s)
        return self._index

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._read()
            except KafkaException as exc:
                # The topic missing (no operator has run yet) or the broker away: nothing to wait for meanwhile.
                log.warning("site-config: %s; reading again in %.0f s", exc, RETRY_S)
                self._ready.set()
                self._stop.wait(RETRY_S)

    def _read(self) -> None:
        topic = topics.SITE_CONFIG.name
        consumer = Consumer(self._config)
        try:
            partitions = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(topics.SITE_CONFIG.partitions)]
            marks = {p.partition: consumer.get_watermark_offsets(p, timeout=10) for p in partitions}
            consumer.assign(partitions)
            position = {p: low for p, (low, _high) in marks.items()}
            reported = 0.0
            while not self._stop.is_set():
                message = consumer.poll(self._poll_s)
                if message is not None:
                    error = message.error()
                    if error is None:
                        self._apply(message.key(), message.value())
                        position[message.partition() or 0] = (message.offset() or 0) + 1
                    elif error.fatal():
                        raise KafkaException(error)
                    else:
                        log.warning("site-config: %s", error)
                if not self._ready.is_set() and all(position[p] >= high for p, (_low, high) in marks.items()):
                    log.info("site-config: read to its end, %d sites known", len(self._documents))
                    self._ready.set()
                read = message is not None and message.error() is None
                if self._ready.is_set() and (read or time.monotonic() - reported >= REPORT_EVERY_S):
                    self._report(consumer, position)
                    reported = time.monotonic()
        finally:
            consumer.close()

    def _report(self, consumer: Consumer, position: dict[int, int]) -> None:
        """Commit how far this worker has read, with the time: the operator's "applied by N workers"."""
        at = f"{time.time():.0f}"
        offsets = [TopicPartition(topics.SITE_CONFIG.name, p, o, metadata=at) for p, o in position.items()]
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning("site-config: could not report the position read: %s", exc)

    def _apply(self, raw_key: bytes | None, raw_value: bytes | None) -> None:
        if raw_key is None:
            return
        key = raw_key.decode("utf-8")
        if raw_value is None:
            self._documents.pop(key, None)  # a tombstone: the site was deleted
        else:
            try:
                self._documents[key] = parse_site(key, topics.SITE_CONFIG.decode(raw_value))
            except ValueError as exc:  # codecs.ContractError is one too
                log.warning("site-config: %s; keeping the previous one", exc)
                return
        # Replaced whole: a reader sees the old index or the new one.
        self._index = SiteIndex(self._documents.values(), self._model, self._dedicated_to)
        self.updates += 1
        if self._ready.is_set():
            log.info("site-config: site %s %s", key, "removed" if raw_value is None else "updated")


def read_sites(settings: StreamsSettings, model: Sequence[Rule]) -> SiteIndex:
    """Every site's settings as the topic holds them now (read to its end, then closed): for periodic jobs."""
    reader = SiteConfigReader(settings, model)
    try:
        if not reader.wait_ready(settings.site_config_wait_s):
            raise TimeoutError(f"{topics.SITE_CONFIG.name} not read to its end in {settings.site_config_wait_s} s")
        return reader.index
    finally:
        reader.stop()
