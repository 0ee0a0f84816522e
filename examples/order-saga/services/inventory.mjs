// The inventory service of the order saga: POST /reserve reserves the
// order's stock ({"reservation_id": "res_..."}, or {"refused":
// "out_of_stock"}); POST /release gives it back. Options: service.mjs.
import { runService } from './service.mjs';

runService({
  name: 'inventory',
  step: { path: '/reserve', op: 'reserve', id: 'reservation_id', prefix: 'res_', refusal: 'out_of_stock' },
  compensation: { path: '/release', op: 'release', field: 'released', id: 'release_id', prefix: 'rel_' },
});
