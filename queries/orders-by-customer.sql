-- Enrichment off the key: orders are keyed by order id, customers by customer id, and each
-- order names its customer in its value. The join is on that column, so the orders are first
-- written again keyed by customer, to an internal repartition topic partitioned as the
-- customers are (as ksqlDB does), and the join reads that topic; SHOW ALL TOPICS lists it
-- (`_eddy_query_CSAS_ORDERS_ENRICHED_2-Join-repartition`).
--   eddy run queries/orders-by-customer.sql --until-idle
SET 'auto.offset.reset' = 'earliest';

CREATE TABLE IF NOT EXISTS customers (customer_id STRING PRIMARY KEY, name STRING, tier STRING)
  WITH (KAFKA_TOPIC='customers', VALUE_FORMAT='JSON', PARTITIONS=2);
CREATE STREAM IF NOT EXISTS purchases (order_id STRING KEY, customer_id STRING, total DOUBLE)
  WITH (KAFKA_TOPIC='purchases', VALUE_FORMAT='JSON', PARTITIONS=3);

-- 2026-01-01 from 12:00 UTC. c-2 becomes gold at 12:03: her 12:04 order is gold, her
-- 12:02 order stays silver; c-9 is nobody we know (LEFT JOIN: null name and tier).
INSERT INTO customers (ROWTIME, customer_id, name, tier) VALUES (1767268800000, 'c-1', 'Ada', 'gold');
INSERT INTO customers (ROWTIME, customer_id, name, tier) VALUES (1767268800000, 'c-2', 'Grace', 'silver');
INSERT INTO purchases (ROWTIME, order_id, customer_id, total) VALUES (1767268860000, 'o-1', 'c-1', 40.0);
INSERT INTO purchases (ROWTIME, order_id, customer_id, total) VALUES (1767268920000, 'o-2', 'c-2', 15.5);
INSERT INTO customers (ROWTIME, customer_id, name, tier) VALUES (1767268980000, 'c-2', 'Grace', 'gold');
INSERT INTO purchases (ROWTIME, order_id, customer_id, total) VALUES (1767269040000, 'o-3', 'c-2', 99.0);
INSERT INTO purchases (ROWTIME, order_id, customer_id, total) VALUES (1767269100000, 'o-4', 'c-9', 7.25);

CREATE STREAM IF NOT EXISTS orders_enriched AS
  SELECT p.customer_id AS customer_id, p.order_id AS order_id, p.total AS total, c.name AS name, c.tier AS tier
  FROM purchases p LEFT JOIN customers c ON p.customer_id = c.customer_id;

SELECT customer_id, order_id, total, name, tier FROM orders_enriched EMIT CHANGES LIMIT 4;
