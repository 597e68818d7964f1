"""`ioc warehouse migrate` and `ioc warehouse status` on chDB, the real server and the local stack, and their errors."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from ioc.clients.clickhouse import connect
from ioc.settings import ClickHouseEndpoint
from iocctl.cli import cli
from iocctl.localstack.stack import Stack
from streams.warehouse import migrations

NAMES = [m.name for m in migrations.load_migrations()]


def ioc(*args: str) -> Result:
    return CliRunner().invoke(cli, ["warehouse", *args], catch_exceptions=False)


def test_migrate_then_status_on_chdb(chdb_path: Path) -> None:
    # The run's one chDB directory (chDB serves one path per process); a database of this test's own.
    where = ["--chdb", str(chdb_path), "--database", "cli"]
    first = ioc("migrate", *where)
    assert first.exit_code == 0, first.output
    lines = first.output.splitlines()
    assert lines[:-1] == [f"applied {name}" for name in NAMES]
    assert lines[-1].startswith(f"cli: {len(NAMES)} applied (ClickHouse 2") and "TTL and LowCardinality" in lines[-1]
    again = ioc("migrate", *where)
    assert again.output.splitlines() == [again.output.splitlines()[-1]]
    assert "already up to date" in again.output
    status = ioc("status", *where)
    assert status.exit_code == 0
    assert [line.split()[:2] for line in status.output.splitlines()] == [[name, "applied"] for name in NAMES]


def test_status_of_an_empty_database_lists_everything_pending(chdb_path: Path) -> None:
    status = ioc("status", "--chdb", str(chdb_path), "--database", "never_migrated")
    assert [line.split() for line in status.output.splitlines()] == [
        *([name, "pending"] for name in NAMES),
        [str(len(NAMES)), "pending:", "run", "`ioc", "warehouse", "migrate`"],
    ]


def test_migrate_a_server_by_host(clickhouse: dict[str, Any]) -> None:
    database = f"cli_{uuid.uuid4().hex[:8]}"
    server = ["--host", clickhouse["host"], "--port", str(clickhouse["port"]), "--user", clickhouse["user"]]
    done = ioc("migrate", *server, "--password", clickhouse["password"], "--database", database)
    endpoint = ClickHouseEndpoint(
        host=clickhouse["host"], port=clickhouse["port"], user=clickhouse["user"], password=clickhouse["password"]
    )
    with connect(endpoint) as warehouse:
        try:
            assert done.exit_code == 0, done.output
            assert "18.16 fallbacks: no TTL, no LowCardinality" in done.output
            assert len(migrations.status(warehouse, database)) == len(NAMES)
        finally:
            warehouse.command(f"DROP DATABASE IF EXISTS {database}")
    refused = ioc("status", *server, "--password", "wrong")
    assert refused.exit_code == 1
    assert refused.output.startswith(f"Error: cannot use ClickHouse at {clickhouse['host']}:{clickhouse['port']}: ")
    assert len(refused.output.splitlines()) == 1 and "Traceback" not in refused.output


def test_default_is_the_local_stacks_clickhouse(clickhouse: dict[str, Any], local_stack: Stack) -> None:
    status = ioc("status", "--stack", str(local_stack.root), "--database", f"none_{uuid.uuid4().hex[:8]}")
    assert status.exit_code == 0, status.output
    assert status.output.splitlines()[-1] == f"{len(NAMES)} pending: run `ioc warehouse migrate`"


def test_unreachable_clickhouse_is_one_clear_line(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    down = ioc("migrate", "--host", "127.0.0.1", "--port", str(port))
    assert down.exit_code == 1
    assert down.output.startswith(f"Error: cannot use ClickHouse at 127.0.0.1:{port}: ")
    assert len(down.output.splitlines()) == 1
    no_stack = ioc("migrate", "--stack", str(tmp_path / "nothing"))
    assert no_stack.exit_code == 1
    assert no_stack.output == (
        f"Error: no ClickHouse is running in the local stack at {tmp_path / 'nothing'}: "
        "start it with `ioc stack up --service clickhouse`, or name a server with --host\n"
    )


def test_one_warehouse_at_a_time(tmp_path: Path, chdb_path: Path) -> None:
    both = ioc("migrate", "--host", "127.0.0.1", "--chdb", str(tmp_path))
    assert both.exit_code == 2
    assert "--stack, --host and --chdb each name a warehouse: give one of them" in both.output
    bad_name = ioc("migrate", "--chdb", str(chdb_path), "--database", "ioc-prod")
    assert bad_name.exit_code == 1
    assert bad_name.output == "Error: database name 'ioc-prod' is not a plain identifier (letters, digits, '_')\n"
