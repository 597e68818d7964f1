"""A 60-second ClickHouse outage pauses the stream workers; they resume with nothing lost or doubled."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

from iocctl.localstack import Stack
from tests.streams.worker import Worker, reading


def test_clickhouse_outage_pauses_then_resumes_without_loss(kafka: dict[str, Any], tmp_path: Path) -> None:
    # A ClickHouse of this test's own: stopping the session's would disturb every other test.
    stack = Stack(tmp_path / "own-clickhouse")
    try:
        clickhouse = stack.up(["clickhouse"])["clickhouse"]
        worker = Worker(kafka, clickhouse, tmp_path)
        worker.start()
        try:
            worker.wait_live()
            vendor = f"outage-{uuid.uuid4().hex[:6]}"
            devices = [f"d{i:02}" for i in range(10)]
            base = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).replace(second=0, microsecond=0)

            def send(steps: range) -> None:
                for step in steps:
                    worker.readings(
                        [
                            reading(vendor, d, "25942", step, {"waterLevel": 0.5}, base + dt.timedelta(seconds=step))
                            for d in devices
                        ]
                    )
                worker.tick(dt.datetime.now(dt.UTC))

            send(range(0, 50))
            worker.wait_for(
                f"SELECT count() AS n FROM {worker.database}.readings FINAL WHERE vendor = %(v)s",
                lambda rows: rows[0]["n"] == 500,
                v=vendor,
            )
            stack.stop_service("clickhouse")
            outage_started = time.monotonic()
            send(range(50, 150))  # consumed while ClickHouse is down: inserts retry, offsets wait
            while time.monotonic() - outage_started < 60:
                worker.tick(dt.datetime.now(dt.UTC))
                time.sleep(5)
            assert worker.process is not None and worker.process.poll() is None, "the worker died in the outage"
            stack.resume_service("clickhouse")
            worker.reconnect()
            rows = worker.wait_for(
                f"SELECT device, count() AS n, uniqExact(seq) AS u, min(seq) AS lo, max(seq) AS hi"
                f" FROM {worker.database}.readings FINAL WHERE vendor = %(v)s GROUP BY device ORDER BY device",
                lambda rows: len(rows) == 10 and all(r["n"] == 150 for r in rows),
                timeout=120,
                v=vendor,
            )
            assert all((r["n"], r["u"], r["lo"], r["hi"]) == (150, 150, 0, 149) for r in rows)
            assert "retrying" in (tmp_path / "worker-1.log").read_text(errors="replace")
        finally:
            worker.close()
    finally:
        stack.down()
