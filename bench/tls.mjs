// 12. TLS (issue 16): the same drain to the same nginx over HTTPS (a
// self-signed certificate, trusted through outbox.ca_file) and over plain
// HTTP, in pairs whose order alternates. nginx counts the connections it
// accepted during each drain: every HTTPS connection is a TLS handshake.
import path from 'node:path';
import { env, scale } from './lib/env.mjs';
import { connect, resetQueue, setSystem } from './lib/pg.mjs';
import { SinkCounter } from './lib/sink.mjs';
import { enqueueBacklog, unpauseAndDrain } from './drain.mjs';

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

export async function measureTls(log) {
  const client = await connect();
  const n = scale.tlsEvents;
  const urls = {
    http: `http://127.0.0.1:${env.sinkPort}/hook`,
    https: `https://127.0.0.1:${env.tlsPort}/hook`,
  };
  const rounds = [];
  try {
    await setSystem(client, { 'outbox.ca_file': path.join(env.tmp, 'nginx', 'cert.pem') });
    for (let pair = 0; pair < scale.tlsPairs; pair++) {
      const order = pair % 2 === 0 ? ['https', 'http'] : ['http', 'https'];
      const result = {};
      for (const scheme of order) {
        await setSystem(client, { 'outbox.paused': 'on', 'outbox.url': urls[scheme] });
        await resetQueue(client);
        await client.query('VACUUM outbox.events, outbox.deliveries');
        await enqueueBacklog(client, n, `bench.${scheme}`);
        const counter = new SinkCounter();
        const before = await counter.status();
        const out = await unpauseAndDrain(client, n, log, `${scheme} drain`);
        const after = await counter.status();
        result[scheme] = { ...out, connections: after.connections - before.connections - 1 };
      }
      result.ratio = result.https.perSecond / result.http.perSecond;
      log(`tls: pair ${pair + 1}: https ${Math.round(result.https.perSecond)}/s over ` +
          `${result.https.connections} connections, http ${Math.round(result.http.perSecond)}/s: ${result.ratio.toFixed(2)}×`);
      rounds.push(result);
    }
    const ratios = rounds.map((r) => r.ratio);
    return {
      events: n, rounds, ratios, ratio: median(ratios),
      httpsPerSecond: median(rounds.map((r) => r.https.perSecond)),
      httpPerSecond: median(rounds.map((r) => r.http.perSecond)),
      handshakes: median(rounds.map((r) => r.https.connections)),
      done: rounds.every((r) => r.https.done && r.http.done),
    };
  } finally {
    await setSystem(client, { 'outbox.url': urls.http, 'outbox.ca_file': null, 'outbox.paused': 'off' }).catch(() => {});
    await client.end();
  }
}
