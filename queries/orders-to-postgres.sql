-- Datagen's orders, revenue per item in one-minute windows, kept in a PostgreSQL table
-- (upserted by item and window) by the JDBC sink.
-- requires: PostgreSQL at pg_url below (docs/connectors.md); the test suite runs this file
-- against a throwaway cluster.
--   eddy run queries/orders-to-postgres.sql      (Ctrl-C stops the connectors and queries)
--   psql -h 127.0.0.1 -U postgres -c 'SELECT * FROM "REVENUE_PER_ITEM" ORDER BY "WINDOW_START" DESC LIMIT 5'
DEFINE pg_url = 'jdbc:postgresql://127.0.0.1:5432/postgres?user=postgres';
SET 'auto.offset.reset' = 'earliest';

-- Ten orders a second on average (a pause of 0 to 200 ms before each), the same every run.
CREATE SOURCE CONNECTOR IF NOT EXISTS orders_gen WITH (
  'connector.class' = 'DatagenSource', 'kafka.topic' = 'orders', 'quickstart' = 'orders',
  'max.interval' = 200, 'random.seed' = 7);

CREATE STREAM IF NOT EXISTS orders (id STRING KEY, ordertime BIGINT, orderid INT, itemid STRING,
    orderunits DOUBLE, address STRUCT<city STRING, state STRING, zipcode BIGINT>)
  WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);

CREATE TABLE IF NOT EXISTS revenue_per_item AS
  SELECT itemid,
         AS_VALUE(itemid) AS item,
         WINDOWSTART AS window_start,
         SUM(orderunits) AS units,
         COUNT(*) AS orders
  FROM orders
  WINDOW TUMBLING (SIZE 1 MINUTE, GRACE PERIOD 10 SECONDS)
  GROUP BY itemid;

CREATE SINK CONNECTOR IF NOT EXISTS revenue_pg WITH (
  'connector.class' = 'JdbcSinkConnector', 'connection.url' = '${pg_url}',
  'topics' = 'REVENUE_PER_ITEM', 'insert.mode' = 'upsert',
  'pk.mode' = 'record_value', 'pk.fields' = 'ITEM,WINDOW_START', 'auto.create' = 'true');
