"""The `ioc` command line: schemas, units, the local stack and its prerequisites.

This is the top of the import graph: it may call into any component, and nothing imports it. Each
subcommand builds its settings here, calls one library function and prints the result; errors a user
can fix are printed as one clear line and exit non-zero, without a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import pydantic
import yaml
from click.decorators import FC

from dashboards import api as citizen_api
from dashboards import launch
from dashboards.sites import Site
from ioc import schemas, signing, units
from ioc.clients.clickhouse import Warehouse, WarehouseError, connect, in_process
from ioc.clients.dynsec import DynsecError
from ioc.reference import ReferenceModelError, default_reference_model, load_reference_model
from ioc.scope import site_scope
from ioc.settings import (
    CitizenApiSettings,
    ClickHouseEndpoint,
    DashboardSettings,
    Endpoints,
    OperatorSettings,
    PortalGatewaySettings,
    ReportingSettings,
    SimulatorSettings,
)
from iocctl.localstack.install import Installer, MissingPrerequisite
from iocctl.localstack.process import ServiceStartError
from iocctl.localstack.services import SERVICES
from iocctl.localstack.stack import Stack, default_cache_dir, default_stack_dir
from operators import crds as operator_crds
from operators import province, rbac, runtime
from sensors import gateways, simulators
from streams import reporting
from streams.warehouse import migrations

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ioc-platform")
def cli() -> None:
    """IOC Platform: contracts, local stack and tools for an Intelligent Operations Center."""


# --- schemas ---------------------------------------------------------------------------------------------


@cli.group()
def schema() -> None:
    """JSON Schemas of the event contracts (for vendors and API clients)."""


@schema.command("export")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def schema_export(directory: Path) -> None:
    """Write every contract's JSON Schema into DIRECTORY."""
    for path in schemas.export(directory):
        click.echo(str(path))


@schema.command("check")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=Path("schemas"))
def schema_check(directory: Path) -> None:
    """Fail when the schemas in DIRECTORY differ from the contracts."""
    problems = schemas.diff(directory)
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        raise SystemExit(f"schemas in {directory} are stale: run `ioc schema export {directory}`")
    click.echo(f"{directory}: up to date")


# --- units and reference model ---------------------------------------------------------------------------


@cli.group("units")
def units_group() -> None:
    """The administrative-units tree."""


@units_group.command("show")
@click.argument("query")
@click.option("--edition", type=click.Choice(units.EDITIONS), default="2024", show_default=True)
@click.option("--level", type=click.Choice([level.value for level in units.Level]))
def units_show(query: str, edition: units.Edition, level: str | None) -> None:
    """Show a unit by code or name, with its path and children."""
    tree = units.load_tree(edition)
    try:
        unit = tree.get(query) if query.isdigit() else tree.find(query, level)
    except units.UnknownUnitError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{unit.code}  {unit.full_name}  ({unit.level})  path {tree.path(unit.code)}")
    for child in tree.children(unit.code):
        click.echo(f"  {child.code}  {child.full_name}")
    if edition == "2025":
        click.echo(f"  absorbs 2024 communes: {', '.join(sorted(units.legacy_codes(unit.code)))}")


@cli.group("reference-model")
def reference_group() -> None:
    """The IOC reference model."""


@reference_group.command("check")
@click.argument("path", type=click.Path(dir_okay=False, exists=True, path_type=Path), required=False)
def reference_check(path: Path | None) -> None:
    """Validate a reference-model YAML (default: the packaged one)."""
    try:
        model = load_reference_model(path) if path else default_reference_model()
    except ReferenceModelError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{model.name} {model.version}: {len(model.tiers)} tiers, {len(model.rules)} rules: valid")


# --- prerequisites and the local stack ----------------------------------------------------------------------


def _installer() -> Installer:
    return Installer(default_cache_dir())


_BUILT_TOOLS: dict[str, Callable[[Installer], Path]] = {
    "etcd": lambda installer: installer.etcd(),
    "helm": lambda installer: installer.helm(),
    "kube-apiserver": lambda installer: installer.kubernetes()[0],
    "kubectl": lambda installer: installer.kubernetes()[1],
}


