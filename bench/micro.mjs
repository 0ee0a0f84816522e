// 7. Micro-benchmarks: the Google Benchmark binary of src/core
// (bench/micro/core_bench.cpp, CMake target micro_bench): ops/s per benchmark.
import fs from 'node:fs';
import path from 'node:path';
import { env, scale } from './lib/env.mjs';
import { run } from './lib/proc.mjs';

export async function measureMicro() {
  const binary = path.join(env.root, 'build/unit/micro_bench');
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run without --no-build`);
  const { stdout } = await run(binary, ['--benchmark_format=json', `--benchmark_min_time=${scale.microMinTime}`],
                               { timeoutMs: 300_000 });
  const report = JSON.parse(stdout);
  const out = {};
  for (const b of report.benchmarks) {
    out[b.name] = { opsPerSecond: b.items_per_second, nsPerOp: b.real_time * ({ ns: 1, us: 1e3, ms: 1e6 }[b.time_unit] ?? 1) };
  }
  return out;
}
