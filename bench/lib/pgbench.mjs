// pgbench against the benchmark cluster: runs a script file (or several,
// mixed at random per transaction), parses tps, average latency, each
// script's average latency and (with perStatement) each statement's.
import path from 'node:path';
import { env } from './env.mjs';
import { run } from './proc.mjs';

export async function pgbench({ script, scripts = [script], clients = 1, seconds, transactions,
                                database = 'bench', pgoptions, perStatement = false }) {
  const args = ['-n', '-M', 'prepared', '-h', env.pghost, '-p', String(env.pgport), '-U', 'postgres',
                '-c', String(clients), '-j', String(Math.min(clients, 2)), ...scripts.flatMap((f) => ['-f', f])];
  if (seconds) args.push('-T', String(seconds)); else args.push('-t', String(transactions));
  if (perStatement) args.push('-r');
  args.push(database);
  const limit = ((seconds ?? 60) + 60) * 1000;
  const { stdout } = await run(path.join(env.pgbin, 'pgbench'), args, {
    timeoutMs: limit, env: pgoptions ? { PGOPTIONS: pgoptions } : undefined,
  });
  const tps = Number(/tps = ([\d.]+) \(without initial connection time\)/.exec(stdout)?.[1]);
  const latencyMs = Number(/latency average = ([\d.]+) ms/.exec(stdout)?.[1]);
  const processed = Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1]);
  if (!Number.isFinite(tps)) throw new Error(`pgbench printed no tps:\n${stdout}`);
  // With several scripts, pgbench prints a block per script.
  const scriptLatencyMs = stdout.split(/^SQL script \d+: /m).slice(1)
    .map((block) => Number(/latency average = ([\d.]+) ms/.exec(block)?.[1]));
  const statements = [];
  if (perStatement) {
    const body = stdout.split(/statement latencies in milliseconds[^\n]*\n/)[1] ?? '';
    for (const line of body.split('\n')) {
      const m = /^\s+([\d.]+)\s+(?:\d+\s+)?(\S.*)$/.exec(line);
      if (m) statements.push({ ms: Number(m[1]), sql: m[2] });
    }
  }
  return { tps, latencyMs, scriptLatencyMs, processed, statements, stdout };
}
