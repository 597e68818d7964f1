"""The warehouse tables the dashboards read, created for tests: the real migrations when present, else a copy.

`streams.warehouse.migrations.migrate(warehouse, database=...)` owns the schema (docs/warehouse.md). Until
it exists this module carries DDL matching the contract, 18.16 baseline types, so the dashboards' tests
run against the same shapes on ClickHouse 18.16 and chDB. Tests may import `streams`; `dashboards` may not.
"""

from __future__ import annotations

import importlib
from typing import Any

from ioc.clients.clickhouse import Warehouse

_NULLABLE_POS = "lat Nullable(Float64), lon Nullable(Float64)"

TABLES: dict[str, tuple[str, str]] = {
    # table: (columns, engine clause)
    "readings": (
        f"""
        device_key String, vendor String, device String, unit String, path String, kind String, seq UInt64,
        measure String, value Float64, observed_at DateTime('UTC'), received_at DateTime('UTC'), {_NULLABLE_POS}
        """,
        "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(observed_at) ORDER BY (unit, device_key, measure, seq)",
    ),
    "camera_events": (
        f"""
        device_key String, vendor String, device String, unit String, path String, seq UInt64,
        event_type String, confidence Float64, plate String, speed_kmh Nullable(Float64),
        speed_limit_kmh Nullable(Float64), object_count Nullable(UInt32), {_NULLABLE_POS}, image_url String,
        snapshot String, observed_at DateTime('UTC'), received_at DateTime('UTC'), duplicate UInt8, incident_id String
        """,
        "ENGINE = ReplacingMergeTree() PARTITION BY toYYYYMM(observed_at) ORDER BY (unit, device_key, seq)",
    ),
    "device_status": (
        f"""
        device_key String, vendor String, device String, unit String, path String, kind String,
        last_seen DateTime('UTC'), last_seq UInt64, readings UInt64, {_NULLABLE_POS}
        """,
        "ENGINE = ReplacingMergeTree(last_seen) ORDER BY (device_key)",
    ),
    "unit_aggregates": (
        """
        unit String, path String, level String, window String, window_start DateTime('UTC'), measure String,
        count UInt64, sum Float64, min Float64, max Float64, mean Float64, devices UInt32, version UInt64
        """,
        "ENGINE = ReplacingMergeTree(version) ORDER BY (unit, window, measure, window_start)",
    ),
    "aqi_hourly": (
        """
        device_key String, unit String, path String, hour DateTime('UTC'), aqi UInt16, band UInt8,
        dominant String, pm25 Nullable(Float64), pm10 Nullable(Float64), no2 Nullable(Float64),
        o3 Nullable(Float64), co Nullable(Float64), so2 Nullable(Float64), version UInt64
        """,
        "ENGINE = ReplacingMergeTree(version) ORDER BY (unit, device_key, hour)",
    ),
    "incidents": (
        f"""
        incident_id String, version UInt64, rule String, module String, unit String, path String,
        responsible_unit String, responsible_path String, severity String, state String, title String,
        opened_at DateTime('UTC'), updated_at DateTime('UTC'), sla_due_at Nullable(DateTime('UTC')),
        escalation_level UInt8, vendor String, devices Array(String), reports Array(String), detail String,
        {_NULLABLE_POS}, note String
        """,
        "ENGINE = ReplacingMergeTree(version) ORDER BY (incident_id)",
    ),
    "incident_history": (
        f"""
        incident_id String, version UInt64, rule String, module String, unit String, path String,
        responsible_unit String, responsible_path String, severity String, state String, title String,
        opened_at DateTime('UTC'), updated_at DateTime('UTC'), sla_due_at Nullable(DateTime('UTC')),
        escalation_level UInt8, vendor String, devices Array(String), reports Array(String), detail String,
        {_NULLABLE_POS}, note String, action String, actor String
        """,
        "ENGINE = ReplacingMergeTree() ORDER BY (incident_id, version)",
    ),
    "citizen_reports": (
        f"""
        report_id String, source String, category String, unit String, path String,
        submitted_at DateTime('UTC'), text String, {_NULLABLE_POS}, address String, media_urls Array(String),
        contact_name String, contact_phone String, contact_email String, incident_id String, state String,
        version UInt64
        """,
        "ENGINE = ReplacingMergeTree(version) ORDER BY (report_id)",
    ),
    "dossiers": (
        """
        dossier_id String, status_version UInt64, unit String, procedure_code String, status String,
        channel String, received_at DateTime('UTC'), due_at DateTime('UTC'), occurred_at DateTime('UTC'),
        finished_at Nullable(DateTime('UTC')), fully_online UInt8, requires_payment UInt8, paid_online UInt8,
        digitised UInt8, result_digital UInt8, synced_to_national_portal UInt8, supplement_count UInt32,
        supplement_days Float64, satisfaction String, path String
        """,
        "ENGINE = ReplacingMergeTree(status_version) ORDER BY (dossier_id)",
    ),
    "indicators_766": (
        """
        unit String, path String, period_kind String, period_start Date, scheme String, code String,
        group_code String, points Float64, max_points Float64, numerator UInt64, denominator UInt64,
        rate Float64, no_data UInt8, lost_dossiers Array(String), computed_at DateTime('UTC')
        """,
        "ENGINE = ReplacingMergeTree(computed_at) ORDER BY (unit, period_kind, period_start, code)",
    ),
    "deadletters": (
        """
        letter_id String, received_at DateTime('UTC'), source String, reason String, detail String,
        vendor String, device String, size UInt32, payload String, count UInt64 DEFAULT 1, unit String,
        path String
        """,
        "ENGINE = ReplacingMergeTree() ORDER BY (vendor, letter_id)",
    ),
}


def _migrations() -> Any | None:
    try:
        return importlib.import_module("streams.warehouse.migrations")
    except ImportError:
        return None


def create_schema(warehouse: Warehouse, database: str) -> str:
    """Create `database` and every table in it; returns which DDL was used ("migrations" or "fixture")."""
    migrations = _migrations()
    if migrations is not None and hasattr(migrations, "migrate"):
        migrations.migrate(warehouse, database=database)
        return "migrations"
    warehouse.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    for table, (columns, engine) in TABLES.items():
        warehouse.command(f"CREATE TABLE IF NOT EXISTS {database}.{table} ({columns.strip()}) {engine}")
    return "fixture"


def drop_database(warehouse: Warehouse, database: str) -> None:
    warehouse.command(f"DROP DATABASE IF EXISTS {database}")
