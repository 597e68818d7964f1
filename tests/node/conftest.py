"""The installed platform on the local node, for the kube_node tests that use it (`platform_on_node`).

One node per machine: the fixture is module-scoped, so the node, its pods and its services are gone before the
next module that brings its own node (test_chart.py, test_node.py), whatever the order, and nothing of it keeps
running (and taking CPU) through the rest of the suite. Needs root; the first run builds the node's programs and the
image for several minutes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from iocctl.localstack.install import Installer
from iocctl.localstack.onnode import OnNode, PlatformOnNode
from iocctl.localstack.stack import default_cache_dir


@pytest.fixture(scope="module")
def platform_on_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnNode]:
    """charts/ioc-platform installed (`helm install --wait`, all Ready) on the node against the local stack.

    Yields an `OnNode`: `kubectl(...)`/`helm(...)` and `env` (KUBECONFIG) for the cluster, `namespace` and
    `release` (ioc-system, ioc), `services` (the stack's mosquitto, kafka and clickhouse infos: host endpoints and
    credentials, as `ioc stack status --json` prints them), `image` (the chart's name of the loaded image).
    Everything (node, pods, services) is removed at the end of the module using it.
    """
    if os.geteuid() != 0:
        pytest.skip("a node needs root (namespaces, bridges, iptables, mounts)")
    platform = PlatformOnNode(tmp_path_factory.mktemp("platform-on-node"), Installer(default_cache_dir()))
    try:
        yield platform.up()
    finally:
        platform.down()
