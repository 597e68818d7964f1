-- A camera detection's snapshot (CameraEvent.snapshot): its key in the snapshot store (ioc.snapshots: the
-- SHA-256 of the image's bytes and its type), '' when the event carried none. The image itself is never in
-- the warehouse; the dashboards show it to operators only, from the store (docs/maps.md).

ALTER TABLE {{database}}.camera_events
    ADD COLUMN snapshot String DEFAULT '' AFTER image_url;
