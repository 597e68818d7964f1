-- Who an incident is assigned to (a roster person's e-mail or `team:<name>`, '' for nobody) and the
-- evidence files a resolution carries (keys in the site's evidence store: the SHA-256 of the bytes and
-- the extension; the bytes themselves are never in the warehouse). docs/notifications.md.

ALTER TABLE {{database}}.incidents
    ADD COLUMN assignee String DEFAULT '' AFTER note,
    ADD COLUMN evidence Array(String) AFTER assignee;

ALTER TABLE {{database}}.incident_history
    ADD COLUMN assignee String DEFAULT '' AFTER note,
    ADD COLUMN evidence Array(String) AFTER assignee;
