-- Public-service dossiers and the Decision 766 indicators scored from them (docs/warehouse.md).
-- Each ServiceRecord is a full snapshot numbered by status_version: the highest version is the dossier.

CREATE TABLE IF NOT EXISTS {{database}}.dossiers
(
    dossier_id String,
    status_version UInt64,
    unit {{LowCardinality(String)}},
    procedure_code {{LowCardinality(String)}},
    status {{LowCardinality(String)}},
    channel {{LowCardinality(String)}},
    received_at DateTime('UTC'),
    due_at DateTime('UTC'),
    occurred_at DateTime('UTC'),
    finished_at Nullable(DateTime('UTC')),
    fully_online UInt8,
    requires_payment UInt8,
    paid_online UInt8,
    digitised UInt8,
    result_digital UInt8,
    supplement_count UInt32,
    supplement_days Float64,
    synced_to_national_portal UInt8,
    satisfaction {{LowCardinality(String)}},
    path {{LowCardinality(String)}}
)
ENGINE = ReplacingMergeTree(status_version)
ORDER BY dossier_id;

-- A period is rescored as dossiers change; the latest computation (computed_at) wins.
CREATE TABLE IF NOT EXISTS {{database}}.indicators_766
(
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    period_kind {{LowCardinality(String)}},
    period_start Date,
    scheme {{LowCardinality(String)}},
    code {{LowCardinality(String)}},
    group_code {{LowCardinality(String)}},
    points Float64,
    max_points Float64,
    numerator UInt64,
    denominator UInt64,
    rate Float64,
    no_data UInt8,
    lost_dossiers Array(String),
    computed_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(computed_at)
ORDER BY (unit, period_kind, period_start, code);
