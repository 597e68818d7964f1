"""The platform's processes as a benchmark starts them on its own stack: bridge replicas and stream workers.

Each is the production entry point (`python -m sensors.bridge`, `python -m streams worker`) configured from the
stack's endpoints with its own Kafka principal, as `ioc up` and the chart run them; several bridges join one MQTT
shared subscription (the broker spreads messages over them), several workers one Kafka group.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from bench import loadgen
from ioc import codecs, kafka_access
from ioc.events import IngestBatch
from ioc.settings import KafkaEndpoint


def bridge_env(stack_info: dict[str, Any], *, share_group: str, replica: str) -> dict[str, str]:
    """A bench bridge: over TLS with its own login; limits raised because one bench vendor sends the whole load."""
    mosquitto, kafka = stack_info["mosquitto"], stack_info["kafka"]
    return {
        **os.environ,
        "IOC_BRIDGE_MQTT__HOST": mosquitto["host"],
        "IOC_BRIDGE_MQTT__PORT": str(mosquitto["tls_port"]),
        "IOC_BRIDGE_MQTT__TLS_CA_FILE": mosquitto["ca_file"],
        "IOC_BRIDGE_MQTT__USERNAME": mosquitto["bridge_user"],
        "IOC_BRIDGE_MQTT__PASSWORD": mosquitto["bridge_password"],
        **KafkaEndpoint.from_service(kafka, kafka_access.BRIDGE).environment("IOC_BRIDGE_KAFKA__"),
        "IOC_BRIDGE_SHARE_GROUP": share_group,
        "IOC_BRIDGE_REPLICA": replica,
        "IOC_BRIDGE_DEVICE_RATE_PER_S": "100000",
        # One bench vendor sends the whole load: its own limit (2,000 events/s by default) would refuse most of it.
        "IOC_BRIDGE_VENDOR_RATE_PER_S": "1000000",
        "IOC_BRIDGE_VENDOR_BURST": "1000000",
        "IOC_BRIDGE_DEVICE_BURST": "100000",
        "IOC_BRIDGE_MAX_INFLIGHT": "5000",
        "IOC_BRIDGE_LOG_LEVEL": "WARNING",
        "IOC_BRIDGE_LINGER_MS": os.environ.get("BENCH_LINGER_MS", "20"),
    }


def start_bridges(
    stack_info: dict[str, Any], count: int, *, share_group: str, log_dir: Path
) -> list[subprocess.Popen[bytes]]:
    """`count` bridge replicas on one shared subscription, logs in `log_dir`."""
    started = []
    for index in range(count):
        env = bridge_env(stack_info, share_group=share_group, replica=f"{share_group}-{index}")
        with (log_dir / f"bridge-{share_group}-{index}.log").open("wb") as log:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "sensors.bridge"], env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
    return started


def wait_for_bridge(info: dict[str, Any], consumer: Consumer, vendor: str, password: str) -> None:
    """Publish a few readings until one comes out of Kafka: the bridge has subscribed (until then Mosquitto routes
    a publish to nobody, and the first step would count those as lost)."""
    deadline = time.monotonic() + 90
    attempt = 0
    while time.monotonic() < deadline:
        warm = loadgen.Publisher(
            info["mosquitto"], vendor, password, [(50, 1)], devices=5, connections=1, device_prefix=f"w{attempt}x"
        )
        warm.start()
        warm.wait(60)
        attempt += 1
        until = time.monotonic() + 3
        while time.monotonic() < until:
            message = consumer.poll(0.2)
            if message is None or message.error():
                continue
            if any(i.event.vendor == vendor for i in codecs.decode(message.value() or b"", IngestBatch).items):
                return
    raise RuntimeError("the bench bridge took nothing from MQTT in 90 s; see its log")


def worker_env(
    stack_info: dict[str, Any], *, database: str, app_id: str, data_dir: Path, offset_reset: str
) -> dict[str, str]:
    """A bench stream worker writing into `database`; workers with the same `app_id` share the partitions."""
    ch, kafka = stack_info["clickhouse"], stack_info["kafka"]
    return {
        **os.environ,
        **KafkaEndpoint.from_service(kafka, kafka_access.STREAMS).environment("IOC_STREAMS_KAFKA__"),
        "IOC_STREAMS_CLICKHOUSE__HOST": ch["host"],
        "IOC_STREAMS_CLICKHOUSE__PORT": str(ch["port"]),
        "IOC_STREAMS_CLICKHOUSE__HTTP_PORT": str(ch["http_port"]),
        "IOC_STREAMS_CLICKHOUSE__USER": ch["user"],
        "IOC_STREAMS_CLICKHOUSE__PASSWORD": ch["password"],
        "IOC_STREAMS_APP_ID": app_id,  # under the workers' ACL prefix (ioc-streams)
        "IOC_STREAMS_DATABASE": database,
        "IOC_STREAMS_DATA_DIR": str(data_dir),
        "IOC_STREAMS_WEB_PORT": "0",
        "IOC_STREAMS_AUTO_OFFSET_RESET": offset_reset,
        "IOC_STREAMS_SINK_BATCH_ROWS": "20000",
    }


def start_workers(
    stack_info: dict[str, Any], count: int, *, database: str, app_id: str, root: Path, offset_reset: str = "latest"
) -> list[subprocess.Popen[bytes]]:
    """`count` stream workers of one app (each its own data directory), logs under `root`."""
    started = []
    for index in range(count):
        env = worker_env(
            stack_info, database=database, app_id=app_id, data_dir=root / f"{app_id}-{index}", offset_reset=offset_reset
        )
        with (root / f"worker-{app_id}-{index}.log").open("wb") as log:
            started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "streams", "worker", "--loglevel=warn", "--without-web"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    return started


def stop(processes: list[subprocess.Popen[bytes]], timeout: float = 60) -> None:
    """SIGTERM each (they finish what they hold), then wait; kill what does not end in `timeout`."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
