-- Browsing sessions: a user's clicks less than 5 minutes apart make one session (a SESSION
-- window). A click that bridges two sessions merges them: the two are deleted (tombstones on
-- the output topic) and the merged session written.
--   eddy run queries/user-sessions.sql --until-idle
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM IF NOT EXISTS clicks (user_id STRING KEY, page STRING)
  WITH (KAFKA_TOPIC='clicks', VALUE_FORMAT='JSON', PARTITIONS=1);

-- 2026-01-01 00:00 UTC, then minutes later.
INSERT INTO clicks (ROWTIME, user_id, page) VALUES (1767225600000, 'alice', '/home');
INSERT INTO clicks (ROWTIME, user_id, page) VALUES (1767225720000, 'alice', '/search');
INSERT INTO clicks (ROWTIME, user_id, page) VALUES (1767225660000, 'bob', '/home');
INSERT INTO clicks (ROWTIME, user_id, page) VALUES (1767226200000, 'alice', '/cart');
INSERT INTO clicks (ROWTIME, user_id, page) VALUES (1767225960000, 'alice', '/deals');
INSERT INTO clicks (ROWTIME, user_id, page) VALUES (1767229200000, 'bob', '/home');

CREATE TABLE IF NOT EXISTS sessions AS
  SELECT user_id,
         COUNT(*) AS clicks,
         COLLECT_LIST(page) AS pages,
         TIMESTAMPTOSTRING(WINDOWSTART, 'HH:mm', 'UTC') AS started,
         TIMESTAMPTOSTRING(WINDOWEND, 'HH:mm', 'UTC') AS ended
  FROM clicks
  WINDOW SESSION (5 MINUTES)
  GROUP BY user_id;

-- Alice's two sessions (00:00–00:02 and 00:10) became one when the 00:06 click arrived.
SELECT user_id, started, ended, clicks, pages FROM sessions;
