"""`ioc dashboard`: run one IOC site's Streamlit dashboard from its settings (a pod), the local stack or chDB."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import click
import pydantic

from dashboards import launch
from dashboards.sites import Site
from ioc import units
from ioc.settings import DashboardSettings, Endpoints
from iocctl.commands.common import installer
from iocctl.localstack import kafka
from iocctl.localstack.stack import Stack, default_stack_dir

__all__ = ["dashboard"]


@click.command("dashboard")
@click.option(
    "--site", "site_unit", required=True, help="Unit code of the IOC site, e.g. 724 (Dĩ An) or 74 (province)."
)
@click.option(
    "--edition", type=click.Choice(units.EDITIONS), default=None, help="Units tree [IOC_DASHBOARD_EDITION, 2024]."
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="HTTP port [IOC_DASHBOARD_PORT, 8501].")
@click.option(
    "--address",
    default=None,
    help="Address to listen on [IOC_DASHBOARD_ADDRESS, 127.0.0.1]; anything but loopback needs OIDC sign-in"
    " or IOC_DASHBOARD_ANONYMOUS_VIEWER=true (every visitor a read-only viewer).",
)
@click.option(
    "--stack",
    "stack_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local stack to read (default ~/.cache/ioc/stacks/default, unless IOC_DASHBOARD_CLICKHOUSE__HOST is set).",
)
@click.option(
    "--chdb",
    "chdb_path",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Read a chDB data directory in-process instead of the stack's ClickHouse (quick looks).",
)
@click.option(
    "--public/--no-public", "public", default=None, help="Serve the citizens' page [IOC_DASHBOARD_PUBLIC_ENABLED]."
)
@click.option(
    "--role",
    type=click.Choice(["viewer", "operator"]),
    default=None,
    help="Without an identity provider, on loopback only: the local user's role (default viewer).",
)
@click.option(
    "--lang", type=click.Choice(["vi", "en"]), default=None, help="Default language [IOC_DASHBOARD_LANGUAGE, vi]."
)
@click.option("--dry-run", is_flag=True, help="Print the Streamlit command and settings; start nothing.")
def dashboard(
    *,
    site_unit: str,
    edition: str | None,
    port: int | None,
    address: str | None,
    stack_dir: Path | None,
    chdb_path: Path | None,
    public: bool | None,
    role: str | None,
    lang: str | None,
    dry_run: bool,
) -> None:
    """Run one IOC site's Streamlit dashboard: from its settings alone (IOC_DASHBOARD_*, as in a pod), or against
    the local stack (ClickHouse and Kafka) or a chDB directory."""
    try:
        base = DashboardSettings()
    except pydantic.ValidationError as exc:
        raise click.ClickException(_invalid(exc)) from None
    overrides: dict[str, Any] = {"site_unit": site_unit}
    for name, value in (
        ("edition", edition),
        ("port", port),
        ("address", address),
        ("public_enabled", public),
        ("language", lang),
    ):
        if value is not None:
            overrides[name] = value
    if chdb_path is not None:
        overrides["chdb_path"] = chdb_path
    if base.oidc_metadata_url is None:
        # Without sign-in every visitor is the local user: a viewer unless asked otherwise.
        overrides["local_role"] = role or base.local_role or "viewer"
    if stack_dir is None and chdb_path is None and _configured(base):
        # Settings only (a pod: environment from the operator, Secrets and ConfigMap): no local-stack file is read.
        settings = _settings(overrides)
        if dry_run:
            run_dir = Path(tempfile.gettempdir()) / f"ioc-dashboard-{site_unit}-<random>"
        else:
            run_dir = Path(tempfile.mkdtemp(prefix=f"ioc-dashboard-{site_unit}-"))
        _run(settings, run_dir, dry_run=dry_run)
        return
    _run_on_stack(base, overrides, stack_dir, dry_run=dry_run)


def _run_on_stack(base: DashboardSettings, overrides: dict[str, Any], stack_dir: Path | None, *, dry_run: bool) -> None:
    """Against the local stack's ClickHouse and Kafka (from its stack.json), or a chDB directory (`--chdb`)."""
    site_unit = overrides["site_unit"]
    chdb = "chdb_path" in overrides
    root = stack_dir or default_stack_dir()
    if stack_dir is None and not chdb and not (root / "stack.json").exists():
        raise click.ClickException(
            f"no warehouse configured: IOC_DASHBOARD_CLICKHOUSE__HOST is not set (with __PORT, __USER, __PASSWORD"
            f" and __DATABASE; the operator sets them in a site's pod) and there is no local stack in {root}:"
            " set them, or IOC_DASHBOARD_CHDB_PATH / --chdb DIR, or start the local stack with `ioc stack up`"
        )
    local = Stack(root, installer())
    if not chdb:
        status = local.status()
        if not status["services"].get("clickhouse", {}).get("ready"):
            raise click.ClickException(
                f"ClickHouse of the local stack in {local.root} is not running: start it with `ioc stack up`"
                " (or pass --chdb DIR for a quick look, or set IOC_DASHBOARD_CLICKHOUSE__HOST)"
            )
        endpoints = Endpoints.from_stack_status(status)
        overrides["clickhouse"] = endpoints.clickhouse.model_copy(update={"database": base.clickhouse.database})
        if status["services"].get("kafka", {}).get("ready"):
            # The site's own principal when Kafka authenticates: it may write its own command topic only.
            overrides["kafka"] = kafka.site_endpoint(status["services"]["kafka"], site_unit)
        else:
            click.echo("warning: Kafka is not running: incident actions will fail until it is", err=True)
    if base.audit_log is None:
        overrides["audit_log"] = local.root / f"dashboard-{site_unit}" / "audit.jsonl"
    _run(_settings(overrides), local.root / f"dashboard-{site_unit}", dry_run=dry_run)