@cli.command()
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
            click.echo(str(_BUILT_TOOLS[which](_installer())))
        except MissingPrerequisite as exc:
            raise click.ClickException(str(exc)) from None
        return
    started = time.monotonic()
    try:
        toolchain = _installer().all()
    except MissingPrerequisite as exc:
        raise click.ClickException(str(exc)) from None
    for name, value in vars(toolchain).items():
        click.echo(f"{name:15} {value if not isinstance(value, tuple) else ' '.join(value)}")
    click.echo(f"prerequisites ready in {time.monotonic() - started:.0f} s")


@cli.group()
def stack() -> None:
    """Drive the local stack by hand: Mosquitto, Kafka, ClickHouse, etcd and kube-apiserver on loopback."""


_stack_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the stack keeps data, logs and stack.json (default ~/.cache/ioc/stacks/default).",
)


@stack.command("up")
@_stack_dir
@click.option("--service", "services", multiple=True, type=click.Choice(SERVICES), help="Only these (repeatable).")
def stack_up(directory: Path | None, services: tuple[str, ...]) -> None:
    """Start the services (all by default) and wait until each answers."""
    local = Stack(directory or default_stack_dir(), _installer())
    try:
        running = local.up(services or SERVICES, progress=True)
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
@_stack_dir
@click.option("--json", "as_json", is_flag=True, help="Print every service's endpoint and credentials as JSON.")
def stack_status(directory: Path | None, as_json: bool) -> None:
    """Show each service: running, ready, endpoint."""
    report = Stack(directory or default_stack_dir(), _installer()).status()
    if as_json:
        click.echo(json.dumps(report, indent=2, sort_keys=True))
        return
    if not report["services"]:
        click.echo("no local stack here: start one with `ioc stack up`")
        return
    _print_status(report)


def _print_status(report: dict[str, Any]) -> None:
    for name, info in report["services"].items():
        state = "ready" if info["ready"] else ("running, not ready" if info["running"] else "stopped")
        endpoint = (
            info.get("bootstrap") or info.get("server") or info.get("endpoint") or f"{info['host']}:{info['port']}"
        )
        click.echo(f"{name:15} {state:20} {endpoint:28} pid {info['pid']}  log {info['log']}")


@stack.command("down")
@_stack_dir
def stack_down(directory: Path | None) -> None:
    """Stop every service of the stack."""
    stopped = Stack(directory or default_stack_dir(), _installer()).down()
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


# --- fleet simulators ----------------------------------------------------------------------------------------

_SCENARIO_HELP = (
    "Inject a scenario (repeatable): flood:25957@+10m, pollution:25987,25966@+0m/60m, "
    "silent:<vendor|device>@+5m, impossible:<device>@+1m, flood-device:<device>@+1m, violations:25747@+3m, "
    "spoof:<vendor>[,<device>]@+2m, or the preset `demo` (SCENARIOS.md stories 1, 2, 3 and 5)."
)


