"""`ioc warehouse`: apply and list the ClickHouse warehouse's schema migrations (stack, server or chDB)."""

from __future__ import annotations

from pathlib import Path

import click

from ioc.clients.clickhouse import WarehouseError
from iocctl.commands.common import open_warehouse, warehouse_options
from streams.warehouse import migrations

__all__ = ["warehouse_group"]


@click.group("warehouse")
def warehouse_group() -> None:
    """The ClickHouse warehouse: schema migrations of the tables in docs/warehouse.md."""


_CLUSTER = click.option(
    "--cluster",
    default="",
    help="The ClickHouse cluster (its remote_servers name) the server at --host belongs to: the schema is then made "
    'ON CLUSTER, replicated and distributed (docs/warehouse.md, "Cluster"). A local stack\'s is read from the stack.',
)


@warehouse_group.command("migrate")
@warehouse_options
@_CLUSTER
@click.option(
    "--retention-days",
    type=click.IntRange(min=1),
    default=migrations.DEFAULT_RETENTION_DAYS,
    show_default=True,
    help="Days of raw readings and camera events kept (a TTL on current ClickHouse; none on 18.16).",
)
def warehouse_migrate(
    *,
    stack_dir: Path | None,
    host: str | None,
    port: int,
    user: str,
    password: str,
    database: str,
    chdb_path: Path | None,
    cluster: str,
    retention_days: int,
) -> None:
    """Create or upgrade the warehouse schema; prints the migrations it applied."""
    with open_warehouse(
        stack_dir=stack_dir, host=host, port=port, user=user, password=password, chdb_path=chdb_path, cluster=cluster
    ) as warehouse:
        try:
            applied = migrations.migrate(warehouse, database, retention_days=retention_days)
        except (WarehouseError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
        version = ".".join(str(part) for part in warehouse.server_version)
        features = "TTL and LowCardinality" if warehouse.modern else "18.16 fallbacks: no TTL, no LowCardinality"
    for name in applied:
        click.echo(f"applied {name}")
    state = f"{len(applied)} applied" if applied else "already up to date"
    spans = f", ON CLUSTER {warehouse.cluster}" if warehouse.cluster else ""
    click.echo(f"{database}: {state} (ClickHouse {version}, {features}{spans})")


@warehouse_group.command("status")
@warehouse_options
@_CLUSTER
def warehouse_status(
    *,
    stack_dir: Path | None,
    host: str | None,
    port: int,
    user: str,
    password: str,
    database: str,
    chdb_path: Path | None,
    cluster: str,
) -> None:
    """List the warehouse's migrations: applied (when), pending, changed since applied, or unknown here."""
    with open_warehouse(
        stack_dir=stack_dir, host=host, port=port, user=user, password=password, chdb_path=chdb_path, cluster=cluster
    ) as warehouse:
        try:
            report = migrations.status(warehouse, database)
        except (WarehouseError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    for entry in report:
        when = f"{entry.applied_at:%Y-%m-%d %H:%M:%S} UTC" if entry.applied_at else ""
        click.echo(f"{entry.name:28} {entry.state:8} {when}".rstrip())
    pending = sum(entry.state == "pending" for entry in report)
    if pending:
        click.echo(f"{pending} pending: run `ioc warehouse migrate`")
