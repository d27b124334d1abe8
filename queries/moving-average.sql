-- A moving average per device: the average of each device's last 5 readings, one output
-- row per reading (an OVER window, beyond ksqlDB), and a 10-second RANGE frame beside it.
--   eddy run queries/moving-average.sql --until-idle
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM IF NOT EXISTS readings (device STRING KEY, temperature DOUBLE)
  WITH (KAFKA_TOPIC='readings', VALUE_FORMAT='JSON', PARTITIONS=2);

-- Two devices, one reading every 5 seconds each (event times in ROWTIME).
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225600000, 'oven', 180.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225600000, 'fridge', 4.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225605000, 'oven', 190.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225605000, 'fridge', 5.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225610000, 'oven', 200.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225610000, 'fridge', 3.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225615000, 'oven', 210.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225620000, 'oven', 220.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225625000, 'oven', 230.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225630000, 'oven', 170.0);
INSERT INTO readings (ROWTIME, device, temperature) VALUES (1767225615000, 'fridge', 8.0);

CREATE STREAM IF NOT EXISTS smoothed AS
  SELECT device,
         temperature,
         AVG(temperature) OVER (PARTITION BY device ORDER BY ROWTIME
                                ROWS BETWEEN 4 PRECEDING AND CURRENT ROW) AS avg_last_5,
         MAX(temperature) OVER (PARTITION BY device ORDER BY ROWTIME
                                RANGE BETWEEN INTERVAL '10' SECONDS PRECEDING AND CURRENT ROW) AS max_10s
  FROM readings
  EMIT CHANGES;

-- The oven's readings with their moving average.
SELECT device, TIMESTAMPTOSTRING(ROWTIME, 'HH:mm:ss', 'UTC') AS at, temperature, avg_last_5, max_10s
  FROM smoothed WHERE device = 'oven' EMIT CHANGES LIMIT 7;
