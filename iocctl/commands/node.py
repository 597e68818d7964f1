"""`ioc node` and `ioc image`: a real one-node Kubernetes cluster on this machine, and the platform image for it."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import click

from iocctl import image as images
from iocctl.commands.common import installer, stack_dir_option
from iocctl.localstack.install import MissingPrerequisite
from iocctl.localstack.node import Node, NodeBusy
from iocctl.localstack.process import ServiceStartError
from iocctl.localstack.stack import default_cache_dir, default_stack_dir

__all__ = ["image_group", "node_group"]


@click.group("node")
def node_group() -> None:
    """A real node (kubelet, containerd, CNI, kube-proxy, CoreDNS) and its control plane; needs root."""


@node_group.command("up")
@stack_dir_option
@click.option("--with-image/--without-image", default=True, help="Build (if changed) and load the platform image.")
def node_up(directory: Path | None, with_image: bool) -> None:
    """Start the node's services (those not running), load the platform image, wait until the node is Ready."""
    node = Node(directory or default_stack_dir(), installer())
    started = time.monotonic()
    try:
        built = images.build(cache_dir=default_cache_dir()) if with_image else None
        node.up()
        if built is not None:
            node.load_image(built.archive, tags=[built.chart_tag])
            click.echo(f"image {built.chart_tag} ({built.tag}) loaded")
    except (MissingPrerequisite, ServiceStartError, NodeBusy) as exc:
        raise click.ClickException(str(exc)) from None
    info = node.info()
    click.echo(f"node {info['node_name']} Ready at {info['node_ip']} in {time.monotonic() - started:.0f} s")
    click.echo(f"export KUBECONFIG={info['kubeconfig']}  # kubectl: {info['kubectl']}")


@node_group.command("status")
@stack_dir_option
def node_status(directory: Path | None) -> None:
    """The node's services that run, and how to reach the cluster."""
    node = Node(directory or default_stack_dir(), installer())
    running = node.running()
    if not running:
        click.echo("no node runs here: start one with `ioc node up`")
        return
    for name, info in running.items():
        click.echo(f"{name:24} pid {info['pid']:<8} log {info['log']}")
    click.echo(json.dumps(node.info(), indent=2, sort_keys=True))


@node_group.command("down")
@stack_dir_option
def node_down(directory: Path | None) -> None:
    """Stop the node and remove its pods, network and iptables rules."""
    stopped = Node(directory or default_stack_dir(), installer()).down()
    click.echo(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")


@click.group("image")
def image_group() -> None:
    """The platform image, built from the Dockerfile with buildah (no Docker), cached by content."""


@image_group.command("build")
def image_build() -> None:
    """Build the image unless an identical one is cached; print its tags and archive."""
    try:
        built = images.build(cache_dir=default_cache_dir())
    except MissingPrerequisite as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps(dataclasses.asdict(built), default=str, indent=2))
