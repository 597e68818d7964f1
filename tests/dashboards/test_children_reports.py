"""A parent IOC's Public services page lists the upward reports its children sent, read from its portal connector.

The connector is the real one (sensors.gateways.create_app over uvicorn, its SQLite state file, the stack's Kafka
with its own principal), the reports
are signed and pushed over HTTP as a child's reporting service does, and the dashboard reads them back
through the connector's read API.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from pydantic import SecretStr

from dashboards.data import inbox
from ioc import codecs, kafka_access, signing, upward
from ioc.settings import KafkaEndpoint, PortalGatewaySettings
from sensors.gateways import create_app
from tests.api.server import serve
from tests.dashboards import seed
from tests.dashboards.conftest import app, chdb_settings
from tests.reporting.samples import sample_report

DI_AN_PRIVATE, DI_AN_PUBLIC = signing.generate_signing_key()
THUAN_AN_PRIVATE, THUAN_AN_PUBLIC = signing.generate_signing_key()
READ = "read-token-for-the-dashboard"


@pytest.fixture
def connector(kafka: dict[str, Any], tmp_path: Path) -> Iterator[str]:
    """The province's (74) portal connector, knowing Dĩ An's (724) and Thuận An's (725) keys; yields its URL."""
    settings = PortalGatewaySettings(
        site_unit="74",
        kafka=KafkaEndpoint.from_service(kafka, kafka_access.GATEWAY),
        report_keys={"724": DI_AN_PUBLIC, "725": THUAN_AN_PUBLIC},
        read_token=SecretStr(READ),
        state_db=tmp_path / "portal.sqlite3",
    )
    with serve(create_app(settings)) as base:
        yield f"{base}/reports/v1/upward"


def push(url: str, report: upward.UpwardReport, private: str, key_id: str) -> None:
    envelope = upward.seal(report, private, key_id)
    answer = httpx.post(
        url,
        content=codecs.encode(envelope),
        headers={"Idempotency-Key": envelope.idempotency_key, "Content-Type": "application/json"},
    )
    assert answer.status_code == 201, answer.text


def thuan_an(period: str = "2025-06") -> upward.UpwardReport:
    report = sample_report("725", period, unit_name="thành phố Thuận An")
    score = msgspec.structs.replace(report.score, points=64.2, coverage=54.0)
    return msgspec.structs.replace(report, score=score, generated_at=dt.datetime(2025, 7, 1, 9, tzinfo=dt.UTC))


def test_the_province_page_lists_each_childs_signed_report(
    connector: str, chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    push(connector, sample_report("724", "2025-06"), DI_AN_PRIVATE, "724")
    push(connector, thuan_an("2025-06"), THUAN_AN_PRIVATE, "725")
    push(connector, thuan_an("2025-05"), THUAN_AN_PRIVATE, "725")
    path, _ = chdb_seeded
    settings = chdb_settings(
        path,
        seed.PROVINCE,
        local_role="viewer",
        reports_inbox_url=connector,
        reports_inbox_token=SecretStr(READ),
        query_ttl_s=0.001,
    )
    at = app(monkeypatch, settings)
    at.run()
    at.switch_page("screens/services.py").run()
    assert not at.exception, [e.message for e in at.exception]
    assert "Báo cáo của các đơn vị trực thuộc gửi lên" in [s.value for s in at.subheader]
    [table] = [f.value for f in at.dataframe if "Kỳ báo cáo" in f.value.columns]
    rows = table.to_dict("records")
    assert [(r["Địa bàn"], r["Kỳ báo cáo"]) for r in rows] == [
        ("thành phố Dĩ An", "2025-06"),
        ("thành phố Thuận An", "2025-06"),
        ("thành phố Thuận An", "2025-05"),
    ]
    assert rows[1]["Điểm (thang 100)"] == "64.2 / 100 trên 54 điểm đo được"
    assert rows[0]["Điểm (thang 100)"] == "71.5 / 100"  # a report that states no coverage
    assert (rows[0]["Sự cố phát sinh"], rows[0]["Quá hạn"], rows[0]["Số phản ánh"]) == (3, 1, 1)

    # A district's own page lists only what came from under it: none of its siblings' reports.
    at = app(monkeypatch, settings.model_copy(update={"site_unit": seed.DISTRICT}))
    at.run()
    at.switch_page("screens/services.py").run()
    assert "Chưa nhận được báo cáo nào của các đơn vị trực thuộc." in [i.value for i in at.info]


def test_a_wrong_read_token_is_said_on_the_page_not_hidden(
    connector: str, chdb_seeded: tuple[Path, seed.Seeded], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, _ = chdb_seeded
    settings = chdb_settings(
        path,
        seed.PROVINCE,
        local_role="viewer",
        language="en",
        reports_inbox_url=connector,
        reports_inbox_token=SecretStr("not-the-token"),
        query_ttl_s=0.001,
    )
    at = app(monkeypatch, settings)
    at.run()
    at.switch_page("screens/services.py").run()
    assert not at.exception, [e.message for e in at.exception]
    [warning] = [w.value for w in at.warning if "could not be read" in w.value]
    assert "answered 403" in warning


def test_rows_keep_the_units_under_the_unit_looked_at_in_the_sites_edition() -> None:
    received = [
        inbox.ReceivedReport(sample_report("724"), dt.datetime(2025, 7, 1, tzinfo=dt.UTC)),
        inbox.ReceivedReport(
            sample_report("25957", unit_name="phường Đông Hòa"), dt.datetime(2025, 7, 1, tzinfo=dt.UTC)
        ),
        inbox.ReceivedReport(sample_report("25951", edition="2025"), dt.datetime(2025, 7, 1, tzinfo=dt.UTC)),
    ]
    assert [r["unit"] for r in inbox.reports_for(received, "74", "2024")] == ["25957", "724"]
    assert [r["unit"] for r in inbox.reports_for(received, "724", "2024")] == ["25957"]
    assert inbox.reports_for(received, "25957", "2024") == []  # its own report is not a child's
    assert [r["unit"] for r in inbox.reports_for(received, "79", "2025")] == ["25951"]
