-- Incidents, their history and the citizen reports linked to them (docs/warehouse.md).
-- `incidents` keeps the latest version of each incident; `incident_history` keeps every version, one
-- row per (incident_id, version), so a replayed version collapses onto itself.

CREATE TABLE IF NOT EXISTS {{database}}.incidents
(
    incident_id String,
    version UInt64,
    rule {{LowCardinality(String)}},
    module {{LowCardinality(String)}},
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    responsible_unit {{LowCardinality(String)}},
    responsible_path {{LowCardinality(String)}},
    severity {{LowCardinality(String)}},
    state {{LowCardinality(String)}},
    title String,
    opened_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    sla_due_at Nullable(DateTime('UTC')),
    escalation_level UInt8,
    vendor {{LowCardinality(String)}},
    devices Array(String),
    reports Array(String),
    detail String,
    lat Nullable(Float64),
    lon Nullable(Float64),
    note String
)
ENGINE = ReplacingMergeTree(version)
ORDER BY incident_id;

CREATE TABLE IF NOT EXISTS {{database}}.incident_history
(
    incident_id String,
    version UInt64,
    rule {{LowCardinality(String)}},
    module {{LowCardinality(String)}},
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    responsible_unit {{LowCardinality(String)}},
    responsible_path {{LowCardinality(String)}},
    severity {{LowCardinality(String)}},
    state {{LowCardinality(String)}},
    title String,
    opened_at DateTime('UTC'),
    updated_at DateTime('UTC'),
    sla_due_at Nullable(DateTime('UTC')),
    escalation_level UInt8,
    vendor {{LowCardinality(String)}},
    devices Array(String),
    reports Array(String),
    detail String,
    lat Nullable(Float64),
    lon Nullable(Float64),
    note String,
    action {{LowCardinality(String)}},
    actor String
)
ENGINE = ReplacingMergeTree()
ORDER BY (incident_id, version);

-- The reporter's contact columns are personal data: the dashboards' data layer masks them for viewers.
CREATE TABLE IF NOT EXISTS {{database}}.citizen_reports
(
    report_id String,
    source {{LowCardinality(String)}},
    category {{LowCardinality(String)}},
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    submitted_at DateTime('UTC'),
    text String,
    lat Nullable(Float64),
    lon Nullable(Float64),
    address String,
    media_urls Array(String),
    contact_name String,
    contact_phone String,
    contact_email String,
    incident_id String,
    state {{LowCardinality(String)}},
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY report_id;
