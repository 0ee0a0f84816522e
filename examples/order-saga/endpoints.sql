-- The saga's six requests, one endpoint each, at the three services. Run
-- with psql as an admin, after schema.sql, naming where the services
-- listen, the signing secret they verify with, and the request timeout:
--
--   psql -v inventory=http://127.0.0.1:7001 -v payment=http://127.0.0.1:7002 \
--        -v fulfilment=http://127.0.0.1:7003 -v secret=whsec_... -v timeout=2s -f endpoints.sql
--
-- A forward step gives up after 5 attempts (its saga then compensates); a
-- compensation keeps trying longer, and is sent again if it dies. Each call
-- returns the secret it was given: not printed.
\o /dev/null
SELECT outbox.create_endpoint('inventory-reserve', :'inventory' || '/reserve', topics => '{saga.inventory.reserve}',
                              secret => :'secret', timeout => :'timeout', max_attempts => 5);
SELECT outbox.create_endpoint('payment-charge', :'payment' || '/charge', topics => '{saga.payment.charge}',
                              secret => :'secret', timeout => :'timeout', max_attempts => 5);
SELECT outbox.create_endpoint('fulfilment-schedule', :'fulfilment' || '/schedule',
                              topics => '{saga.fulfilment.schedule}',
                              secret => :'secret', timeout => :'timeout', max_attempts => 5);
SELECT outbox.create_endpoint('fulfilment-cancel', :'fulfilment' || '/cancel', topics => '{saga.fulfilment.cancel}',
                              secret => :'secret', timeout => :'timeout', max_attempts => 10);
SELECT outbox.create_endpoint('payment-refund', :'payment' || '/refund', topics => '{saga.payment.refund}',
                              secret => :'secret', timeout => :'timeout', max_attempts => 10);
SELECT outbox.create_endpoint('inventory-release', :'inventory' || '/release', topics => '{saga.inventory.release}',
                              secret => :'secret', timeout => :'timeout', max_attempts => 10);
