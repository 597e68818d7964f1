"""The chart's topic replication: every component creating topics gets kafka.replicationFactor and minInsyncReplicas
(default 3 and 2) as its KafkaEndpoint settings, and impossible combinations are refused at render time."""

from __future__ import annotations

from typing import Any

import pytest

from ioc.settings import StreamsSettings
from tests.charts.conftest import Helm, container, find

pytestmark = pytest.mark.slow

_CREATORS = {"operator": "IOC_OPERATOR_", "streams": "IOC_STREAMS_"}


def _env(obj: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(obj)["env"]}


def _workload(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    found = [o for kind in ("Deployment", "StatefulSet") for o in find(objects, kind, component)]
    assert len(found) == 1, f"expected one workload {component}, found {len(found)}"
    return found[0]


def test_topic_creators_get_three_copies_and_two_in_sync_by_default(rendered: list[dict[str, Any]]) -> None:
    for component, prefix in _CREATORS.items():
        env = _env(_workload(rendered, component))
        assert env[f"{prefix}KAFKA__REPLICATION_FACTOR"] == "3", component
        assert env[f"{prefix}KAFKA__MIN_INSYNC_REPLICAS"] == "2", component


def test_the_values_reach_the_settings(helm: Helm, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = helm.template(
        "kafka.replicationFactor=1", "kafka.minInsyncReplicas=1", "kafka.securityProtocol=PLAINTEXT"
    )
    for name, value in _env(_workload(objects, "streams")).items():
        if name.startswith("IOC_STREAMS_KAFKA__"):
            monkeypatch.setenv(name, value)
    kafka = StreamsSettings().kafka
    assert (kafka.replication_factor, kafka.min_insync_replicas) == (1, 1)


def test_more_in_sync_than_copies_is_refused(helm: Helm) -> None:
    done = helm.run("template", "ioc", "charts/ioc-platform", "--set", "kafka.minInsyncReplicas=4", check=False)
    assert done.returncode != 0
    assert "kafka.minInsyncReplicas must not exceed kafka.replicationFactor" in done.stderr


def test_more_copies_than_strimzi_brokers_is_refused(helm: Helm) -> None:
    done = helm.run(
        "template", "ioc", "charts/ioc-platform", "--set", "strimzi.enabled=true,strimzi.replicas=1", check=False
    )
    assert done.returncode != 0
    assert "kafka.replicationFactor exceeds strimzi.replicas" in done.stderr
