"""The whole ingest path at once, ramped to its limit: generator → Mosquitto → bridges → Kafka → workers → ClickHouse.

Everything on this machine: the stack (Mosquitto over TLS, Kafka with SCRAM over TLS, ClickHouse), 1 or 2 bridge
replicas on one MQTT shared subscription, 1 or 2 stream workers of one Kafka group, the native load generator
(bench/loadgen, Go: a vendor's TLS connections publishing SensorReading JSON with QoS 1, per-device sequences) and
this process. Each configuration is ramped: steps of rising offered load (readings/s, in 50-reading or one-reading
messages), each from fresh devices, until a step loses a reading (published and acknowledged by Mosquitto, not in
ClickHouse after the drain), cannot be published, or its p99 publish → row queryable passes the bound. The highest
step with none of these is the configuration's sustained rate. Latency comes from probe readings published
through the SDK (`VendorClient`) 20 times a second beside the load and looked for in ClickHouse every 50 ms; the
incident latency from floods injected through the SDK at 5,000 readings/s, until the dashboards' incident queue
query (`dashboards.data`, the site's scope) returns them. CPU of every process is read from /proc per step; the
generator reports its own. Anchors in the same run: Mosquitto alone (generator → broker → a counting
subscriber) and Kafka alone (a producer of bridge-sized batches).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Producer

from bench import loadgen, processes
from dashboards.data.queries import QUERIES
from dashboards.data.source import run_scoped
from ioc import codecs, topics
from ioc.clients import clickhouse
from ioc.events import ACTIVE_STATES, IngestBatch, Ingested, SensorKind, SensorReading
from ioc.scope import site_scope
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint, MqttEndpoint
from ioc.units import load_tree
from iocctl.localstack import Stack
from sensors.sdk import VendorClient
from streams.warehouse import migrate

RESULTS: Final = Path(__file__).parents[1] / "bench-results"
ROW_P99_BOUND_S: Final = 5.0
"""A step holds when its p99 publish → row queryable stays under this: the workers write readings every 2 s
(IOC_STREAMS_SINK_FLUSH_S), so a pipeline keeping pace shows 2-3 s; a growing backlog passes 5 s within a step."""
PUBLISHED_SHARE: Final = 0.97
"""A step holds only if the generator published this share of its offered messages (it shares the 2 cores too)."""
INCIDENT_RATE: Final = 5_000
PROBES_PER_S: Final = 20
TREE: Final = load_tree("2024")


@dataclasses.dataclass(frozen=True)
class Config:
    """One ramp: message shape, bridge replicas, stream workers, and the offered rates (readings/s)."""

    batch: int
    bridges: int
    workers: int
    rates: tuple[float, ...]

    @property
    def name(self) -> str:
        return f"{self.batch}-per-message {self.bridges}b{self.workers}w"


def percentile(values: list[float], q: float) -> float:
    """The `q` quantile of `values` (nearest rank); -1 when there are none."""
    if not values:
        return -1.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


class Probes:
    """Readings of one probe device through the SDK, and when each became a row in ClickHouse."""

    def __init__(self, mosquitto: dict[str, Any], warehouse: clickhouse.Warehouse, database: str) -> None:
        self.vendor, password = loadgen.new_vendor(mosquitto, "probe")
        login = MqttEndpoint(
            host=mosquitto["host"],
            port=mosquitto["tls_port"],
            username=f"vendor.{self.vendor}",
            password=password,
            tls_ca_file=mosquitto["ca_file"],
        )
        self.client = VendorClient(login, self.vendor)
        self.client.connect()
        self.warehouse, self.database = warehouse, database
        self.sent: dict[int, float] = {}
        self.latencies: list[tuple[float, float]] = []  # (sent at, seconds to queryable)
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._publish, daemon=True),
            threading.Thread(target=self._poll, daemon=True),
        ]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _publish(self) -> None:
        seq = 0
        while not self._stop.is_set():
            self.sent[seq] = time.time()
            self.client.publish(
                SensorReading(
                    vendor=self.vendor,
                    device="probe",
                    unit="25957",
                    kind=SensorKind.WATER,
                    seq=seq,
                    observed_at=dt.datetime.now(dt.UTC),
                    values={"waterLevel": 0.3},
                )
            )
            seq += 1
            self._stop.wait(1 / PROBES_PER_S)

    def _poll(self) -> None:
        last = -1
        while not self._stop.is_set():
            rows = self.warehouse.query(
                f"SELECT DISTINCT seq FROM {self.database}.readings WHERE unit = '25957' AND vendor = %(v)s "
                "AND seq > %(last)s",
                {"v": self.vendor, "last": last},
            )
            seen = time.time()
            for row in rows:
                seq = int(row["seq"])
                if seq in self.sent:
                    self.latencies.append((self.sent[seq], seen - self.sent[seq]))
                last = max(last, seq)
            self._stop.wait(0.05)

    def between(self, start: float, end: float) -> list[float]:
        return [latency for sent, latency in self.latencies if start <= sent < end]

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)
        self.client.close()


def _stored(warehouse: clickhouse.Warehouse, database: str, vendor: str, prefix: str) -> int:
    rows = warehouse.query(
        f"SELECT uniqExact(device, seq) AS n FROM {database}.readings WHERE unit = '25957' AND vendor = %(v)s "
        "AND startsWith(device, %(p)s)",
        {"v": vendor, "p": prefix},
    )
    return int(rows[0]["n"])


def drain(
    warehouse: clickhouse.Warehouse, database: str, vendor: str, prefix: str, published: int, *, limit_s: float = 120
) -> int:
    """Wait until the `published` readings of devices `prefix`* are in ClickHouse, or their count stops growing for
    15 s (or `limit_s` passes): the distinct (device, seq) stored."""
    stored, last_growth, started = 0, time.monotonic(), time.monotonic()
    while time.monotonic() - last_growth < 15 and time.monotonic() - started < limit_s:
        now_stored = _stored(warehouse, database, vendor, prefix)
        if now_stored > stored:
            stored, last_growth = now_stored, time.monotonic()
        if stored >= published:
            break
        time.sleep(0.5)
    return stored


def devices_for(rate: float, batch: int) -> int:
    """How many devices share `rate` readings/s in `batch`-reading messages: each at ~2 messages/s or less."""
    return max(50, min(2000, int(rate / batch / 2)))


def _profile(pid: int, seconds: float, out: Path) -> dict[str, Any]:
    """py-spy samples of one bridge for `seconds` (raw stacks in `out`): the share of samples in each part of it."""
    subprocess.run(
        [str(Path(sys.executable).parent / "py-spy"), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "100",
         "--threads", "--nonblocking", "-f", "raw", "-o", str(out)],
        capture_output=True, check=False, timeout=seconds + 60,
    )  # fmt: skip
    parts: dict[str, int] = {}
    for line in out.read_text(encoding="utf-8").splitlines() if out.exists() else []:
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if "paho-mqtt-client" in frames[0]:
            ours = any("sensors/bridge" in f or "ioc/" in f for f in frames)
            part = "MQTT thread: the bridge's handler (validate, limit, batch)" if ours else "MQTT thread: paho itself"
        else:
            part = "main thread: Kafka producer, delivery reports, acknowledgements"
        parts[part] = parts.get(part, 0) + int(count)
    total = sum(parts.values()) or 1
    return {"samples": total, "file": out.name, **{k: round(v / total, 3) for k, v in sorted(parts.items())}}


def _cpu(pids: dict[str, int]) -> dict[str, float]:
    return {name: loadgen.cpu_s(pid) for name, pid in pids.items()}


def _step(
    info: dict[str, Any],
    warehouse: clickhouse.Warehouse,
    database: str,
    probes: Probes,
    pids: dict[str, int],
    *,
    config: Config,
    rate: float,
    index: int,
    seconds: float,
    vendor: str,
    password: str,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """One step of a ramp: `rate` readings/s for `seconds` from fresh devices, then wait for them in ClickHouse."""
    prefix = f"s{index:02}x"
    devices = devices_for(rate, config.batch)
    publisher = loadgen.Publisher(
        info["mosquitto"],
        vendor,
        password,
        [(rate, seconds)],
        batch=config.batch,
        devices=devices,
        device_prefix=prefix,
    )
    cpu_before, wall_before = _cpu(pids), time.time()
    waited_before = {name: loadgen.waited_s(pid) for name, pid in pids.items()}
    mono_before = time.monotonic()
    publisher.start()
    profiled = None
    if profile_to is not None:  # the middle of the step, on the first bridge
        time.sleep(seconds / 4)
        out = profile_to / f"profile-{config.batch}-{config.bridges}b{config.workers}w-{rate:.0f}.txt"
        profiled = _profile(pids["bridge-0"], seconds / 2, out)
    done = publisher.wait(seconds + 120)
    mono_published = time.monotonic()
    waited = {
        name: round((loadgen.waited_s(pid) - waited_before[name]) / (time.monotonic() - mono_before), 3)
        for name, pid in pids.items()
    }
    step_s = mono_published - mono_before
    published = int(done["acked_readings"])
    stored = drain(warehouse, database, vendor, prefix, published)
    drain_s = time.monotonic() - mono_published
    cpu_after = _cpu(pids)  # after the drain: the step's readings reach ClickHouse seconds after they are published
    latencies = probes.between(wall_before + 2, wall_before + step_s)
    offered_messages = rate / config.batch * seconds
    # The CPU the step's readings took (its start and its drain included: a little high), per second of load.
    cores = {name: round((cpu_after[name] - cpu_before[name]) / seconds, 3) for name in pids}
    cores["generator"] = round(done["cpu_s"] / seconds, 3)
    total_cores = sum(cores.values())
    # Over the generator's paced window: the step's wall time also holds the generator's start, its TLS
    # connections and its wait for the last acknowledgements (12.5 s for a 12 s step), when nothing is offered.
    # A step holds only if everything published was stored and p99 stayed under the bound, so the pipeline kept
    # this pace throughout.
    delivered_per_s = stored / seconds
    lost = published - stored
    p99 = percentile(latencies, 0.99)
    failure = (
        f"{lost} readings lost"
        if lost > 0
        else f"p99 publish → row {p99:.1f} s > {ROW_P99_BOUND_S:g} s"
        if p99 > ROW_P99_BOUND_S or not latencies
        else f"only {done['published_messages']:,} of {offered_messages:,.0f} messages could be published"
        if done["published_messages"] < PUBLISHED_SHARE * offered_messages
        else ""
    )
    step = {
        "offered_readings_per_s": rate,
        "offered_messages_per_s": round(rate / config.batch),
        "published_readings": published,
        "stored_readings": stored,
        "lost_readings": lost,
        "readings_per_s": round(delivered_per_s),
        "messages_per_s": round(delivered_per_s / config.batch),
        "row_p50_s": round(percentile(latencies, 0.5), 3),
        "row_p99_s": round(p99, 3),
        "probes": len(latencies),
        "drain_s": round(drain_s, 1),
        "cores": cores,
        "total_cores": round(total_cores, 2),
        "waited_cores": waited,  # runnable but waiting for a CPU: the machine's share of the pace
        "total_waited_cores": round(sum(waited.values()), 2),
        "load_1m": round(os.getloadavg()[0], 1),
        "readings_per_core_s": round(delivered_per_s / total_cores) if total_cores else 0,
        "held": not failure,
        "failure": failure,
    }
    if profiled is not None:
        step["bridge_profile"] = profiled
    shown = {k: v for k, v in step.items() if k not in ("cores", "waited_cores")}
    print(f"  {config.name} {rate:,.0f}/s: " + json.dumps(shown, ensure_ascii=False), flush=True)
    print(f"    cores: {cores}\n    waited for a CPU: {waited}", flush=True)
    return step


def _incidents(info: dict[str, Any], database: str, vendor: str, password: str, floods: int) -> dict[str, Any]:
    """Floods injected through the SDK while the generator offers 5,000 readings/s in 50-reading messages: the time
    from publishing the reading that opens each to its incident in the dashboards' incident queue for its commune."""
    mosquitto = info["mosquitto"]
    flood_vendor, flood_password = loadgen.new_vendor(mosquitto, "flood")
    login = MqttEndpoint(
        host=mosquitto["host"],
        port=mosquitto["tls_port"],
        username=f"vendor.{flood_vendor}",
        password=flood_password,
        tls_ca_file=mosquitto["ca_file"],
    )
    seconds = 12 + floods * 1.5
    background = loadgen.Publisher(
        mosquitto, vendor, password, [(INCIDENT_RATE, seconds)], batch=50, devices=100, device_prefix="inc"
    )
    background.start()
    queue = QUERIES["incident_queue"]
    params = {
        "states": tuple(state.value for state in ACTIVE_STATES),
        "modules": ("environment",),
        "severities": ("low", "medium", "high", "critical"),
        "limit": 50,
    }
    latencies: list[float] = []
    communes = [unit.code for unit in TREE.at_level("commune")][-floods:]
    dashboard = clickhouse.connect(ClickHouseEndpoint.from_service(info["clickhouse"]), database=database)
    with dashboard, VendorClient(login, flood_vendor) as client:
        client.connect()
        time.sleep(5)  # the background load flows
        for unit in communes:
            now = dt.datetime.now(dt.UTC)
            device = f"flood-{unit}"
            client.publish(
                SensorReading(
                    vendor=flood_vendor,
                    device=device,
                    unit=unit,
                    kind=SensorKind.WATER,
                    seq=0,
                    observed_at=now - dt.timedelta(minutes=6),
                    values={"waterLevel": 2.0},
                )
            )
            client.flush(10)
            time.sleep(0.3)
            scope = site_scope(unit)
            sent = time.time()
            client.publish(
                SensorReading(
                    vendor=flood_vendor,
                    device=device,
                    unit=unit,
                    kind=SensorKind.WATER,
                    seq=1,
                    observed_at=dt.datetime.now(dt.UTC),
                    values={"waterLevel": 2.0},
                )
            )
            while time.time() - sent < 20:
                rows = run_scoped(dashboard, queue, scope, params)
                if any(row["rule"] == "flood-level" for row in rows):
                    latencies.append(time.time() - sent)
                    break
                time.sleep(0.02)
            time.sleep(max(0.0, 1.2 - (time.time() - sent)))
    background.wait(seconds + 120)
    return {
        "background_readings_per_s": INCIDENT_RATE,
        "floods": floods,
        "incidents_seen": len(latencies),
        "incident_p50_s": round(statistics.median(latencies), 3) if latencies else -1.0,
        "incident_p99_s": round(percentile(latencies, 0.99), 3),
        "incident_max_s": round(max(latencies), 3) if latencies else -1.0,
    }


