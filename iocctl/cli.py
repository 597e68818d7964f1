"""The `ioc` command line: the root group, which registers the command groups of `iocctl.commands`, and `main`.

Each command builds its settings, calls one library function and prints the result; errors a user can fix
are printed as one clear line and exit non-zero, without a traceback.
"""

from __future__ import annotations

import sys

import click

from iocctl.commands import (
    dashboard,
    node,
    operator,
    reference_model,
    report,
    schema,
    sdk,
    serve,
    simulate,
    stack,
    units,
    up,
    warehouse,
)

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ioc-platform")
def cli() -> None:
    """IOC Platform: contracts, local stack and tools for an Intelligent Operations Center."""


for _command in (
    schema.schema,
    units.units_group,
    reference_model.reference_group,
    stack.deps,
    stack.stack,
    node.node_group,
    node.image_group,
    simulate.simulate,
    warehouse.warehouse_group,
    dashboard.dashboard,
    operator.operator_group,
    operator.sites_group,
    serve.api_command,
    serve.portal_command,
    report.report_group,
    sdk.sdk_group,
    up.up,
):
    cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Entry point of the `ioc` console script."""
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="ioc")
