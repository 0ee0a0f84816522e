import { Webhook } from 'standardwebhooks';
import { transaction } from '../../../lib/db.js';

// The order's state machine: which event moves an order from which status to
// which. Anything else is refused.
const TRANSITIONS = {
  'order.created': { from: 'pending', to: 'confirmed' },
};

// Where outbox delivers (outbox.url). Answers 2xx only when the event is
// processed or was processed before; any other status makes outbox retry.
export async function POST(request) {
  // Verify the raw body as it arrived: re-serialized JSON would not match
  // the signature.
  const body = await request.text();
  const headers = Object.fromEntries(request.headers);
  let event;
  try {
    event = new Webhook(process.env.WEBHOOK_SECRET).verify(body, headers);
  } catch (err) {
    console.warn(`webhook refused: ${err.message}`);
    return Response.json({ error: 'invalid signature' }, { status: 401 });
  }
  const webhookId = headers['webhook-id'];
  const transition = TRANSITIONS[event.type];
  const orderId = event.data?.orderId;
  if (!transition || !Number.isSafeInteger(orderId)) {
    // Not ours to handle: accept it, or outbox would retry it for nothing.
    return new Response(null, { status: 204 });
  }

  // The receipt and the status change commit together, so a webhook is
  // either processed once or not at all (and then retried by outbox).
  const result = await transaction(async (db) => {
    // Lock the order first: deliveries for one order are serialized here.
    const { rows: [order] } = await db.query('SELECT status FROM orders WHERE id = $1 FOR UPDATE', [orderId]);
    if (!order) return { status: 422, error: `no order ${orderId}` };
    // The dedupe: the primary key on webhook_id. A redelivery finds the row.
    const receipt = await db.query(
      `INSERT INTO webhook_receipts (webhook_id, topic, order_id, traceparent) VALUES ($1, $2, $3, $4)
       ON CONFLICT (webhook_id) DO NOTHING`,
      [webhookId, event.type, orderId, headers.traceparent ?? null]);
    if (receipt.rowCount === 0) return { status: 200, duplicate: true };
    if (order.status !== transition.from) {
      // Throwing rolls the receipt back: the refusal is not recorded as processed.
      throw Object.assign(new Error(`order ${orderId}: ${event.type} cannot move it from ${order.status} to ${transition.to}`),
                          { httpStatus: 409 });
    }
    await db.query('UPDATE orders SET status = $2, updated_at = now() WHERE id = $1', [orderId, transition.to]);
    return { status: 200, order: orderId, from: order.status, to: transition.to };
  }).catch((err) => {
    if (!err.httpStatus) throw err;
    console.warn(`webhook ${webhookId} refused: ${err.message}`);
    return { status: err.httpStatus, error: err.message };
  });

  return Response.json(result, { status: result.status });
}