@dataclasses.dataclass(frozen=True)
class Running:
    """The platform's part a benchmark started: its database, the pids of every process, and the probes."""

    database: str
    pids: dict[str, int]
    probes: Probes


@contextlib.contextmanager
def running(
    info: dict[str, Any], warehouse: clickhouse.Warehouse, root: Path, *, bridges: int, workers: int, name: str
) -> Iterator[Running]:
    """Its own database, `bridges` bridges and `workers` workers on the stack, and probes flowing end to end; all
    stopped on leaving."""
    tag = uuid.uuid4().hex[:6]
    database = f"pl{tag}"
    migrate(warehouse, database)
    started = processes.start_bridges(info, bridges, share_group=f"pl-{tag}", log_dir=root)
    started += processes.start_workers(info, workers, database=database, app_id=f"ioc-streams-pl-{tag}", root=root)
    pids = {
        "mosquitto": int(info["mosquitto"]["pid"]),
        "kafka": int(info["kafka"]["pid"]),
        "clickhouse": int(info["clickhouse"]["pid"]),
        **{f"bridge-{i}": p.pid for i, p in enumerate(started[:bridges])},
        **{f"worker-{i}": p.pid for i, p in enumerate(started[bridges:])},
    }
    probes: Probes | None = None
    try:
        probes = Probes(info["mosquitto"], warehouse, database)
        probes.start()
        ready_by = time.monotonic() + 90
        while not probes.latencies and time.monotonic() < ready_by:  # workers joined, path open end to end
            time.sleep(0.5)
        if not probes.latencies:
            raise RuntimeError(f"{name}: no probe reading reached ClickHouse in 90 s; see the logs in {root}")
        yield Running(database, pids, probes)
    finally:
        if probes is not None:
            probes.stop()
        processes.stop(started)


