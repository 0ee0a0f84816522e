\set SHOW_CONTEXT never
-- Endpoints: create, alter, rotate, disable, enable, drop; topic routing in
-- dispatch; replay and redrive. The worker has no outbox.url here and the
-- endpoints point at a closed loopback port; dispatch is called by hand.
TRUNCATE outbox.events, outbox.deliveries;

-- create_endpoint returns the signing secret: generated (whsec_ + 24 random
-- bytes) or the one given.
SELECT outbox.create_endpoint('billing', 'http://127.0.0.1:9/billing', topics => '{order.*}') ~ '^whsec_[A-Za-z0-9+/]{32}$'
    AS generated_secret;
SELECT outbox.create_endpoint('crm', 'https://crm.example.com/hooks', topics => '{order.created, user.*}',
                              secret => 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
                              headers => '{"x-team": "crm"}', timeout => '5s');
SELECT outbox.create_endpoint('audit', 'http://127.0.0.1:9/audit') IS NOT NULL AS all_topics;
SELECT outbox.create_endpoint('billing', 'http://127.0.0.1:9/other') IS NOT NULL;
SELECT name, url, topics, headers, timeout, enabled FROM outbox.endpoint_status ORDER BY name;
SELECT count(*) AS secrets, count(DISTINCT secret) AS distinct_secrets FROM outbox.endpoint_secrets;

-- Bad input is refused, and nothing is written.
SELECT outbox.create_endpoint('bad', 'ftp://example.com/x');
SELECT outbox.create_endpoint('bad', 'example.com/hook');
-- The password is never echoed (errors go to the server log too).
SELECT outbox.create_endpoint('bad', 'https://user:pw@example.com/');
SELECT outbox.create_endpoint('bad', 'https://example.com/', topics => '{}');
SELECT outbox.create_endpoint('bad', 'https://example.com/', topics => '{ord*er}');
SELECT outbox.create_endpoint('bad', 'https://example.com/', topics => '{*.created}');
SELECT outbox.create_endpoint('bad', 'https://example.com/', secret => 'not-a-secret');
SELECT outbox.create_endpoint('bad', 'https://example.com/', headers => '{"webhook-id": "x"}');
SELECT outbox.create_endpoint('bad', 'https://example.com/', timeout => '-1s');
SELECT outbox.create_endpoint('bad name', 'https://example.com/');
SELECT outbox.create_endpoint(NULL, 'https://example.com/');
SELECT count(*) AS endpoints FROM outbox.endpoints;

-- Topic routing: each event gets a delivery for every enabled endpoint whose
-- patterns match (the default endpoint only when outbox.url is set).
SELECT outbox.enqueue('order.created', '{"n": 1}') IS NOT NULL;
SELECT outbox.enqueue('order.paid', '{"n": 2}') IS NOT NULL;
SELECT outbox.enqueue('user.created', '{"n": 3}') IS NOT NULL;
SELECT outbox.enqueue('orders', '{"n": 4}') IS NOT NULL;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT e.topic, string_agg(ep.name, ', ' ORDER BY ep.name) AS endpoints
FROM outbox.events e
LEFT JOIN outbox.deliveries d ON d.event_id = e.id
LEFT JOIN outbox.endpoints ep ON ep.id = d.endpoint_id
GROUP BY e.topic ORDER BY e.topic;

-- alter_endpoint: NULL leaves a field as it is.
SELECT outbox.alter_endpoint('crm', topics => '{user.*}');
SELECT outbox.alter_endpoint('crm', headers => '{"x-team": "crm2"}');
SELECT name, url, topics, headers, timeout FROM outbox.endpoint_status WHERE name = 'crm';
SELECT outbox.alter_endpoint('crm', url => 'gopher://crm');
SELECT outbox.alter_endpoint('nope', url => 'https://example.com/');
SELECT outbox.alter_endpoint('default', url => 'https://example.com/');

