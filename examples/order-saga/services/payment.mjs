// The payment service of the order saga: POST /charge charges the
// customer ({"payment_id": "pi_..."}, or {"refused": "card_declined"});
// POST /refund pays the charge back. Options: service.mjs.
import { runService } from './service.mjs';

runService({
  name: 'payment',
  step: { path: '/charge', op: 'charge', id: 'payment_id', prefix: 'pi_', refusal: 'card_declined' },
  compensation: { path: '/refund', op: 'refund', field: 'refunded', id: 'refund_id', prefix: 're_' },
});
