"""The `ioc` command line: schemas, units, the local stack and its prerequisites.

This is the top of the import graph: it may call into any component, and nothing imports it. Each
subcommand builds its settings here, calls one library function and prints the result; errors a user
can fix are printed as one clear line and exit non-zero, without a traceback.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from ioc import schemas, units
from ioc.dynsec import DynsecError
from ioc.localstack.install import Installer, MissingPrerequisite
from ioc.localstack.process import ServiceStartError
from ioc.localstack.services import SERVICES
from ioc.localstack.stack import Stack, default_cache_dir, default_stack_dir
from ioc.reference import ReferenceModelError, default_reference_model, load_reference_model
from ioc.settings import Endpoints, SimulatorSettings
from sensors import simulators

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


@cli.command()
def deps() -> None:
    """Install the local stack's prerequisites (apt packages, Kafka jars, Go builds), cached in ~/.cache/ioc."""
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
def simulate(
    *,
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
    start = dt.datetime.now(simulators.LOCAL_TZ).replace(microsecond=0)
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
            sim, mqtt=endpoints.mqtt, kafka=endpoints.kafka, passwords=passwords, progress=sys.stderr
        )
    except (DynsecError, simulators.RunError) as exc:
        raise click.ClickException(str(exc)) from None
    for line in summary.describe():
        click.echo(line)
    if not summary.ok:
        raise click.ClickException("some messages were refused, lost or not acknowledged (see above)")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `ioc` console script."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="ioc")
