"""End to end: a site's signed report reaches its parent exactly once across sender restarts and outages.

The child is `python -m streams.reporting` (publisher and pusher) reading a real ClickHouse database and
the real Kafka outbox; the parent is a second connector process (`python -m sensors.gateways`) on
loopback. The parent is down when the child starts, the child is killed and restarted, the parent is
stopped while a new revision is published, and still each revision is kept once.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from ioc import codecs, kafka_access, signing, topics, upward
from ioc.clients import clickhouse as ch
from ioc.settings import ClickHouseEndpoint, KafkaEndpoint, ReportingSettings
from sensors.gateways.state import GatewayState
from streams.reporting import ReportingService, current
from streams.warehouse import migrate, rows
from tests.api import seed
from tests.api.conftest import endpoint_of
from tests.api.server import free_port
from tests.reporting import source_check
from tests.reporting.samples import sample_report, snapshot

ROOT = Path(__file__).parents[2]
OUTBOX = topics.REPORTS_OUTBOX.name
READ = "parent-read-token"
CHILD_PRIVATE, CHILD_PUBLIC = signing.generate_signing_key()


class Process:
    """A child process with its log in a file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.env, self.log_path = argv, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(self.argv, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def wait_until(check: Callable[[], Any], what: str, timeout: float = 60, log: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{log()[-3000:]}")


def start_group_at_end(endpoint: KafkaEndpoint, group: str) -> None:
    """Commit the outbox's end offsets for `group`, so the pusher ignores what earlier tests left there."""
    consumer = Consumer({**endpoint.client_config(), "group.id": group, "enable.auto.commit": False})
    try:
        partitions = consumer.list_topics(OUTBOX, timeout=10).topics[OUTBOX].partitions
        ends = [
            TopicPartition(OUTBOX, p, consumer.get_watermark_offsets(TopicPartition(OUTBOX, p), timeout=10)[1])
            for p in partitions
        ]
        consumer.commit(offsets=ends, asynchronous=False)
    finally:
        consumer.close()


@pytest.fixture
def child_db(clickhouse: dict[str, Any]) -> Iterator[tuple[ClickHouseEndpoint, seed.Seeded]]:
    database = f"up_{uuid.uuid4().hex[:10]}"
    with ch.connect(endpoint_of(clickhouse)) as admin:
        migrate(admin, database)
        seeded = seed.seed(admin, database)
        source_check.seed_dossiers(admin, database, seeded.now)
    yield endpoint_of(clickhouse, database), seeded
    with ch.connect(endpoint_of(clickhouse)) as admin:
        admin.command(f"DROP DATABASE IF EXISTS {database}")


def test_a_report_arrives_once_across_restarts_and_outages(
    kafka: dict[str, Any], child_db: tuple[ClickHouseEndpoint, seed.Seeded], tmp_path: Path
) -> None:
    endpoint, seeded = child_db
    group = f"{kafka_access.REPORTING}-{uuid.uuid4().hex[:8]}"  # the reporting principal's groups
    reporting = KafkaEndpoint.from_service(kafka, kafka_access.REPORTING)
    start_group_at_end(reporting, group)
    port = free_port()
    parent_url = f"http://127.0.0.1:{port}"
    parent_env = {
        **os.environ,
        **KafkaEndpoint.from_service(kafka, kafka_access.GATEWAY).environment("IOC_PORTAL_KAFKA__"),
        "IOC_PORTAL_SITE_UNIT": "74",
        "IOC_PORTAL_PORT": str(port),
        "IOC_PORTAL_STATE_DB": str(tmp_path / "parent.sqlite3"),
        "IOC_PORTAL_REPORT_KEYS": json.dumps({"724": CHILD_PUBLIC}),
        "IOC_PORTAL_READ_TOKEN": READ,
    }
    child_env = {
        **os.environ,
        **reporting.environment("IOC_REPORTING_KAFKA__"),
        "IOC_REPORTING_CLICKHOUSE__HOST": endpoint.host,
        "IOC_REPORTING_CLICKHOUSE__PORT": str(endpoint.port),
        "IOC_REPORTING_CLICKHOUSE__USER": endpoint.user,
        "IOC_REPORTING_CLICKHOUSE__PASSWORD": endpoint.password.get_secret_value(),
        "IOC_REPORTING_CLICKHOUSE__DATABASE": endpoint.database,
        "IOC_REPORTING_SITE_UNIT": "724",
        "IOC_REPORTING_PARENT_URL": f"{parent_url}/reports/v1/upward",
        "IOC_REPORTING_SIGNING_KEY": CHILD_PRIVATE,
        "IOC_REPORTING_GROUP_ID": group,
        "IOC_REPORTING_PUBLISH_EVERY_S": "3600",
        "IOC_REPORTING_RETRY_MIN_S": "0.2",
        "IOC_REPORTING_RETRY_MAX_S": "1",
    }
    parent = Process([sys.executable, "-m", "sensors.gateways"], parent_env, tmp_path / "parent.log")
    child = Process([sys.executable, "-m", "streams.reporting"], child_env, tmp_path / "child.log")
    report_id = f"724:month:{current('month', seeded.now).label}"
    http = httpx.Client(base_url=parent_url, timeout=5, headers={"Authorization": f"Bearer {READ}"})

    def kept() -> list[dict[str, Any]]:
        try:
            answer = http.get("/reports/v1/upward")
        except httpx.HTTPError:
            return []
        return [r for r in answer.json() if r["report_id"] == report_id] if answer.status_code == 200 else []

    try:
        # The parent is down when the child starts: the child publishes, then retries.
        child.start()
        wait_until(lambda: "retrying" in child.log(), "the child to retry against a parent that is down", log=child.log)
        parent.start()
        first = wait_until(kept, "the first revision at the parent", log=lambda: child.log() + parent.log())[0]

        # The child is killed and restarted: it publishes the same figures again and pushes again.
        child.stop(signal.SIGKILL)
        child.start()
        wait_until(lambda: child.log().count("was already at") >= 1, "the restarted child's duplicate", log=child.log)

        # The parent stops; the figures change and a new revision is published while it is down.
        parent.stop()
        with ch.connect(endpoint) as warehouse:
            extra = snapshot("HS-NEW", 1, unit="25957", received=seeded.now - dt.timedelta(hours=1))
            warehouse.insert(f"{endpoint.database}.dossiers", [rows.dossier_row(extra, seed.TREE.path("25957"))])
            settings = ReportingSettings(
                kafka=reporting,
                clickhouse=endpoint,
                site_unit="724",
                signing_key=CHILD_PRIVATE,
            )
            service = ReportingService(settings, warehouse=warehouse)
            envelope = service.publish(current("month", seeded.now), dt.datetime.now(dt.UTC))
            assert envelope is not None
        parent.start()
        second = wait_until(
            lambda: [r for r in kept() if r["idempotency_key"] == envelope.idempotency_key],
            "the second revision at the parent",
            log=lambda: child.log() + parent.log(),
        )[0]
        assert second["revision"] != first["revision"]
        latest = http.get(f"/reports/v1/upward/{report_id}").json()
        assert latest["score"]["dossiers"] == 3 and latest["revision"] == second["revision"]

        # Bad signatures, unknown units and oversized bodies get clear 4xx answers.
        forged = upward.seal(sample_report(), signing.generate_signing_key()[0], "724")
        refused = http.post("/reports/v1/upward", content=codecs.encode(forged))
        assert refused.status_code == 401 and "signature" in refused.json()["detail"]
        stranger = upward.seal(sample_report(unit="99999"), CHILD_PRIVATE, "99999")
        unknown = http.post("/reports/v1/upward", content=codecs.encode(stranger))
        assert unknown.status_code == 401 and "no public key" in unknown.json()["detail"]
        huge = http.post("/reports/v1/upward", content=b"{" + b" " * (1024 * 1024 + 10) + b"}")
        assert huge.status_code == 413
    finally:
        http.close()
        child.stop()
        parent.stop()

    stored = GatewayState(tmp_path / "parent.sqlite3").reports(report_id, latest_only=False)
    assert sorted(r.idempotency_key for r in stored) == sorted({first["idempotency_key"], second["idempotency_key"]})
    assert child.log().count("delivered to") >= 2
