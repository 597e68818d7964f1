-- What dashboards read: the current state of each incident, dossier and report, and each device's
-- freshness. Plain views, evaluated at query time with FINAL, so a row inserted twice (every stage is
-- at-least-once) still counts once. Materialised views are deliberately not used: they fire on every
-- INSERT block, before ReplacingMergeTree collapses anything, so an aggregate they maintain would count
-- each duplicate again and never un-count it.

-- An incident is open until resolved or closed; a state this view does not know yet shows as open, so
-- nothing new is hidden from an operator.
CREATE VIEW IF NOT EXISTS {{database}}.incidents_current AS
SELECT
    *,
    state NOT IN ('resolved', 'closed') AS is_open
FROM {{database}}.incidents FINAL;

CREATE VIEW IF NOT EXISTS {{database}}.dossiers_current AS
SELECT *
FROM {{database}}.dossiers FINAL;

CREATE VIEW IF NOT EXISTS {{database}}.reports_current AS
SELECT *
FROM {{database}}.citizen_reports FINAL;

CREATE VIEW IF NOT EXISTS {{database}}.device_freshness AS
SELECT
    *,
    toInt64(now()) - toInt64(last_seen) AS seconds_since_seen
FROM {{database}}.device_status FINAL;
