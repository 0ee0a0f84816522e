// The Next.js checkout example (examples/nextjs-checkout) in a real browser:
// its run.sh builds the app once and serves it with a throwaway cluster whose
// worker delivers to the app's webhook route; headless Chromium places an
// order with a double click while a retry of the same request races it, then
// the request is replayed once more after the commit. Exactly one order, one
// event, one processed webhook, and the page shows it confirmed. Installs
// Chromium (Debian) when missing; without it the test fails.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';

import { waitFor } from '../lib/cluster.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const example = path.join(root, 'examples/nextjs-checkout');
const chromiumPath = '/usr/bin/chromium';
const secret = `whsec_${Buffer.from('nextjs example test secret 24').toString('base64')}`;

function ensureChromium() {
  if (fs.existsSync(chromiumPath)) return;
  assert.equal(process.getuid(), 0, `${chromiumPath} is missing: install Debian's chromium package`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  for (const args of [['update', '-qq'], ['install', '-y', '-qq', '--no-install-recommends', 'chromium']]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8' });
    assert.equal(r.status, 0, `apt-get ${args.join(' ')} failed: ${r.stderr}`);
  }
  assert.ok(fs.existsSync(chromiumPath), `${chromiumPath} is still missing after installing chromium`);
}

async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

let app;       // run.sh: { proc, output, url }
let db;        // a superuser connection to the shop database
let browser;

before(async () => {
  ensureChromium();
  const port = await freePort();
  // run.sh installs the app's npm packages and builds it when needed, then
  // prints the psql command for its cluster and the app's URL.
  const proc = spawn('bash', [path.join(example, 'run.sh')], {
    env: { ...process.env, PORT: String(port), WEBHOOK_SECRET: secret },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  app = { proc, output: '', url: null };
  proc.stdout.on('data', (d) => { app.output += d; });
  proc.stderr.on('data', (d) => { app.output += d; });
  app.exited = new Promise((resolve) => proc.once('exit', resolve));
  // One wait for either end, so that nothing is left polling (and keeping
  // the test process alive) when run.sh fails.
  const ready = () => /^ready: (\S+)/m.exec(app.output);
  await waitFor(() => ready() || proc.exitCode !== null || proc.signalCode !== null,
                { timeout: 600000, interval: 200, message: 'run.sh to say ready' });
  if (!ready()) throw new Error(`run.sh exited (${proc.exitCode ?? proc.signalCode}):\n${app.output}`);
  app.url = ready()[1];
  const [, host, pgport] = / -h (\S+) -p (\d+) /.exec(/^database: .*$/m.exec(app.output)[0]);
  db = new pg.Client({ host, port: Number(pgport), user: 'postgres', database: 'shop' });
  await db.connect();
  // The example's own node_modules has playwright-core (run.sh installed it).
  const { chromium } = createRequire(path.join(example, 'package.json'))('playwright-core');
  browser = await chromium.launch({ executablePath: chromiumPath, headless: true });
});

after(async () => {
  await browser?.close();
  await db?.end();
  if (app?.proc.exitCode === null) {
    app.proc.kill('SIGTERM');  // run.sh stops the app and removes its cluster
    await app.exited;
  }
});

const count = async (sql) => Number((await db.query(sql)).rows[0].count);

test('a double-clicked, raced and replayed checkout makes one order, one webhook, and shows it confirmed', async (t) => {
  const page = await browser.newPage({ viewport: { width: 640, height: 420 } });
  // Every server-action POST the browser sends; the first one also gets a
  // copy sent at the same moment, as a client retrying on a timeout would.
  const actionPosts = [];
  let raced;
  await page.route('**/*', async (route) => {
    const request = route.request();
    if (request.method() === 'POST' && request.headers()['next-action']) {
      actionPosts.push(request);
      raced ??= page.request.fetch(request, { maxRedirects: 0 });
    }
    await route.continue();
  });

  await page.goto(app.url);
  await page.waitForLoadState('networkidle');  // hydrated: the form posts through React
  const key = await page.inputValue('input[name=idempotencyKey]');
  await page.evaluate(() => { window.submits = 0; document.addEventListener('submit', () => { window.submits += 1; }, true); });
  await page.dblclick('button:text("Place order")');
  // Two submits of one form; React sends the first and queues the second
  // (useActionState runs a form's actions one after another), and the first
  // one's redirect ends the queue. The raced copy is the duplicate that
  // reaches the server while the first is still in its transaction.
  assert.equal(await page.evaluate(() => window.submits), 2, 'the double click submitted twice');
  await page.waitForURL(/\/orders\/\d+$/);
  const orderUrl = page.url();
  await waitFor(async () => (await page.textContent('[data-testid=status]')) === 'confirmed',
                { timeout: 30000, message: 'the page to show confirmed' });
  const racedResponse = await raced;
  const orderPath = new URL(orderUrl).pathname;
  assert.ok(racedResponse.status() < 400, `the raced retry got ${racedResponse.status()}`);
  assert.match(racedResponse.headers()['x-action-redirect'] ?? '', new RegExp(`^${orderPath}(;|$)`));

  // A late retry of the same request, after the commit: the stored answer
  // (a redirect to the same order), no new order.
  const replay = await page.request.fetch(actionPosts[0], { maxRedirects: 0 });
  assert.ok(replay.status() < 400, `the replay got ${replay.status()}`);
  assert.match(replay.headers()['x-action-redirect'] ?? '', new RegExp(`^${orderPath}(;|$)`));

  // The same key with other fields is not a retry: the user is told.
  await page.unroute('**/*');
  await page.goto(app.url);
  await page.waitForLoadState('networkidle');
  await page.locator('input[name=idempotencyKey]').evaluate((input, k) => { input.value = k; }, key);
  await page.fill('input[name=quantity]', '3');
  await page.click('button:text("Place order")');
  await page.getByRole('alert').getByText('already submitted with other values').waitFor();

  // What the database holds once the delivery is recorded.
  await waitFor(async () => (await count("SELECT count(*) FROM outbox.deliveries WHERE state = 'delivered'")) >= 1,
                { message: 'the delivery to be recorded' });
  const orders = (await db.query('SELECT id, status FROM orders')).rows;
  const receipts = (await db.query('SELECT webhook_id, topic, order_id, traceparent FROM webhook_receipts')).rows;
  const events = (await db.query("SELECT id, topic, headers FROM outbox.events")).rows;
  const deliveries = (await db.query('SELECT state, attempts, last_status FROM outbox.deliveries')).rows;
  t.diagnostic(`browser sent ${actionPosts.length} action POSTs, plus the raced retry and the replay; ` +
               `orders: ${orders.length} (${orders.map((o) => o.status)}), order.created events: ${events.length}, ` +
               `webhooks processed: ${receipts.length}, deliveries: ${JSON.stringify(deliveries)}`);
  assert.ok(actionPosts.length >= 1);
  assert.equal(orders.length, 1, 'exactly one order');
  assert.equal(orders[0].status, 'confirmed');
  assert.equal(orderPath, `/orders/${orders[0].id}`);
  assert.deepEqual(events.map((e) => e.topic), ['order.created']);
  assert.equal(receipts.length, 1, 'exactly one webhook processed');
  assert.equal(receipts[0].webhook_id, events[0].id, 'webhook-id is the event id');
  assert.equal(deliveries.length, 1);
  assert.equal(deliveries[0].state, 'delivered');
  // The action set outbox.traceparent: the webhook carried it.
  assert.match(receipts[0].traceparent ?? '', /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  assert.equal(await count('SELECT count(*) FROM outbox.idempotency_keys'), 1);

  // The screenshot the example's README shows: the confirmed order. It is
  // committed; OUTBOX_SCREENSHOT=1 renews it (other runs leave the tree clean).
  await page.goto(orderUrl);
  assert.equal(await page.textContent('[data-testid=status]'), 'confirmed');
  const committed = path.join(example, 'screenshot.png');
  const shot = process.env.OUTBOX_SCREENSHOT === '1' || !fs.existsSync(committed)
    ? committed : path.join(os.tmpdir(), `outbox-nextjs-${process.pid}.png`);
  await page.screenshot({ path: shot });
  assert.ok(fs.statSync(shot).size > 1000, 'a screenshot was written');
  if (shot !== committed) fs.rmSync(shot);
  await page.close();
});

test('the webhook route verifies, deduplicates on webhook-id and refuses an illegal transition', async () => {
  const hook = new URL('/api/webhooks', app.url).href;
  const { rows: [event] } = await db.query("SELECT id, payload FROM outbox.events WHERE topic = 'order.created'");
  const post = (id, body, signature) => {
    const timestamp = new Date();
    const headers = { 'content-type': 'application/json', 'webhook-id': id,
                      'webhook-timestamp': String(Math.floor(timestamp / 1000)),
                      'webhook-signature': signature ?? new Webhook(secret).sign(id, timestamp, body) };
    return fetch(hook, { method: 'POST', headers, body });
  };
  const body = JSON.stringify(event.payload);

  // Redelivery of the processed event: done already, 200, nothing changes.
  let res = await post(event.id, body);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).duplicate, true);
  // A bad signature: refused before anything is read.
  res = await post('msg_forged', body, 'v1,AAAA');
  assert.equal(res.status, 401);
  // A new order.created for an order that is confirmed already: refused, not recorded.
  res = await post('msg_second_created', body);
  assert.equal(res.status, 409);
  assert.equal(await count('SELECT count(*) FROM webhook_receipts'), 1);
  assert.match(app.output, /webhook msg_second_created refused: order \d+: order.created cannot move it from confirmed/);
});
