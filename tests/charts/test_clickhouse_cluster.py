"""The chart's ClickHouse cluster: clickhouseInstallation shards x replicas reach every component's settings.

They arrive as the cluster name the migrations rewrite the schema for (replicated and Distributed tables, ON
CLUSTER); one server stays as it is.
"""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from ioc.settings import ClickHouseEndpoint, StreamsSettings
from iocctl.commands import warehouse as warehouse_command
from streams.warehouse import cluster, migrations
from tests.charts.conftest import Helm, container

pytestmark = pytest.mark.slow

CHI = ("clickhouseInstallation.enabled=true", "clickhouse.auth.existingSecret=ioc-clickhouse-admin")
KEEPER = ("clickhouseInstallation.zookeeper.nodes[0].host=zookeeper.zookeeper.svc",)


def _uses_clickhouse(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every workload, Job and Pod whose container is given a ClickHouse endpoint, by component."""
    found = {}
    for obj in objects:
        if obj["kind"] not in {"Deployment", "StatefulSet", "Job", "Pod"}:
            continue
        main = container(obj)
        env = {e["name"]: e.get("value", "") for e in main.get("env", [])}
        if any(n.endswith("CLICKHOUSE__HOST") for n in env) or "migrate" in main.get("command", []):
            component = obj["metadata"]["labels"]["app.kubernetes.io/component"]
            found[component] = {"env": env, "args": main.get("args", [])}
    return found


def test_shards_and_replicas_make_every_component_use_the_cluster(helm: Helm, monkeypatch: pytest.MonkeyPatch) -> None:
    objects = helm.template(*CHI, *KEEPER, "clickhouseInstallation.shards=2", "clickhouseInstallation.replicas=2")
    installation = next(o for o in objects if o["kind"] == "ClickHouseInstallation")
    layout = installation["spec"]["configuration"]["clusters"][0]
    assert layout["name"] == "ioc" and layout["layout"] == {"shardsCount": 2, "replicasCount": 2}
    assert installation["spec"]["configuration"]["zookeeper"]["nodes"] == [{"host": "zookeeper.zookeeper.svc"}]
    users = _uses_clickhouse(objects)
    assert {"streams", "operator", "migrations"} <= users.keys()
    for component, found in users.items():
        if component == "migrations":
            assert "--cluster=ioc" in found["args"]
            continue
        clusters = {v for n, v in found["env"].items() if n.endswith("CLICKHOUSE__CLUSTER")}
        assert clusters == {"ioc"}, component
    # The workers' settings carry it, and with it the migrations make the replicated, distributed schema.
    for name, value in users["streams"]["env"].items():
        if name.startswith("IOC_STREAMS_CLICKHOUSE__") and value:
            monkeypatch.setenv(name, value)
    endpoint = StreamsSettings().clickhouse
    assert endpoint.cluster == "ioc"
    schema = cluster.ClusterSchema(endpoint.cluster)
    statements = [
        s
        for m in migrations.load_migrations()
        for s in m.statements(database=endpoint.database, modern=True, retention_days=400, cluster=schema)
    ]
    assert any("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ioc/readings_local'" in s for s in statements)
    assert any("ENGINE = Distributed(ioc, ioc, incidents_local, cityHash64(incident_id))" in s for s in statements)


def test_the_migrations_command_takes_the_cluster_the_job_passes() -> None:
    # The Job's --cluster reaches the connection: refused here only because no server listens on the port.
    result = CliRunner().invoke(
        warehouse_command.warehouse_group, ["migrate", "--host", "127.0.0.1", "--port", "1", "--cluster", "ioc"]
    )
    assert result.exit_code != 0 and "cannot" in result.output.lower()
    assert ClickHouseEndpoint(cluster="ioc").cluster == "ioc"


def test_one_server_gets_no_cluster(helm: Helm, rendered: list[dict[str, Any]]) -> None:
    for objects in (rendered, helm.template(*CHI)):
        for component, found in _uses_clickhouse(objects).items():
            assert not [n for n in found["env"] if n.endswith("CLICKHOUSE__CLUSTER")], component
            assert not [a for a in found["args"] if a.startswith("--cluster")], component


def test_an_external_cluster_is_named_by_clickhouse_cluster(helm: Helm) -> None:
    users = _uses_clickhouse(helm.template("clickhouse.cluster=warehouse"))
    assert "--cluster=warehouse" in users["migrations"]["args"]
    assert users["streams"]["env"]["IOC_STREAMS_CLICKHOUSE__CLUSTER"] == "warehouse"


def test_a_cluster_without_zookeeper_is_refused(helm: Helm) -> None:
    done = helm.run(
        "template",
        "ioc",
        "charts/ioc-platform",
        "--set",
        ",".join((*CHI, "clickhouseInstallation.shards=2")),
        check=False,
    )
    assert done.returncode != 0
    assert "needs clickhouseInstallation.zookeeper.nodes" in done.stderr
