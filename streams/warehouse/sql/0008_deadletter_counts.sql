-- A flood's refusals are summarised at the bridge (docs/vendors.md): one dead letter stands for `count`
-- refusals of one device and reason. Older letters each stood for one.

ALTER TABLE {{database}}.deadletters ADD COLUMN count UInt64 DEFAULT 1;
