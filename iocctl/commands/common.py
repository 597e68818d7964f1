"""Helpers several `ioc` commands share: the installer, the stack options and endpoints, the warehouse.

Errors a user can fix become one `click.ClickException` line naming what to start or pass.
"""

from __future__ import annotations

from pathlib import Path

import click
from click.decorators import FC

from ioc.clients.clickhouse import Warehouse, WarehouseError, connect, in_process
from ioc.settings import ClickHouseEndpoint, Endpoints
from iocctl.localstack.install import Installer
from iocctl.localstack.stack import Stack, default_cache_dir, default_stack_dir
from streams.warehouse import migrations

__all__ = [
    "installer",
    "open_warehouse",
    "stack_dir_option",
    "stack_endpoints",
    "stack_option",
    "warehouse_options",
]


def installer() -> Installer:
    """The prerequisites' installer, caching under ~/.cache/ioc."""
    return Installer(default_cache_dir())


stack_dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the stack keeps data, logs and stack.json (default ~/.cache/ioc/stacks/default).",
)

stack_option = click.option(
    "--stack",
    "stack_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local stack to use (default ~/.cache/ioc/stacks/default).",
)


def stack_endpoints(stack_dir: Path | None, needed: tuple[str, ...]) -> Endpoints:
    """The local stack's endpoints, or a clear error naming what is not running."""
    local = Stack(stack_dir or default_stack_dir(), installer())
    status = local.status()
    down = [name for name in needed if not status["services"].get(name, {}).get("ready")]
    if down:
        not_ready = ", ".join(down)
        raise click.ClickException(
            f"the local stack in {local.root} is not running ({not_ready} not ready): start it with `ioc stack up`"
        )
    return Endpoints.from_stack_status(status)


def warehouse_options(command: FC) -> FC:
    """Where the warehouse is: the local stack's ClickHouse (default), a server (--host) or chDB (--chdb)."""
    options = (
        click.option(
            "--stack",
            "stack_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="The local stack whose ClickHouse to use (default ~/.cache/ioc/stacks/default).",
        ),
        click.option("--host", default=None, help="A ClickHouse server instead of the local stack's."),
        click.option("--port", type=click.IntRange(1, 65535), default=9000, show_default=True, help="Native port."),
        click.option("--user", default="default", show_default=True, help="ClickHouse user (with --host)."),
        click.option("--password", default="", help="ClickHouse password (with --host)."),
        click.option("--database", default=migrations.DEFAULT_DATABASE, show_default=True, help="Warehouse database."),
        click.option(
            "--chdb",
            "chdb_path",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="A chDB data directory: in-process ClickHouse instead of a server.",
        ),
    )
    for option in reversed(options):
        command = option(command)
    return command


def open_warehouse(
    *,
    stack_dir: Path | None,
    host: str | None,
    port: int,
    user: str,
    password: str,
    chdb_path: Path | None,
    cluster: str = "",
) -> Warehouse:
    """The warehouse the `warehouse_options` name: exactly one of the stack's ClickHouse, a server or chDB."""
    if sum(choice is not None for choice in (stack_dir, host, chdb_path)) > 1:
        raise click.UsageError("--stack, --host and --chdb each name a warehouse: give one of them")
    if chdb_path is not None:
        try:
            return in_process(str(chdb_path))
        except WarehouseError as exc:
            raise click.ClickException(str(exc)) from None
    if host is not None:
        endpoint = ClickHouseEndpoint(host=host, port=port, user=user, password=password, cluster=cluster)
    else:
        if cluster:
            raise click.UsageError("--cluster names the cluster of a server given with --host (a stack knows its own)")
        local = Stack(stack_dir or default_stack_dir(), installer())
        status = local.status()
        if not status["services"].get("clickhouse", {}).get("ready"):
            raise click.ClickException(
                f"no ClickHouse is running in the local stack at {local.root}: start it with "
                "`ioc stack up --service clickhouse`, or name a server with --host"
            )
        endpoint = Endpoints.from_stack_status(status).clickhouse
    try:
        return connect(endpoint)
    except WarehouseError as exc:
        raise click.ClickException(f"cannot use ClickHouse at {endpoint.host}:{endpoint.port}: {exc}") from None
