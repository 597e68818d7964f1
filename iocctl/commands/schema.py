"""`ioc schema`: export the event contracts' JSON Schemas for vendors, and check the exported copies for drift."""

from __future__ import annotations

from pathlib import Path

import click

from ioc import schemas

__all__ = ["schema"]


@click.group("schema")
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
