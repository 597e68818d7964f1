"""Every named query of the citizen API runs on ClickHouse 18.16 (the real server) and on chDB 26.x."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from ioc.clients import clickhouse
from tests.api import queries_check

ROOT = Path(__file__).parents[2]


def test_every_query_on_the_real_server(seeded_api_db: Any) -> None:
    endpoint, seeded = seeded_api_db
    with clickhouse.connect(endpoint, database=endpoint.database) as warehouse:
        assert queries_check.run_all(warehouse, seeded) == queries_check.EXPECTED


def test_every_query_on_chdb(tmp_path: Path) -> None:
    # chDB allows one data directory per process: a subprocess keeps it away from other tests' chDB.
    done = subprocess.run(
        [sys.executable, "-m", "tests.api.queries_check", str(tmp_path / "chdb")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == queries_check.EXPECTED
