-- An honest Decision 766 score (docs/decision-766.md): an indicator without data earns nothing and is left
-- out of the score, which is re-based on the points measured. Each row says whether its points count
-- (`measured`: in the score and in its coverage) and under which no-data policy it was scored (`policy`,
-- versioned like the scheme's weights). Rows written before this migration were scored with full marks for
-- no data; for them `measured` is `1 - no_data`, which is what the policy would have decided, and `policy`
-- is '' (their `points` still hold the old full marks: read scores as sumIf(points, measured)).

ALTER TABLE {{database}}.indicators_766
    ADD COLUMN measured UInt8 DEFAULT 1 - no_data AFTER no_data,
    ADD COLUMN policy {{LowCardinality(String)}} DEFAULT '' AFTER measured;
