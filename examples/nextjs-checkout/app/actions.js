'use server';
import { createHash, randomBytes } from 'node:crypto';
import { headers } from 'next/headers';
import { redirect } from 'next/navigation';
import { transaction } from '../lib/db.js';
import { ITEMS } from '../lib/items.js';

// The form action. A double click, a retried request or a resubmitted page
// all carry the same idempotency key (rendered into the form once), so the
// order is written once and every repeat gets the first answer back.
export async function placeOrder(previousState, formData) {
  const key = String(formData.get('idempotencyKey') ?? '');
  const request = { item: String(formData.get('item')), quantity: Number(formData.get('quantity')) };
  if (!/^[0-9a-f-]{36}$/.test(key)) return { error: 'missing idempotency key: reload the page' };
  if (!ITEMS.includes(request.item) || !(request.quantity >= 1 && request.quantity <= 10)) {
    return { error: 'choose an item and a quantity from 1 to 10' };
  }
  // The same key with other fields is a different request, not a retry.
  const fingerprint = createHash('sha256').update(JSON.stringify(request)).digest('hex');

  const outcome = await transaction(async (db) => {
    // Every event enqueued in this transaction carries this W3C traceparent
    // header, so the webhook joins this request's trace: the caller's when
    // it sent a well-formed one (outbox refuses a malformed value), else a
    // new trace.
    const incoming = (await headers()).get('traceparent');
    const traceparent = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/.test(incoming ?? '') ? incoming
      : `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`;
    await db.query("SELECT set_config('outbox.traceparent', $1, true)", [traceparent]);

    // Takes the key for this transaction. A concurrent request with the same
    // key waits here until this one commits (then gets 'completed' with our
    // response) or rolls back (then gets 'new' and does the work itself).
    const { rows: [idem] } = await db.query(
      'SELECT state, response FROM outbox.idempotency_begin($1, $2)', [key, fingerprint]);
    if (idem.state === 'completed') return idem.response;
    if (idem.state === 'mismatch') return { error: 'this form was already submitted with other values: reload the page to place a new order' };
    if (idem.state !== 'new') return { error: 'this order is still being placed: try again in a moment' };

    const { rows: [order] } = await db.query(
      'INSERT INTO orders (item, quantity) VALUES ($1, $2) RETURNING id::int', [request.item, request.quantity]);
    // The event commits with the order or not at all; the key keeps the
    // events of one order in order at the receiver.
    await db.query("SELECT outbox.enqueue('order.created', $1, key => $2)", [
      { type: 'order.created', timestamp: new Date().toISOString(), data: { orderId: order.id, ...request } },
      `order-${order.id}`,
    ]);
    const response = { orderId: order.id };
    // Stored with the key, in this transaction: what every repeat gets back.
    await db.query('SELECT outbox.idempotency_complete($1, $2)', [key, response]);
    return response;
  });

  if (outcome.error) return outcome;
  // Outside the transaction: redirect() works by throwing.
  redirect(`/orders/${outcome.orderId}`);
}
