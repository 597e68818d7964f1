"""The ClickHouse warehouse: schema migrations, the row builders and the sink the stream workers write with.

`migrations` creates and upgrades the tables of docs/warehouse.md; `rows` builds rows; `sink.RowSink` inserts them.
"""

from streams.warehouse.migrations import (
    DEFAULT_DATABASE,
    DEFAULT_RETENTION_DAYS,
    MONTHLY_PARTITIONED,
    Migration,
    MigrationError,
    MigrationStatus,
    drop_partitions_older_than,
    expired_partitions,
    load_migrations,
    migrate,
    status,
)
from streams.warehouse.rows import (
    TABLES,
    aggregate_row,
    aqi_row,
    camera_row,
    deadletter_row,
    device_status_row,
    dossier_row,
    history_row,
    incident_row,
    indicator_rows,
    reading_rows,
    report_row,
)
from streams.warehouse.sink import RowSink

__all__ = [
    "DEFAULT_DATABASE",
    "DEFAULT_RETENTION_DAYS",
    "MONTHLY_PARTITIONED",
    "TABLES",
    "Migration",
    "MigrationError",
    "MigrationStatus",
    "RowSink",
    "aggregate_row",
    "aqi_row",
    "camera_row",
    "deadletter_row",
    "device_status_row",
    "dossier_row",
    "drop_partitions_older_than",
    "expired_partitions",
    "history_row",
    "incident_row",
    "indicator_rows",
    "load_migrations",
    "migrate",
    "reading_rows",
    "report_row",
    "status",
]
