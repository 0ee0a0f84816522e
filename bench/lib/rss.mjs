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

// The largest figures any of the given processes (the workers) reached.
export class RssTracker {
  constructor(pids) {
    this.pids = pids;
    this.max = { vmRss: 0, rssAnon: 0, rssShmem: 0 };
    this.samples = 0;
  }

  // The largest of the processes' current figures, and keeps the maxima.
  sample() {
    const now = { vmRss: NaN, rssAnon: NaN, rssShmem: NaN };
    for (const pid of this.pids) {
      const r = rss(pid);
      if (!Number.isFinite(r.vmRss)) continue;
      for (const k of Object.keys(now)) now[k] = Number.isFinite(now[k]) ? Math.max(now[k], r[k]) : r[k];
    }
    if (Number.isFinite(now.vmRss)) {
      this.samples++;
      for (const k of Object.keys(this.max)) this.max[k] = Math.max(this.max[k], now[k]);
    }
    return now;
  }
}
