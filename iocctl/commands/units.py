"""`ioc units`: look up an administrative unit by code or name, with its path and children."""

from __future__ import annotations

import click

from ioc import units

__all__ = ["units_group"]


@click.group("units")
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
