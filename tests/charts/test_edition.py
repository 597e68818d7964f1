"""The chart's `edition` value reaches the bridge and the stream workers, and nothing else is accepted."""

from __future__ import annotations

from typing import Any

import pytest

from ioc.settings import BridgeSettings, OperatorSettings, StreamsSettings
from tests.charts.conftest import CHART, Helm, container, one

pytestmark = pytest.mark.slow


def env(obj: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(obj).get("env", [])}


def test_the_2025_tree_is_given_to_the_bridge_and_the_workers(helm: Helm, rendered: list[dict[str, Any]]) -> None:
    bridge, streams = one(rendered, "StatefulSet", "bridge"), one(rendered, "Deployment", "streams")
    assert env(bridge)["IOC_BRIDGE_EDITION"] == env(streams)["IOC_STREAMS_EDITION"] == "2024"
    reformed = helm.template(extra=("--set-string", "edition=2025"))  # --set would make it a number
    bridge, streams = one(reformed, "StatefulSet", "bridge"), one(reformed, "Deployment", "streams")
    assert BridgeSettings(edition=env(bridge)["IOC_BRIDGE_EDITION"]).edition == "2025"  # type: ignore[arg-type]
    assert StreamsSettings(edition=env(streams)["IOC_STREAMS_EDITION"]).edition == "2025"  # type: ignore[arg-type]
    operator = env(one(reformed, "Deployment", "operator"))["IOC_OPERATOR_EDITION"]
    assert OperatorSettings(edition=operator).edition == "2025"  # type: ignore[arg-type]
    refused = helm.run("template", "ioc", str(CHART), "--set-string", "edition=2026", check=False)
    assert refused.returncode != 0 and "edition" in refused.stderr