@cli.command()
@click.option(
    "--stack",
    "stack_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local stack to publish to (default ~/.cache/ioc/stacks/default).",
)
@click.option("--seed", type=int, default=None, help="Same seed, same fleet and plan [IOC_SIMULATOR_SEED, 766].")
@click.option("--rate", type=click.FloatRange(min=0, min_open=True), default=None, help="Target messages per second.")
@click.option("--duration", default="1h", show_default=True, help="Simulated time to run: 90s, 10m, 1h30m.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Simulated seconds per second of wall time (60: an hour in a minute).",
)
@click.option("--units", "unit_codes", default=None, help="Unit codes to cover, e.g. 724,725 (default: all communes).")
@click.option("--scenario", "scenario_texts", multiple=True, help=_SCENARIO_HELP)
@click.option("--dry-run", is_flag=True, help="Print what the run would send; connect to nothing.")
@click.option(
    "--start",
    type=click.DateTime(formats=["%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S"]),
    default=None,
    help="Simulated start time (default now); `ioc up` aligns it with the stream workers' clock.",
)
@click.option(
    "--anchor",
    type=float,
    default=None,
    help="Unix time at which --start happens (default: when the run is ready); `ioc up` gives the stream "
    "workers the same anchor, so both clocks read the same simulated time.",
)
def simulate(
    *,
    start: dt.datetime | None,
    anchor: float | None,
    stack_dir: Path | None,
    seed: int | None,
    rate: float | None,
    duration: str,
    speed: float,
    unit_codes: str | None,
    scenario_texts: tuple[str, ...],
    dry_run: bool,
) -> None:
    """Run the seeded fleet simulators (sensors, cameras, citizen reports, dossiers) against the local stack."""
    settings = SimulatorSettings()
    if start is None:
        start = dt.datetime.now(simulators.LOCAL_TZ).replace(microsecond=0)
    elif start.tzinfo is None:
        start = start.replace(tzinfo=simulators.LOCAL_TZ)
    try:
        duration_s = simulators.parse_duration(duration)
        fleet = simulators.build_fleet(
            settings.seed if seed is None else seed,
            units.load_tree("2024"),
            units=[code for code in (unit_codes or "").split(",") if code.strip()] or None,
        )
        sim = simulators.Simulation(
            fleet=fleet,
            start=start,
            duration_s=duration_s,
            scenarios=simulators.resolve_scenarios(scenario_texts, fleet),
            speed=speed,
            rate_per_s=settings.rate_per_s if rate is None else rate,
            first_seq=simulators.seq_base(start),
        )
    except (ValueError, units.UnknownUnitError) as exc:
        raise click.ClickException(str(exc)) from None
    if dry_run:
        for line in simulators.describe(sim, simulators.tally(simulators.iter_plan(sim))):
            click.echo(line)
        return
    local = Stack(stack_dir or default_stack_dir(), _installer())
    status = local.status()
    down = [name for name in ("mosquitto", "kafka") if not status["services"].get(name, {}).get("ready")]
    if down:
        not_ready = ", ".join(down)
        raise click.ClickException(
            f"the local stack in {local.root} is not running ({not_ready} not ready): start it with `ioc stack up`"
        )
    endpoints = Endpoints.from_stack_status(status)
    for line in simulators.describe(sim):
        click.echo(line, err=True)
    try:
        passwords = simulators.issue_credentials(endpoints.mqtt, fleet.vendor_ids)
        summary = simulators.run(
            sim, mqtt=endpoints.mqtt, kafka=endpoints.kafka, passwords=passwords, progress=sys.stderr, anchor=anchor
        )
    except (DynsecError, simulators.RunError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in summary.describe():
        click.echo(line)
    if not summary.ok:
        raise click.ClickException("some messages were refused, lost or not acknowledged (see above)")


# --- the ClickHouse warehouse --------------------------------------------------------------------------------


@cli.group("warehouse")
def warehouse_group() -> None:
    """The ClickHouse warehouse: schema migrations of the tables in docs/warehouse.md."""


def _warehouse_options(command: FC) -> FC:
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


def _open_warehouse(
    *, stack_dir: Path | None, host: str | None, port: int, user: str, password: str, chdb_path: Path | None
) -> Warehouse:
    if sum(choice is not None for choice in (stack_dir, host, chdb_path)) > 1:
        raise click.UsageError("--stack, --host and --chdb each name a warehouse: give one of them")
    if chdb_path is not None:
        try:
            return in_process(str(chdb_path))
        except WarehouseError as exc:
            raise click.ClickException(str(exc)) from None
    if host is not None:
        endpoint = ClickHouseEndpoint(host=host, port=port, user=user, password=password)
    else:
        local = Stack(stack_dir or default_stack_dir(), _installer())
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


@warehouse_group.command("migrate")
@_warehouse_options
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
    retention_days: int,
) -> None:
    """Create or upgrade the warehouse schema; prints the migrations it applied."""
    with _open_warehouse(
        stack_dir=stack_dir, host=host, port=port, user=user, password=password, chdb_path=chdb_path
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
    click.echo(f"{database}: {state} (ClickHouse {version}, {features})")


@warehouse_group.command("status")
@_warehouse_options
def warehouse_status(
    *,
    stack_dir: Path | None,
    host: str | None,
    port: int,
    user: str,
    password: str,
    database: str,
    chdb_path: Path | None,
) -> None:
    """List the warehouse's migrations: applied (when), pending, changed since applied, or unknown here."""
    with _open_warehouse(
        stack_dir=stack_dir, host=host, port=port, user=user, password=password, chdb_path=chdb_path
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


# --- dashboards ------------------------------------------------------------------------------------------------


@cli.command()
@click.option(
    "--site", "site_unit", required=True, help="Unit code of the IOC site, e.g. 724 (Dĩ An) or 74 (province)."
)
@click.option(
    "--edition", type=click.Choice(units.EDITIONS), default=None, help="Units tree [IOC_DASHBOARD_EDITION, 2024]."
)
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="HTTP port [IOC_DASHBOARD_PORT, 8501].")
@click.option(
    "--stack",
    "stack_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local stack to read (default ~/.cache/ioc/stacks/default).",
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
    help="Without an identity provider: the local user's role (default operator).",
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
    stack_dir: Path | None,
    chdb_path: Path | None,
    public: bool | None,
    role: str | None,
    lang: str | None,
    dry_run: bool,
) -> None:
    """Run one IOC site's Streamlit dashboard locally against the local stack (ClickHouse and Kafka)."""
    base = DashboardSettings()
    local = Stack(stack_dir or default_stack_dir(), _installer())
    overrides: dict[str, Any] = {"site_unit": site_unit}
    for name, value in (("edition", edition), ("port", port), ("public_enabled", public), ("language", lang)):
        if value is not None:
            overrides[name] = value
    if chdb_path is not None:
        overrides["chdb_path"] = chdb_path
    else:
        status = local.status()
        if not status["services"].get("clickhouse", {}).get("ready"):
            raise click.ClickException(
                f"ClickHouse of the local stack in {local.root} is not running: start it with `ioc stack up`"
                " (or pass --chdb DIR for a quick look)"
            )
        endpoints = Endpoints.from_stack_status(status)
        overrides["clickhouse"] = endpoints.clickhouse.model_copy(update={"database": base.clickhouse.database})
        if status["services"].get("kafka", {}).get("ready"):
            overrides["kafka"] = endpoints.kafka
        else:
            click.echo("warning: Kafka is not running: incident actions will fail until it is", err=True)
    if base.oidc_metadata_url is None:
        overrides["local_role"] = role or base.local_role or "operator"
    if base.audit_log is None:
        overrides["audit_log"] = local.root / f"dashboard-{site_unit}" / "audit.jsonl"
    try:
        settings = DashboardSettings(**overrides)
        Site.from_settings(settings)
    except (pydantic.ValidationError, units.UnknownUnitError) as exc:
        raise click.ClickException(str(exc)) from None
    argv, env = launch.command(settings, local.root / f"dashboard-{site_unit}", os.environ)
    click.echo(f"dashboard for site {site_unit}: http://localhost:{settings.port}/", err=True)
    if dry_run:
        click.echo(" ".join(argv))
        shown = settings.model_copy(update={"clickhouse": _no_password(settings)})
        for key, value in sorted(launch.settings_env(shown).items()):
            click.echo(f"{key}={'***' if key.endswith('SECRET') else value}")
        return
    # Become the Streamlit process, so Ctrl-C and a pod's SIGTERM reach it directly.
    os.execve(argv[0], argv, env)  # noqa: S606 - argv is our own, fully built command line


def _no_password(settings: DashboardSettings) -> ClickHouseEndpoint:
    return settings.clickhouse.model_copy(update={"password": pydantic.SecretStr("***")})


# --- the operator and the province as code ----------------------------------------------------------------------


@cli.group("operator")
def operator_group() -> None:
    """The Kubernetes operator: its CRDs, its RBAC role, and running it."""


@operator_group.command("crds")
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), default=operator_crds.CHART_CRDS, required=False
)
@click.option("--check", is_flag=True, help="Fail when the files differ from the models, instead of writing them.")
def operator_crds_command(directory: Path, check: bool) -> None:
    """Write the CRDs generated from the typed models into DIRECTORY (default: the chart's crds/)."""
    if check:
        problems = operator_crds.diff(directory)
        for problem in problems:
            click.echo(problem, err=True)
        if problems:
            raise SystemExit(f"CRDs in {directory} are stale: run `ioc operator crds {directory}`")
        click.echo(f"{directory}: up to date")
        return
    for path in operator_crds.write(directory):
        click.echo(str(path))


