-- Incident commands the stream workers refused where they are carried out (docs/warehouse.md:
-- command_refusals). One row per command id, so a refusal consumed twice is one row. The incident's place
-- and responsible unit (with their paths) scope the rows like `incidents`, so a site sees the refusals
-- of commands about its incidents and nothing else.

CREATE TABLE IF NOT EXISTS {{database}}.command_refusals
(
    command_id String,
    incident_id String,
    action {{LowCardinality(String)}},
    actor String,
    site_unit {{LowCardinality(String)}},
    target_unit {{LowCardinality(String)}},
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    responsible_unit {{LowCardinality(String)}},
    responsible_path {{LowCardinality(String)}},
    reason {{LowCardinality(String)}},
    detail String,
    issued_at DateTime('UTC'),
    refused_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree()
ORDER BY command_id;
