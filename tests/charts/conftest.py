"""Fixtures for the chart's tests: the helm binary (built from Go modules by `ioc deps`) and rendering helpers.

helm runs with its cache, config and data under a per-session temporary directory, so tests neither read
nor write the user's ~/.config/helm or ~/.cache/helm (no repositories, no plugins).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from iocctl.localstack.install import Installer
from iocctl.localstack.stack import default_cache_dir

ROOT = Path(__file__).parents[2]
CHART = ROOT / "charts" / "ioc-platform"


class Helm:
    """The helm command line with an isolated home."""

    def __init__(self, binary: Path, home: Path) -> None:
        self.binary = binary
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("HELM_", "KUBECONFIG"))},
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )
        if check:
            assert done.returncode == 0, f"helm {' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}"
        return done

    def template(
        self,
        *sets: str,
        namespace: str = "ioc-system",
        release: str = "ioc",
        values: Path | None = None,
        extra: tuple[str, ...] = (),
    ) -> list[dict[str, Any]]:
        """The chart rendered (hooks and tests included) as a list of objects."""
        args = ["template", release, str(CHART), "--namespace", namespace, *extra]
        if values is not None:
            args += ["--values", str(values)]
        for item in sets:
            args += ["--set", item]
        return [doc for doc in yaml.safe_load_all(self.run(*args).stdout) if doc]


@pytest.fixture(scope="session")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    # Built and cached under ~/.cache/ioc by `make deps`; the first build here takes minutes.
    return Helm(Installer(default_cache_dir()).helm(), tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="session")
def rendered(helm: Helm) -> list[dict[str, Any]]:
    """The chart with its default values."""
    return helm.template()


def find(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> list[dict[str, Any]]:
    """Objects of a kind, optionally of one app.kubernetes.io/component."""
    return [
        o
        for o in objects
        if o["kind"] == kind
        and (component is None or o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component)
    ]


def one(objects: list[dict[str, Any]], kind: str, component: str | None = None) -> dict[str, Any]:
    found = find(objects, kind, component)
    assert len(found) == 1, f"expected one {kind} {component or ''}, found {len(found)}"
    return found[0]


def container(obj: dict[str, Any]) -> dict[str, Any]:
    """The (only) container of a workload or pod."""
    spec = obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]
    assert len(spec["containers"]) == 1
    return dict(spec["containers"][0])


def values_yaml() -> dict[str, Any]:
    return dict(yaml.safe_load((CHART / "values.yaml").read_text(encoding="utf-8")))