@contextlib.contextmanager
def stack(prefix: str) -> Iterator[tuple[dict[str, Any], clickhouse.Warehouse, Path]]:
    """The load generator built and a fresh stack (Mosquitto, Kafka, ClickHouse) in a temporary directory:
    (its endpoints, a ClickHouse connection, the directory for logs); brought down on leaving."""
    loadgen.build()
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        root = Path(tmp)
        local = Stack(root / "stack")
        try:
            info = local.up(["mosquitto", "kafka", "clickhouse"])
            warehouse = clickhouse.connect(ClickHouseEndpoint.from_service(info["clickhouse"]))
            try:
                yield info, warehouse, root
            finally:
                warehouse.close()
        finally:
            local.down()


def _ramp(
    info: dict[str, Any],
    warehouse: clickhouse.Warehouse,
    root: Path,
    config: Config,
    *,
    step_s: float,
    floods: int,
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """One configuration: its own database, bridges, workers and vendor; steps until one fails."""
    result: dict[str, Any] = {"config": dataclasses.asdict(config), "name": config.name, "steps": []}
    with running(info, warehouse, root, bridges=config.bridges, workers=config.workers, name=config.name) as path:
        database, probes = path.database, path.probes
        pids = {**path.pids, "bench": os.getpid()}
        vendor, password = loadgen.new_vendor(info["mosquitto"])
        # Warm-up, not measured: the workers' first flushes and the bridges' first batches (a first step timed
        # straight after start-up failed its p99 at loads a later step held).
        warm = loadgen.Publisher(info["mosquitto"], vendor, password, [(config.rates[0], 10)], batch=config.batch)
        warm.start()
        warm.wait(130)
        time.sleep(5)
        for index, rate in enumerate(config.rates):
            step = _step(
                info, warehouse, database, probes, pids,
                config=config, rate=rate, index=index, seconds=step_s, vendor=vendor, password=password,
                profile_to=profile_to,
            )  # fmt: skip
            result["steps"].append(step)
            if not step["held"]:
                break
        if floods:
            result["incidents"] = _incidents(info, database, vendor, password, floods)
    held = [s for s in result["steps"] if s["held"]]
    best = max(held, key=lambda s: s["readings_per_s"]) if held else None
    result["sustained_readings_per_s"] = best["readings_per_s"] if best else 0
    result["sustained_messages_per_s"] = best["messages_per_s"] if best else 0
    result["at_sustained"] = best
    return result


def _mosquitto_alone(info: dict[str, Any], rates: tuple[float, ...], step_s: float) -> dict[str, Any]:
    """The broker alone: one-reading messages from the generator to one counting subscriber (QoS 1, TLS)."""
    mosquitto = info["mosquitto"]
    vendor, password = loadgen.new_vendor(mosquitto, "anchor")
    subscriber = loadgen.Subscriber(
        mosquitto,
        mosquitto["bridge_user"],
        mosquitto["bridge_password"],
        f"$share/anchor-{vendor}/ioc/v1/+/+/{vendor}/#",
    )
    subscriber.start()
    steps, best = [], None
    pid = int(mosquitto["pid"])
    try:
        for index, rate in enumerate(rates):
            before_count, before_cpu = subscriber.count(), loadgen.cpu_s(pid)
            publisher = loadgen.Publisher(mosquitto, vendor, password, [(rate, step_s)], device_prefix=f"m{index}x")
            started = time.monotonic()
            publisher.start()
            done = publisher.wait(step_s + 120)
            elapsed = time.monotonic() - started
            cpu = loadgen.cpu_s(pid) - before_cpu
            time.sleep(2)
            received = subscriber.count() - before_count
            step = {
                "offered_messages_per_s": rate,
                "published": done["acked_messages"],
                "received": received,
                "messages_per_s": round(received / max(elapsed - 1, step_s)),  # less the generator's TLS connects
                "mosquitto_cores": round(cpu / elapsed, 2),
                "generator_cores": round(done["cpu_s"] / elapsed, 2),
                "held": received >= done["acked_messages"] >= PUBLISHED_SHARE * rate * step_s,
            }
            print(f"  mosquitto alone {rate:,.0f}/s: {step}", flush=True)
            steps.append(step)
            if not step["held"]:
                break
            best = step
    finally:
        subscriber.stop()
    return {"steps": steps, "sustained_messages_per_s": best["messages_per_s"] if best else 0, "at_sustained": best}


def _kafka_alone(info: dict[str, Any], seconds: float = 10.0) -> dict[str, Any]:
    """Kafka alone: one producer (the bridge's settings: acks=all, idempotent, lz4) sending bridge-sized batches
    of 100 readings as fast as the broker takes them."""
    kafka = info["kafka"]
    producer = Producer(
        {
            **KafkaEndpoint.from_service(kafka).client_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 200_000,
        }
    )
    now = dt.datetime.now(dt.UTC)
    items = [
        Ingested(
            event=SensorReading(
                vendor="anchor", device=f"k{i:03}", unit="25957", kind=SensorKind.WATER, seq=i,
                observed_at=now, values={"waterLevel": 0.5 + i / 1000},
            ),
            path=TREE.path("25957"),
            received_at=now,
        )
        for i in range(100)
    ]  # fmt: skip
    value = codecs.encode(IngestBatch(items=items))
    delivered = [0]

    def counted(error: object, _message: object) -> None:
        if error is None:
            delivered[0] += 1

    pid, cpu_before = int(kafka["pid"]), loadgen.cpu_s(int(kafka["pid"]))
    started = time.monotonic()
    own_before = time.process_time()
    sent = 0
    while time.monotonic() - started < seconds:
        try:
            producer.produce(
                topics.READINGS.name, value=value, partition=sent % topics.READINGS.partitions, on_delivery=counted
            )
            sent += 1
        except BufferError:
            producer.poll(0.01)
        producer.poll(0)
    producer.flush(60)
    elapsed = time.monotonic() - started
    return {
        "message_bytes": len(value),
        "readings_per_message": 100,
        "messages_per_s": round(delivered[0] / elapsed),
        "readings_per_s": round(delivered[0] * 100 / elapsed),
        "mb_per_s": round(delivered[0] * len(value) / elapsed / 1e6, 1),
        "kafka_cores": round((loadgen.cpu_s(pid) - cpu_before) / elapsed, 2),
        "producer_cores": round((time.process_time() - own_before) / elapsed, 2),
    }


BATCHED_RATES: Final = (10_000.0, 20_000.0, 30_000.0, 40_000.0, 50_000.0, 60_000.0, 70_000.0, 80_000.0)
SINGLE_RATES: Final = (2_000.0, 5_000.0, 8_000.0, 10_000.0, 12_000.0, 14_000.0, 16_000.0, 18_000.0, 20_000.0, 24_000.0)
CONFIGS: Final = (
    Config(50, 1, 1, BATCHED_RATES),
    Config(50, 1, 2, BATCHED_RATES),  # batched, the worker is the limit: one bridge is enough
    Config(1, 1, 1, SINGLE_RATES),
    Config(1, 2, 1, SINGLE_RATES),
    Config(1, 2, 2, SINGLE_RATES),
)


def pipeline(
    configs: tuple[Config, ...] = CONFIGS,
    *,
    step_s: float = 20.0,
    floods: int = 30,
    anchors: bool = True,
    mosquitto_rates: tuple[float, ...] = (5_000.0, 10_000.0, 15_000.0, 20_000.0, 30_000.0, 40_000.0),
    profile_to: Path | None = None,
) -> dict[str, Any]:
    """Every configuration's ramp on one stack, the anchors first; floods in the first configuration only.

    `profile_to`: a directory for py-spy profiles of the first bridge at every step of the one-bridge, one-worker
    ramp of one-reading messages (the bridge's profile at saturation is its last step)."""
    results: dict[str, Any] = {"ramps": [], "load_1m_start": os.getloadavg()[0]}
    with stack("ioc-bench-pipeline-") as (info, warehouse, root):
        if anchors:
            results["mosquitto_alone"] = _mosquitto_alone(info, mosquitto_rates, step_s)
            results["kafka_alone"] = _kafka_alone(info)
            print(f"  kafka alone: {results['kafka_alone']}", flush=True)
        for number, config in enumerate(configs):
            profiled = profile_to if (config.batch, config.bridges, config.workers) == (1, 1, 1) else None
            results["ramps"].append(
                _ramp(
                    info,
                    warehouse,
                    root,
                    config,
                    step_s=step_s,
                    floods=floods if number == 0 else 0,
                    profile_to=profiled,
                )
            )
    results["load_1m_end"] = os.getloadavg()[0]
    return results


def summary(results: dict[str, Any]) -> dict[str, Any]:
    """The flat figures `python -m bench` prints and stores; the ramps themselves go to pipeline-ramps.json."""
    figures: dict[str, Any] = {}
    for ramp in results["ramps"]:
        key = ramp["name"].replace("-per-message ", "_").replace(" ", "_")
        best = ramp["at_sustained"] or {}
        figures[f"{key}_readings_per_s"] = ramp["sustained_readings_per_s"]
        figures[f"{key}_messages_per_s"] = ramp["sustained_messages_per_s"]
        figures[f"{key}_row_p99_s"] = best.get("row_p99_s", -1.0)
        figures[f"{key}_readings_per_core_s"] = best.get("readings_per_core_s", 0)
        figures[f"{key}_stopped_by"] = ramp["steps"][-1]["failure"] if ramp["steps"] else "no step"
        if "incidents" in ramp:
            figures.update({f"incident_{k}": v for k, v in ramp["incidents"].items()})
    if "mosquitto_alone" in results:
        figures["anchor_mosquitto_messages_per_s"] = results["mosquitto_alone"]["sustained_messages_per_s"]
    if "kafka_alone" in results:
        figures["anchor_kafka_readings_per_s"] = results["kafka_alone"]["readings_per_s"]
        figures["anchor_kafka_messages_per_s"] = results["kafka_alone"]["messages_per_s"]
    figures["load_1m_start"] = round(results["load_1m_start"], 1)
    figures["load_1m_end"] = round(results["load_1m_end"], 1)
    return figures


def parse_options(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench pipeline")
    parser.add_argument(
        "--profile", action="store_true", help="py-spy the first bridge at each one-reading step (bench-results/)"
    )
    return parser.parse_args(argv)


def run(options: argparse.Namespace | None = None) -> dict[str, Any]:
    RESULTS.mkdir(exist_ok=True)
    results = pipeline(profile_to=RESULTS if options is not None and options.profile else None)
    (RESULTS / "pipeline-ramps.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    return summary(results)
