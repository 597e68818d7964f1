"""`ioc units`: look up an administrative unit by code or name; import the units' boundaries for the maps."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dashboards import boundaries
from ioc import units
from ioc.settings import DashboardSettings

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


@units_group.command("import-boundaries")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--edition", type=click.Choice(units.EDITIONS), default="2024", show_default=True, help="Units tree.")
@click.option(
    "--property",
    "match_property",
    default="code",
    show_default=True,
    help="The feature property holding the unit's code (e.g. ma_xa, GSO_CODE).",
)
@click.option(
    "--licence",
    default=None,
    help="Licence and attribution text shown with the boundaries; default: the file's top-level "
    "licence/license/attribution member (one of the two is required).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the dashboards read boundaries [IOC_DASHBOARD_BOUNDARIES_DIR, ~/.config/ioc/boundaries].",
)
def units_import_boundaries(
    file: Path, edition: units.Edition, match_property: str, licence: str | None, directory: Path | None
) -> None:
    """Import unit polygons (a GeoJSON FeatureCollection) for the dashboards' maps, with their licence."""
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise click.ClickException(f"{file} is not a GeoJSON file: {exc}") from None
    tree = units.load_tree(edition)
    try:
        found = boundaries.from_geojson(
            document, tree, match_property=match_property, licence=licence, source=file.name
        )
    except boundaries.BoundaryError as exc:
        raise click.ClickException(f"{file}: {exc}") from None
    target = boundaries.save(found, directory or DashboardSettings().boundaries_dir)
    missing = [u.code for u in tree if u.code not in found.areas]
    click.echo(f"imported {len(found.areas)} unit boundaries of the {edition} tree into {target}")
    click.echo(f"licence: {found.attribution}")
    if missing:
        shown = ", ".join(missing[:10]) + (", …" if len(missing) > 10 else "")
        click.echo(f"{len(missing)} units have no boundary (their markers still show): {shown}")
