-- A websocket feed into a topic, and a filtered stream over it, shown as it arrives.
-- requires: a websocket server on ws://127.0.0.1:1234 sending JSON lines, as the seeds run it:
--   websocat -s 1234        (then type lines: {"sensor": "s1", "celsius": 31.5})
--   eddy run queries/websocket-ingest.sql
-- tests/python/websocket_ingest.py runs the same pipeline against a real websocat.
SET 'auto.offset.reset' = 'earliest';

CREATE SOURCE CONNECTOR IF NOT EXISTS sensor_feed WITH (
  'connector.class' = 'WebSocketSource', 'url' = 'ws://127.0.0.1:1234',
  'kafka.topic' = 'sensor_readings', 'key.field' = 'sensor');

CREATE STREAM IF NOT EXISTS readings (id STRING KEY, sensor STRING, celsius DOUBLE)
  WITH (KAFKA_TOPIC='sensor_readings', VALUE_FORMAT='JSON', PARTITIONS=1);

CREATE STREAM IF NOT EXISTS hot_readings AS
  SELECT id, sensor, celsius FROM readings WHERE celsius > 30;

SELECT sensor, celsius FROM hot_readings EMIT CHANGES;
