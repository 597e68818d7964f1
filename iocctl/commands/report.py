"""`ioc report`: build a site's upward report (Decision 766, incidents) and export, sign and publish, or push it."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

import click
import pydantic

from ioc import signing, units
from ioc.clients.clickhouse import WarehouseError
from ioc.scope import site_scope
from ioc.settings import ReportingSettings
from iocctl.commands.common import open_warehouse, stack_endpoints, stack_option, warehouse_options
from streams import reporting

__all__ = ["report_group"]


@click.group("report")
def report_group() -> None:
    """Upward reports: a site's Decision 766 and incident figures per period (export, publish, push)."""


@report_group.command("export")
@warehouse_options
@click.option("--site", "site_unit", required=True, help="Unit code of the reporting site, e.g. 724 or 74.")
@click.option("--edition", type=click.Choice(units.EDITIONS), default="2024", show_default=True)
@click.option("--period", "period_text", required=True, help="2025-06-15, 2025-06, 2025-Q2 or 2025.")
@click.option("--format", "fmt", type=click.Choice(reporting.FORMATS), default="json", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
def report_export(
    *,
    stack_dir: Path | None,
    host: str | None,
    port: int,
    user: str,
    password: str,
    database: str,
    chdb_path: Path | None,
    site_unit: str,
    edition: str,
    period_text: str,
    fmt: reporting.Format,
    output: Path | None,
) -> None:
    """Build a site's report for a period from the warehouse and write it as CSV, XLSX or JSON."""
    try:
        period = reporting.parse_period(period_text)
        scope = site_scope(site_unit, edition)
    except (ValueError, units.UnknownUnitError) as exc:
        raise click.ClickException(str(exc)) from None
    if fmt == "xlsx" and output is None:
        raise click.UsageError("XLSX is binary: give -o FILE.xlsx")
    with open_warehouse(
        stack_dir=stack_dir, host=host, port=port, user=user, password=password, chdb_path=chdb_path
    ) as warehouse:
        try:
            report = reporting.build_for(warehouse, database, scope, period, generated_at=dt.datetime.now(dt.UTC))
        except (WarehouseError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    data = reporting.export(report, fmt)
    if output is None:
        click.echo(data.decode("utf-8-sig"), nl=False)
        return
    output.write_bytes(data)
    click.echo(f"{output}: report {report.report_id} as {fmt}", err=True)


@report_group.command("keygen")
def report_keygen() -> None:
    """Print a new Ed25519 key pair: the private key for the site, the public key for its parent."""
    private, public = signing.generate_signing_key()
    click.echo(f"IOC_REPORTING_SIGNING_KEY={private}")
    click.echo(f"public key (the parent's IOC_PORTAL_REPORT_KEYS entry for this site): {public}")


@report_group.command("publish")
@warehouse_options
@click.option("--site", "site_unit", default=None, help="The reporting site [IOC_REPORTING_SITE_UNIT, 74].")
@click.option("--period", "period_text", required=True, help="2025-06-15, 2025-06, 2025-Q2 or 2025.")
def report_publish(
    *,
    stack_dir: Path | None,
    host: str | None,
    port: int,
    user: str,
    password: str,
    database: str,
    chdb_path: Path | None,
    site_unit: str | None,
    period_text: str,
) -> None:
    """Build, sign (IOC_REPORTING_SIGNING_KEY) and put a site's report in the outbox topic for its parent."""
    overrides: dict[str, Any] = {"site_unit": site_unit} if site_unit else {}
    if "IOC_REPORTING_KAFKA__BOOTSTRAP" not in os.environ:
        overrides["kafka"] = stack_endpoints(stack_dir, ("kafka",)).kafka
    try:
        settings = ReportingSettings(**overrides)
        period = reporting.parse_period(period_text)
        scope = site_scope(settings.site_unit, settings.edition)
    except (pydantic.ValidationError, ValueError, units.UnknownUnitError) as exc:
        raise click.ClickException(str(exc)) from None
    if settings.signing_key is None:
        raise click.ClickException("set IOC_REPORTING_SIGNING_KEY (from `ioc report keygen`) to sign reports")
    with open_warehouse(
        stack_dir=stack_dir, host=host, port=port, user=user, password=password, chdb_path=chdb_path
    ) as warehouse:
        try:
            report = reporting.build_for(warehouse, database, scope, period, generated_at=dt.datetime.now(dt.UTC))
        except (WarehouseError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    outbox = reporting.Outbox(settings.kafka)
    try:
        envelope = outbox.seal_and_publish(
            report, settings.signing_key.get_secret_value(), settings.key_id or settings.site_unit
        )
    except (reporting.OutboxError, signing.SignatureError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"in the outbox: {envelope.idempotency_key}")


@report_group.command("push")
@click.option("--parent", "parent_url", default=None, help="The parent's report endpoint [IOC_REPORTING_PARENT_URL].")
@stack_option
def report_push(parent_url: str | None, stack_dir: Path | None) -> None:
    """Push the outbox to the parent IOC until Ctrl-C (retries, idempotency keys; as `python -m streams.reporting`)."""
    import threading  # noqa: PLC0415 - only this long-running command needs a stop event

    overrides: dict[str, Any] = {"parent_url": parent_url} if parent_url else {}
    if "IOC_REPORTING_KAFKA__BOOTSTRAP" not in os.environ:
        overrides["kafka"] = stack_endpoints(stack_dir, ("kafka",)).kafka
    try:
        pusher = reporting.Pusher(ReportingSettings(**overrides))
    except (pydantic.ValidationError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    stop = threading.Event()
    try:
        pusher.run(stop)
    except KeyboardInterrupt:
        stop.set()
    click.echo(
        f"delivered {pusher.stats.delivered}, already there {pusher.stats.duplicates}, refused {pusher.stats.refused}"
    )
