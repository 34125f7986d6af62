// Runs every benchmark script bench/*.bench.ts (or those matching the arguments) in turn.
// Each writes its figures to bench/results/NAME.json; the table of BENCHMARKS.md is then
// regenerated from those files (bench/table.ts).
// `--quick`: every bench at a reduced size (minutes in all); the figures go to
// bench/results/quick/ and the table made of them is printed, BENCHMARKS.md is left alone.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const args = process.argv.slice(2);
const quick = args.includes('--quick');
const filters = args.filter((a) => a !== '--quick');
const files = readdirSync(join(root, 'bench'))
  .filter((f) => f.endsWith('.bench.ts') || f.endsWith('.bench.mjs'))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (files.length === 0) {
  console.error(`leakscope bench: no bench matches ${filters.join(' ')}; the benches are ${readdirSync(join(root, 'bench')).filter((f) => f.endsWith('.bench.ts')).join(', ')}`);
  process.exit(2);
}
const env = { ...process.env, ...(quick ? { LSBENCH_QUICK: '1' } : {}) };
let status = 0;
const failed = [];
// A signal to this runner goes to the bench running now (which stops what it started) and ends
// the run: no bench is left behind, nor the servers it started.
let current;
let stopped;
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    stopped = sig;
    if (current?.exitCode === null) current.kill(sig);
  });
}
for (const f of files) {
  if (stopped) break;
  console.log(`\n=== ${f}${quick ? ' (quick)' : ''}`);
  current = spawn(process.execPath, ['--import', 'tsx', '--expose-gc', join(root, 'bench', f)], { cwd: root, stdio: 'inherit', env });
  const r = await new Promise((resolve) => current.once('exit', (code, signal) => resolve({ status: signal ? 1 : code })));
  if (r.status !== 0) {
    status = 1;
    failed.push(f);
  }
}
if (stopped) {
  console.log(`\nstopped by ${stopped}${failed.length ? `; failed: ${failed.join(', ')}` : ''}`);
  process.exit(1);
}
console.log(quick ? '\n=== the table from these quick runs (bench/results/quick/)' : '\n=== BENCHMARKS.md');
const t = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'bench/table.ts'), quick ? '--print-quick' : '--write'], { cwd: root, stdio: 'inherit' });
if (t.status !== 0) status = 1;
if (failed.length) console.log(`\nfailed: ${failed.join(', ')}`);
process.exit(status);
