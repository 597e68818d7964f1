"""`ioc api` and `ioc portal`: serve the citizen API and the one-stop portal connector against the local stack."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import click
import pydantic

from dashboards import api as citizen_api
from ioc import units
from ioc.settings import CitizenApiSettings, PortalGatewaySettings
from iocctl.commands.common import installer, stack_endpoints, stack_option
from iocctl.localstack.stack import Stack, default_stack_dir
from sensors import gateways

__all__ = ["api_command", "portal_command"]


@click.command("api")
@click.option("--site", "site_unit", default=None, help="Unit code of the site [IOC_API_SITE_UNIT, 74].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="HTTP port [IOC_API_PORT, 8080].")
@click.option("--public/--no-public", "public", default=None, help="Serve open data [IOC_API_PUBLIC_ENABLED].")
@stack_option
def api_command(site_unit: str | None, port: int | None, public: bool | None, stack_dir: Path | None) -> None:
    """Serve the citizen API (Open311 reports, open data, NGSI-LD) for one site against the local stack."""
    import uvicorn  # noqa: PLC0415 - only the serving commands need the HTTP server

    base = CitizenApiSettings()
    endpoints = stack_endpoints(stack_dir, ("kafka", "clickhouse"))
    overrides: dict[str, Any] = {
        "kafka": endpoints.kafka,
        "clickhouse": endpoints.clickhouse.model_copy(update={"database": base.clickhouse.database}),
    }
    for name, value in (("site_unit", site_unit), ("port", port), ("public_enabled", public)):
        if value is not None:
            overrides[name] = value
    try:
        settings = CitizenApiSettings(**overrides)
        app = citizen_api.create_app(settings)
    except (pydantic.ValidationError, units.UnknownUnitError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"citizen API for site {settings.site_unit}: http://{settings.host}:{settings.port}/docs", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False)


@click.command("portal")
@click.option("--site", "site_unit", default=None, help="Unit code of the site [IOC_PORTAL_SITE_UNIT, 74].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="HTTP port [IOC_PORTAL_PORT, 8090].")
@stack_option
def portal_command(site_unit: str | None, port: int | None, stack_dir: Path | None) -> None:
    """Serve the one-stop portal connector (signed dossier webhook, polling, children's reports) locally."""
    import uvicorn  # noqa: PLC0415 - only the serving commands need the HTTP server

    base = PortalGatewaySettings()
    endpoints = stack_endpoints(stack_dir, ("kafka",))
    local_root = Stack(stack_dir or default_stack_dir(), installer()).root
    overrides: dict[str, Any] = {"kafka": endpoints.kafka}
    if "IOC_PORTAL_STATE_DB" not in os.environ:
        overrides["state_db"] = local_root / f"portal-{site_unit or base.site_unit}" / "state.sqlite3"
    for name, value in (("site_unit", site_unit), ("port", port)):
        if value is not None:
            overrides[name] = value
    try:
        settings = PortalGatewaySettings(**overrides)
        app = gateways.create_app(settings)
    except (pydantic.ValidationError, units.UnknownUnitError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"portal connector for site {settings.site_unit}: http://{settings.host}:{settings.port}", err=True)
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=False)
