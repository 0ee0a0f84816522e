// The sink's own ceiling: wrk against the same nginx (GET, keep-alive,
// 64 connections), so that the drain rate can be read against what the
// receiver could take at most on this machine.
import { env, scale } from './lib/env.mjs';
import { run } from './lib/proc.mjs';

export async function measureSinkBaseline() {
  const { stdout } = await run('wrk', ['-t2', '-c64', `-d${scale.wrkSeconds}s`, `http://127.0.0.1:${env.sinkPort}/`],
                               { timeoutMs: (scale.wrkSeconds + 30) * 1000 });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  if (!Number.isFinite(rps)) throw new Error(`wrk printed no rate:\n${stdout}`);
  return { requestsPerSecond: rps };
}
