"""`ioc simulate`: run the seeded fleet simulators (sensors, cameras, citizens, dossiers) on the local stack."""

from __future__ import annotations

import datetime as dt
import sys
import time
from pathlib import Path

import click

from ioc import snapshots, units
from ioc.clients.dynsec import DynsecError
from ioc.clock import SimulatedClock
from ioc.settings import SimulatorSettings
from iocctl.commands.common import stack_endpoints
from iocctl.localstack import process
from sensors import simulators

__all__ = ["simulate"]

_LATE_WALL_S = 10.0
"""A run with --then-live that starts this many wall seconds after its anchor is a restart: it goes on living."""

_SCENARIO_HELP = (
    "Inject a scenario (repeatable): flood:25957@+10m, pollution:25987,25966@+0m/60m, "
    "silent:<vendor|device>@+5m, impossible:<device>@+1m, flood-device:<device>@+1m, violations:25747@+3m, "
    "spoof:<vendor>[,<device>]@+2m, or the preset `demo` (SCENARIOS.md stories 1, 2, 3 and 5)."
)


@click.command("simulate")
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
@click.option(
    "--then-live",
    is_flag=True,
    help="After the run's scripted --duration, keep the province living (ordinary hours, the occasional event) in "
    "real time until stopped; started again after the script's time, it goes straight on living from the present.",
)
@click.option(
    "--living-rate",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Messages per second while the province lives (the fleet's own pace is about 7).",
)
def simulate(
    *,
    then_live: bool,
    living_rate: float,
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
    endpoints = stack_endpoints(stack_dir, ("mosquitto", "kafka"))
    clock = SimulatedClock(
        start.timestamp(), time.time() if anchor is None else anchor, speed, duration_s if then_live else None
    )
    # Started again (by `ioc up`, after a crash) well past its start: the script's events are in the past, so
    # replaying them would date a burst of old events now; the province goes on living from the present instead.
    scripted = not then_live or time.time() < clock.anchor + _LATE_WALL_S
    store = snapshots.DirectoryStore(settings.snapshots_dir)  # camera images, read by the dashboards
    try:
        # Ctrl-C, SIGTERM (`ioc up` stopping it) and a test's SIGINT stop a run alike: it flushes and reports.
        with process.interruptible():
            passwords = simulators.issue_credentials(endpoints.mqtt, fleet.vendor_ids)
            if scripted:
                for line in simulators.describe(sim):
                    click.echo(line, err=True)
                summary = simulators.run(
                    sim,
                    mqtt=endpoints.mqtt,
                    kafka=endpoints.kafka,
                    passwords=passwords,
                    progress=sys.stderr,
                    anchor=anchor,
                    snapshot_store=store,
                )
                for line in summary.describe():
                    click.echo(line)
                if summary.interrupted or not then_live:
                    if not summary.ok:
                        raise click.ClickException("some messages were refused, lost or not acknowledged (see above)")
                    return
            since = max(clock.now(), start.timestamp() + duration_s) if scripted else clock.now()
            living_from = dt.datetime.fromtimestamp(since, simulators.LOCAL_TZ)
            click.echo(f"the province lives on from {living_from:%Y-%m-%d %H:%M}")
            simulators.run_living(
                simulators.living_hours(fleet, clock, since=since, rate_per_s=living_rate),
                clock,
                mqtt=endpoints.mqtt,
                kafka=endpoints.kafka,
                passwords=passwords,
                progress=sys.stderr,
                snapshot_store=store,
            )
    except (DynsecError, simulators.RunError) as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("stopped", err=True)  # between two living hours: nothing was in flight
