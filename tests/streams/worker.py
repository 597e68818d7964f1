"""Test harness for the stream workers: a real worker process against the real Kafka and ClickHouse."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from ioc import codecs, kafka_access, topics
from ioc.clients import clickhouse
from ioc.events import (
    CameraEvent,
    Detection,
    IncidentAction,
    IncidentCommand,
    IngestBatch,
    Ingested,
    Module,
    SensorKind,
    SensorReading,
    Severity,
    Tick,
)
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint
from ioc.units import Unit, load_tree
from streams.runtime import TICKED
from streams.warehouse import migrate

TREE = load_tree("2024")


class Worker:
    """A `python -m streams worker` process with its own app id and database."""

    def __init__(
        self,
        kafka: dict[str, Any],
        ch: dict[str, Any],
        tmp: Path,
        *,
        database: str | None = None,
        app_id: str | None = None,
    ) -> None:
        self.kafka, self.ch, self.tmp = kafka, ch, tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.database = database or f"t{uuid.uuid4().hex[:10]}"
        # Under the `ioc-streams` prefix: the ACLs of the streams principal cover its group and internal topics.
        self.app_id = app_id or f"ioc-streams-{uuid.uuid4().hex[:8]}"
        self.warehouse = self._connect()
        migrate(self.warehouse, self.database)
        # The test plays the bridge and the ticker, as the stack's admin; the worker runs as ioc-streams.
        self.admin = KafkaEndpoint.from_service(kafka)
        self.producer = Producer({**self.admin.client_config(), "enable.idempotence": True})
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.now = dt.datetime.now(dt.UTC)

    def _connect(self) -> clickhouse.Warehouse:
        ch = self.ch
        return clickhouse.connect(ClickHouseEndpoint.from_service(ch))

    def reconnect(self) -> None:
        """A fresh connection for the test's own queries (after the server was restarted)."""
        self.warehouse.close()
        self.warehouse = self._connect()

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **KafkaEndpoint.from_service(self.kafka, kafka_access.STREAMS).environment("IOC_STREAMS_KAFKA__"),
            "IOC_STREAMS_CLICKHOUSE__HOST": self.ch["host"],
            "IOC_STREAMS_CLICKHOUSE__PORT": str(self.ch["port"]),
            "IOC_STREAMS_CLICKHOUSE__HTTP_PORT": str(self.ch["http_port"]),
            "IOC_STREAMS_CLICKHOUSE__USER": self.ch["user"],
            "IOC_STREAMS_CLICKHOUSE__PASSWORD": self.ch["password"],
            "IOC_STREAMS_CLICKHOUSE__CLUSTER": self.ch.get("cluster", ""),
            "IOC_STREAMS_APP_ID": self.app_id,
            "IOC_STREAMS_DATABASE": self.database,
            "IOC_STREAMS_DATA_DIR": str(self.tmp / "faust"),
            "IOC_STREAMS_WEB_PORT": "0",
            # A fresh group skips what other tests left in the shared topics; a restarted one must not skip
            # what was produced for its partitions that had no committed offset yet.
            "IOC_STREAMS_AUTO_OFFSET_RESET": "latest" if self.starts <= 1 else "earliest",
            "IOC_STREAMS_SINK_FLUSH_S": "0.5",
            # The test moves the clock with its own ticks.
            "IOC_STREAMS_TICK_S": "3600",
            "IOC_STREAMS_INDICATORS_EVERY_S": "3600",
            # A worker killed with SIGKILL holds its partitions this long: the restarted one waits for it.
            "IOC_STREAMS_SESSION_TIMEOUT_S": "10",
        }

    def start(self) -> None:
        self.starts += 1
        with (self.tmp / f"worker-{self.starts}.log").open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "streams", "worker", "--loglevel=info", "--without-web"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def wait_live(self, timeout: float = 90) -> None:
        """Until the worker has its partitions: a probe reading sent now shows up as a row."""
        probe = f"probe-{uuid.uuid4().hex[:6]}"
        deadline = time.monotonic() + timeout
        seq = 0
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log()
            self.readings([reading("probe", probe, "25747", seq, {"waterLevel": 0.1})])
            self.tick(dt.datetime.now(dt.UTC))
            seq += 1
            time.sleep(2)
            if (
                self.count(f"SELECT count() AS n FROM {self.database}.readings WHERE device = %(d)s", d=probe)
                and self._committed_everywhere()
            ):
                return
        raise AssertionError(f"worker not live after {timeout} s:\n{self.log()}")

    def _committed_everywhere(self) -> bool:
        """The group has committed an offset on every partition the test writes to (the ticks saw to that).

        A first worker starts at the log end ("latest"): a rebalance before its first commit on a partition
        would start that partition at the end again, skipping what the test sent meanwhile.
        """
        consumer = Consumer({**self.admin.client_config(), "group.id": self.app_id})
        try:
            wanted = [TopicPartition(topic.name, p) for topic in TICKED for p in range(topic.partitions)]
            return all(tp.offset >= 0 for tp in consumer.committed(wanted, timeout=10))
        finally:
            consumer.close()

    def sibling(self, tmp: Path) -> Worker:
        """Another worker of the same group (app id) writing the same database: they share the partitions."""
        return Worker(self.kafka, self.ch, tmp, database=self.database, app_id=self.app_id)

    def ready_times(self) -> int:
        """How often this worker finished a rebalance (Faust logs "Worker ready" after each recovery)."""
        path = self.tmp / f"worker-{self.starts}.log"
        return path.read_text(errors="replace").count("Worker ready") if path.exists() else 0

    def log(self) -> str:
        return "\n".join((self.tmp / f"worker-{self.starts}.log").read_text(errors="replace").splitlines()[-40:])

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def close(self) -> None:
        self.stop()
        self.producer.flush(10)
        self.warehouse.close()

    # --- input ---------------------------------------------------------------------------------------------

    def _send(self, topic: topics.KafkaTopic, key: str, value: bytes, partition: int) -> None:
        self.producer.produce(topic.name, key=key.encode(), value=value, partition=partition)

    def readings(self, items: list[SensorReading]) -> None:
        self._batches(topics.READINGS, items)

    def cameras(self, items: list[CameraEvent]) -> None:
        self._batches(topics.CAMERA_EVENTS, items)

    def _batches(self, topic: topics.KafkaTopic, items: list[Any]) -> None:
        by_partition: dict[int, list[Ingested]] = {}
        for event in items:
            key = topics.device_key(event.vendor, event.device)
            ingested = Ingested(event=event, path=TREE.path(event.unit), received_at=event.observed_at)
            by_partition.setdefault(topics.partition_for(key, topic.partitions), []).append(ingested)
        for partition, batch in by_partition.items():
            self._send(topic, "batch", codecs.encode(IngestBatch(items=batch)), partition)
        self.producer.flush(10)

    def tick(self, at: dt.datetime) -> None:
        """Move the workers' clock to `at` (ticks also flush what partitions have buffered)."""
        self.now = at
        value = codecs.encode(Tick(at=at))
        for topic in TICKED:
            for partition in range(topic.partitions):
                self._send(topic, "tick", value, partition)
        self.producer.flush(10)

    def send(self, topic: topics.KafkaTopic, key: str, value: bytes, partition: int | None = None) -> None:
        self.producer.produce(
            topic.name,
            key=key.encode(),
            value=value,
            partition=topics.partition_for(key, topic.partitions) if partition is None else partition,
        )
        self.producer.flush(10)

    # --- output --------------------------------------------------------------------------------------------

    def query(self, sql: str, **params: Any) -> list[dict[str, Any]]:
        return self.warehouse.query(sql, params)

    def count(self, sql: str, **params: Any) -> int:
        rows = self.query(sql, **params)
        return int(rows[0]["n"]) if rows else 0

    def wait_for(
        self,
        sql: str,
        predicate: Any,
        timeout: float = 60,
        describe: Callable[[list[dict[str, Any]]], str] | None = None,
        **params: Any,
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            rows = self.query(sql, **params)
            if predicate(rows):
                return rows
            # Work a worker produced for another partition (a detection for an incident) is flushed there on
            # that partition's next event: keep time where it is, but keep ticking, as the leader would.
            self.tick(self.now)
            if time.monotonic() > deadline:
                found = describe(rows) if describe is not None else f"last result {rows[:5]}"
                raise AssertionError(f"timed out; {found}\n{self.log()}")
            time.sleep(0.5)


def reading(
    vendor: str,
    device: str,
    unit: str,
    seq: int,
    values: dict[str, float],
    at: dt.datetime | None = None,
    kind: str = "water",
) -> SensorReading:
    return SensorReading(
        vendor=vendor,
        device=device,
        unit=unit,
        kind=SensorKind(kind),
        seq=seq,  # type: ignore[arg-type]
        observed_at=at or dt.datetime.now(dt.UTC),
        values=values,
    )


def flood_episode(unit: Unit) -> str:
    """A fresh flood episode of `unit` (its incidents' ids are `<episode>:<opened>`, streams.lifecycle.incident_id)."""
    return f"flood-level:{unit.code}:{uuid.uuid4().hex[:6]}"


def open_flood(worker: Worker, unit: Unit, at: dt.datetime, episode: str | None = None) -> str:
    """Send a high flood detection for `unit` (at its centre) on `episode` (a fresh one unless given); the id of the
    incident it opened."""
    episode = episode or flood_episode(unit)
    flood = Detection(
        episode=episode,
        rule="flood-level",
        module=Module.ENVIRONMENT,
        unit=unit.code,
        signal="open",
        at=at,
        severity=Severity.HIGH,
        title="Ngập: mực nước vượt mức báo động",
        lat=unit.lat,
        lon=unit.lon,
    )
    partition = topics.incident_partition(episode, topics.INCIDENT_SIGNALS.partitions, is_episode=True)
    worker.send(topics.INCIDENT_SIGNALS, episode, topics.INCIDENT_SIGNALS.encode(flood), partition)
    found = worker.wait_for(
        f"SELECT incident_id FROM {worker.database}.incidents FINAL WHERE incident_id LIKE %(e)s",
        bool,
        e=f"{episode}:%",
    )
    return str(found[0]["incident_id"])


def send_command(
    worker: Worker, incident_id: str, action: IncidentAction, at: dt.datetime, note: str | None, **extra: Any
) -> str:
    """Send Dĩ An (724) operator's command on the incident's partition, as its dashboard would; the command's id."""
    command = IncidentCommand(
        command_id=f"c-{uuid.uuid4().hex[:8]}",
        incident_id=incident_id,
        action=action,
        actor="op.dian@binhduong.gov.vn",
        site_unit="724",
        issued_at=at,
        note=note,
        grants=("operator@724",),
        **extra,
    )
    episode = topics.episode_of(incident_id)
    partition = topics.incident_partition(episode, topics.INCIDENT_COMMANDS.partitions, is_episode=True)
    worker.send(topics.INCIDENT_COMMANDS, episode, topics.INCIDENT_COMMANDS.encode(command), partition)
    return command.command_id
