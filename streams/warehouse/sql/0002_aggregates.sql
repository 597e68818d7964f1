-- Windowed aggregates the stream workers compute (docs/warehouse.md: unit_aggregates, aqi_hourly).
-- A window is rewritten as late readings arrive; `version` grows with each rewrite and the newest wins.

CREATE TABLE IF NOT EXISTS {{database}}.unit_aggregates
(
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    level {{LowCardinality(String)}},
    window {{LowCardinality(String)}},
    window_start DateTime('UTC'),
    measure {{LowCardinality(String)}},
    count UInt64,
    sum Float64,
    min Float64,
    max Float64,
    mean Float64,
    devices UInt32,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (unit, window, measure, window_start);

CREATE TABLE IF NOT EXISTS {{database}}.aqi_hourly
(
    device_key String,
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    hour DateTime('UTC'),
    aqi UInt16,
    band UInt8,
    dominant {{LowCardinality(String)}},
    pm25 Nullable(Float64),
    pm10 Nullable(Float64),
    no2 Nullable(Float64),
    o3 Nullable(Float64),
    co Nullable(Float64),
    so2 Nullable(Float64),
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (unit, device_key, hour);
