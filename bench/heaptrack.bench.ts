// heaptrack files: `leakscope analyze` vs `heaptrack_print --print-leaks` on the same file of
// >= 10M events, in one run. The file comes from running test/programs/ht-leak.c under
// heaptrack with N churn iterations (an allocation and a free each) plus known leaks.
// Also times the heaptrack source alone (decompression + parsing into a counting sink).
// leakscope runs as installed (the tsc output, `dist/cli/main.js`, built here into a temporary
// directory from the current sources) and, for reference, from the sources through tsx (which
// adds its TypeScript compilation to every run).
// A third, small file (HT_SMALL_ITER churn rounds, ~600k events) shows the other end: under a
// million events Node's start-up and warm-up dominate.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readInputs } from '../src/sources/open.js';
import { buildCli } from './support/cli.js';
import { root, size, startBench, type Figure } from './support/record.js';

const bench = startBench('heaptrack');
const N = size('HT_ITER', 6_000_000, 1_000_000);
const SMALL = size('HT_SMALL_ITER', 300_000, 300_000);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-ht-bench-'));

/** Wall and CPU (user+sys, from /usr/bin/time) seconds of one run. */
function timed(cmd: string, args: string[]): { wall: number; cpu: number } {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', 'CPU %U %S', cmd, ...args], { cwd: root, encoding: 'utf8', maxBuffer: 256 << 20, env: { ...process.env, CI: '1' } });
  const wall = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  const m = /CPU ([\d.]+) ([\d.]+)/.exec(r.stderr);
  return { wall, cpu: m ? Number(m[1]) + Number(m[2]) : NaN };
}

/** Records ht-leak under heaptrack in its own directory; returns the .zst path. */
function record(name: string, iterations: number, hold: number): string {
  const d = join(dir, name);
  mkdirSync(d);
  execFileSync(exe, [], { stdio: 'ignore' }); // warm the binary, not traced
  execFileSync('heaptrack', [exe, String(iterations), String(hold)], { cwd: d, stdio: 'ignore' });
  return join(d, readdirSync(d).find((f) => /^heaptrack\.ht-leak\.\d+\.zst$/.test(f))!);
}

const exe = join(dir, 'ht-leak');
try {
  execFileSync('gcc', ['-g', '-O2', '-o', exe, join(root, 'test/programs/ht-leak.c')]);
  const main = buildCli(dir);

  // Two workloads: every churn block freed at once (heaptrack's "temporary" allocations, the
  // case a heaptrack file is made of when a program churns), and each block held for 64 more
  // allocations (nothing temporary: every event goes through the live table); then a small
  // file of the first kind.
  const figures: Record<string, Figure> = {};
  for (const [key, label, iterations, hold] of [
    ['temporary', 'temporary (freed at once)', N, 0],
    ['held', 'held (freed 64 allocations later)', N, 64],
    ['small', 'small file, temporary', SMALL, 0],
  ] as const) {
    const file = record(key, iterations, hold);
    let allocs = 0;
    const t0 = performance.now();
    await readInputs([file], { event(e) { if (e.kind === 'alloc' || e.kind === 'free') allocs++; } });
    const tSource = (performance.now() - t0) / 1000;
    console.log(`\n== ${label}: ${(statSync(file).size / 1e3).toFixed(0)} kB zstd, ${allocs.toLocaleString('en')} allocation events`);

    const runs = 3;
    const best = (f: () => { wall: number; cpu: number }) => {
      const rs = Array.from({ length: runs }, f);
      return { wall: Math.min(...rs.map((x) => x.wall)), cpu: Math.min(...rs.map((x) => x.cpu)) };
    };
    const pr = best(() => timed('heaptrack_print', ['-f', file, '--print-leaks', '1']));
    const an = best(() => timed(process.execPath, [main, 'analyze', file]));
    const tsx = best(() => timed(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'analyze', file]));
    console.log(`heaptrack_print --print-leaks:  ${pr.wall.toFixed(2)} s wall, ${pr.cpu.toFixed(2)} s CPU (best of ${runs})`);
    console.log(`leakscope analyze (built):      ${an.wall.toFixed(2)} s wall, ${an.cpu.toFixed(2)} s CPU (best of ${runs})`);
    console.log(`leakscope analyze (tsx):        ${tsx.wall.toFixed(2)} s wall, ${tsx.cpu.toFixed(2)} s CPU (best of ${runs})`);
    console.log(`heaptrack source alone:         ${tSource.toFixed(2)} s wall (${(allocs / tSource / 1e6).toFixed(1)}M events/s, zstd decompression included)`);
    console.log(`ratio analyze (built) / heaptrack_print: ${(an.wall / pr.wall).toFixed(2)} wall, ${(an.cpu / pr.cpu).toFixed(2)} CPU (goal < 1)`);
    figures[key] = { events: allocs, zstdBytes: statSync(file).size, heaptrackPrint: pr, analyzeBuilt: an, analyzeTsx: tsx, sourceWallS: tSource };
  }
  bench.finish(figures);
  console.log(`load average:                   ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
