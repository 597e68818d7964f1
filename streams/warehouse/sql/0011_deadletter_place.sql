-- A dead letter's place in the tree (docs/warehouse.md: deadletters): the unit of the device topic it came
-- from and that unit's path, so a site's database gets a copy of its subtree's letters like every other
-- table. Both are '' for a letter that names no unit of the tree (an HTTP route, a Kafka topic, a malformed
-- topic): those are the root site's only. Rows written before this migration compute `unit` from their
-- source as the dashboards did (`mqtt:ioc/v1/{unit}/...` or `ioc/v1/{unit}/...`); their `path` stays '' (the
-- tree is not in the database), so the dashboards' queries place them by `unit` where `path` is empty.

ALTER TABLE {{database}}.deadletters
    ADD COLUMN unit {{LowCardinality(String)}} DEFAULT
        if(startsWith(source, 'mqtt:ioc/v1/') OR startsWith(source, 'ioc/v1/'), splitByChar('/', source)[3], '')
        AFTER count,
    ADD COLUMN path String DEFAULT '' AFTER unit;
