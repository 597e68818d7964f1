"""`ioc deps` and `ioc stack`: install the local stack's prerequisites, and start, inspect and stop its services."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from iocctl.commands.common import installer, stack_dir_option
from iocctl.localstack.install import Installer, MissingPrerequisite
from iocctl.localstack.process import ServiceStartError
from iocctl.localstack.services import DEFAULT_SERVICES, SERVICES
from iocctl.localstack.stack import Stack, default_stack_dir

__all__ = ["deps", "stack"]

_BUILT_TOOLS: dict[str, Callable[[Installer], Path]] = {
    "etcd": lambda tools: tools.etcd(),
    "helm": lambda tools: tools.helm(),
    "kube-apiserver": lambda tools: tools.kubernetes()[0],
    "kubectl": lambda tools: tools.kubernetes()[1],
}


@click.command("deps")
@click.option(
    "--which",
    type=click.Choice(sorted(_BUILT_TOOLS)),
    default=None,
    help="Install only this tool and print its path (the Makefile runs `$(ioc deps --which helm) lint ...`).",
)
def deps(which: str | None) -> None:
    """Install the local stack's prerequisites (apt packages, Kafka jars, Go builds), cached in ~/.cache/ioc."""
    if which is not None:
        try:
            click.echo(str(_BUILT_TOOLS[which](installer())))
        except MissingPrerequisite as exc:
            raise click.ClickException(str(exc)) from None
        return
    started = time.monotonic()
    try:
        toolchain = installer().all()
    except MissingPrerequisite as exc:
        raise click.ClickException(str(exc)) from None
    for name, value in vars(toolchain).items():
        click.echo(f"{name:15} {value if not isinstance(value, tuple) else ' '.join(value)}")
    click.echo(f"prerequisites ready in {time.monotonic() - started:.0f} s")


@click.group("stack")
def stack() -> None:
    """Drive the local stack by hand: Mosquitto, Kafka, ClickHouse, etcd and kube-apiserver on loopback."""


@stack.command("up")
@stack_dir_option
@click.option("--service", "services", multiple=True, type=click.Choice(SERVICES), help="Only these (repeatable).")
@click.option(
    "--kafka-brokers",
    type=click.IntRange(1, 5),
    default=None,
    help="KRaft nodes of the local Kafka (default 1): 3 gives topics 3 copies with min.insync.replicas 2, so a "
    "node may die. A running Kafka of another size is replaced (its data is lost).",
)
@click.option(
    "--clickhouse-cluster",
    "clickhouse_layout",
    is_flag=False,
    flag_value="2x2",
    default=None,
    metavar="SHARDSxREPLICAS",
    help="ClickHouse as the cluster `ioc` over a one-node ZooKeeper: 2 shards of 2 replicas (4 servers) when "
    'given alone, or e.g. 3x1 (docs/warehouse.md, "Cluster"). A running ClickHouse of another layout is '
    "replaced (its data is lost); without the option it is one server, as always.",
)
def stack_up(
    directory: Path | None, services: tuple[str, ...], kafka_brokers: int | None, clickhouse_layout: str | None
) -> None:
    """Start the services (all but ZooKeeper by default) and wait until each answers."""
    shards, replicas = _layout(clickhouse_layout) if clickhouse_layout else (None, None)
    local = Stack(
        directory or default_stack_dir(),
        installer(),
        kafka_brokers=kafka_brokers,
        clickhouse_shards=shards,
        clickhouse_replicas=replicas,
    )
    try:
        running = local.up(services or DEFAULT_SERVICES, progress=True)
    except (MissingPrerequisite, ServiceStartError) as exc:
        raise click.ClickException(str(exc)) from None
    _print_status(
        {
            "root": str(local.root),
            "services": {k: {**v, "running": True, "ready": True} for k, v in running.items()},
        }
    )
    click.echo(
        f"\nendpoints and credentials: ioc stack status --json{'' if directory is None else f' --dir {directory}'}"
    )


@stack.command("status")
@stack_dir_option
@click.option("--json", "as_json", is_flag=True, help="Print every service's endpoint and credentials as JSON.")
def stack_status(directory: Path | None, as_json: bool) -> None:
    """Show each service: running, ready, endpoint."""
    report = Stack(directory or default_stack_dir(), installer()).status()
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    if not report["services"]:
        click.echo("no local stack here: start one with `ioc stack up`")
        return
    _print_status(report)


def _layout(text: str) -> tuple[int, int]:
    shards, _, replicas = text.lower().partition("x")
    if not (shards.isdigit() and replicas.isdigit() and 1 <= int(shards) <= 4 and 1 <= int(replicas) <= 3):
        raise click.BadParameter(f"{text!r}: give SHARDSxREPLICAS, 1-4 shards of 1-3 replicas, e.g. 2x2")
    return int(shards), int(replicas)


def _print_status(report: dict[str, Any]) -> None:
    for name, info in report["services"].items():
        state = "ready" if info["ready"] else ("running, not ready" if info["running"] else "stopped")
        endpoint = (
            info.get("bootstrap") or info.get("server") or info.get("endpoint") or f"{info['host']}:{info['port']}"
        )
        click.echo(f"{name:15} {state:20} {endpoint:28} pid {info['pid']}  log {info['log']}")
        if "cluster" in info:  # the ClickHouse cluster: every server, the first one being the entry point above
            for server in info["servers"]:
                click.echo(
                    f"{'':15} shard {server['shard']} replica {server['replica']}: {server['host']}:{server['port']}"
                )


@stack.command("down")
@stack_dir_option
def stack_down(directory: Path | None) -> None:
    """Stop every service of the stack."""
    stopped = Stack(directory or default_stack_dir(), installer()).down()
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
