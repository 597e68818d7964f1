"""Stream workers: Kafka → Faust → ClickHouse throughput, and reading → incident-row latency under load.

Own local stack (Kafka, ClickHouse), one `python -m streams worker` process. Throughput: a backlog of
readings (the bridge's batches, 500 devices) is drained by a fresh worker, as fast as it can (the limit, not a
target); the rate is the rows stored per second over the middle of the drain, with each process's cores. Latency,
ramped: while 5,000 readings/s flow (then 10,000, 15,000, ... until p99 passes 1 s), a gauge in a fresh commune
crosses its flood threshold (a reading 6 minutes ago above the level and one now): the time from producing
the second reading to its incident row being readable in ClickHouse, for 30 floods at 5,000/s and 10 at each
rate above. Unit windows: a
province of 2,000 devices rolled up alone (pure, no services): CPU and changelog bytes per device-minute.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from ioc import codecs, kafka_access, topics
from ioc.clients import clickhouse
from ioc.events import DeviceMinute, IngestBatch, Ingested, MeasureStats, SensorKind, SensorReading
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint
from ioc.units import load_tree
from iocctl.localstack import Stack
from streams.agents.common import WindowStore
from streams.warehouse import migrate
from streams.windows import UnitWindows

TREE = load_tree("2024")


def _reading(vendor: str, device: str, unit: str, seq: int, level: float, at: dt.datetime) -> SensorReading:
    return SensorReading(
        vendor=vendor,
        device=device,
        unit=unit,
        kind=SensorKind.WATER,
        seq=seq,
        observed_at=at,
        values={"waterLevel": level},
    )


def _produce(producer: Producer, items: list[SensorReading]) -> None:
    by_partition: dict[int, list[Ingested]] = {}
    for event in items:
        partition = topics.partition_for(topics.device_key(event.vendor, event.device), topics.READINGS.partitions)
        by_partition.setdefault(partition, []).append(
            Ingested(event=event, path=TREE.path(event.unit), received_at=event.observed_at)
        )
    for partition, batch in by_partition.items():
        for start in range(0, len(batch), 500):
            producer.produce(
                topics.READINGS.name,
                key=b"batch",
                value=codecs.encode(IngestBatch(items=batch[start : start + 500])),
                partition=partition,
            )
            producer.poll(0)


def _worker(info: dict[str, Any], database: str, root: Path, *, offset_reset: str) -> subprocess.Popen[bytes]:
    ch, kafka = info["clickhouse"], info["kafka"]
    env = {
        **os.environ,
        **KafkaEndpoint.from_service(kafka, kafka_access.STREAMS).environment("IOC_STREAMS_KAFKA__"),
        "IOC_STREAMS_CLICKHOUSE__HOST": ch["host"],
        "IOC_STREAMS_CLICKHOUSE__PORT": str(ch["port"]),
        "IOC_STREAMS_CLICKHOUSE__HTTP_PORT": str(ch["http_port"]),
        "IOC_STREAMS_CLICKHOUSE__USER": ch["user"],
        "IOC_STREAMS_CLICKHOUSE__PASSWORD": ch["password"],
        "IOC_STREAMS_APP_ID": f"ioc-streams-bench-{uuid.uuid4().hex[:6]}",  # under the workers' ACL prefix
        "IOC_STREAMS_DATABASE": database,
        "IOC_STREAMS_DATA_DIR": str(root / "faust"),
        "IOC_STREAMS_WEB_PORT": "0",
        "IOC_STREAMS_AUTO_OFFSET_RESET": offset_reset,
        "IOC_STREAMS_SINK_BATCH_ROWS": "20000",
    }
    with (root / f"worker-{database}.log").open("wb") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "streams", "worker", "--loglevel=warn", "--without-web"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def _count(warehouse: clickhouse.Warehouse, database: str, vendor: str) -> int:
    rows = warehouse.query(f"SELECT count() AS n FROM {database}.readings WHERE vendor = %(v)s", {"v": vendor})
    return int(rows[0]["n"])


def _throughput(info: dict[str, Any], warehouse: clickhouse.Warehouse, root: Path) -> dict[str, float]:
    database = f"tp{uuid.uuid4().hex[:6]}"
    migrate(warehouse, database)
    producer = Producer({**KafkaEndpoint.from_service(info["kafka"]).client_config(), "linger.ms": 20})
    vendor, devices, per_device = "bench-tp", 500, 800
    base = dt.datetime.now(dt.UTC) - dt.timedelta(hours=2)
    for step in range(per_device):
        _produce(
            producer,
            [
                _reading(vendor, f"d{d:03}", "25957", step, 0.5, base + dt.timedelta(seconds=step))
                for d in range(devices)
            ],
        )
    producer.flush(60)
    total = devices * per_device
    worker = _worker(info, database, root, offset_reset="earliest")
    pids = {"worker": worker.pid, "clickhouse": int(info["clickhouse"]["pid"]), "kafka": int(info["kafka"]["pid"])}
    samples: list[tuple[float, int, dict[str, float]]] = []
    started = time.monotonic()
    try:
        while time.monotonic() - started < 600:
            stored = _count(warehouse, database, vendor)
            samples.append((time.monotonic(), stored, {name: _cpu_s(pid) for name, pid in pids.items()}))
            if stored >= total:
                break
            time.sleep(1)
    finally:
        worker.terminate()
        worker.wait(60)
    # The middle of the drain (10%..90% of the rows): start-up and the last partial flushes excluded.
    low = next(s for s in samples if s[1] >= total * 0.1)
    high = next((s for s in samples if s[1] >= total * 0.9), samples[-1])
    elapsed = high[0] - low[0]
    rate = (high[1] - low[1]) / elapsed if elapsed > 0 else 0.0
    figures: dict[str, float] = {
        "drained_readings": samples[-1][1],
        "readings_total": total,
        "readings_per_s": round(rate),
    }
    # Where the CPU went while draining (cores busy on average): the worker, ClickHouse and Kafka share 2 cores.
    for name in pids:
        figures[f"{name}_cores"] = round((high[2][name] - low[2][name]) / elapsed, 2) if elapsed > 0 else 0.0
    if rate:
        figures["worker_cpu_us_per_reading"] = round(figures["worker_cores"] / rate * 1e6, 1)
        if figures["worker_cores"]:
            figures["readings_per_worker_core_s"] = round(rate / figures["worker_cores"])
    return figures


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) `pid` has used so far; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _latency(
    info: dict[str, Any], warehouse: clickhouse.Warehouse, root: Path, *, rate: int = 5000, floods: int = 30
) -> dict[str, float]:
    database = f"lt{uuid.uuid4().hex[:6]}"
    migrate(warehouse, database)
    worker = _worker(info, database, root, offset_reset="latest")
    producer = Producer({**KafkaEndpoint.from_service(info["kafka"]).client_config(), "linger.ms": 5})
    stop = threading.Event()

    def background() -> None:  # `rate` readings/s from rate/10 calm gauges, a reading each every 0.1 s
        seq, gauges = 0, rate // 10
        next_at = time.monotonic()
        while not stop.is_set():
            now = dt.datetime.now(dt.UTC)
            _produce(producer, [_reading("bench-bg", f"g{d:04}", "25747", seq, 0.4, now) for d in range(gauges)])
            seq += 1
            next_at += 0.1
            time.sleep(max(0.0, next_at - time.monotonic()))

    thread = threading.Thread(target=background, daemon=True)
    latencies: list[float] = []
    try:
        time.sleep(15)  # the worker joins its group
        thread.start()
        time.sleep(5)
        communes = [u.code for u in TREE.at_level("commune")][:floods]
        for unit in communes:
            now = dt.datetime.now(dt.UTC).replace(microsecond=0)
            device = f"flood-{unit}"
            _produce(producer, [_reading("bench-fl", device, unit, 0, 2.0, now - dt.timedelta(minutes=6))])
            producer.flush(10)
            time.sleep(0.2)
            sent = time.monotonic()
            _produce(producer, [_reading("bench-fl", device, unit, 1, 2.0, now)])
            producer.flush(10)
            while time.monotonic() - sent < 30:
                found = warehouse.query(
                    f"SELECT count() AS n FROM {database}.incidents WHERE unit = %(u)s AND rule = 'flood-level'",
                    {"u": unit},
                )
                if found[0]["n"]:
                    latencies.append(time.monotonic() - sent)
                    break
                time.sleep(0.02)
    finally:
        stop.set()
        thread.join(10)
        worker.terminate()
        worker.wait(60)
    latencies.sort()
    return {
        "background_readings_per_s": rate,
        "incidents_measured": len(latencies),
        "reading_to_incident_p50_ms": round(1000 * statistics.median(latencies)) if latencies else -1,
        "reading_to_incident_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99) - 1]) if latencies else -1,
        "reading_to_incident_max_ms": round(1000 * latencies[-1]) if latencies else -1,
    }


def _unit_windows(devices: int = 2000, minutes: int = 40, flush_every: int = 100) -> dict[str, float]:
    """A province's unit windows alone (no Kafka): CPU and changelog bytes per device-minute rolled up."""
    written: list[int] = []

    class Table(dict[bytes, bytes]):
        def __setitem__(self, key: bytes, value: bytes) -> None:
            written.append(len(value))
            super().__setitem__(key, value)

    store = WindowStore(Table(), decode=UnitWindows.decode, encode=UnitWindows.encode, partition_of=lambda unit: 0)
    base = dt.datetime(2025, 6, 1, 1, 0, tzinfo=dt.UTC)
    contributions = [
        DeviceMinute(
            device_key=f"bench/d{d:04}",
            unit="25957",
            target_unit="74",
            minute=base + dt.timedelta(minutes=m),
            measures={"waterLevel": MeasureStats(count=60, sum=30.0 + d, min=0.4, max=0.6)},
        )
        for m in range(minutes)
        for d in range(devices)
    ]
    started = time.process_time()
    for i, contribution in enumerate(contributions, 1):
        store.get(0, "74", lambda: UnitWindows("74")).add(contribution)
        store.mark(0, "74")
        if i % flush_every == 0:
            store.get(0, "74", lambda: UnitWindows("74")).take_rows()
            store.save(0)
    cpu = time.process_time() - started
    return {
        "devices": devices,
        "us_per_device_minute": round(cpu / len(contributions) * 1e6, 1),
        "changelog_bytes_per_device_minute": round(sum(written) / len(contributions)),
        "largest_changelog_record_kib": round(max(written) / 1024, 1),
    }


