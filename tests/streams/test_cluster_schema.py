"""The cluster rewrite of one-server migrations (streams/warehouse/cluster.py), on every packaged file."""

from __future__ import annotations

import re

import pytest

from streams.warehouse import cluster, migrations


def rewrite_all(database: str = "ioc") -> tuple[cluster.ClusterSchema, list[str]]:
    schema = cluster.ClusterSchema("ioc")
    statements: list[str] = []
    for migration in migrations.load_migrations():
        statements += migration.statements(database=database, modern=False, retention_days=400, cluster=schema)
    return schema, statements


def test_every_packaged_migration_has_a_cluster_form() -> None:
    schema, statements = rewrite_all()
    # Every DDL statement runs ON CLUSTER, but an ALTER of a shard-local table, which runs once per shard; only
    # INSERT ... SELECT runs through the Distributed tables as written.
    for statement in statements:
        if isinstance(statement, cluster.EachShard):
            assert re.match(r"ALTER TABLE ioc\.\w+_local ", statement) and "ON CLUSTER" not in statement, statement
        else:
            assert "ON CLUSTER ioc" in statement or statement.startswith("INSERT INTO"), statement
    assert any(isinstance(s, cluster.EachShard) for s in statements)
    # Every table is a replicated local table plus a Distributed one sharded by its sorting key.
    assert schema.sharding_keys["ioc.readings"] == "cityHash64(unit, device_key, measure, seq, observed_at)"
    assert schema.sharding_keys["ioc.incidents"] == "cityHash64(incident_id)"
    assert "ioc.readings_by_time" not in schema.sharding_keys  # renamed to readings by 0007
    assert "ioc.readings_keyed_by_seq" not in schema.sharding_keys  # dropped by 0007
    assert not [s for s in statements if re.search(r"ENGINE = (Replacing)?MergeTree", s)]


def test_create_table_becomes_a_replicated_local_table_and_a_distributed_one() -> None:
    schema = cluster.ClusterSchema("ioc")
    local, distributed = schema.rewrite(
        "CREATE TABLE IF NOT EXISTS w.incidents (incident_id String, version UInt64) "
        "ENGINE = ReplacingMergeTree(version) PARTITION BY tuple() ORDER BY incident_id "
        "SETTINGS index_granularity = 8192"
    )
    assert local == (
        "CREATE TABLE IF NOT EXISTS w.incidents_local ON CLUSTER ioc (incident_id String, version UInt64) "
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/w/incidents_local', '{replica}', version) "
        "PARTITION BY tuple() ORDER BY incident_id SETTINGS index_granularity = 8192"
    )
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS w.incidents ON CLUSTER ioc AS w.incidents_local "
        "ENGINE = Distributed(ioc, w, incidents_local, cityHash64(incident_id))"
    )


def test_a_column_change_alters_the_local_table_and_remakes_the_distributed_one() -> None:
    schema = cluster.ClusterSchema("ioc")
    schema.rewrite("CREATE TABLE w.t (id String, v UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY (id)")
    altered = schema.rewrite("ALTER TABLE w.t ADD COLUMN note String DEFAULT ''")
    assert altered == [
        "ALTER TABLE w.t_local ADD COLUMN note String DEFAULT ''",
        "DROP TABLE IF EXISTS w.t ON CLUSTER ioc",
        "CREATE TABLE w.t ON CLUSTER ioc AS w.t_local ENGINE = Distributed(ioc, w, t_local, cityHash64(id))",
    ]
    # The replicated table's ALTER runs once per shard (its replicas follow its log), not ON CLUSTER: 18.16's DDL
    # worker may run that on both replicas of a shard, and then stops for good.
    assert [isinstance(s, cluster.EachShard) for s in altered] == [True, False, False]
    dropped = schema.rewrite("ALTER TABLE w.t DROP PARTITION ID '202401'")
    assert dropped == ["ALTER TABLE w.t_local DROP PARTITION ID '202401'"] and isinstance(dropped[0], cluster.EachShard)


def test_rename_moves_local_tables_and_remakes_their_distributed_tables() -> None:
    schema = cluster.ClusterSchema("ioc")
    schema.rewrite("CREATE TABLE w.a (id String) ENGINE = MergeTree() ORDER BY id")
    schema.rewrite("CREATE TABLE w.b (id String, at DateTime) ENGINE = MergeTree() ORDER BY (id, at)")
    got = schema.rewrite("RENAME TABLE w.a TO w.old_a, w.b TO w.a")
    assert got[0] == "RENAME TABLE w.a_local TO w.old_a_local, w.b_local TO w.a_local ON CLUSTER ioc"
    assert schema.sharding_keys == {"w.old_a": "cityHash64(id)", "w.a": "cityHash64(id, at)"}
    assert (
        got[-1]
        == "CREATE TABLE w.a ON CLUSTER ioc AS w.a_local ENGINE = Distributed(ioc, w, a_local, cityHash64(id, at))"
    )


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("CREATE MATERIALIZED VIEW w.mv TO w.t AS SELECT * FROM w.s", "materialized view w.mv"),
        ("CREATE TABLE w.l (id String) ENGINE = Log", "engine Log has no replicated form"),
        ("CREATE TABLE w.n (id String) ENGINE = MergeTree() ORDER BY tuple()", "no ORDER BY key to shard by"),
        ("ALTER TABLE w.unknown ADD COLUMN x UInt8", "no earlier migration created it"),
        ("OPTIMIZE TABLE w.t FINAL", "no cluster form for the statement"),
    ],
)
def test_what_has_no_cluster_form_is_refused_with_a_reason(statement: str, words: str) -> None:
    with pytest.raises(cluster.ClusterSchemaError, match=re.escape(words)):
        cluster.ClusterSchema("ioc").rewrite(statement)


def test_single_server_rendering_is_untouched() -> None:
    for migration in migrations.load_migrations():
        plain = migration.statements(database="ioc", modern=False, retention_days=400)
        assert not [s for s in plain if "ON CLUSTER" in s or "_local" in s]


def test_a_cluster_name_must_be_an_identifier() -> None:
    with pytest.raises(cluster.ClusterSchemaError, match="plain identifier"):
        cluster.ClusterSchema("ioc; DROP DATABASE ioc")
