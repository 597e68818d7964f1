"""Test-suite wiring: a real local stack per test run, started lazily per service, stopped at the end.

Tests ask for the service they need (`mosquitto`, `kafka`, `clickhouse`, `kube`); only those services
start. Tests using them are marked `slow` (and with the service's marker) automatically, so
`pytest -m "not slow"` is the fast, service-free subset. Set IOC_TEST_STACK to the directory of a
stack you started with `ioc stack up --dir DIR` to reuse it across runs (it is then left running).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iocctl.localstack.install import Installer
from iocctl.localstack.stack import Stack, default_cache_dir

_SERVICE_FIXTURES = {"mosquitto": "mqtt", "kafka": "kafka", "clickhouse": "clickhouse", "kube": "kube"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for fixture, marker in _SERVICE_FIXTURES.items():
            if fixture in used:
                item.add_marker(getattr(pytest.mark, marker))
                item.add_marker(pytest.mark.slow)
        if "local_stack" in used:
            item.add_marker(pytest.mark.slow)


def pytest_collection_finish(session: pytest.Session) -> None:
    # An empty run is a broken run (a bad path, a marker typo), never a pass.
    if not session.items and not session.config.option.collectonly:
        raise pytest.UsageError("no tests collected: check the paths and -m/-k expressions")


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    reuse = os.environ.get("IOC_TEST_STACK")
    if reuse:
        yield Stack(Path(reuse), Installer(default_cache_dir()))
        return
    stack = Stack(tmp_path_factory.mktemp("stack"), Installer(default_cache_dir()))
    try:
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The one chDB data directory of this test run: chDB serves a single path per process."""
    return tmp_path_factory.mktemp("chdb")


@pytest.fixture(scope="session")
def mosquitto(local_stack: Stack) -> dict[str, Any]:
    return local_stack.up(["mosquitto"])["mosquitto"]


@pytest.fixture(scope="session")
def kafka(local_stack: Stack) -> dict[str, Any]:
    return local_stack.up(["kafka"])["kafka"]


@pytest.fixture(scope="session")
def clickhouse(local_stack: Stack) -> dict[str, Any]:
    return local_stack.up(["clickhouse"])["clickhouse"]


@pytest.fixture(scope="session")
def kube(local_stack: Stack) -> dict[str, Any]:
    return local_stack.up(["kube-apiserver"])["kube-apiserver"]
