-- Eddy's quickstart on the embedded log: declare a stream, write events with SQL, start a
-- persistent query that filters and reshapes them into a new stream, and read it back.
--
--   eddy run queries/quickstart.sql --until-idle
--
-- Run it twice: the second run adds three more page views, and the persistent query resumes
-- where it stopped (its output grows by the new long views only, nothing is written twice).

-- Read topics from their beginning (ksqlDB's default is their end).
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM IF NOT EXISTS clicks (user_id STRING KEY, page STRING, duration_ms BIGINT, referrer STRING)
  WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=3);

INSERT INTO clicks (user_id, page, duration_ms, referrer) VALUES ('alice', '/home', 1200, 'search');
INSERT INTO clicks (user_id, page, duration_ms, referrer) VALUES ('bob', '/cart', 800, NULL);
INSERT INTO clicks (user_id, page, duration_ms, referrer) VALUES ('alice', '/checkout', 2500, 'email');

-- A persistent query: long views, re-keyed by page, written as JSON to the topic LONG_VIEWS.
CREATE STREAM IF NOT EXISTS long_views AS
  SELECT page, user_id, duration_ms / 1000.0 AS seconds, UCASE(COALESCE(referrer, 'direct')) AS source
  FROM clicks
  WHERE duration_ms >= 1000
  PARTITION BY page;

SHOW QUERIES;

-- A push query over the persistent query's output.
SELECT page, user_id, seconds, source FROM long_views EMIT CHANGES LIMIT 10;
