// The nginx sink's request counter (stub_status), for cheap progress
// samples: it counts every request nginx handled, including the status
// request being answered, so our own status requests are subtracted.
import { env } from './env.mjs';

export class SinkCounter {
  constructor(port = env.sinkPort) {
    this.url = `http://127.0.0.1:${port}/nginx_status`;
    this.statusRequests = 0;
    this.base = 0;
  }

  async raw() {
    return (await this.status()).requests;
  }

  // nginx's totals: connections accepted and requests handled.
  async status() {
    const res = await fetch(this.url, { signal: AbortSignal.timeout(5000) });
    const text = await res.text();
    this.statusRequests++;
    const m = /\n\s*(\d+)\s+(\d+)\s+(\d+)\s*\n/.exec(text);
    if (!m) throw new Error(`unexpected nginx status: ${text}`);
    return { connections: Number(m[1]), requests: Number(m[3]) };
  }

  // Starts counting from zero.
  async reset() {
    this.base = await this.raw();  // counts this status request itself
    this.statusRequests = 0;
  }

  // Webhook requests nginx answered since reset().
  async count() {
    const total = await this.raw();
    return total - this.base - this.statusRequests;
  }
}
