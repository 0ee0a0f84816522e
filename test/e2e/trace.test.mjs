// Trace context end to end: the application sets outbox.traceparent for its
// transaction; the webhook of an event enqueued in it, by a trigger too,
// carries the W3C headers, signed like the rest.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { startWithReceiver } from '../lib/setup.mjs';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

describe('trace context', () => {
  test('traceparent and tracestate of the enqueuing transaction arrive as headers', async () => {
    const { cluster, sink, destroy } = await startWithReceiver();
    try {
      await cluster.query(`CREATE TABLE orders (id int PRIMARY KEY);
        CREATE FUNCTION order_created() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM outbox.enqueue('order.created', jsonb_build_object('id', NEW.id)); RETURN NEW; END $$;
        CREATE TRIGGER order_created AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION order_created();`);
      const client = await cluster.client();
      await client.query('BEGIN');
      await client.query("SELECT set_config('outbox.traceparent', $1, true), set_config('outbox.tracestate', 'shop=checkout', true)", [TRACEPARENT]);
      await client.query('INSERT INTO orders VALUES (1)');
      await client.query('COMMIT');
      const untraced = (await client.query("SELECT outbox.enqueue('order.viewed', '{}') AS id")).rows[0].id;
      await client.end();
      await sink.waitForCount(2);
      const traced = sink.requests.find((r) => r.id !== untraced);
      assert.equal(traced.headers.traceparent, TRACEPARENT);
      assert.equal(traced.headers.tracestate, 'shop=checkout');
      assert.ok(traced.verified, 'signed');
      const plain = sink.byId(untraced)[0];
      assert.equal(plain.headers.traceparent, undefined, 'only for that transaction');
    } finally {
      await destroy();
    }
  });
});
