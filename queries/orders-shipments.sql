-- Correlation: orders with their shipments, when the shipment comes within an hour of the
-- order (a stream-stream join WITHIN 1 HOUR). An order not shipped in time still appears
-- (LEFT JOIN), with a null shipment, once its hour and the grace period are over: when a
-- later record (of either stream) moves stream time past them.
--   eddy run queries/orders-shipments.sql --until-idle
SET 'auto.offset.reset' = 'earliest';

CREATE STREAM IF NOT EXISTS orders (order_id STRING KEY, customer STRING, total DOUBLE)
  WITH (KAFKA_TOPIC='orders', VALUE_FORMAT='JSON', PARTITIONS=1);
CREATE STREAM IF NOT EXISTS shipments (order_id STRING KEY, carrier STRING)
  WITH (KAFKA_TOPIC='shipments', VALUE_FORMAT='JSON', PARTITIONS=1);

-- 2026-01-01 from 09:00 UTC.
INSERT INTO orders (ROWTIME, order_id, customer, total) VALUES (1767258000000, 'o-1', 'alice', 25.5);
INSERT INTO orders (ROWTIME, order_id, customer, total) VALUES (1767258600000, 'o-2', 'bob', 12.0);
INSERT INTO orders (ROWTIME, order_id, customer, total) VALUES (1767259200000, 'o-3', 'carol', 99.9);
INSERT INTO shipments (ROWTIME, order_id, carrier) VALUES (1767259800000, 'o-1', 'DHL');     -- 09:30, in time
INSERT INTO shipments (ROWTIME, order_id, carrier) VALUES (1767261000000, 'o-3', 'FedEx');   -- 09:50, in time
INSERT INTO shipments (ROWTIME, order_id, carrier) VALUES (1767265200000, 'o-2', 'UPS');     -- 11:00, too late
-- A later order; o-2's window (until 10:10, then 10 minutes' grace) closed at 11:00 already.
INSERT INTO orders (ROWTIME, order_id, customer, total) VALUES (1767276000000, 'o-4', 'dave', 5.0);

CREATE STREAM IF NOT EXISTS shipped_orders AS
  SELECT o.order_id AS order_id, o.customer AS customer, o.total AS total, s.carrier AS carrier,
         TIMESTAMPTOSTRING(o.ROWTIME, 'HH:mm', 'UTC') AS ordered,
         TIMESTAMPTOSTRING(s.ROWTIME, 'HH:mm', 'UTC') AS shipped
  FROM orders o LEFT JOIN shipments s WITHIN 1 HOUR GRACE PERIOD 10 MINUTES ON o.order_id = s.order_id;

SELECT order_id, customer, carrier, ordered, shipped FROM shipped_orders EMIT CHANGES LIMIT 3;
