"""Bridge throughput and latency, ramped to the limit: readings/s through MQTT → bridge → Kafka, CPU per process.

Everything runs on this machine: a local Mosquitto and Kafka (own stack), one bridge process, the native load
generator (bench/loadgen: a vendor's TLS connections, QoS 1, SensorReading JSON) and this process reading Kafka.
Each shape (50-reading messages, one reading per message) is ramped: steps of rising offered load from fresh
devices until a step loses a reading, cannot be published, or its p99 publish → produced to Kafka passes
`P99_BOUND_S`; the highest step that held is the sustained rate, with the CPU of the bridge, Mosquitto, Kafka
and the generator at that rate and the rate per core of the bridge. Latency is from the reading's `observed_at`
(stamped by the generator when it publishes) to the Kafka message's CreateTime (the bridge produced it).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any, Final

from confluent_kafka import Consumer, TopicPartition

from bench import loadgen, processes
from ioc import codecs, topics
from ioc.events import IngestBatch
from ioc.settings import KafkaEndpoint
from iocctl.localstack import Stack

P99_BOUND_S: Final = 0.25
"""A step holds while p99 publish → Kafka stays under 250 ms (the bridge's target; its linger is 20 ms)."""
STEP_S: Final = 15.0


def _step(
    info: dict[str, Any],
    consumer: Consumer,
    pids: dict[str, int],
    *,
    vendor: str,
    password: str,
    rate: float,
    batch: int,
    index: int,
) -> dict[str, Any]:
    prefix = f"r{index:02}x"
    devices = max(50, min(2000, int(rate / batch / 2)))
    publisher = loadgen.Publisher(
        info["mosquitto"], vendor, password, [(rate, STEP_S)], batch=batch, devices=devices, device_prefix=prefix
    )
    cpu_before = {name: loadgen.cpu_s(pid) for name, pid in pids.items()}
    started = time.monotonic()
    publisher.start()
    latencies: list[float] = []
    counted, last_item = 0, started
    while True:
        message = consumer.poll(0.2)
        now = time.monotonic()
        if message is None or message.error():
            if publisher.process.poll() is not None and now - last_item > 5:
                break  # the generator is done and nothing more arrives
            continue
        produced = message.timestamp()[1] / 1000
        for item in codecs.decode(message.value() or b"", IngestBatch).items:
            if item.event.vendor == vendor and item.event.device.startswith(prefix):
                counted += 1
                last_item = now
                latencies.append(produced - item.event.observed_at.timestamp())
    done = publisher.wait(120)
    elapsed = min(last_item, started + STEP_S + 30) - started
    busy = STEP_S if elapsed < STEP_S else elapsed
    cores = {name: round((loadgen.cpu_s(pid) - cpu_before[name]) / busy, 3) for name, pid in pids.items()}
    cores["generator"] = round(done["cpu_s"] / busy, 3)
    latencies.sort()
    published = int(done["acked_readings"])
    p99 = latencies[int(len(latencies) * 0.99)] if latencies else -1.0
    offered_messages = rate / batch * STEP_S
    failure = (
        f"{published - counted} readings lost"
        if counted < published
        else f"p99 publish → Kafka {1000 * p99:.0f} ms > {1000 * P99_BOUND_S:.0f} ms"
        if p99 > P99_BOUND_S or not latencies
        else f"only {done['published_messages']:,} of {offered_messages:,.0f} messages could be published"
        if done["published_messages"] < 0.97 * offered_messages
        else ""
    )
    step = {
        "offered_readings_per_s": rate,
        "published_readings": published,
        "delivered_readings": counted,
        "lost_readings": published - counted,
        "readings_per_s": round(counted / busy),
        "messages_per_s": round(counted / busy / batch),
        "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else -1.0,
        "latency_p99_ms": round(1000 * p99, 1),
        "cores": cores,
        "bridge_readings_per_core_s": round(counted / busy / cores["bridge"]) if cores["bridge"] else 0,
        "held": not failure,
        "failure": failure,
    }
    print(f"  bridge, {batch} per message, {rate:,.0f}/s offered: {step}", flush=True)
    return step


def _ramp(info: dict[str, Any], root: Path, *, batch: int, rates: tuple[float, ...]) -> dict[str, Any]:
    """One bridge; steps of rising offered load until one fails. The sustained step's figures, flat."""
    kafka = info["kafka"]
    vendor, password = loadgen.new_vendor(info["mosquitto"])
    readings = topics.READINGS.name
    consumer = Consumer({**KafkaEndpoint.from_service(kafka).client_config(), "group.id": f"bench-{vendor}"})
    parts = consumer.list_topics(readings, timeout=10).topics[readings].partitions
    consumer.assign(
        [TopicPartition(readings, p, consumer.get_watermark_offsets(TopicPartition(readings, p))[1]) for p in parts]
    )
    bridge = processes.start_bridges(info, 1, share_group=f"bench-{vendor}", log_dir=root)[0]
    pids = {"bridge": bridge.pid, "mosquitto": int(info["mosquitto"]["pid"]), "kafka": int(kafka["pid"])}
    steps: list[dict[str, Any]] = []
    try:
        processes.wait_for_bridge(info, consumer, vendor, password)
        for index, rate in enumerate(rates):
            steps.append(
                _step(info, consumer, pids, vendor=vendor, password=password, rate=rate, batch=batch, index=index)
            )
            if not steps[-1]["held"]:
                break
    finally:
        processes.stop([bridge])
        consumer.close()
    held = [s for s in steps if s["held"]]
    best = max(held, key=lambda s: s["readings_per_s"]) if held else None
    figures: dict[str, Any] = {"readings_per_message": batch, "steps": len(steps)}
    figures["stopped_by"] = steps[-1]["failure"] or "the top of the ramp" if steps else "no step"
    if best is not None:
        figures.update({k: v for k, v in best.items() if k not in ("cores", "held", "failure")})
        figures.update({f"{name}_cores": v for name, v in best["cores"].items()})
    return figures


def run() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ioc-bench-bridge-") as root:
        stack = Stack(Path(root) / "stack")
        try:
            info = stack.up(["mosquitto", "kafka"])
            batched = _ramp(info, Path(root), batch=50, rates=(10_000, 20_000, 30_000, 40_000, 50_000, 60_000, 80_000))
            single = _ramp(info, Path(root), batch=1, rates=(2_000, 3_000, 4_000, 5_000, 6_000, 8_000, 10_000, 12_000))
        finally:
            stack.down()
    figures = {f"batched_{k}": v for k, v in batched.items()}
    figures.update({f"single_{k}": v for k, v in single.items()})
    return figures