def run() -> dict[str, Any]:
    figures: dict[str, Any] = {f"unit_windows_{k}": v for k, v in _unit_windows().items()}
    with tempfile.TemporaryDirectory(prefix="ioc-bench-streams-") as tmp:
        root = Path(tmp)
        stack = Stack(root / "stack")
        try:
            info = stack.up(["kafka", "clickhouse"])
            ch = info["clickhouse"]
            warehouse = clickhouse.connect(ClickHouseEndpoint.from_service(ch))
            figures.update({f"throughput_{k}": v for k, v in _throughput(info, warehouse, root).items()})
            figures.update({f"latency_{k}": v for k, v in _latency(info, warehouse, root).items()})
            # The ramp: the highest background rate at which p99 reading → incident row stays under 1 s.
            held = 5000 if 0 < figures["latency_reading_to_incident_p99_ms"] < 1000 else 0
            for rate in (10_000, 15_000, 20_000, 25_000, 30_000) if held else ():
                step = _latency(info, warehouse, root, rate=rate, floods=10)
                print(f"  streams latency at {rate:,} readings/s: {step}", flush=True)
                if not 0 < step["reading_to_incident_p99_ms"] < 1000 or step["incidents_measured"] < 10:
                    figures["latency_ramp_stopped_by"] = f"{rate:,}/s: p99 {step['reading_to_incident_p99_ms']} ms"
                    break
                held = rate
            figures["latency_ramp_highest_readings_per_s_p99_under_1s"] = held
            warehouse.close()
        finally:
            stack.down()
    return figures
