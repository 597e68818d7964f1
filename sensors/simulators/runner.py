"""Replaying a plan against real brokers at the run's speed: the simulators' one I/O edge.

Device events go through the vendor SDK, one `VendorClient` per vendor with the credentials the platform
issued (`issue_credentials` does it with Mosquitto's dynamic security), so the simulators are also the
SDK's working example. Citizen reports and dossier snapshots go straight to their Kafka topics, keyed by
report and dossier id, with an idempotent `acks=all` producer, as the citizen API and the one-stop portal
connector would. A spoof attempt (SCENARIOS.md story 5) logs in with one vendor's credentials and
publishes on another vendor's topic; the broker's refusal is counted, not hidden. The plan itself is pure
(`plan`); this module only paces it, sends it and counts what the brokers said.
"""

from __future__ import annotations

import collections
import dataclasses
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, TextIO

import pydantic
from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ioc import topics
from ioc.clients.dynsec import DynsecAdmin, vendor_username
from ioc.clock import SimulatedClock
from ioc.events import CameraEvent, CitizenReport, SensorReading, ServiceRecord
from ioc.settings import KafkaEndpoint, MqttEndpoint
from ioc.snapshots import SnapshotStore
from sensors.sdk import ConnectRefused, Device, PublishRefused, SdkError, VendorClient
from sensors.simulators import snapshots
from sensors.simulators.plan import Planned, Simulation, iter_plan
from sensors.simulators.scenarios import ScenarioKind
from sensors.simulators.summary import Tally

__all__ = ["RunError", "RunSummary", "issue_credentials", "run", "run_living"]

_FLUSH_TIMEOUT_S: Final = 30.0
_INTERRUPTED_FLUSH_S: Final = 10.0


class RunError(RuntimeError):
    """The run could not start or continue (a broker unreachable, credentials refused, a topic missing)."""


def _password() -> str:
    return secrets.token_hex(16)


def issue_credentials(
    admin: MqttEndpoint, vendors: Iterable[str], *, password: Callable[[], str] = _password
) -> dict[str, str]:
    """Give each vendor a fresh password and an MQTT client that may publish only its own topics."""
    issued = {vendor: password() for vendor in vendors}
    with DynsecAdmin(admin) as control:
        for vendor, secret in issued.items():
            control.ensure_vendor(vendor, secret)
    return issued


@dataclasses.dataclass
class RunSummary:
    """What a run sent and what the brokers said about it."""

    sent: Tally
    refused: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    unacknowledged: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    spoof_refused: int = 0
    kafka_delivered: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    kafka_failed: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    errors: list[str] = dataclasses.field(default_factory=list)
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def ok(self) -> bool:
        """Every honest publish acknowledged, every Kafka message delivered, every spoof refused."""
        return not (
            self.refused
            or self.unacknowledged
            or self.kafka_failed
            or self.errors
            or self.spoof_refused != self.sent.spoofs
        )

    def describe(self) -> list[str]:
        """The summary as lines for people."""
        sent = self.sent
        rate = sent.total / self.wall_s if self.wall_s > 0 else 0.0
        lines = [
            f"sent {sent.total} messages in {self.wall_s:.1f} s ({rate:.0f} msg/s), "
            f"{_clock(sent.last_offset_s)} simulated{' (interrupted)' if self.interrupted else ''}",
            f"  by kind: {sent.kinds_line()}",
            "  by vendor: " + (" · ".join(f"{v} {n}" for v, n in sorted(sent.by_vendor.items())) or "none"),
        ]
        if self.refused or self.unacknowledged:
            problems = [f"{v}: {n} refused" for v, n in sorted(self.refused.items())]
            problems += [f"{v}: {n} unacknowledged" for v, n in sorted(self.unacknowledged.items())]
            lines.append("  MQTT broker: " + "; ".join(problems))
        else:
            lines.append("  MQTT broker: every publish acknowledged")
        if sent.spoofs:
            lines.append(
                f"  spoof: {sent.spoofs} attempt(s) under another vendor's topic, {self.spoof_refused} refused"
            )
        delivered = " · ".join(f"{t} {n}" for t, n in sorted(self.kafka_delivered.items())) or "nothing"
        lines.append(f"  Kafka: delivered {delivered}")
        if self.kafka_failed:
            lines.append("  Kafka failures: " + " · ".join(f"{t} {n}" for t, n in sorted(self.kafka_failed.items())))
        lines.extend(f"  error: {error}" for error in self.errors[:10])
        return lines


