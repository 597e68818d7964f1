"""The benchmarks' native MQTT load generator (bench/loadgen, Go), built and run through Mosquitto and a bridge.

The slow test builds the generator from its source (cached by hash under ~/.cache/ioc), publishes a two-step
ramp over TLS as a fresh vendor through a bridge process to Kafka, and checks every acknowledged reading arrived
with each device's sequence numbers unbroken; the counting subscriber sees what the broker routed. The fast tests
check the ramp helper and that the report renders a pipeline run.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from bench import loadgen, processes, report
from ioc import codecs, topics
from ioc.events import IngestBatch
from ioc.settings import KafkaEndpoint


def test_ramp_rises_geometrically_to_the_top() -> None:
    assert loadgen.ramp(1000, 2, 8000) == [1000, 2000, 4000, 8000]
    assert loadgen.ramp(1000, 1.5, 3000) == [1000, 1500, 2250]
    with pytest.raises(ValueError, match="factor > 1"):
        loadgen.ramp(1000, 1, 3000)


def test_report_renders_a_pipeline_run_beside_its_anchors(tmp_path: Path) -> None:
    step = {
        "offered_readings_per_s": 10_000.0, "readings_per_s": 9_950, "messages_per_s": 199, "row_p50_s": 2.1,
        "row_p99_s": 3.4, "total_cores": 1.5, "total_waited_cores": 0.25, "readings_per_core_s": 6_633,
        "held": True, "failure": "",
        "cores": {"bridge-0": 0.2, "worker-0": 0.8, "kafka": 0.3, "generator": 0.05},
    }  # fmt: skip
    failed = {**step, "offered_readings_per_s": 20_000.0, "readings_per_s": 12_000, "held": False, "failure": "5 lost"}
    ramps = {
        "load_1m_start": 1.2,
        "load_1m_end": 3.4,
        "ramps": [
            {
                "name": "50-per-message 1b1w", "config": {"batch": 50, "bridges": 1, "workers": 1},
                "steps": [step, failed], "at_sustained": step, "sustained_readings_per_s": 9_950,
                "sustained_messages_per_s": 199,
                "incidents": {"background_readings_per_s": 5000, "floods": 3, "incidents_seen": 3,
                              "incident_p50_s": 0.3, "incident_p99_s": 0.6, "incident_max_s": 0.6},
            }
        ],
        "mosquitto_alone": {"sustained_messages_per_s": 30_000, "at_sustained": {"mosquitto_cores": 0.6}},
        "kafka_alone": {"readings_per_s": 190_000, "messages_per_s": 1_900, "mb_per_s": 53.0, "kafka_cores": 0.3,
                        "message_bytes": 28_100, "readings_per_message": 100},
    }  # fmt: skip
    (tmp_path / "pipeline-ramps.json").write_text(json.dumps(ramps), encoding="utf-8")
    text = report.write(tmp_path).read_text(encoding="utf-8")
    assert "| 50-per-message 1b1w | **9,950** | 199 | 2.10 / 3.40 s | 1.50 | 0.25 | 6,633 | 5 lost |" in text
    assert "Kafka alone 190,000 readings/s" in text and "p99 **0.60 s**" in text
    assert all((tmp_path / name).stat().st_size > 1000 for name in ("throughput.png", "latency.png", "cpu.png"))


def _reader(kafka: dict[str, Any]) -> Consumer:
    consumer = Consumer({**KafkaEndpoint.from_service(kafka).client_config(), "group.id": f"t-{os.getpid()}"})
    name = topics.READINGS.name
    parts = consumer.list_topics(name, timeout=10).topics[name].partitions
    consumer.assign(
        [TopicPartition(name, p, consumer.get_watermark_offsets(TopicPartition(name, p))[1]) for p in parts]
    )
    return consumer


def test_generator_ramp_reaches_kafka_through_a_bridge_with_every_sequence(
    mosquitto: dict[str, Any], kafka: dict[str, Any], tmp_path: Path
) -> None:
    loadgen.build()
    info = {"mosquitto": mosquitto, "kafka": kafka}
    vendor, password = loadgen.new_vendor(mosquitto, "t")
    consumer = _reader(kafka)
    counter = loadgen.Subscriber(
        mosquitto, mosquitto["bridge_user"], mosquitto["bridge_password"], f"$share/t-{vendor}/ioc/v1/+/+/{vendor}/#"
    )
    counter.start()
    bridges = processes.start_bridges(info, 1, share_group=f"t-{vendor}", log_dir=tmp_path)
    try:
        publisher = loadgen.Publisher(
            mosquitto, vendor, password, [(200, 2), (1000, 2)], batch=5, devices=20, connections=2
        )
        processes.wait_for_bridge(info, consumer, vendor, password)  # subscribed: nothing is routed to nobody
        publisher.start()
        done = publisher.wait(60)
        steps = publisher.step_lines()
        seqs: dict[str, list[int]] = defaultdict(list)
        deadline = time.monotonic() + 60
        while sum(map(len, seqs.values())) < done["acked_readings"] and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            for item in codecs.decode(message.value() or b"", IngestBatch).items:
                if item.event.vendor == vendor and item.event.device.startswith("d"):  # not the warm-up's
                    seqs[item.event.device].append(item.event.seq)
    finally:
        processes.stop(bridges)
        consumer.close()
        routed = counter.stop()
    assert [s["offered_readings_per_s"] for s in steps] == [200, 1000]
    assert done["failed_messages"] == 0 and done["published_messages"] == done["acked_messages"]
    assert done["acked_readings"] == 5 * done["acked_messages"] >= 0.9 * (200 * 2 + 1000 * 2)
    assert done["cpu_s"] > 0
    assert sum(map(len, seqs.values())) == done["acked_readings"]
    assert sorted(seqs) == [f"d{i:05}" for i in range(20)]
    for device, numbers in seqs.items():
        assert sorted(numbers) == list(range(len(numbers))), f"{device}: a sequence gap or a duplicate"
    # The counting subscriber shares the broker's routing with the bridge's group: it saw every message too (and the
    # warm-up's few readings before them).
    assert routed["readings"] >= done["acked_readings"]


def test_scale_out_sizes_a_province_and_a_city_from_rates_per_core() -> None:
    single = {
        "messages_per_s": 4_000, "readings_per_s": 4_000,
        "cores": {"bridge-0": 0.8, "mosquitto": 0.2, "worker-0": 0.2, "kafka": 0.04, "clickhouse": 0.02},
    }  # fmt: skip
    batched = {
        "messages_per_s": 400, "readings_per_s": 20_000,
        "cores": {"bridge-0": 0.4, "worker-0": 0.5, "kafka": 0.2, "clickhouse": 0.1},
    }  # fmt: skip
    ramps = [
        {"config": {"batch": 1}, "at_sustained": single},
        {"config": {"batch": 50}, "at_sustained": batched},
    ]
    rows = {line.split(" | ")[0]: line for line in report.scale_out(ramps) if line.startswith("| ")}
    assert "5,000 ÷ 5,000 × 2 = 2.0 → **2**" in rows["| bridge replicas (1 core each)"]
    assert "50,000 ÷ 5,000 × 2 = 20.0 → **20**" in rows["| bridge replicas (1 core each)"]
    assert rows["| stream workers (1 core each)"].endswith("= 0.5 → **1** | 50,000 ÷ 20,000 × 2 = 5.0 → **5** |")
    assert rows["| readings topic partitions (≥ 2 per worker, power of two, ≥ 8)"].endswith("**8** | **16** |")
    assert "= 3.0 cores → **3**" in rows["| Kafka brokers (2 cores; ≥ 3 for replication)"]
    assert report.scale_out(ramps[:1]) == ["", "(No sizing: a ramp held no step, so some rate per core is unknown.)"]
