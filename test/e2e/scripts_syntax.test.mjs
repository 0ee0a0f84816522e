// bench/ and the examples are not run by the suite (bench/run.sh takes too
// long for CI, the examples' own scripts start servers): at least every
// JavaScript module of theirs must parse. A merge once left bench/report.mjs
// with an unclosed block, found only when the benchmarks were run.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');

function modules(dir) {
  const found = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...modules(full));
    else if (/\.m?js$/.test(entry.name)) found.push(full);
  }
  return found;
}

test('every module of bench/ and examples/ parses', () => {
  const files = [...modules(path.join(root, 'bench')), ...modules(path.join(root, 'examples'))];
  assert.ok(files.length > 20, `found ${files.length} modules`);
  const broken = [];
  for (const file of files) {
    try {
      execFileSync(process.execPath, ['--check', file], { stdio: 'pipe' });
    } catch (err) {
      broken.push(`${path.relative(root, file)}: ${String(err.stderr).split('\n').slice(0, 4).join(' ')}`);
    }
  }
  assert.deepEqual(broken, []);
});
