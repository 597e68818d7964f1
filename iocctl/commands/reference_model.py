"""`ioc reference-model`: validate a reference-model YAML, or the packaged default one."""

from __future__ import annotations

from pathlib import Path

import click

from ioc.reference import ReferenceModelError, default_reference_model, load_reference_model

__all__ = ["reference_group"]


@click.group("reference-model")
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
