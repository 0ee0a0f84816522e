// Idempotency keys with the real worker: a key past its ttl is pruned by
// worker 0's housekeeping, and a request with it is 'new' again. (The
// concurrent cases are in specs/idempotency_concurrent.spec.)
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { startCluster, waitFor } from '../lib/cluster.mjs';

describe('idempotency keys', () => {
  test('a key past its ttl is pruned by the worker', async () => {
    const cluster = await startCluster();
    try {
      const client = await cluster.client();
      await client.query('BEGIN');
      const first = (await client.query("SELECT state FROM outbox.idempotency_begin('req-1', ttl => '1 second')")).rows[0];
      await client.query("SELECT outbox.idempotency_complete('req-1', '{\"order_id\": 1}')");
      await client.query('COMMIT');
      assert.equal(first.state, 'new');
      const kept = (await client.query("SELECT state, response FROM outbox.idempotency_begin('req-1', ttl => '1 hour')")).rows[0];
      assert.deepEqual(kept, { state: 'completed', response: { order_id: 1 } });
      await waitFor(async () => (await cluster.query('SELECT count(*)::int AS n FROM outbox.idempotency_keys')).rows[0].n === 0,
        { timeout: 30000, message: 'the expired key pruned' });
      const again = (await client.query("SELECT state FROM outbox.idempotency_begin('req-1')")).rows[0];
      assert.equal(again.state, 'new');
      await client.end();
    } finally {
      await cluster.destroy();
    }
  });
});
