"""Bridge throughput and latency: readings/s through MQTT → bridge → Kafka, bridge CPU, p50/p99 latency.

Everything runs on this machine: a local Mosquitto and Kafka (own stack), one bridge process, one
publisher process using the vendor SDK (gateways sending each device's readings in batches), and this
process reading Kafka. Latency is from the reading's `observed_at` (stamped when published) to when this
process consumed it from Kafka: an upper bound on publish→Kafka. Two runs: batched readings (how gateways
reach the target rate) and one reading per message (the per-message ceiling of the MQTT client library).
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from ioc import codecs, kafka_access, topics
from ioc.clients import dynsec
from ioc.events import IngestBatch
from ioc.settings import KafkaEndpoint, MqttEndpoint
from iocctl.localstack import Stack

PUBLISHER = r"""
import datetime as dt, sys, time
from ioc.events import SensorKind, SensorReading
from ioc.settings import MqttEndpoint
from sensors.sdk import VendorClient
host, port, vendor, password = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
rate, batch, devices, seconds = float(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
endpoint = MqttEndpoint(host=host, port=port, username="vendor." + vendor, password=password, tls_ca_file=sys.argv[9])
client = VendorClient(endpoint, vendor, max_queued=0)
client.connect()
names = [f"d{i:04}" for i in range(devices)]
seqs = [0] * devices
messages_per_s = rate / batch
start = time.monotonic(); sent = 0; turn = 0
# Readings are built directly (the SDK's Device helpers also re-validate each one): the load generator
# shares two cores with everything it measures, so it should cost as little as it can.
while time.monotonic() - start < seconds:
    due = int((time.monotonic() - start) * messages_per_s)
    while sent < due:
        index = turn % devices; turn += 1
        now = dt.datetime.now(dt.UTC)
        readings = [
            SensorReading(vendor=vendor, device=names[index], unit="25957", kind=SensorKind.WATER,
                          seq=seqs[index] + i, observed_at=now, values={"waterLevel": 0.5})
            for i in range(batch)
        ]
        seqs[index] += batch
        if batch == 1:
            client.publish(readings[0])
        else:
            client.publish_batch(readings)
        sent += 1
    time.sleep(0.002)
client.flush(120)
client.close()
print(sent * batch)
"""


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _run(stack_info: dict[str, Any], *, rate: float, batch: int, devices: int, seconds: float) -> dict[str, float]:
    mosquitto, kafka = stack_info["mosquitto"], stack_info["kafka"]
    vendor, password = f"bench{uuid.uuid4().hex[:6]}", uuid.uuid4().hex
    admin = MqttEndpoint(
        host=mosquitto["host"], port=mosquitto["port"], username="admin", password=mosquitto["admin_password"]
    )
    with dynsec.DynsecAdmin(admin) as control:
        control.ensure_vendor(vendor, password)
    env = {
        **os.environ,
        "IOC_BRIDGE_MQTT__HOST": mosquitto["host"],
        # Over TLS, as devices and the bridge connect in the chart.
        "IOC_BRIDGE_MQTT__PORT": str(mosquitto["tls_port"]),
        "IOC_BRIDGE_MQTT__TLS_CA_FILE": mosquitto["ca_file"],
        "IOC_BRIDGE_MQTT__USERNAME": mosquitto["bridge_user"],
        "IOC_BRIDGE_MQTT__PASSWORD": mosquitto["bridge_password"],
        **KafkaEndpoint.from_service(kafka, kafka_access.BRIDGE).environment("IOC_BRIDGE_KAFKA__"),
        "IOC_BRIDGE_SHARE_GROUP": f"bench-{vendor}",
        "IOC_BRIDGE_REPLICA": vendor,
        "IOC_BRIDGE_DEVICE_RATE_PER_S": "100000",
        # One bench vendor sends the whole load: its own limit (2,000 events/s by default) would refuse most of it.
        "IOC_BRIDGE_VENDOR_RATE_PER_S": "1000000",
        "IOC_BRIDGE_VENDOR_BURST": "1000000",
        "IOC_BRIDGE_DEVICE_BURST": "100000",
        "IOC_BRIDGE_MAX_INFLIGHT": "5000",
        "IOC_BRIDGE_LOG_LEVEL": "WARNING",
        "IOC_BRIDGE_LINGER_MS": os.environ.get("BENCH_LINGER_MS", "20"),
    }
    readings = topics.READINGS.name
    consumer = Consumer({**KafkaEndpoint.from_service(kafka).client_config(), "group.id": f"bench-{vendor}"})
    parts = consumer.list_topics(readings, timeout=10).topics[readings].partitions
    consumer.assign(
        [TopicPartition(readings, p, consumer.get_watermark_offsets(TopicPartition(readings, p))[1]) for p in parts]
    )
    bridge = subprocess.Popen([sys.executable, "-m", "sensors.bridge"], env=env)
    time.sleep(3)
    publisher = subprocess.Popen(
        [
            sys.executable,
            "-c",
            PUBLISHER,
            mosquitto["host"],
            str(mosquitto["tls_port"]),
            vendor,
            password,
            str(rate),
            str(batch),
            str(devices),
            str(seconds),
            mosquitto["ca_file"],
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    latencies: list[float] = []  # publish → produced by the bridge (Kafka CreateTime)
    consumed: list[float] = []  # publish → consumed here: an upper bound that adds this reader's lag
    mqtt_leg: list[float] = []  # publish → the bridge took it from MQTT (Ingested.received_at)
    counted = 0
    warmup_s = 2.0
    started = time.monotonic()
    window_start = window_cpu = None
    last_item = started
    while time.monotonic() - started < seconds + 120:
        message = consumer.poll(0.2)
        now = time.monotonic()
        if window_start is None and now - started >= warmup_s:
            window_start, window_cpu = now, _cpu_seconds(bridge.pid)
        if message is None or message.error():
            if publisher.poll() is not None and now - last_item > 5:
                break  # the publisher is done and nothing more arrives
            continue
        wall = dt.datetime.now(dt.UTC).timestamp()
        produced = message.timestamp()[1] / 1000
        for item in codecs.decode(message.value(), IngestBatch).items:
            if item.event.vendor != vendor:
                continue
            counted += 1
            last_item = now
            if window_start is not None:
                observed = item.event.observed_at.timestamp()
                latencies.append(produced - observed)
                consumed.append(wall - observed)
                mqtt_leg.append(item.received_at.timestamp() - observed)
    window_end, end_cpu = last_item, _cpu_seconds(bridge.pid)
    published = int((publisher.communicate(timeout=120)[0] or "0").strip() or 0)
    bridge.terminate()
    bridge.wait(60)
    consumer.close()
    latencies.sort()
    consumed.sort()
    mqtt_leg.sort()
    window = window_end - (window_start or window_end)
    return {
        "target_readings_per_s": rate,
        "readings_per_message": batch,
        "published_readings": published,
        "delivered_readings": counted,
        "readings_per_s": round(len(latencies) / window) if window else 0.0,
        "messages_per_s": round(len(latencies) / window / batch) if window else 0.0,
        "bridge_cpu_pct_of_one_core": round(100 * (end_cpu - (window_cpu or end_cpu)) / window, 1) if window else 0.0,
        "lost_readings": published - counted,
        "latency_p50_ms": round(1000 * latencies[len(latencies) // 2], 1) if latencies else -1.0,
        "latency_p99_ms": round(1000 * latencies[int(len(latencies) * 0.99)], 1) if latencies else -1.0,
        "mqtt_leg_p50_ms": round(1000 * mqtt_leg[len(mqtt_leg) // 2], 1) if mqtt_leg else -1.0,
        "mqtt_leg_p99_ms": round(1000 * mqtt_leg[int(len(mqtt_leg) * 0.99)], 1) if mqtt_leg else -1.0,
        "publish_to_consumed_p99_ms": round(1000 * consumed[int(len(consumed) * 0.99)], 1) if consumed else -1.0,
    }


def run() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="ioc-bench-bridge-") as root:
        stack = Stack(Path(root))
        try:
            info = stack.up(["mosquitto", "kafka"])
            batched = _run(info, rate=22_000, batch=50, devices=500, seconds=20)
            single = _run(info, rate=3_000, batch=1, devices=500, seconds=15)
        finally:
            stack.down()
    figures = {f"batched_{k}": v for k, v in batched.items()}
    figures.update({f"single_{k}": v for k, v in single.items()})
    return figures
