-- A citizen report's link to the open incident it is about (docs/citizen-reports.md): the incident of the
-- same category's rules near the same place and time that the stream worker found when the report arrived
-- (streams.linking), '' when none. `incident_id` stays the report's own incident, whose PAKN state the
-- citizen follows.

ALTER TABLE {{database}}.citizen_reports
    ADD COLUMN linked_incident_id String DEFAULT '' AFTER incident_id;
