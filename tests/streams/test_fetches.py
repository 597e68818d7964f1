"""The workers' fetch settings, by their effect: a worker under a steady trickle of records asks Kafka far less often
than one that takes whatever is there (Faust's own 1 byte), and both store every reading."""

from __future__ import annotations

import itertools
import re
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from ioc.settings import KafkaEndpoint
from tests.streams.worker import Worker, reading

RECORDS = 1000
EVERY_S = 0.002


class _Tuned(Worker):
    def __init__(self, *args: Any, fetch: dict[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fetch = fetch

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.fetch}


def _segments_to_kafka(pid: int, ports: set[str]) -> int:
    """TCP segments carrying data that process `pid` sent to the brokers (`ss`: each request is one or more)."""
    lines = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True, check=True).stdout.splitlines()
    total = 0
    for line, info in itertools.pairwise(lines):
        fields = line.split()
        if f"pid={pid}," not in line or len(fields) < 5 or fields[4].rpartition(":")[2] not in ports:
            continue
        sent = re.search(r"data_segs_out:(\d+)", info)
        total += int(sent.group(1)) if sent else 0
    return total


def _segments_per_record(kafka: dict[str, Any], clickhouse: dict[str, Any], tmp: Path, fetch: dict[str, str]) -> float:
    worker = _Tuned(kafka, clickhouse, tmp, fetch=fetch)
    worker.start()
    try:
        worker.wait_live()
        assert worker.process is not None
        ports = {server.rpartition(":")[2] for server in KafkaEndpoint.from_service(kafka).bootstrap.split(",")}
        device = f"trickle-{uuid.uuid4().hex[:6]}"
        before = _segments_to_kafka(worker.process.pid, ports)
        for seq in range(RECORDS):  # a record every few ms: a bridge's Kafka records at one-reading load
            worker.readings([reading("fetches", device, "25747", seq, {"waterLevel": 0.2})])
            time.sleep(EVERY_S)
        sent = _segments_to_kafka(worker.process.pid, ports) - before
        query = f"SELECT count() AS n FROM {worker.database}.readings WHERE device = %(d)s"
        worker.wait_for(query, lambda rows: rows[0]["n"] == RECORDS, d=device)
        return sent / RECORDS
    finally:
        worker.close()


def test_fuller_fetches_ask_kafka_far_less_often_and_lose_nothing(
    kafka: dict[str, Any], clickhouse: dict[str, Any], tmp_path: Path
) -> None:
    one_byte = {"IOC_STREAMS_FETCH_MIN_BYTES": "1", "IOC_STREAMS_FETCH_MAX_WAIT_MS": "1000"}  # as Faust asks
    faust = _segments_per_record(kafka, clickhouse, tmp_path / "faust", one_byte)
    ours = _segments_per_record(kafka, clickhouse, tmp_path / "ours", {})  # the defaults: 64 KiB or 50 ms
    # With Faust's 1 byte each record is about a fetch of its own (measured: 0.93 segments a record); the defaults
    # wait up to 50 ms, a fetch for every dozen records or so here (0.09, the worker's other traffic included).
    assert faust > 0.5, f"{faust:.2f} segments a record with 1-byte fetches: not a fetch per record, the test is off"
    assert ours < faust / 4, f"{ours:.2f} segments a record with the defaults against {faust:.2f} with 1 byte"