-- rotate_secret: the new secret and the old one (until the grace ends) both
-- sign; an old one past its grace is gone.
SELECT outbox.rotate_secret('crm', 'whsec_dGhpcyBpcyBhIHNlY3JldCBrZXkgZm9yIHRlc3Rz') AS new_secret;
SELECT s.secret, s.expires_at IS NULL AS current, s.expires_at > now() + interval '23 hours' AS in_grace
FROM outbox.endpoint_secrets s JOIN outbox.endpoints ep ON ep.id = s.endpoint_id
WHERE ep.name = 'crm' ORDER BY s.created_at;
SELECT outbox.rotate_secret('crm', grace => '0s') ~ '^whsec_' AS rotated_without_grace;
SELECT count(*) AS crm_secrets FROM outbox.endpoint_secrets s JOIN outbox.endpoints ep ON ep.id = s.endpoint_id
WHERE ep.name = 'crm';
SELECT outbox.rotate_secret('crm', grace => '-1 hour');
SELECT outbox.rotate_secret('default');

-- disable/enable: a disabled endpoint gets no new deliveries; its pending
-- ones stay pending.
SELECT outbox.disable_endpoint('billing', 'maintenance until Monday');
SELECT name, enabled, disabled_reason, disabled_at IS NOT NULL AS has_time FROM outbox.endpoint_status
WHERE name = 'billing';
SELECT outbox.enqueue('order.refunded', '{"n": 5}') IS NOT NULL;
SELECT outbox.dispatch(100, include_default => false) AS dispatched;
SELECT ep.name, d.state FROM outbox.deliveries d JOIN outbox.events e ON e.id = d.event_id
JOIN outbox.endpoints ep ON ep.id = d.endpoint_id WHERE e.topic = 'order.refunded' ORDER BY ep.name;
SELECT name, pending FROM outbox.endpoint_status WHERE name = 'billing';
SELECT outbox.enable_endpoint('billing');
SELECT name, enabled, disabled_reason FROM outbox.endpoint_status WHERE name = 'billing';

-- replay: again to all matching endpoints, or to one; redrive: dead ones.
UPDATE outbox.deliveries SET state = 'delivered', attempts = 1, finished_at = now();
SELECT outbox.replay(id) AS queued FROM outbox.events WHERE topic = 'order.created';
SELECT outbox.replay(id, endpoint => 'crm') AS queued FROM outbox.events WHERE topic = 'order.created';
SELECT ep.name, d.state, d.attempts FROM outbox.deliveries d JOIN outbox.events e ON e.id = d.event_id
JOIN outbox.endpoints ep ON ep.id = d.endpoint_id WHERE e.topic = 'order.created' ORDER BY ep.name;
SELECT outbox.replay('00000000-0000-7000-8000-000000000000');
UPDATE outbox.deliveries d SET state = 'dead', finished_at = now() - interval '2 hours'
FROM outbox.endpoints ep WHERE ep.id = d.endpoint_id AND ep.name = 'audit';
SELECT outbox.redrive('audit', since => now() - interval '1 hour') AS recent_dead;
SELECT outbox.redrive('audit') AS all_dead;
SELECT state, count(*) FROM outbox.deliveries d JOIN outbox.endpoints ep ON ep.id = d.endpoint_id
WHERE ep.name = 'audit' GROUP BY state;

-- drop_endpoint: its deliveries go, and events that were only for it.
SELECT outbox.drop_endpoint('audit');
SELECT count(*) AS audit_deliveries FROM outbox.deliveries WHERE endpoint_id NOT IN (SELECT id FROM outbox.endpoints);
SELECT topic FROM outbox.events ORDER BY seq;
SELECT outbox.drop_endpoint('audit');
SELECT outbox.drop_endpoint('default');

-- The default endpoint can be disabled like any other.
SELECT outbox.disable_endpoint('default');
SELECT outbox.enable_endpoint('default');
SELECT name, url IS NULL AS url_from_outbox_url, enabled FROM outbox.endpoint_status WHERE name = 'default';

SELECT outbox.drop_endpoint('billing'), outbox.drop_endpoint('crm');
TRUNCATE outbox.events, outbox.deliveries;
