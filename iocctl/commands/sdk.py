"""`ioc sdk build`: the vendor SDK's own wheel, so a vendor installs only what publishing needs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from iocctl import sdkdist

__all__ = ["sdk_group"]


@click.group("sdk")
def sdk_group() -> None:
    """The vendor SDK as its own distribution (ioc-sensor-sdk)."""


@sdk_group.command("build")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("dist"),
    show_default=True,
    help="Where to write the wheel.",
)
def sdk_build(out_dir: Path) -> None:
    """Build ioc-sensor-sdk's wheel from this repository's source, and say what it holds."""
    uv = Path(sys.executable).with_name("uv")
    if not uv.exists():
        raise click.ClickException(f"uv is not installed beside {sys.executable}: run `make venv` first")
    try:
        contents = sdkdist.contents()
        wheel = sdkdist.build_wheel(out_dir, uv=uv)
    except sdkdist.SdkBuildError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"built {wheel}")
    click.echo(f"  modules: {', '.join(contents.modules)}")
    click.echo(f"  requires: {', '.join(contents.requirements)}")