@operator_group.command("rbac")
@click.option("--name", default="ioc-operator", show_default=True, help="The ClusterRole's name.")
def operator_rbac(name: str) -> None:
    """Print the operator's ClusterRole (the least its ServiceAccount needs) as YAML."""
    click.echo(yaml.safe_dump(rbac.cluster_role(name), sort_keys=False), nl=False)


@operator_group.command("run")
def operator_run() -> None:
    """Run the operator here (settings from IOC_OPERATOR_*), as `python -m operators` does."""
    try:
        settings = OperatorSettings()
    except pydantic.ValidationError as exc:
        raise click.ClickException(str(exc)) from None
    runtime.run(settings)


@cli.group("sites")
def sites_group() -> None:
    """IOC sites as code: IOCSite manifests for a whole units tree."""


@sites_group.command("render")
@click.option("--edition", type=click.Choice(units.EDITIONS), default="2024", show_default=True)
@click.option("--namespace", default="ioc-sites", show_default=True, help="Namespace of the sites.")
@click.option("--no-namespace", is_flag=True, help="Leave the Namespace object out of the output.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write here, not to stdout.")
def sites_render(edition: units.Edition, namespace: str, no_namespace: bool, output: Path | None) -> None:
    """Multi-document YAML of one IOCSite per unit (parents first), for `kubectl apply -f`."""
    text = province.render(edition, namespace, with_namespace=not no_namespace)
    if output is None:
        click.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    click.echo(f"{output}: {text.count('kind: IOCSite')} IOCSites in namespace {namespace}", err=True)


