"""`ioc up`: the whole platform locally on real services with the simulated province, until Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import click

from iocctl.commands.common import installer, stack_dir_option
from iocctl.localstack.install import MissingPrerequisite
from iocctl.localstack.process import ServiceStartError
from iocctl.localstack.stack import Stack, default_stack_dir

__all__ = ["up"]


@click.command("up")
@stack_dir_option
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
        Stack(directory or default_stack_dir(), installer()),
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
