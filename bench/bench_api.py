"""Citizen API: latency of public reads at 500 requests/s, and report submission at 200 requests/s without loss.

Everything runs on this machine: a local Kafka and ClickHouse (own stack, or IOC_BENCH_STACK=DIR to reuse
one started with `ioc stack up --dir DIR`), a seeded warehouse, one API process (`python -m dashboards.api`,
production settings: 15 s cache), and this process generating load open-loop with aiohttp: requests start
on a fixed schedule whatever the answers, and latency is measured from the scheduled start, so a slow
server cannot hide its queueing (no coordinated omission). The figures include whatever else the shared
two-core machine is running at the time (the record keeps the load average): the tail moves with it.
Reads cycle through the public endpoints (air quality, floods, cameras, 766 scores, NGSI-LD, a request's
status). Submissions carry unique Idempotency-Keys; afterwards every report id answered 201 is looked for
in Kafka: "lost" counts those missing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from confluent_kafka import Consumer, TopicPartition

from ioc import codecs, kafka_access
from ioc.clients import clickhouse
from ioc.events import CitizenReport
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint
from iocctl.localstack import Stack
from streams.warehouse import migrate
from tests.api import seed
from tests.api.server import free_port

ROOT = Path(__file__).parents[1]
KEY = "bench-key"
READS = (
    "/open-data/v1/air-quality",
    "/open-data/v1/flood-warnings",
    "/open-data/v1/cameras",
    "/open-data/v1/public-services/scores",
    "/ngsi-ld/v1/entities?type=AirQualityObserved,Alert",
    f"/open311/v2/requests/{seed.REPORT_ID}.json",
    "/open-data/v1/air-quality?unit=725",
    "/open311/v2/services.json",
)
TOPIC = "ioc.citizen-reports.v1"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


@dataclasses.dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    body: bytes


async def _load(
    base: str, rate: float, seconds: float, make: Any, *, connections: int = 64
) -> tuple[list[float], list[Any]]:
    # aiohttp rather than httpx for the load: the generator shares two cores with what it measures, and
    # aiohttp's client costs about a third of httpx's per request.
    connector = aiohttp.TCPConnector(limit=connections)
    async with aiohttp.ClientSession(base, connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as client:
        latencies: list[float] = []
        answers: list[Any] = []
        start = time.perf_counter()
        total = int(rate * seconds)

        async def one(index: int, due: float) -> None:
            try:
                answers.append(await make(client, index))
            except Exception as exc:  # noqa: BLE001 - an error is a result to count, not a crash
                answers.append(exc)
            latencies.append(time.perf_counter() - due)

        # Requests are started by one pacing loop, each as it falls due, rather than all created up front:
        # thousands of sleeping tasks would make the generator's own GC pauses part of the measurement.
        running: set[asyncio.Task[None]] = set()
        gc.disable()
        try:
            for index in range(total):
                due = start + index / rate
                delay = due - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                task = asyncio.create_task(one(index, due))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running)
        finally:
            gc.enable()
    return latencies, answers


def _summary(prefix: str, latencies: list[float], answers: list[Any], seconds: float) -> dict[str, float]:
    ok = [a for a in answers if isinstance(a, _Answer) and a.status < 400]
    return {
        f"{prefix}_requests": len(answers),
        f"{prefix}_ok": len(ok),
        f"{prefix}_errors": len(answers) - len(ok),
        f"{prefix}_achieved_per_s": round(len(answers) / seconds, 1),
        f"{prefix}_p50_ms": round(_percentile(latencies, 0.50) * 1000, 1),
        f"{prefix}_p95_ms": round(_percentile(latencies, 0.95) * 1000, 1),
        f"{prefix}_p99_ms": round(_percentile(latencies, 0.99) * 1000, 1),
    }


def _reports_in_kafka(admin: KafkaEndpoint, starts: dict[int, int]) -> set[str]:
    consumer = Consumer({**admin.client_config(), "group.id": f"bench-{uuid.uuid4().hex[:6]}"})
    consumer.assign([TopicPartition(TOPIC, p, o) for p, o in starts.items()])
    found: set[str] = set()
    idle = time.monotonic()
    while time.monotonic() - idle < 5:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        idle = time.monotonic()
        found.add(codecs.decode(message.value() or b"", CitizenReport).report_id)
    consumer.close()
    return found


def _ends(admin: KafkaEndpoint) -> dict[int, int]:
    consumer = Consumer({**admin.client_config(), "group.id": "bench-offsets"})
    partitions = consumer.list_topics(TOPIC, timeout=10).topics[TOPIC].partitions
    ends = {p: consumer.get_watermark_offsets(TopicPartition(TOPIC, p), timeout=10)[1] for p in partitions}
    consumer.close()
    return ends


def _bench(info: dict[str, Any], root: Path) -> dict[str, float]:
    ch = info["clickhouse"]
    # The API as its own principal; the bench reads the topic back as the stack's admin.
    api_kafka = KafkaEndpoint.from_service(info["kafka"], kafka_access.API)
    admin_kafka = KafkaEndpoint.from_service(info["kafka"])
    database = f"bench_{uuid.uuid4().hex[:8]}"
    admin_endpoint = ClickHouseEndpoint(
        host=ch["host"], port=ch["port"], http_port=ch["http_port"], user=ch["user"], password=ch["password"]
    )
    with clickhouse.connect(admin_endpoint) as admin:
        migrate(admin, database)
        seed.seed(admin, database)
    port = free_port()
    env = {
        **os.environ,
        "IOC_API_PORT": str(port),
        "IOC_API_SITE_UNIT": "74",
        "IOC_API_PUBLIC_ENABLED": "true",
        **api_kafka.environment("IOC_API_KAFKA__"),
        "IOC_API_CLICKHOUSE__HOST": ch["host"],
        "IOC_API_CLICKHOUSE__PORT": str(ch["port"]),
        "IOC_API_CLICKHOUSE__USER": ch["user"],
        "IOC_API_CLICKHOUSE__PASSWORD": ch["password"],
        "IOC_API_CLICKHOUSE__DATABASE": database,
        "IOC_API_CLIENTS": json.dumps({"bench": {"key": KEY, "rate_per_s": 10000, "burst": 10000}}),
        "IOC_API_IDEMPOTENCY_DB": str(root / "api-ledger.sqlite3"),
        "IOC_API_LOG_LEVEL": "WARNING",
    }
    log = (root / "api.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "dashboards.api"], env=env, cwd=ROOT, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError(f"API did not become ready:\n{(root / 'api.log').read_text()[-2000:]}")
            time.sleep(0.5)

        async def read(client: aiohttp.ClientSession, index: int) -> _Answer:
            async with client.get(READS[index % len(READS)]) as answer:
                return _Answer(answer.status, await answer.read())

        run_id = uuid.uuid4().hex[:8]

        async def submit(client: aiohttp.ClientSession, index: int) -> _Answer:
            form = {
                "api_key": KEY,
                "service_code": "waste",
                "description": f"Rác tồn đọng #{index}",
                "attribute[unit]": "25957",
            }
            headers = {"Idempotency-Key": f"bench-{run_id}-{index}"}
            async with client.post("/open311/v2/requests.json", data=form, headers=headers) as answer:
                return _Answer(answer.status, await answer.read())

        asyncio.run(_load(base, 100, 3, read))  # warm the caches and connections
        read_seconds, submit_seconds = 30.0, 30.0
        latencies, answers = asyncio.run(_load(base, 500, read_seconds, read))
        figures = _summary("reads", latencies, answers, read_seconds)
        starts = _ends(admin_kafka)
        latencies, answers = asyncio.run(_load(base, 200, submit_seconds, submit))
        figures.update(_summary("submit", latencies, answers, submit_seconds))
        accepted = {
            json.loads(a.body)[0]["service_request_id"] for a in answers if isinstance(a, _Answer) and a.status == 201
        }
        in_kafka = _reports_in_kafka(admin_kafka, starts)
        figures["submit_accepted"] = len(accepted)
        figures["submit_lost"] = len(accepted - in_kafka)
        return figures
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        with clickhouse.connect(admin_endpoint) as admin:
            admin.command(f"DROP DATABASE IF EXISTS {database}")


def run() -> dict[str, float]:
    reuse = os.environ.get("IOC_BENCH_STACK")
    with tempfile.TemporaryDirectory(prefix="ioc-bench-api-") as root:
        stack = Stack(Path(reuse or root))
        try:
            info = stack.up(["kafka", "clickhouse"])
            return _bench(info, Path(root))
        finally:
            if not reuse:
                stack.down()


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