# --- citizen API, one-stop portal connector and upward reports ------------------------------------------------


def _stack_endpoints(stack_dir: Path | None, needed: tuple[str, ...]) -> Endpoints:
    """The local stack's endpoints, or a clear error naming what is not running."""
    local = Stack(stack_dir or default_stack_dir(), _installer())
    status = local.status()
    down = [name for name in needed if not status["services"].get(name, {}).get("ready")]
    if down:
        not_ready = ", ".join(down)
        raise click.ClickException(
            f"the local stack in {local.root} is not running ({not_ready} not ready): start it with `ioc stack up`"
        )
    return Endpoints.from_stack_status(status)


_stack_option = click.option(
    "--stack",
    "stack_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The local stack to use (default ~/.cache/ioc/stacks/default).",
)


@cli.command("api")
@click.option("--site", "site_unit", default=None, help="Unit code of the site [IOC_API_SITE_UNIT, 74].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="HTTP port [IOC_API_PORT, 8080].")
@click.option("--public/--no-public", "public", default=None, help="Serve open data [IOC_API_PUBLIC_ENABLED].")
@_stack_option
def api_command(site_unit: str | None, port: int | None, public: bool | None, stack_dir: Path | None) -> None:
    """Serve the citizen API (Open311 reports, open data, NGSI-LD) for one site against the local stack."""
    import uvicorn  # noqa: PLC0415 - only the serving commands need the HTTP server

    base = CitizenApiSettings()
    endpoints = _stack_endpoints(stack_dir, ("kafka", "clickhouse"))
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


@cli.command("portal")
@click.option("--site", "site_unit", default=None, help="Unit code of the site [IOC_PORTAL_SITE_UNIT, 74].")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="HTTP port [IOC_PORTAL_PORT, 8090].")
@_stack_option
def portal_command(site_unit: str | None, port: int | None, stack_dir: Path | None) -> None:
    """Serve the one-stop portal connector (signed dossier webhook, polling, children's reports) locally."""
    import uvicorn  # noqa: PLC0415 - only the serving commands need the HTTP server

    base = PortalGatewaySettings()
    endpoints = _stack_endpoints(stack_dir, ("kafka",))
    local_root = Stack(stack_dir or default_stack_dir(), _installer()).root
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


@cli.group("report")
def report_group() -> None:
    """Upward reports: a site's Decision 766 and incident figures per period (export, publish, push)."""


