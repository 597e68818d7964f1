"""`ioc node` and `ioc image`: a real one-node Kubernetes cluster on this machine, and the platform image for it."""

from __future__ import annotations

import dataclasses
import json
import sys
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


@node_group.command("prepare")
@stack_dir_option
def node_prepare(directory: Path | None) -> None:
    """Everything `helm install` of the chart needs on the node: node, image, the stack's services, Secrets.

    The node and the image as `ioc node up`; Mosquitto, Kafka and ClickHouse of the local stack in the same
    directory, listening on the node IP and published under the chart's default Service names (a service started
    before the node is restarted); the Secrets the chart reads, in ioc-system; a values file. Prints the commands.
    """
    from iocctl.localstack.onnode import CHART, HelmFailed, PlatformOnNode  # noqa: PLC0415 - imports operators

    started = time.monotonic()
    platform = PlatformOnNode(directory or default_stack_dir(), installer(), say=click.echo)
    try:
        on_node = platform.up(install=False)
    except (MissingPrerequisite, ServiceStartError, NodeBusy, HelmFailed) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"ready for the chart in {time.monotonic() - started:.0f} s; next:")
    click.echo(f"export KUBECONFIG={on_node.kubeconfig}")
    click.echo(
        f"{on_node.helm_path} install {on_node.release} {CHART} -n {on_node.namespace} -f {on_node.values_file} --wait"
    )
    where = f" --dir {directory}" if directory else ""
    click.echo(f"{sys.argv[0]} node operator-users-d{where}  # ClickHouse 18.16: the operator writes site logins")


@node_group.command("operator-users-d")
@stack_dir_option
def node_operator_users_d(directory: Path | None) -> None:
    """After `helm install` on the node: give the chart's operator the stack's ClickHouse users.d (18.16 only).

    ClickHouse 18.16 has no SQL users: a site's login is a file the operator writes into the server's users.d,
    which the chart cannot mount (its target, a current ClickHouse, takes SQL users). Patches the operator's
    Deployment with a hostPath onto it and waits for the rollout.
    """
    from iocctl.localstack.onnode import HelmFailed, PlatformOnNode  # noqa: PLC0415 - imports operators

    platform = PlatformOnNode(directory or default_stack_dir(), installer())
    try:
        platform.operator_writes_users_d(platform.attach())
    except HelmFailed as exc:
        raise click.ClickException(str(exc)) from None
    click.echo("the operator writes the site logins into the stack's ClickHouse users.d")


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
