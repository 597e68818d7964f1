"""Reports built from a real warehouse (ClickHouse 18.16 and chDB 26.x), and `ioc report` on the command line."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook

from ioc import signing
from ioc.clients import clickhouse
from streams.warehouse import migrate
from tests.api import seed
from tests.api.conftest import endpoint_of
from tests.reporting import source_check

ROOT = Path(__file__).parents[2]
IOC = str(Path(sys.executable).with_name("ioc"))


def _expected(now: dt.datetime) -> dict[str, Any]:
    # Incidents opened 50 minutes ago: in this month unless the month turned within the hour.
    province = {
        "dossiers": 3,
        "incidents": 4,
        "by_module": {"environment": 4},
        "reports": 1,
        "report_states": {"dispatched": 1},
        "children": 9,
    }
    district = {**province, "dossiers": 2, "incidents": 3, "by_module": {"environment": 3}, "children": 7}
    return {"74": province, "724": district}


@pytest.fixture(scope="module")
def report_db(clickhouse: dict[str, Any]) -> Iterator[tuple[dict[str, Any], str, seed.Seeded]]:
    database = f"rep_{uuid.uuid4().hex[:10]}"
    with clickhouse_connect(clickhouse) as admin:
        migrate(admin, database)
        seeded = seed.seed(admin, database)
        source_check.seed_dossiers(admin, database, seeded.now)
    yield clickhouse, database, seeded
    with clickhouse_connect(clickhouse) as admin:
        admin.command(f"DROP DATABASE IF EXISTS {database}")


def clickhouse_connect(ch: dict[str, Any]) -> clickhouse.Warehouse:
    return clickhouse.connect(endpoint_of(ch))


def test_reports_from_the_real_server(report_db: tuple[dict[str, Any], str, seed.Seeded]) -> None:
    ch, database, seeded = report_db
    if seeded.now.day == 1 and seeded.now.hour == 0:
        pytest.skip("the month turned within the hour: the seeded incidents belong to last month")
    with clickhouse_connect(ch) as warehouse:
        found = {unit: source_check.figures(warehouse, database, unit, seeded.now) for unit in ("74", "724")}
    assert found == _expected(seeded.now)


def test_reports_from_chdb(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "tests.reporting.source_check", str(tmp_path / "chdb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == _expected(dt.datetime.now(dt.UTC))


def _ioc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([IOC, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_ioc_report_export_writes_json_csv_and_xlsx(
    report_db: tuple[dict[str, Any], str, seed.Seeded], tmp_path: Path
) -> None:
    ch, database, seeded = report_db
    period = f"{seeded.now:%Y-%m}"
    server = ["--host", ch["host"], "--port", str(ch["port"]), "--user", ch["user"], "--password", ch["password"]]
    common = ["report", "export", *server, "--database", database, "--site", "724", "--period", period]
    as_json = _ioc(*common, "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    report = json.loads(as_json.stdout)
    assert report["report_id"] == f"724:month:{period}" and report["score"]["dossiers"] == 2
    as_csv = _ioc(*common, "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert {"score766", "incidents", "child_score766"} <= {r["section"] for r in rows}
    target = tmp_path / "report.xlsx"
    as_xlsx = _ioc(*common, "--format", "xlsx", "-o", str(target))
    assert as_xlsx.returncode == 0, as_xlsx.stderr
    assert "Chi so 766 - Indicators" in load_workbook(target).sheetnames
    needs_file = _ioc(*common, "--format", "xlsx")
    assert needs_file.returncode != 0 and "-o FILE.xlsx" in needs_file.stderr
    bad_period = _ioc("report", "export", *server, "--site", "724", "--period", "June")
    assert bad_period.returncode == 1 and "not a day" in bad_period.stderr
    unknown = _ioc("report", "export", *server, "--site", "99999", "--period", period)
    assert unknown.returncode == 1 and "99999" in unknown.stderr


def test_ioc_report_keygen_prints_a_working_pair() -> None:
    done = _ioc("report", "keygen")
    assert done.returncode == 0
    private = done.stdout.splitlines()[0].split("=", 1)[1]
    public = done.stdout.splitlines()[1].rsplit(" ", 1)[1]
    signing.verify_document(public, b"x", signing.sign_document(private, b"x"))
