\set SHOW_CONTEXT never
-- A library built without the brokers' client libraries (make BROKERS=):
-- create_endpoint and alter_endpoint refuse the URLs of a protocol it lacks
-- (SQLSTATE 0A000, naming the library and how to get it), after checking
-- the rest of the URL; an endpoint that has such a URL already (restored
-- from a server that had the protocol) can still be managed, and its
-- deliveries are made and wait. A library with every protocol has nothing
-- to refuse: sql/brokers.sql tests it.
SELECT current_setting('outbox.broker_protocols') = '' AS no_protocols \gset
\if :no_protocols
SHOW outbox.broker_protocols;
\else
\echo 'skipped: this library has broker protocols (sql/brokers.sql tests them)'
\quit
\endif

-- Every protocol, with what it needs.
SELECT outbox.create_endpoint('nats', 'nats://127.0.0.1:4222/events.{topic}');
SELECT outbox.create_endpoint('rabbit', 'amqps://app:s3cret@rabbit.example.com/%2F?exchange=events');
SELECT outbox.create_endpoint('redis', 'redis://127.0.0.1:6379/events', secret => ':hunter2');
SELECT outbox.create_endpoint('kafka', 'kafka://app:hunter2@127.0.0.1:9092,127.0.0.1:9093/events.{topic}');
-- The SQLSTATE of each scheme's refusal.
DO $$
DECLARE
    url text;
BEGIN
    FOREACH url IN ARRAY ARRAY['nats://127.0.0.1/a', 'tls://nats.example.com/a', 'amqp://127.0.0.1/',
                               'amqps://rabbit.example.com/', 'redis://127.0.0.1/s', 'kafka://127.0.0.1/t',
                               'kafkas://kafka.example.com/t'] LOOP
        BEGIN
            PERFORM outbox.create_endpoint('b', url);
            RAISE NOTICE '%: created', url;
        EXCEPTION WHEN feature_not_supported THEN
            RAISE NOTICE '%: feature_not_supported', url;
        END;
    END LOOP;
END
$$;
-- A bad URL is told as such first, as in a library with the protocol.
SELECT outbox.create_endpoint('bad', 'nats://127.0.0.1/');
SELECT outbox.create_endpoint('bad', 'rediss://127.0.0.1/events');
SELECT outbox.create_endpoint('bad', 'kafka://127.0.0.1/a%20b');
SELECT count(*) AS created FROM outbox.endpoints WHERE id > 0;

-- Webhooks are all there.
SELECT outbox.create_endpoint('web', 'https://example.com/hook') IS NOT NULL AS created;

-- An endpoint restored from a server whose library had NATS: managed like
-- any other, but not moved to another URL of a protocol this library lacks.
INSERT INTO outbox.endpoints (name, url, topics) VALUES ('restored', 'nats://127.0.0.1:4222/events.{topic}', '{order.*}');
SELECT outbox.alter_endpoint('restored', url => 'nats://127.0.0.1:4223/events.{topic}');
SELECT outbox.alter_endpoint('restored', topics => '{order.*, invoice.*}', max_attempts => 3);
SELECT outbox.rotate_secret('restored', new_secret => 'app:n3w') AS returned;
SELECT outbox.disable_endpoint('restored', reason => 'no NATS here');
SELECT outbox.enable_endpoint('restored');
SELECT name, url, topics, enabled, max_attempts FROM outbox.endpoint_status WHERE name = 'restored';

-- Its events get deliveries, which wait (the worker claims none: e2e tests).
TRUNCATE outbox.events, outbox.deliveries;
SELECT outbox.enqueue('order.created', '{"id": 1}') IS NOT NULL AS enqueued;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT ep.name, d.state, d.attempts FROM outbox.deliveries AS d JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id
ORDER BY ep.name;

TRUNCATE outbox.events, outbox.deliveries;
SELECT outbox.drop_endpoint(name) FROM outbox.endpoints WHERE id > 0 ORDER BY name;
