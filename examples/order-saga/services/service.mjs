// What the saga's three services (inventory.mjs, payment.mjs,
// fulfilment.mjs) share: node:http on loopback; each request's Standard
// Webhooks signature verified with the standardwebhooks package; one step
// (POST /reserve, /charge, /schedule) and its compensation (POST /release,
// /refund, /cancel), per saga (the payload's saga_id).
//
// Deduplicated on webhook-id: a request whose id was answered before gets
// the first answer again and nothing is done. Every answer is one line of
// the state file (JSON lines), written before it is sent and read back at
// start, so the dedupe and the business state survive a kill -9 of the
// service (a line is one write(); the page cache keeps it when the process
// dies; a machine crash would need an fsync). The file is also the record
// of every action taken, which the saga's test counts.
//
// Made to misbehave, with rates from the command line: a 500 before
// anything is done (--fail-rate); the step refused with a 200 and
// {"refused": reason}, nothing done (--refuse-rate); the action taken and
// the answer sent only after --slow-ms (--slow-rate), later than the
// outbox's request timeout: the attempt fails though the action took
// effect, and the retry gets the first answer from the dedupe.
import fs from 'node:fs';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';

const usage = `options: --secret whsec_... --state FILE [--host 127.0.0.1] [--port 0]
         [--fail-rate 0] [--refuse-rate 0] [--slow-rate 0] [--slow-ms 3000]`;

// The business state of one service, rebuilt from the state file: which
// sagas had the step done (and its answer), which had it undone, and which
// were compensated before the step was ever done (a late step for them is
// refused: the saga has given it up).
class Ledger {
  constructor() {
    this.done = new Map();  // saga -> the step's answer
    this.undone = new Set();
    this.cancelled = new Set();
  }

  // Applies one line of the state file (replays change nothing).
  apply(line) {
    if (line.replay) return;
    if (line.kind === 'step' && line.effect) this.done.set(line.saga, line.answer);
    if (line.kind === 'compensation') {
      if (line.effect) this.undone.add(line.saga);
      else if (!this.done.has(line.saga)) this.cancelled.add(line.saga);
    }
  }
}

// Runs a service: `step` and `compensation` are { path, op } plus, for the
// step, `id` (the answer's field, e.g. payment_id), `prefix` (of the ids it
// makes, e.g. pi_) and `refusal` (the reason it gives); for the
// compensation, `field` (e.g. refunded) and `id`/`prefix` of its receipt.
export function runService({ name, step, compensation }) {
  const { values: opts } = parseArgs({
    options: {
      host: { type: 'string', default: '127.0.0.1' },
      port: { type: 'string', default: '0' },
      secret: { type: 'string' },
      state: { type: 'string' },
      'fail-rate': { type: 'string', default: '0' },
      'refuse-rate': { type: 'string', default: '0' },
      'slow-rate': { type: 'string', default: '0' },
      'slow-ms': { type: 'string', default: '3000' },
    },
  });
  if (!opts.secret || !opts.state) {
    console.error(`${name}: ${usage}`);
    process.exit(2);
  }
  const rate = (option) => Number(opts[option]);
  const webhook = new Webhook(opts.secret);
  const ledger = new Ledger();
  const answers = new Map();  // webhook-id -> { status, answer }

  // Reads the state file back; a last line cut by a kill is ignored.
  if (fs.existsSync(opts.state)) {
    for (const text of fs.readFileSync(opts.state, 'utf8').split('\n')) {
      let line;
      try {
        line = JSON.parse(text);
      } catch {
        continue;
      }
      if (!answers.has(line.id)) answers.set(line.id, { status: 200, answer: line.answer });
      ledger.apply(line);
    }
  }
  const state = fs.openSync(opts.state, 'a');
  const record = (line) => {
    fs.writeSync(state, `${JSON.stringify({ ...line, at: new Date().toISOString() })}\n`);
    ledger.apply(line);
  };
  const newId = (prefix) => `${prefix}${Math.random().toString(36).slice(2, 12)}`;

  // The step for `saga`, under a webhook-id never seen: { effect, answer }.
  function doStep(saga) {
    if (ledger.undone.has(saga) || ledger.cancelled.has(saga)) return { effect: false, answer: { refused: 'cancelled' } };
    if (Math.random() < rate('refuse-rate')) return { effect: false, answer: { refused: step.refusal } };
    return { effect: true, answer: { [step.id]: newId(step.prefix) } };
  }
  // The compensation: undoes the step if it was done and not undone yet.
  function doCompensation(saga) {
    if (ledger.done.has(saga) && !ledger.undone.has(saga)) {
      return { effect: true, answer: { [compensation.field]: true, [step.id]: ledger.done.get(saga)[step.id],
                                        [compensation.id]: newId(compensation.prefix) } };
    }
    return { effect: false, answer: { [compensation.field]: false } };
  }
  const routes = {
    [step.path]: { kind: 'step', op: step.op, act: doStep },
    [compensation.path]: { kind: 'compensation', op: compensation.op, act: doCompensation },
  };

  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const reply = (status, answer) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(answer));
      };
      const route = req.method === 'POST' ? routes[req.url] : undefined;
      if (!route) return reply(404, { error: `no ${req.method} ${req.url}` });
      try {
        webhook.verify(body, req.headers);
      } catch (err) {
        return reply(401, { error: `signature: ${err.message}` });
      }
      const id = req.headers['webhook-id'];
      let saga;
      try {
        saga = JSON.parse(body).saga_id;
      } catch { /* not JSON: no saga */ }
      if (!Number.isSafeInteger(saga)) return reply(400, { error: 'no saga_id' });
      if (Math.random() < rate('fail-rate')) return reply(500, { error: 'injected failure' });
      const first = answers.get(id);
      if (first) {
        record({ id, kind: route.kind, op: route.op, saga, replay: true });
        return reply(first.status, first.answer);
      }
      const { effect, answer } = route.act(saga);
      const late = Math.random() < rate('slow-rate');
      answers.set(id, { status: 200, answer });
      record({ id, kind: route.kind, op: route.op, saga, effect, answer, ...(late ? { late } : {}) });
      if (late) {
        setTimeout(() => reply(200, answer), Number(opts['slow-ms']));  // acted, answers too late
      } else {
        reply(200, answer);
      }
    });
  });
  server.listen(Number(opts.port), opts.host, () => {
    console.log(`${name} listening on http://${opts.host}:${server.address().port}`);
  });
  return server;
}
