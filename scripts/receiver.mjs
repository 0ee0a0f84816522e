// A local webhook receiver for the demo: prints each request it gets, and
// whether its Standard Webhooks signature verifies.
// Usage: node scripts/receiver.mjs --port 8787 --secret whsec_...
import { parseArgs } from 'node:util';

import { startSink } from '../test/lib/sink.mjs';

const { values } = parseArgs({ options: { port: { type: 'string', default: '8787' }, secret: { type: 'string' } } });
const secrets = values.secret ? [values.secret] : [];
await startSink({
  port: Number(values.port),
  secrets,
  respond: (r) => {
    const check = r.verified ? 'signature verified' : 'SIGNATURE INVALID';
    console.log(`  receiver <- POST ${r.path}  webhook-id=${r.id}  ${check}\n             body: ${r.body}`);
    return { status: 204 };
  },
});
console.log(`  receiver listening on http://127.0.0.1:${values.port}/hook`);
