-- Enrichment: page views (a stream) joined with users (a table) as they arrive. Each view
-- picks up its user's row as it was at the view's time; a view by a user the table does not
-- have keeps null user columns (LEFT JOIN); a change to a user applies to later views only.
--   eddy run queries/pageview-enrichment.sql --until-idle
SET 'auto.offset.reset' = 'earliest';

CREATE TABLE IF NOT EXISTS users (user_id STRING PRIMARY KEY, name STRING, region STRING)
  WITH (KAFKA_TOPIC='users', VALUE_FORMAT='JSON', PARTITIONS=1);
CREATE STREAM IF NOT EXISTS views (user_id STRING KEY, page STRING, duration_ms BIGINT)
  WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', PARTITIONS=1);

-- 2026-01-01 00:00 UTC, then a minute apart. The join reads both topics in event-time
-- order, so it does not matter which was written first.
INSERT INTO views (ROWTIME, user_id, page, duration_ms) VALUES (1767225660000, 'alice', '/home', 1200);
INSERT INTO views (ROWTIME, user_id, page, duration_ms) VALUES (1767225720000, 'bob', '/cart', 800);
INSERT INTO views (ROWTIME, user_id, page, duration_ms) VALUES (1767225780000, 'carol', '/home', 300);
INSERT INTO views (ROWTIME, user_id, page, duration_ms) VALUES (1767225900000, 'alice', '/checkout', 2500);
INSERT INTO users (ROWTIME, user_id, name, region) VALUES (1767225600000, 'alice', 'Alice', 'EU');
INSERT INTO users (ROWTIME, user_id, name, region) VALUES (1767225600000, 'bob', 'Bob', 'US');
-- Alice moves at 00:04: her 00:05 view is from the US, her 00:01 view stays from the EU.
INSERT INTO users (ROWTIME, user_id, name, region) VALUES (1767225840000, 'alice', 'Alice', 'US');

CREATE STREAM IF NOT EXISTS enriched_views AS
  SELECT v.user_id AS user_id, u.name AS name, u.region AS region, v.page AS page, v.duration_ms AS duration_ms
  FROM views v LEFT JOIN users u ON v.user_id = u.user_id;

-- Views and time spent per region in 5-minute windows, aggregated straight off the join
-- (carol's view has no region: a null grouping key, so it is not counted).
CREATE TABLE IF NOT EXISTS region_activity AS
  SELECT u.region AS region, COUNT(*) AS views, SUM(v.duration_ms) AS total_ms
  FROM views v LEFT JOIN users u ON v.user_id = u.user_id
  WINDOW TUMBLING (SIZE 5 MINUTES)
  GROUP BY u.region;

SELECT user_id, name, region, page, duration_ms FROM enriched_views EMIT CHANGES LIMIT 4;
