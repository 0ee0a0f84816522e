-- pgbench: a business row and an event through outbox.enqueue(), one transaction.
\set id random(1, 1000000)
BEGIN;
INSERT INTO orders (customer_id, total) VALUES (:id, 99.50);
SELECT outbox.enqueue('order.created', '{"order_id": 123456, "customer": "c-98765", "total": 99.50, "currency": "EUR", "items": 3, "channel": "web"}', key => 'order-' || :id);
COMMIT;
