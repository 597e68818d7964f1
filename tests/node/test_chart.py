"""`helm install` of charts/ioc-platform on the real local node: every workload runs as a pod (issue 12).

`iocctl.localstack.onnode.PlatformOnNode.up(install=False)` prepares what a platform engineer would: the node with
the image loaded, the local stack's Mosquitto, Kafka and ClickHouse started after it (so each also listens on the
node IP) and published under the chart's default names (mosquitto.mosquitto, kafka-bootstrap.kafka,
clickhouse.clickhouse), the credentials Secrets the chart expects, and Kafka's protocol as the stack runs it
(SASL_SSL with a Secret per principal under IOC_STACK_KAFKA_AUTH, else PLAINTEXT). Then this test runs:
install (operator, bridge, stream workers, citizen API Ready; the migrations Job Completed), `helm test`,
`helm upgrade`, `helm uninstall` — after which nothing of the release is left in the cluster.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from iocctl.localstack.install import Installer
from iocctl.localstack.onnode import CHART, NAMESPACE, RELEASE, HelmFailed, OnNode, PlatformOnNode, chart_values
from iocctl.localstack.stack import default_cache_dir

pytestmark = [
    pytest.mark.kube_node,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="a node needs root (namespaces, bridges, iptables, mounts)"),
    pytest.mark.timeout(1800),
]

INSTANCE = f"app.kubernetes.io/instance={RELEASE}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OnNode]:
    """Everything but the release: this module installs, tests, upgrades and uninstalls it itself.

    Its own node, down at the module's end (tests/node/conftest.py's `platform_on_node` is the installed one).
    """
    platform = PlatformOnNode(tmp_path_factory.mktemp("chart-stack"), Installer(default_cache_dir()))
    try:
        yield platform.up(install=False)
    finally:
        platform.down()


def _values(tmp_path: Path, kafka: dict[str, Any], **extra: Any) -> Path:
    path = tmp_path / "values.json"  # JSON is YAML
    path.write_text(json.dumps(chart_values(kafka, **extra)), encoding="utf-8")
    return path


def _release_objects(node: OnNode) -> list[str]:
    kinds = "all,configmaps,secrets,serviceaccounts,roles,rolebindings,jobs,referencemodels"
    names = node.kubectl("-n", NAMESPACE, "get", kinds, "-l", INSTANCE, "-o", "name", check=False).split()
    names += node.kubectl("get", "clusterroles,clusterrolebindings", "-l", INSTANCE, "-o", "name").split()
    return names


def _job_completions(node: OnNode) -> int:
    """How many times a Job of the release completed (the migrations hook's Job is deleted once it succeeded)."""
    events = json.loads(
        node.kubectl("-n", NAMESPACE, "get", "events", "--field-selector", "reason=Completed", "-o", "json")
    )["items"]
    return sum(
        1 for e in events if e["involvedObject"]["kind"] == "Job" and "migrations" in e["involvedObject"]["name"]
    )


def _wait_all_ready(cluster: OnNode, within: float = 240) -> dict[str, str]:
    """Every pod of the release Ready (or Succeeded for the Job's); returns pod name -> component."""
    deadline = time.monotonic() + within
    while True:
        pods = json.loads(cluster.kubectl("-n", NAMESPACE, "get", "pods", "-l", INSTANCE, "-o", "json"))["items"]
        live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
        ready = {
            p["metadata"]["name"]: p["metadata"]["labels"].get("app.kubernetes.io/component", "")
            for p in live
            if p["status"].get("phase") == "Succeeded"
            or any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
        }
        if live and len(ready) == len(live):
            return ready
        assert time.monotonic() < deadline, cluster.describe_failure()
        time.sleep(1)


def test_helm_install_test_upgrade_uninstall(cluster: OnNode, tmp_path: Path) -> None:
    started = time.monotonic()
    try:
        cluster.helm(
            "install",
            RELEASE,
            str(CHART),
            "-n",
            NAMESPACE,
            "-f",
            str(_values(tmp_path, cluster.services["kafka"])),
            "--wait",
            "--timeout=6m",
        )
    except HelmFailed as failed:
        raise AssertionError(f"{failed}\n{cluster.describe_failure()}") from None
    ready = _wait_all_ready(cluster)
    components = set(ready.values())
    assert {"operator", "bridge", "streams"} <= components, ready
    # The migrations Job is a pre-install hook (deleted once it succeeded): it ran as a pod on the node and
    # completed before the rest started; its events outlive it.
    assert _job_completions(cluster) == 1
    pods = json.loads(cluster.kubectl("-n", NAMESPACE, "get", "pods", "-o", "json"))["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {"ioc-node"}
    print(f"install: {time.monotonic() - started:.0f} s; pods {sorted(ready)}")

    # `helm test`: its pod reads the warehouse's migration status with the release's credentials (and is deleted
    # once it passed, so no --logs: a failed one stays for `kubectl logs`).
    out = cluster.helm("test", RELEASE, "-n", NAMESPACE, "--timeout=3m")
    assert "Succeeded" in out, out

    # `helm upgrade` with changed values rolls the pods and everything is Ready again (migrations run again).
    cluster.helm(
        "upgrade",
        RELEASE,
        str(CHART),
        "-n",
        NAMESPACE,
        "-f",
        str(_values(tmp_path, cluster.services["kafka"], logLevel="DEBUG", bridge={"replicas": 1})),
        "--wait",
        "--timeout=6m",
    )
    ready = _wait_all_ready(cluster)
    assert sum(1 for c in ready.values() if c == "bridge") == 1, ready
    assert _job_completions(cluster) == 2  # the pre-upgrade migrations ran again
    status = json.loads(cluster.helm("status", RELEASE, "-n", NAMESPACE, "-o", "json"))
    assert status["info"]["status"] == "deployed" and status["version"] == 2

    # `helm uninstall` leaves nothing of the release: no pods, workloads, hooks' Jobs, RBAC, test pods.
    cluster.helm("uninstall", RELEASE, "-n", NAMESPACE, "--wait", "--timeout=3m")
    deadline = time.monotonic() + 90
    while left := _release_objects(cluster):
        assert time.monotonic() < deadline, f"left behind by helm uninstall: {left}"
        time.sleep(1)
    assert not cluster.kubectl("-n", NAMESPACE, "get", "pods", "-o", "name").split()
