// Resident memory of a process from /proc/<pid>/status, in KiB. VmRSS
// includes the shared memory (shared_buffers) the process has touched;
// RssAnon is what it allocated privately.
import fs from 'node:fs';

export function rss(pid) {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
    return { vmRss: field('VmRSS'), rssAnon: field('RssAnon'), rssShmem: field('RssShmem') };
  } catch {
    return { vmRss: NaN, rssAnon: NaN, rssShmem: NaN };
  }
}

export class RssTracker {
  constructor(pid) {
    this.pid = pid;
    this.max = { vmRss: 0, rssAnon: 0, rssShmem: 0 };
    this.samples = 0;
  }

  sample() {
    const r = rss(this.pid);
    if (Number.isFinite(r.vmRss)) {
      this.samples++;
      for (const k of Object.keys(this.max)) this.max[k] = Math.max(this.max[k], r[k]);
    }
    return r;
  }
}
