-- Raw observations as the bridge passed them on (docs/warehouse.md: readings, camera_events,
-- device_status). Identities are device + sequence, so a batch a worker re-processes after a crash
-- collapses onto the rows it already wrote. The month partition is a function of the row itself
-- (observed_at), so duplicates always land in the same partition: ReplacingMergeTree only collapses
-- rows within one partition.
-- Retention: the TTL marker becomes a TTL clause on current ClickHouse; 18.16 has no TTL, so there the
-- operator drops old month partitions (streams.warehouse.migrations.drop_partitions_older_than).

CREATE TABLE IF NOT EXISTS {{database}}.readings
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
ORDER BY (unit, device_key, measure, seq)
{{TTL observed_at}};

CREATE TABLE IF NOT EXISTS {{database}}.camera_events
(
    device_key String,
    vendor {{LowCardinality(String)}},
    device String,
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    seq UInt64,
    event_type {{LowCardinality(String)}},
    confidence Float64,
    plate String,
    speed_kmh Nullable(Float64),
    speed_limit_kmh Nullable(Float64),
    object_count Nullable(UInt32),
    lat Nullable(Float64),
    lon Nullable(Float64),
    image_url String,
    observed_at DateTime('UTC'),
    received_at DateTime('UTC'),
    duplicate UInt8,
    incident_id String
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(observed_at)
ORDER BY (unit, device_key, seq)
{{TTL observed_at}};

-- One row per device; the newest sighting (last_seen) wins, so an older flush replayed late cannot
-- make a device look fresher or staler than it is.
CREATE TABLE IF NOT EXISTS {{database}}.device_status
(
    device_key String,
    vendor {{LowCardinality(String)}},
    device String,
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    kind {{LowCardinality(String)}},
    last_seen DateTime('UTC'),
    last_seq UInt64,
    readings UInt64,
    lat Nullable(Float64),
    lon Nullable(Float64)
)
ENGINE = ReplacingMergeTree(last_seen)
ORDER BY device_key;