@report_group.command("export")
@_warehouse_options
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
    with _open_warehouse(
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
@_warehouse_options
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
        overrides["kafka"] = _stack_endpoints(stack_dir, ("kafka",)).kafka
    try:
        settings = ReportingSettings(**overrides)
        period = reporting.parse_period(period_text)
        scope = site_scope(settings.site_unit, settings.edition)
    except (pydantic.ValidationError, ValueError, units.UnknownUnitError) as exc:
        raise click.ClickException(str(exc)) from None
    if settings.signing_key is None:
        raise click.ClickException("set IOC_REPORTING_SIGNING_KEY (from `ioc report keygen`) to sign reports")
    with _open_warehouse(
        stack_dir=stack_dir, host=host, port=port, user=user, password=password, chdb_path=chdb_path
    ) as warehouse:
        try:
            report = reporting.build_for(warehouse, database, scope, period, generated_at=dt.datetime.now(dt.UTC))
        except (WarehouseError, ValueError) as exc:
            raise click.ClickException(str(exc)) from None
    outbox = reporting.Outbox(settings.kafka.bootstrap)
    try:
        envelope = outbox.seal_and_publish(
            report, settings.signing_key.get_secret_value(), settings.key_id or settings.site_unit
        )
    except (reporting.OutboxError, signing.SignatureError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"in the outbox: {envelope.idempotency_key}")


@report_group.command("push")
@click.option("--parent", "parent_url", default=None, help="The parent's report endpoint [IOC_REPORTING_PARENT_URL].")
@_stack_option
def report_push(parent_url: str | None, stack_dir: Path | None) -> None:
    """Push the outbox to the parent IOC until Ctrl-C (retries, idempotency keys; as `python -m streams.reporting`)."""
    import threading  # noqa: PLC0415 - only this long-running command needs a stop event

    overrides: dict[str, Any] = {"parent_url": parent_url} if parent_url else {}
    if "IOC_REPORTING_KAFKA__BOOTSTRAP" not in os.environ:
        overrides["kafka"] = _stack_endpoints(stack_dir, ("kafka",)).kafka
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


@cli.command("up")
@_stack_dir
@click.option(
    "--speed",
    type=click.FloatRange(min=0, min_open=True),
    default=60.0,
    show_default=True,
    help="Simulated seconds per second (60: an hour of the province in a minute, SLAs included).",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=200.0,
    show_default=True,
    help="Simulator messages per second.",
)
@click.option("--duration", default="6h", show_default=True, help="Simulated time to run the simulator.")
@click.option("--scenario", "scenarios", multiple=True, help="Scenarios to inject (default: the `demo` preset).")
@click.option("--no-simulator", is_flag=True, help="Bring the platform up without simulated data.")
@click.option("--no-operator", is_flag=True, help="Skip the Kubernetes operator and the sites.")
@click.option("--keep-stack", is_flag=True, help="Leave the local stack's services running after Ctrl-C.")
def up(
    *,
    directory: Path | None,
    speed: float,
    rate: float,
    duration: str,
    scenarios: tuple[str, ...],
    no_simulator: bool,
    no_operator: bool,
    keep_stack: bool,
) -> None:
    """Run the whole platform locally on real services, with the simulated province; Ctrl-C stops it all."""
    from iocctl.localstack.platform import Platform  # noqa: PLC0415 - imports every component; only `up` needs them

    platform = Platform(
        Stack(directory or default_stack_dir(), _installer()),
        speed=speed,
        rate=rate,
        duration=duration,
        scenarios=scenarios or ("demo",),
        with_simulator=not no_simulator,
        with_operator=not no_operator,
        say=click.echo,
    )
    failure: Exception | None = None
    try:
        platform.start()
        platform.run_until_interrupted()
    except (MissingPrerequisite, ServiceStartError, RuntimeError) as exc:
        failure = exc
    except KeyboardInterrupt:
        pass  # Ctrl-C while starting: stop what has started
    platform.stop(keep_stack=keep_stack)
    if failure is not None:
        raise click.ClickException(str(failure)) from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `ioc` console script."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="ioc")
