-- The average across several producers: three weather stations write readings to one
-- 3-partition topic; each minute's average temperature per region is computed across all of
-- them, with how many stations contributed. A pull query reads the result.
--   eddy run queries/average-across-producers.sql --until-idle
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM IF NOT EXISTS temperatures (station STRING KEY, region STRING, celsius DOUBLE)
  WITH (KAFKA_TOPIC='temperatures', VALUE_FORMAT='JSON', PARTITIONS=3);

-- 2026-01-01 00:00 UTC and 00:01: each station reports on its own partition (keyed by station).
INSERT INTO temperatures (ROWTIME, station, region, celsius) VALUES (1767225600000, 'oslo-1', 'north', -4.0);
INSERT INTO temperatures (ROWTIME, station, region, celsius) VALUES (1767225605000, 'oslo-2', 'north', -2.0);
INSERT INTO temperatures (ROWTIME, station, region, celsius) VALUES (1767225610000, 'rome-1', 'south', 14.0);
INSERT INTO temperatures (ROWTIME, station, region, celsius) VALUES (1767225630000, 'oslo-1', 'north', -6.0);
INSERT INTO temperatures (ROWTIME, station, region, celsius) VALUES (1767225660000, 'oslo-2', 'north', -1.0);
INSERT INTO temperatures (ROWTIME, station, region, celsius) VALUES (1767225665000, 'rome-1', 'south', 16.0);
INSERT INTO temperatures (ROWTIME, station, region, celsius) VALUES (1767225670000, 'oslo-1', 'north', -3.0);

CREATE TABLE IF NOT EXISTS regional_minutes AS
  SELECT region,
         AVG(celsius) AS mean_celsius,
         COUNT(*) AS readings,
         COUNT_DISTINCT(station) AS stations,
         TIMESTAMPTOSTRING(WINDOWSTART, 'HH:mm', 'UTC') AS minute
  FROM temperatures
  WINDOW TUMBLING (SIZE 1 MINUTE, RETENTION 7 DAYS, GRACE PERIOD 30 SECONDS)
  GROUP BY region;

SELECT region, minute, mean_celsius, readings, stations FROM regional_minutes;
