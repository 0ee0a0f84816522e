\set SHOW_CONTEXT never
-- This file needs a library with every broker protocol (the Makefile's
-- BROKERS); sql/broker_missing.sql tests one built without them.
SELECT current_setting('outbox.broker_protocols') = 'nats, amqp, redis, kafka' AS all_protocols \gset
\if :all_protocols
SHOW outbox.broker_protocols;
\else
\echo 'skipped: this library lacks broker protocols (sql/broker_missing.sql tests it)'
\quit
\endif
-- Broker endpoints (nats://, tls://, amqp://, amqps://, redis://, kafka://, kafkas://): created
-- like HTTP ones; credentials in the URL are split off into the endpoint's
-- secret (readable by no role) and never shown again; bad URLs are refused
-- with a hint, without echoing credentials. Nothing is enqueued here.

-- One per scheme. A broker endpoint returns no secret (it signs nothing,
-- and credentials are never handed back).
SELECT outbox.create_endpoint('nats', 'nats://127.0.0.1:4222,127.0.0.1:4223/events.{topic}.{key}',
                              topics => '{order.*}') AS returned;
SELECT outbox.create_endpoint('nats-tls', 'tls://tok%40en@nats.example.com/events.{topic}') AS returned;
SELECT outbox.create_endpoint('rabbit', 'amqp://app:s3cr%3At@127.0.0.1:5672/%2F?exchange=events&routing_key={topic}',
                              max_attempts => 3, retry_base => '1s') AS returned;
SELECT outbox.create_endpoint('rabbit-tls', 'amqps://rabbit.example.com/prod?exchange=events',
                              secret => 'app:p%40ss%20word') AS returned;
SELECT outbox.create_endpoint('redis', 'redis://:hunter2@127.0.0.1:6379/events?maxlen=1000',
                              rate_limit => 100, filter => '$.total > 10') AS returned;
SELECT outbox.create_endpoint('redis-open', 'redis://127.0.0.1:6379/stream-{topic}') AS returned;
SELECT outbox.create_endpoint('kafka', 'kafkas://app:s3cr%3At@k1.example.com:9093,k2.example.com:9093/outbox.{topic}'
                                       '?sasl_mechanism=SCRAM-SHA-512', topics => '{order.*}') AS returned;

-- Stored URLs have no credentials; neither has anything a role can read.
SELECT name, url, topics FROM outbox.endpoint_status WHERE name <> 'default' ORDER BY name;
SELECT name, url, max_attempts, retry_base, rate_limit, filter FROM outbox.endpoints WHERE id > 0 ORDER BY name;
SELECT endpoint FROM outbox.stats WHERE endpoint <> 'default' ORDER BY endpoint;
-- The secrets: the canonical form (user:password, :password, token; each part
-- percent-encoded), none for an endpoint without credentials.
SELECT ep.name, s.secret FROM outbox.endpoint_secrets AS s JOIN outbox.endpoints AS ep ON ep.id = s.endpoint_id
ORDER BY ep.name;

-- Credentials given twice, or bad ones, are refused without being echoed.
SELECT outbox.create_endpoint('bad', 'amqp://app:pw@127.0.0.1/', secret => 'app:pw');
SELECT outbox.create_endpoint('bad', 'amqp://127.0.0.1/', secret => 'app:pa@ss');
SELECT outbox.create_endpoint('bad', 'amqp://app:p%zzw@127.0.0.1/');
SELECT outbox.create_endpoint('bad', 'redis://127.0.0.1/s', secret => 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw x');

-- Bad URLs, with hints; credentials in them are redacted.
SELECT outbox.create_endpoint('bad', 'rediss://:hunter2@127.0.0.1/events');
SELECT outbox.create_endpoint('bad', 'nats://user:hunter2@127.0.0.1/events.*');
SELECT outbox.create_endpoint('bad', 'nats://127.0.0.1/');
SELECT outbox.create_endpoint('bad', 'amqp://guest:hunter2@127.0.0.1/?exchnage=x');
SELECT outbox.create_endpoint('bad', 'redis://127.0.0.1/events?maxlen=-1');
SELECT outbox.create_endpoint('bad', 'nats://127.0.0.1/a.{tpoic}');
SELECT outbox.create_endpoint('bad', 'kafka://app:hunter2@127.0.0.1/events%20{topic}');
SELECT outbox.create_endpoint('bad', 'kafka://127.0.0.1/events?sasl_mechanism=GSSAPI');
-- HTTP URLs with credentials were refused before, and still are, redacted.
SELECT outbox.create_endpoint('bad', 'https://user:hunter2@example.com/hook');
SELECT count(*) AS bad_endpoints FROM outbox.endpoints WHERE name = 'bad';

-- alter_endpoint: a new URL with credentials replaces them; one without
-- keeps them; HTTP and broker do not mix.
SELECT outbox.alter_endpoint('rabbit', url => 'amqp://ops:n3w@127.0.0.1:5673/%2F?exchange=events');
SELECT outbox.alter_endpoint('redis', url => 'redis://127.0.0.1:6380/events');
SELECT ep.name, ep.url, s.secret FROM outbox.endpoints AS ep LEFT JOIN outbox.endpoint_secrets AS s ON s.endpoint_id = ep.id
WHERE ep.name IN ('rabbit', 'redis') ORDER BY ep.name;
SELECT outbox.alter_endpoint('rabbit', url => 'https://example.com/hook');
SELECT outbox.create_endpoint('web', 'https://example.com/hook') IS NOT NULL AS created;
SELECT outbox.alter_endpoint('web', url => 'nats://127.0.0.1/events');
SELECT outbox.alter_endpoint('rabbit', url => 'amqp://127.0.0.1/?exchange=x', topics => '{}');

-- rotate_secret replaces a broker's credentials at once, returns nothing,
-- and never generates any.
SELECT outbox.rotate_secret('redis', new_secret => 'default:n%20w') AS returned;
SELECT s.secret FROM outbox.endpoint_secrets AS s JOIN outbox.endpoints AS ep ON ep.id = s.endpoint_id
WHERE ep.name = 'redis';
SELECT outbox.rotate_secret('redis');
SELECT outbox.rotate_secret('redis', new_secret => 'a b');

-- Topic routing applies as to any endpoint.
TRUNCATE outbox.events, outbox.deliveries;
SELECT outbox.enqueue('order.created', '{"total": 20}', key => 'o-1') IS NOT NULL;
SELECT outbox.enqueue('user.created', '{"total": 5}') IS NOT NULL;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT e.topic, ep.name FROM outbox.deliveries AS d JOIN outbox.events AS e ON e.id = d.event_id
JOIN outbox.endpoints AS ep ON ep.id = d.endpoint_id ORDER BY e.topic, ep.name;

-- Nothing here may be read by the roles.
SET ROLE outbox_admin;
SELECT count(*) FROM outbox.endpoint_secrets;
SELECT outbox.broker_secret('amqp://a:b@h/', NULL);
RESET ROLE;

TRUNCATE outbox.events, outbox.deliveries;
SELECT outbox.drop_endpoint(name) FROM outbox.endpoints WHERE id > 0;
