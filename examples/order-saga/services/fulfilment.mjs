// The fulfilment service of the order saga: POST /schedule books the
// shipment ({"shipment_id": "sh_..."}, or {"refused": "no_slot"}); POST
// /cancel cancels it. Options: service.mjs.
import { runService } from './service.mjs';

runService({
  name: 'fulfilment',
  step: { path: '/schedule', op: 'schedule', id: 'shipment_id', prefix: 'sh_', refusal: 'no_slot' },
  compensation: { path: '/cancel', op: 'cancel', field: 'cancelled', id: 'cancellation_id', prefix: 'can_' },
});
