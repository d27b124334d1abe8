-- Page views on the embedded log: declare a stream, write events with SQL, read them back.
--   eddy run queries/pageviews.sql --until-idle
-- (Persistent queries over it, e.g. views per page per minute, arrive with the rest of the engine.)

DEFINE topic = 'pageviews';

CREATE STREAM IF NOT EXISTS pageviews (user_id STRING KEY, page STRING, duration_ms BIGINT)
  WITH (KAFKA_TOPIC='${topic}', VALUE_FORMAT='JSON', PARTITIONS=3);

INSERT INTO pageviews (user_id, page, duration_ms) VALUES ('alice', '/home', 1200);
INSERT INTO pageviews (user_id, page, duration_ms) VALUES ('bob', '/cart', 800);
INSERT INTO pageviews (user_id, page, duration_ms) VALUES ('alice', '/checkout', 2500);

DESCRIBE EXTENDED pageviews;
PRINT pageviews FROM BEGINNING;

-- A push query: long page views, from the beginning of the stream.
SET 'auto.offset.reset' = 'earliest';
SELECT user_id, UCASE(page) AS page, duration_ms FROM pageviews WHERE duration_ms > 1000 EMIT CHANGES;
