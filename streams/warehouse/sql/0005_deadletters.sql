-- Input the platform refused (docs/warehouse.md: deadletters). letter_id is the SHA-1 of the dead-letter
-- record itself, so the same refusal consumed twice is one row.

CREATE TABLE IF NOT EXISTS {{database}}.deadletters
(
    letter_id String,
    received_at DateTime('UTC'),
    source {{LowCardinality(String)}},
    reason {{LowCardinality(String)}},
    detail String,
    vendor {{LowCardinality(String)}},
    device String,
    size UInt32,
    payload String
)
ENGINE = ReplacingMergeTree()
ORDER BY (vendor, letter_id);
