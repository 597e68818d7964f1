"""`ioc operator` and `ioc sites`: the operator's CRDs, RBAC role and process, and IOCSite manifests for a tree."""

from __future__ import annotations

from pathlib import Path

import click
import pydantic
import yaml

from ioc import units
from ioc.settings import OperatorSettings
from operators import crds as operator_crds
from operators import province, rbac, runtime

__all__ = ["operator_group", "sites_group"]


@click.group("operator")
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


@click.group("sites")
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