def _configured(base: DashboardSettings) -> bool:
    """Whether the settings name a warehouse themselves (IOC_DASHBOARD_CLICKHOUSE__* or _CHDB_PATH)."""
    if base.chdb_path is not None:
        return True
    if "clickhouse" not in base.model_fields_set:
        return False
    if "host" not in base.clickhouse.model_fields_set:
        raise click.ClickException(
            "IOC_DASHBOARD_CLICKHOUSE__HOST is not set, although other IOC_DASHBOARD_CLICKHOUSE__* settings are:"
            " set the warehouse's host (in a pod, from the site's ClickHouse Secret, key host)"
        )
    return True


def _settings(overrides: dict[str, Any]) -> DashboardSettings:
    try:
        settings = DashboardSettings(**overrides)
        Site.from_settings(settings)
    except pydantic.ValidationError as exc:
        raise click.ClickException(_invalid(exc)) from None
    except units.UnknownUnitError as exc:
        raise click.ClickException(str(exc)) from None
    return settings


def _invalid(exc: pydantic.ValidationError) -> str:
    """The settings' errors by IOC_DASHBOARD_* name, without the input (it holds passwords and client secrets)."""
    lines = []
    for err in exc.errors(include_url=False, include_input=False):
        where = "__".join(str(p) for p in err["loc"]).upper()
        message = str(err["msg"]).removeprefix("Value error, ")
        lines.append(f"IOC_DASHBOARD_{where}: {message}" if where else message)
    return "invalid dashboard settings: " + "; ".join(lines)


def _run(settings: DashboardSettings, run_dir: Path, *, dry_run: bool) -> None:
    """Print what would run (`--dry-run`, writing nothing), or become the Streamlit process."""
    try:
        argv, env = launch.command(settings, run_dir, os.environ, dry_run=dry_run)
    except launch.LaunchRefused as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"dashboard for site {settings.site_unit}: http://localhost:{settings.port}/", err=True)
    if dry_run:
        click.echo(" ".join(argv))
        hidden = pydantic.SecretStr("***")
        shown = settings.model_copy(
            update={
                "clickhouse": settings.clickhouse.model_copy(update={"password": hidden}),
                "kafka": settings.kafka.model_copy(
                    update={"password": hidden if settings.kafka.password is not None else None}
                ),
            }
        )
        for key, value in sorted(launch.settings_env(shown).items()):
            click.echo(f"{key}={'***' if key.endswith('SECRET') else value}")
        return
    # Become the Streamlit process, so Ctrl-C and a pod's SIGTERM reach it directly.
    os.execve(argv[0], argv, env)  # noqa: S606 - argv is our own, fully built command line
