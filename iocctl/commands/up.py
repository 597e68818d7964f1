"""`ioc up`: the whole platform locally on real services with the simulated province, until Ctrl-C.

As processes (default), or as pods on the local node (`--on-node`, root): the chart installed with Helm.
"""

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
@click.option(
    "--duration",
    default="6h",
    show_default=True,
    help="Simulated time of the scripted stories at --speed; then the province keeps living in real time.",
)
@click.option("--no-living", is_flag=True, help="Stop the simulator after the scripted stories (the demo freezes).")
@click.option("--scenario", "scenarios", multiple=True, help="Scenarios to inject (default: the `demo` preset).")
@click.option("--no-simulator", is_flag=True, help="Bring the platform up without simulated data.")
@click.option("--no-operator", is_flag=True, help="Skip the Kubernetes operator and the sites.")
@click.option("--keep-stack", is_flag=True, help="Leave the local stack's services running after Ctrl-C.")
@click.option(
    "--on-node",
    is_flag=True,
    help="Run the operator, bridge, workers, API and the sites' dashboards as pods on the local node (root): "
    "the chart installed with Helm; --keep-stack then leaves the node running too.",
)
def up(
    *,
    directory: Path | None,
    speed: float,
    rate: float,
    duration: str,
    scenarios: tuple[str, ...],
    no_simulator: bool,
    no_living: bool,
    no_operator: bool,
    keep_stack: bool,
    on_node: bool,
) -> None:
    """Run the whole platform locally on real services, with the simulated province; Ctrl-C stops it all."""
    if on_node:
        _up_on_node(
            directory or default_stack_dir(),
            speed=speed,
            rate=rate,
            duration=duration,
            scenarios=scenarios or ("demo",),
            with_simulator=not no_simulator,
            with_operator=not no_operator,
            keep=keep_stack,
        )
        return
    from iocctl.localstack.platform import Platform  # noqa: PLC0415 - imports every component; only `up` needs them

    platform = Platform(
        Stack(directory or default_stack_dir(), installer()),
        speed=speed,
        rate=rate,
        duration=duration,
        scenarios=scenarios or ("demo",),
        with_simulator=not no_simulator,
        with_operator=not no_operator,
        living=not no_living,
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


def _up_on_node(
    root: Path,
    *,
    speed: float,
    rate: float,
    duration: str,
    scenarios: tuple[str, ...],
    with_simulator: bool,
    with_operator: bool,
    keep: bool,
) -> None:
    from iocctl.localstack.node import NodeBusy  # noqa: PLC0415 - only --on-node needs the node's modules
    from iocctl.localstack.onnode import HelmFailed  # noqa: PLC0415
    from iocctl.localstack.platform_node import PlatformOnNodeDemo  # noqa: PLC0415

    demo = PlatformOnNodeDemo(
        root,
        installer(),
        speed=speed,
        rate=rate,
        duration=duration,
        scenarios=scenarios,
        with_simulator=with_simulator,
        with_operator=with_operator,
        say=click.echo,
    )
    failure: Exception | None = None
    try:
        demo.start()
        demo.run_until_interrupted()
    except (MissingPrerequisite, ServiceStartError, NodeBusy, HelmFailed, RuntimeError) as exc:
        failure = exc
    except KeyboardInterrupt:
        pass  # Ctrl-C while starting: remove what has started
    demo.stop(keep=keep)
    if failure is not None:
        raise click.ClickException(str(failure)) from None
