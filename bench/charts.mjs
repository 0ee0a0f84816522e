// PNG charts with gnuplot: latency percentiles per scenario, drain progress
// over time (outbox and the polling relay, with the worker's memory), and
// the backlog under load. Data files (.dat) stay next to the PNGs.
import fs from 'node:fs';
import path from 'node:path';
import { run } from './lib/proc.mjs';

function writeDat(file, header, rows) {
  fs.writeFileSync(file, `# ${header}\n` + rows.map((r) => r.join(' ')).join('\n') + '\n');
}

export async function drawCharts(results, dir) {
  const drawn = [];
  const scripts = [];
  const common = "set terminal pngcairo size 1000,600 font 'sans,10'\nset grid\nset key left top\n";

  const lat = results.latency?.scenarios;
  // The rate a scenario aimed at, events per second.
  const aimed = (s) => ({ low: 1000 / results.latency.lowIntervalMs, moderate: results.latency.moderateRate,
                          high: results.latency.highRate })[s.rate];
  if (lat?.length) {
    const plots = [];
    for (const s of lat) {
      const phase = s.afterDrain ? `-after-drain` : '';
      const file = path.join(dir, `latency-${s.system}-${s.rate}${phase}.dat`);
      // Log scale: a receipt that beats the client's COMMIT reply is drawn at 0.01 ms.
      writeDat(file, 'percentile latency_ms', s.curve.map(([p, v]) => [p, Math.max(0.01, v).toFixed(3)]));
      const label = `${s.system === 'outbox' ? 'outbox worker' : 'polling relay (1 s, batch 100)'}, ` +
                    `${s.rate === 'low' ? `1 event / ${results.latency.lowIntervalMs} ms` : `${aimed(s)} events/s`}` +
                    // What was sent, when the producer fell short of the rate it aimed at.
                    (s.achievedPerSecond < 0.9 * aimed(s)
                      ? ` (${Math.round(s.achievedPerSecond)}/s sent)` : '') +
                    (s.afterDrain ? `, right after a ${s.afterDrain.toLocaleString('en-US')}-event drain` : s.system === 'outbox' ? ', fresh' : '');
      plots.push(`'${file}' using 1:2 with lines lw 2 title '${label}'`);
    }
    scripts.push(`${common}set output '${path.join(dir, 'latency.png')}'
set title 'Commit-to-receipt latency by percentile'
set xlabel 'percentile'
set ylabel 'latency (ms, log scale)'
set logscale y
set xrange [0:100]
set xtics 10
plot ${plots.join(', \\\n     ')}
`);
    drawn.push('latency.png');
  }

  const drain = results.drain;
  if (drain?.samples?.length) {
    const file = path.join(dir, 'drain-outbox.dat');
    writeDat(file, 'seconds delivered vmrss_mib rssanon_mib', drain.samples.map((s) => s.map((x) => Number(x).toFixed(3))));
    const plots = [`'${file}' using 1:2 with lines lw 2 title 'outbox: delivered (${drain.events} backlog)'`];
    const poll = results.pollingDrain;
    if (poll?.samples?.length) {
      const pf = path.join(dir, 'drain-polling.dat');
      writeDat(pf, 'seconds delivered', poll.samples.map((s) => s.map((x) => Number(x).toFixed(3))));
      plots.push(`'${pf}' using 1:2 with lines lw 2 title 'polling relay: delivered (${poll.events} backlog)'`);
    }
    const mix = results.mix;
    if (mix?.samples?.length) {
      const mf = path.join(dir, 'drain-mix.dat');
      writeDat(mf, 'seconds delivered vmrss_mib rssanon_mib', mix.samples.map((s) => s.map((x) => Number(x).toFixed(3))));
      plots.push(`'${mf}' using 1:2 with lines lw 2 title 'outbox, the mix: delivered (${mix.keyed} distinct keys + ${mix.unkeyed} unkeyed)'`);
    }
    const fan = results.fanout;
    if (fan?.samples?.length) {
      const ff = path.join(dir, 'drain-fanout.dat');
      writeDat(ff, 'seconds delivered vmrss_mib rssanon_mib', fan.samples.map((s) => s.map((x) => Number(x).toFixed(3))));
      plots.push(`'${ff}' using 1:2 with lines lw 2 title 'outbox fan-out: deliveries (${fan.events} events × ${fan.endpoints} endpoints)'`);
    }
    plots.push(`'${file}' using 1:3 axes x1y2 with lines dt 2 title 'outbox worker VmRSS, first drain (MiB)'`);
    plots.push(`'${file}' using 1:4 axes x1y2 with lines dt 3 title 'outbox worker RssAnon, first drain (MiB)'`);
    scripts.push(`${common}set output '${path.join(dir, 'drain.png')}'
set title 'Drain progress: events delivered to nginx over time (sampled every 250 ms)'
set xlabel 'seconds since unpause / relay start'
set ylabel 'events delivered'
set y2label 'worker memory (MiB)'
set key right bottom
set y2tics
set ytics nomirror
set format y '%.0f'
plot ${plots.join(', \\\n     ')}
`);
    drawn.push('drain.png');
  }

  const load = results.load;
  if (load?.samples?.length) {
    const file = path.join(dir, 'load.dat');
    writeDat(file, 'seconds enqueued delivered backlog', load.samples);
    scripts.push(`${common}set output '${path.join(dir, 'load.png')}'
set title 'Under load: ${load.clients} pgbench clients enqueueing for ${load.seconds} s while the worker delivers'
set xlabel 'seconds'
set ylabel 'events'
set y2label 'backlog (events)'
set y2tics
set ytics nomirror
set format y '%.0f'
set arrow from ${load.seconds}, graph 0 to ${load.seconds}, graph 1 nohead dt 3
plot '${file}' using 1:2 with lines lw 2 title 'enqueued', \\
     '${file}' using 1:3 with lines lw 2 title 'delivered', \\
     '${file}' using 1:4 axes x1y2 with lines lw 1 title 'backlog (right axis)'
`);
    drawn.push('load.png');
  }

  for (const script of scripts) {
    await run('gnuplot', [], { input: script, timeoutMs: 60_000 });
  }
  return drawn;
}