def _clock(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _with_credentials(endpoint: MqttEndpoint, username: str, password: str) -> MqttEndpoint:
    return endpoint.model_copy(update={"username": username, "password": pydantic.SecretStr(password)})


class _Session:
    """The connections of one run and the counters they feed."""

    def __init__(
        self,
        sim: Simulation,
        mqtt: MqttEndpoint,
        kafka: KafkaEndpoint,
        passwords: Mapping[str, str],
        snapshot_store: SnapshotStore | None = None,
    ) -> None:
        self.sim = sim
        self.snapshot_store = snapshot_store
        self.mqtt = mqtt
        self.kafka = kafka
        self.passwords = passwords
        self.summary = RunSummary(sent=Tally())
        self.clients: dict[str, VendorClient] = {}
        self.spoof_clients: dict[tuple[str, str], VendorClient] = {}
        self.devices: dict[tuple[str, str], Device] = {}
        self.producer: Producer | None = None

    # --- opening and closing --------------------------------------------------------------------------------

    def open(self) -> None:
        missing = [v for v in self.sim.fleet.vendor_ids if v not in self.passwords]
        if missing:
            raise RunError(f"no credentials for vendor(s) {', '.join(missing)}")
        self.producer = Producer(
            {
                **self.kafka.client_config(),  # whoever runs it (the stack's admin for `ioc simulate`), over TLS
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 20,
                "client.id": "ioc-simulator",
            }
        )
        try:
            known = set(self.producer.list_topics(timeout=10).topics)
        except KafkaException as exc:
            raise RunError(f"Kafka at {self.kafka.bootstrap} does not answer: {exc}") from None
        for topic in (topics.CITIZEN_REPORTS, topics.SERVICE_RECORDS):
            if topic.name not in known:
                raise RunError(f"Kafka topic {topic.name} does not exist at {self.kafka.bootstrap}")
        for vendor in self.sim.fleet.vendor_ids:
            self.clients[vendor] = self._connect(vendor, vendor)
        # Impostors connect up front too: a CONNACK wait in the middle of the run would stall its pacing.
        for scenario in self.sim.scenarios:
            if scenario.kind is ScenarioKind.SPOOF:
                impostor, victim = scenario.targets[0], self.sim.fleet.device(scenario.targets[1]).vendor
                if (impostor, victim) not in self.spoof_clients:
                    self.spoof_clients[(impostor, victim)] = self._connect(impostor, victim)

    def _connect(self, login: str, vendor: str) -> VendorClient:
        endpoint = _with_credentials(self.mqtt, vendor_username(login), self.passwords[login])
        client = VendorClient(endpoint, vendor, client_id=f"ioc-sim-{login}-{uuid.uuid4().hex[:8]}")
        try:
            client.connect()
        except ConnectRefused as exc:
            raise RunError(f"vendor {login}: {exc}") from None
        return client

    def close(self, timeout_s: float = _FLUSH_TIMEOUT_S) -> None:
        """Flush the producer and every client, all within `timeout_s` together, and close them."""
        summary = self.summary
        deadline = time.monotonic() + timeout_s

        def left() -> float:
            return max(deadline - time.monotonic(), 0.1)

        if self.producer is not None:
            undelivered = self.producer.flush(left())
            if undelivered:
                summary.errors.append(f"{undelivered} Kafka message(s) not delivered within {timeout_s:.0f} s")
        for vendor, client in self.clients.items():
            try:
                client.flush(left())
            except PublishRefused as exc:
                summary.refused[vendor] += len(exc.refused)
            except SdkError:
                summary.unacknowledged[vendor] += client.unacknowledged
            client.close(flush_timeout=0)
        for (impostor, victim), client in self.spoof_clients.items():
            try:
                client.flush(left())
            except PublishRefused as exc:
                summary.spoof_refused += len(exc.refused)
            except SdkError:
                summary.errors.append(f"spoof as {victim} by {impostor}: the broker did not answer")
            client.close(flush_timeout=0)

    # --- sending --------------------------------------------------------------------------------------------

    def _delivered(self, err: KafkaError | None, message: Message) -> None:
        topic = message.topic() or "?"
        if err is None:
            self.summary.kafka_delivered[topic] += 1
        else:
            self.summary.kafka_failed[topic] += 1
            if len(self.summary.errors) < 100:
                self.summary.errors.append(f"Kafka {topic}: {err}")

    def _produce(self, topic: topics.KafkaTopic, key: str, value: bytes) -> None:
        assert self.producer is not None
        partition = topics.partition_for(key, topic.partitions)
        while True:
            try:
                self.producer.produce(topic.name, value, key, partition=partition, on_delivery=self._delivered)
                break
            except BufferError:  # librdkafka's local queue is full: let it drain
                self.producer.poll(0.5)
        self.producer.poll(0)

    def _device(self, planned: Planned, event: SensorReading | CameraEvent) -> Device:
        sender = planned.sender or event.vendor
        key = (sender, event.device)
        device = self.devices.get(key)
        if device is None:
            if sender == event.vendor:
                client = self.clients[sender]
            else:
                client = self.spoof_clients.get((sender, event.vendor)) or self._connect(sender, event.vendor)
                self.spoof_clients[(sender, event.vendor)] = client  # a plan given as `events` may hold others
            kind = topics.CAMERA_KIND if isinstance(event, CameraEvent) else event.kind.value
            device = self.devices[key] = client.device(event.device, event.unit, kind, start_seq=event.seq)
        return device

    def send(self, planned: Planned) -> None:
        event = planned.event
        if isinstance(event, CitizenReport):
            self._produce(topics.CITIZEN_REPORTS, event.report_id, topics.CITIZEN_REPORTS.encode(event))
        elif isinstance(event, ServiceRecord):
            self._produce(topics.SERVICE_RECORDS, event.dossier_id, topics.SERVICE_RECORDS.encode(event))
        else:
            device = self._device(planned, event)
            try:
                if isinstance(event, SensorReading):
                    sent: SensorReading | CameraEvent = device.reading(
                        event.values, observed_at=event.observed_at, lat=event.lat, lon=event.lon
                    )
                else:
                    sent = device.camera_event(
                        event.event_type,
                        confidence=event.confidence,
                        observed_at=event.observed_at,
                        plate=event.plate,
                        speed_kmh=event.speed_kmh,
                        speed_limit_kmh=event.speed_limit_kmh,
                        object_count=event.object_count,
                        lat=event.lat,
                        lon=event.lon,
                        image_url=event.image_url,
                        # As a gateway uploads its evidence frame, then references it in the event.
                        snapshot=None
                        if self.snapshot_store is None
                        else self.snapshot_store.put(snapshots.render(event), "jpg"),
                    )
            except SdkError as exc:
                self.summary.errors.append(f"{event.vendor}/{event.device} seq {event.seq}: {exc}")
                return
            if sent.seq != event.seq:  # the SDK numbers messages itself; a mismatch is a simulator bug
                self.summary.errors.append(f"{event.vendor}/{event.device}: planned seq {event.seq}, sent {sent.seq}")
        self.summary.sent.add(planned)


class _Progress:
    """A status line on a stream about every `every_s` seconds of wall time."""

    def __init__(self, out: TextIO | None, every_s: float, started: float) -> None:
        self.out = out
        self.every_s = every_s
        self.next_at = started + every_s
        self.started = started
        self.last_total = 0
        self.last_at = started

    def due_within(self, now: float, wait: float) -> float:
        return min(wait, max(0.0, self.next_at - now)) if self.out is not None else wait

    def tick(self, now: float, sent: Tally, speed: float) -> None:
        if self.out is None or now < self.next_at:
            return
        sim_s = (now - self.started) * speed
        rate = (sent.total - self.last_total) / max(now - self.last_at, 1e-6)
        self.out.write(
            f"simulate: {_clock(now - self.started)} wall, {_clock(sim_s)} simulated, {rate:.0f} msg/s, "
            f"{sent.total} sent ({sent.kinds_line()})\n"
        )
        self.out.flush()
        self.last_total, self.last_at = sent.total, now
        self.next_at = now + self.every_s


def run(
    sim: Simulation,
    *,
    mqtt: MqttEndpoint,
    kafka: KafkaEndpoint,
    passwords: Mapping[str, str],
    progress: TextIO | None = None,
    progress_every_s: float = 2.0,
    events: Iterable[Planned] | None = None,
    anchor: float | None = None,
    snapshot_store: SnapshotStore | None = None,
) -> RunSummary:
    """Send `sim`'s plan (or `events`) at `sim.speed` and return what was sent and acknowledged.

    `mqtt` gives the broker's address (its credentials are replaced per vendor from `passwords`); Ctrl-C
    stops the run early and still flushes and counts what was sent. Raises RunError when a broker or a
    topic is missing or a vendor's credentials are refused. With `anchor` (a Unix time), the plan's start
    happens at that moment rather than when the run is ready, so a simulator and stream workers started
    seconds apart share one simulated clock: the run waits for an anchor ahead of it and catches up on
    one behind it. With `snapshot_store`, each camera event's generated image goes into that store and the event
    carries its key.
    """
    session = _Session(sim, mqtt, kafka, passwords, snapshot_store)
    started = time.monotonic()
    try:
        session.open()
        started = time.monotonic() if anchor is None else time.monotonic() + (anchor - time.time())
        meter = _Progress(progress, progress_every_s, started)
        for planned in iter_plan(sim) if events is None else events:
            due = started + planned.offset_s / sim.speed
            while (now := time.monotonic()) < due:
                time.sleep(meter.due_within(now, due - now))
                meter.tick(time.monotonic(), session.summary.sent, sim.speed)
            session.send(planned)
            meter.tick(time.monotonic(), session.summary.sent, sim.speed)
    except KeyboardInterrupt:
        session.summary.interrupted = True
    finally:
        # Stopped by Ctrl-C (or `ioc up` stopping): what is in flight gets a few seconds, then the process ends.
        session.close(_INTERRUPTED_FLUSH_S if session.summary.interrupted else _FLUSH_TIMEOUT_S)
        session.summary.wall_s = time.monotonic() - started
    return session.summary


def run_living(
    hours: Iterator[Simulation],
    clock: SimulatedClock,
    *,
    mqtt: MqttEndpoint,
    kafka: KafkaEndpoint,
    passwords: Mapping[str, str],
    progress: TextIO | None = None,
    hours_limit: int | None = None,
    snapshot_store: SnapshotStore | None = None,
) -> list[RunSummary]:
    """Send the living province's hours (`living.living_hours`) one after another, each when `clock` reaches it.

    Runs until Ctrl-C (or after `hours_limit` pieces, for tests); a piece whose brokers complained is
    reported on `progress` and the next one goes on, since a living demo must not stop at one refusal.
    """
    summaries: list[RunSummary] = []
    for sim in hours:
        summary = run(
            sim,
            mqtt=mqtt,
            kafka=kafka,
            passwords=passwords,
            progress=progress,
            anchor=clock.wall_at(sim.start.timestamp()),
            snapshot_store=snapshot_store,
        )
        summaries.append(summary)
        if progress is not None:
            progress.write(f"living: the hour from {sim.start:%Y-%m-%d %H:%M} done\n")
            for line in summary.describe():
                progress.write(line + "\n")
            progress.flush()
        if summary.interrupted or (hours_limit is not None and len(summaries) >= hours_limit):
            break
    return summaries
