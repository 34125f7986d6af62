// heaptrack files: `leakscope analyze` vs `heaptrack_print --print-leaks` on the same file of
// >= 10M events, in one run. The file comes from running test/programs/ht-leak.c under
// heaptrack with N churn iterations (an allocation and a free each) plus known leaks.
// Also times the heaptrack source alone (decompression + parsing into a counting sink).
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readInputs } from '../src/sources/open.js';

const N = Number(process.env.HT_ITER ?? 6_000_000);
const root = new URL('..', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'leakscope-ht-bench-'));

function timed(cmd: string, args: string[], opts: { cwd?: string } = {}): number {
  const t0 = performance.now();
  const r = spawnSync(cmd, args, { cwd: opts.cwd ?? root, encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, CI: '1' } });
  const s = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return s;
}

try {
  const exe = join(dir, 'ht-leak');
  execFileSync('gcc', ['-g', '-O2', '-o', exe, join(root, 'test/programs/ht-leak.c')]);
  execFileSync('heaptrack', [exe, String(N)], { cwd: dir, stdio: 'ignore' });
  const file = join(dir, readdirSync(dir).find((f) => /^heaptrack\.ht-leak\.\d+\.zst$/.test(f))!);
  let events = 0;
  let allocs = 0;
  const t0 = performance.now();
  await readInputs([file], { event(e) { events++; if (e.kind === 'alloc' || e.kind === 'free') allocs++; } });
  const tSource = (performance.now() - t0) / 1000;
  console.log(`heaptrack file: ${(statSync(file).size / 1e3).toFixed(0)} kB zstd, ${allocs.toLocaleString('en')} allocation events`);

  const runs = 3;
  const best = (f: () => number) => Math.min(...Array.from({ length: runs }, f));
  const tPrint = best(() => timed('heaptrack_print', ['-f', file, '--print-leaks', '1']));
  const tAnalyze = best(() => timed(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'analyze', file]));
  console.log(`heaptrack_print --print-leaks:  ${tPrint.toFixed(2)} s (best of ${runs})`);
  console.log(`leakscope analyze:              ${tAnalyze.toFixed(2)} s (best of ${runs})`);
  console.log(`heaptrack source alone:         ${tSource.toFixed(2)} s (${(allocs / tSource / 1e6).toFixed(1)}M events/s)`);
  console.log(`ratio analyze / heaptrack_print: ${(tAnalyze / tPrint).toFixed(2)} (${tAnalyze < tPrint ? 'faster' : 'slower'}; goal < 1)`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
