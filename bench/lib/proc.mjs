// Child processes of the harness: every one has a time limit, and whatever
// is still running when the harness exits is ended (bench/run.sh ends the
// rest by pid).
import { spawn, spawnSync } from 'node:child_process';

import { procStat } from '../../test/lib/proc.mjs';

const running = new Set();

function endAll() {
  for (const child of running) {
    try { child.kill('SIGTERM'); } catch { /* already gone */ }
  }
}
process.on('exit', endAll);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => { endAll(); process.exit(130); });
}

// Runs a command to completion (or kills it after timeoutMs); resolves with
// its exit code and output. Rejects when it fails and allowFailure is unset.
export function run(cmd, args, { timeoutMs = 600_000, env, allowFailure = false, input } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: env ? { ...process.env, ...env } : process.env });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    if (input !== undefined) child.stdin.end(input); else child.stdin.end();
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); running.delete(child); reject(err); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      const result = { code, signal, stdout, stderr };
      if ((code !== 0 || signal) && !allowFailure) {
        const err = new Error(`${cmd} ${args.join(' ')} failed (${signal ?? code}): ${stderr.trim().slice(-2000)}`);
        err.result = result;
        reject(err);
      } else resolve(result);
    });
  });
}

// Starts a long-running child; the caller stops it with stop(). It is
// killed after maxMs in any case.
export function start(cmd, args, { env, maxMs = 3_600_000, onLine } = {}) {
  const child = spawn(cmd, args, { env: env ? { ...process.env, ...env } : process.env,
                                   stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let stderr = '';
  let buffered = '';
  child.stdout.on('data', (d) => {
    buffered += d;
    let nl;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (onLine) onLine(line);
    }
  });
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-4000); });
  const timer = setTimeout(() => child.kill('SIGKILL'), maxMs);
  const exited = new Promise((resolve) => child.on('close', (code, signal) => {
    clearTimeout(timer);
    running.delete(child);
    resolve({ code, signal });
  }));
  return {
    child,
    exited,
    stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
  };
}

// Clock ticks per second of /proc/<pid>/stat's times.
const clkTck = Number(spawnSync('getconf', ['CLK_TCK']).stdout?.toString().trim()) || 100;

// Ticks of CPU (user + system) each process has used so far (NaN: gone).
export function cpuTicks(pids) {
  const out = {};
  for (const pid of pids) {
    const fields = procStat(pid);
    out[pid] = fields ? Number(fields[11]) + Number(fields[12]) : NaN;  // utime, stime (fields 14, 15)
  }
  return out;
}

// CPU seconds the processes have used so far, together.
export function cpuSeconds(pids) {
  return Object.values(cpuTicks(pids)).reduce((sum, t) => sum + t, 0) / clkTck;
}
