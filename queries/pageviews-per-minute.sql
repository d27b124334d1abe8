-- Page views per page per minute: a tumbling-window aggregation, then a pull query over it.
--   eddy run queries/pageviews-per-minute.sql --until-idle
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM IF NOT EXISTS views (user_id STRING KEY, page STRING)
  WITH (KAFKA_TOPIC='views', VALUE_FORMAT='JSON', PARTITIONS=1);

-- Event times (ROWTIME) in the first two minutes of 2026-01-01.
INSERT INTO views (ROWTIME, user_id, page) VALUES (1767225600000, 'alice', '/home');
INSERT INTO views (ROWTIME, user_id, page) VALUES (1767225610000, 'bob', '/home');
INSERT INTO views (ROWTIME, user_id, page) VALUES (1767225650000, 'carol', '/cart');
INSERT INTO views (ROWTIME, user_id, page) VALUES (1767225665000, 'alice', '/home');

CREATE TABLE IF NOT EXISTS views_per_minute AS
  SELECT page, COUNT(*) AS views, COLLECT_SET(user_id) AS users,
         TIMESTAMPTOSTRING(WINDOWSTART, 'HH:mm') AS minute
  FROM views
  WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 MINUTES)
  GROUP BY page;

-- The table as it stands: one row per page and minute.
SELECT page, minute, views, users FROM views_per_minute;
