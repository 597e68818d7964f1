-- Notifications sent about incidents and citizen reports (docs/notifications.md): one row per delivery
-- and attempt state, the latest kept per delivery id (`ReplacingMergeTree(attempts)`). The delivery id is
-- deterministic (incident + event + recipient + channel), so an event delivered twice is one delivery.
-- Placed like `incidents` (its place and responsible unit, with their paths) so a site sees the
-- notifications about its incidents. `recipient` names a roster person by e-mail, a webhook by name, or a
-- citizen as `citizen:<report id>` (their address is not copied here).

CREATE TABLE IF NOT EXISTS {{database}}.notification_deliveries
(
    delivery_id String,
    incident_id String,
    event {{LowCardinality(String)}},
    rule String,
    recipient String,
    channel {{LowCardinality(String)}},
    status {{LowCardinality(String)}},
    attempts UInt16,
    detail String,
    unit {{LowCardinality(String)}},
    path {{LowCardinality(String)}},
    responsible_unit {{LowCardinality(String)}},
    responsible_path {{LowCardinality(String)}},
    created_at DateTime('UTC'),
    updated_at DateTime('UTC')
)
ENGINE = ReplacingMergeTree(attempts)
ORDER BY delivery_id;
