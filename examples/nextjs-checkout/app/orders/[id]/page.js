import { notFound } from 'next/navigation';
import { pool } from '../../../lib/db.js';
import { RefreshWhilePending } from './refresh.js';

export const dynamic = 'force-dynamic';

export default async function Order({ params }) {
  const { id } = await params;
  if (!/^\d{1,18}$/.test(id)) notFound();
  const { rows: [order] } = await pool.query('SELECT * FROM orders WHERE id = $1', [id]);
  if (!order) notFound();
  const { rows: receipts } = await pool.query(
    `SELECT r.webhook_id, r.topic, r.traceparent, r.received_at,
            round(extract(epoch FROM r.received_at - o.created_at) * 1000) AS after_ms
     FROM webhook_receipts AS r JOIN orders AS o ON o.id = r.order_id
     WHERE r.order_id = $1 ORDER BY r.received_at`,
    [id]);
  return (
    <>
      <h1>Order #{order.id}</h1>
      <dl>
        <dt>Item</dt><dd>{order.quantity} × {order.item}</dd>
        <dt>Placed</dt><dd>{time(order.created_at)}</dd>
        <dt>Status</dt><dd><span className={`status ${order.status}`} data-testid="status">{order.status}</span></dd>
        {receipts.map((r) => (
          <ReceiptRows key={r.webhook_id} receipt={r} />
        ))}
      </dl>
      {order.status === 'pending' && <p>Waiting for the <code>order.created</code> webhook…</p>}
      <p><a href="/">Place another order</a></p>
      <RefreshWhilePending pending={order.status === 'pending'} />
    </>
  );
}

function ReceiptRows({ receipt }) {
  return (
    <>
      <dt>Webhook</dt><dd><code>{receipt.topic}</code> at {time(receipt.received_at)} ({receipt.after_ms} ms later)</dd>
      <dt>webhook-id</dt><dd><code>{receipt.webhook_id}</code></dd>
      {receipt.traceparent && <><dt>traceparent</dt><dd><code>{receipt.traceparent}</code></dd></>}
    </>
  );
}

const time = (t) => `${t.toISOString().slice(11, 23)} UTC`;
