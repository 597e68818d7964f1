-- A device that restarts its sequence at 0 (a reboot, a firmware update) must not overwrite its earlier
-- readings: `readings` was keyed by device + sequence, so reading #0 after a restart replaced reading #0
-- of the device's first life. The key now ends with observed_at: a restarted sequence is a new row, while a
-- replay of the SAME reading (same sequence and time: a worker's re-processed batch, a vendor's resend)
-- still collapses. ClickHouse 18.16 cannot change a sorting key in place, so the table is rebuilt and
-- swapped; its rows are copied across (duplicates collapse as before).
-- Sites' feeds (materialized views reading the shared readings table, operators.sitedb) are created after
-- the workers' migrations on a new install; docs/warehouse.md says what to do for a site created earlier.

CREATE TABLE IF NOT EXISTS {{database}}.readings_by_time
(
    device_key String,
    vendor {{LowCardinality(String)}},
    device String,
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    kind {{LowCardinality(String)}},
    seq UInt64,
    measure {{LowCardinality(String)}},
    value Float64,
    observed_at DateTime('UTC'),
    received_at DateTime('UTC'),
    lat Nullable(Float64),
    lon Nullable(Float64)
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (unit, device_key, measure, seq, observed_at)
{{TTL observed_at}};

INSERT INTO {{database}}.readings_by_time SELECT * FROM {{database}}.readings;

RENAME TABLE {{database}}.readings TO {{database}}.readings_keyed_by_seq,
    {{database}}.readings_by_time TO {{database}}.readings;

DROP TABLE {{database}}.readings_keyed_by_seq;
