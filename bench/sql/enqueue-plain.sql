-- pgbench: a business row and an event in a hand-made outbox table, one transaction.
\set id random(1, 1000000)
BEGIN;
INSERT INTO orders (customer_id, total) VALUES (:id, 99.50);
INSERT INTO plain_outbox (topic, key, payload) VALUES ('order.created', 'order-' || :id, '{"order_id": 123456, "customer": "c-98765", "total": 99.50, "currency": "EUR", "items": 3, "channel": "web"}');
COMMIT;
