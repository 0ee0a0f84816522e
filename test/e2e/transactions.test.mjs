// Enqueue from the places applications call it: stored procedures that
// commit and roll back inside, and triggers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { startWithReceiver } from '../lib/setup.mjs';

describe('transactions', () => {
  let cluster;
  let sink;

  let env;

  before(async () => {
    env = await startWithReceiver();
    ({ cluster, sink } = env);
  });
  after(async () => env?.destroy());

  const bodies = () => sink.requests.map((r) => JSON.parse(r.body));
  async function marker() {
    const id = (await cluster.query("SELECT outbox.enqueue('marker', '{\"marker\": true}') AS id")).rows[0].id;
    await sink.waitForIds([id]);
  }

  test('a procedure that commits and rolls back inside: only committed parts are sent', async () => {
    await cluster.query(`
      CREATE PROCEDURE place_orders() LANGUAGE plpgsql AS $$
      BEGIN
          PERFORM outbox.enqueue('proc', '{"step": "a"}');
          COMMIT;
          PERFORM outbox.enqueue('proc', '{"step": "b"}');
          ROLLBACK;
          PERFORM outbox.enqueue('proc', '{"step": "c"}');
          COMMIT;
      END $$`);
    await cluster.query('CALL place_orders()');
    await marker();
    const steps = bodies().filter((b) => b.step).map((b) => b.step).sort();
    assert.deepEqual(steps, ['a', 'c']);
  });

  test('a trigger enqueues for each row; a rolled-back insert sends nothing', async () => {
    await cluster.query(`
      CREATE TABLE orders (id int PRIMARY KEY, total numeric);
      CREATE FUNCTION order_created() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
          PERFORM outbox.enqueue('order.created', to_jsonb(NEW), key => 'order-' || NEW.id);
          RETURN NEW;
      END $$;
      CREATE TRIGGER order_created AFTER INSERT ON orders FOR EACH ROW EXECUTE FUNCTION order_created();`);
    await cluster.query('INSERT INTO orders VALUES (1, 10), (2, 20)');
    const client = await cluster.client();
    try {
      await client.query('BEGIN');
      await client.query('INSERT INTO orders VALUES (3, 30)');
      await client.query('ROLLBACK');
    } finally {
      await client.end();
    }
    await marker();
    const ids = bodies().filter((b) => b.total !== undefined).map((b) => b.id).sort();
    assert.deepEqual(ids, [1, 2]);
  });

  test('an enqueue that fails inside an exception block leaves the rest of the transaction intact', async () => {
    await cluster.query(`
      DO $$
      BEGIN
          PERFORM outbox.enqueue('block', '{"kept": 1}');
          BEGIN
              PERFORM outbox.enqueue('block', '{"kept": 0}');
              PERFORM outbox.enqueue('', '{}');  -- refused: rolls the block back
          EXCEPTION WHEN invalid_parameter_value THEN
              NULL;
          END;
          PERFORM outbox.enqueue('block', '{"kept": 2}');
      END $$`);
    await marker();
    const kept = bodies().filter((b) => b.kept !== undefined).map((b) => b.kept).sort();
    assert.deepEqual(kept, [1, 2]);
  });
});
