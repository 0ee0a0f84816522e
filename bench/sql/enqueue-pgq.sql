-- pgbench: a business row and an event in PgQ's queue (pgq.insert_event,
-- Debian's postgresql-NN-pgq3), one transaction: the classic in-database
-- queue as an anchor for enqueue().
\set id random(1, 1000000)
BEGIN;
INSERT INTO orders (customer_id, total) VALUES (:id, 99.50);
SELECT pgq.insert_event('bench_orders', 'order.created', '{"order_id": 123456, "customer": "c-98765", "total": 99.50, "currency": "EUR", "items": 3, "channel": "web"}');
COMMIT;
