// The discovery walk's cost (attach finding the pools alive before the trace): a process holding
// POOL_BENCH_N live APR pools (default 10,000; test/programs/apr-many-pools.c, a tree like a
// busy server's) is walked from one of its pools, as attach does when a probe names a pool it
// does not know: up to APR's global pool, then down through every child and sibling link, each
// checked (pool-discovery.ts). Then every found pool is sized from its node ring (what attach
// does once per found pool, and every --pool-sample for every live pool). Reports time, reads
// (pread of /proc/PID/mem) and bytes read, over POOL_BENCH_RUNS runs (default 5; --quick: 1,000
// pools, 3 runs) in the machine's load; the target is not stopped while it is read.
// Needs root (reads another process's memory). `npm run bench -- pool-discovery`; writes
// bench/results/pool-discovery.json.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PoolDiscoverer } from '../src/attach/pool-discovery.js';
import { poolBytes } from '../src/attach/poolwalk.js';
import { ProcMem } from '../src/proc/memory.js';
import { loadProfile } from '../src/attach/profile.js';
import { root, size, startBench } from './support/record.js';
import { track } from './support/cost.js';

const bench = startBench('pool-discovery');
const N = size('POOL_BENCH_N', 10000, 1000);
const RUNS = size('POOL_BENCH_RUNS', 5, 3);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-pool-bench-'));
const exe = join(dir, 'apr-many-pools');
const cc = spawnSync('cc', ['-O2', '-I/usr/include/apr-1.0', '-o', exe, join(root, 'test/programs/apr-many-pools.c'), '-lapr-1'], { encoding: 'utf8' });
if (cc.status !== 0) throw new Error(`cc: ${cc.stderr}`);
const child = track(spawn(exe, [String(N)], { stdio: ['ignore', 'pipe', 'inherit'] }));
try {
  const leaf = await new Promise<number>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const m = /^(0x[0-9a-f]+) ready/m.exec(buf);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`apr-many-pools exited (${code})`)));
  });
  const apr = loadProfile('apr');
  const rows: { walkMs: number; found: number; reads: number; bytes: number; sizeMs: number; sizeReads: number; sizeBytes: number; total: number }[] = [];
  for (let i = 0; i < RUNS; i++) {
    const mem = new ProcMem(child.pid!);
    const d = new PoolDiscoverer(mem, apr.discover!);
    const found = d.from(leaf, { known: () => false, dead: () => false });
    const r0 = mem.reads;
    const b0 = mem.bytes;
    const t0 = process.hrtime.bigint();
    let total = 0;
    for (const f of found) total += poolBytes(mem, f.pool, apr.poolSize!.lists) ?? 0;
    const sizeMs = Number(process.hrtime.bigint() - t0) / 1e6;
    rows.push({ walkMs: d.cost.ms, found: found.length, reads: d.cost.reads, bytes: d.cost.bytes, sizeMs, sizeReads: mem.reads - r0, sizeBytes: mem.bytes - b0, total });
    mem.close();
  }
  const med = (k: keyof (typeof rows)[0]) => [...rows.map((r) => r[k])].sort((a, b) => a - b)[Math.floor(rows.length / 2)]!;
  const range = (k: keyof (typeof rows)[0]) => `${Math.min(...rows.map((r) => r[k])).toFixed(1)}-${Math.max(...rows.map((r) => r[k])).toFixed(1)}`;
  console.log(`discovery walk of ${N} live APR pools (${RUNS} runs)`);
  console.log(`  walk from one pool:  ${med('found')} pools found, ${med('walkMs').toFixed(1)} ms median (${range('walkMs')}), ${med('reads')} reads, ${med('bytes')} bytes read`);
  console.log(`  sizing every pool:   ${med('sizeMs').toFixed(1)} ms median (${range('sizeMs')}), ${med('sizeReads')} reads, ${med('sizeBytes')} bytes read, ${(med('total') / 1048576).toFixed(1)} MiB held`);
  console.log(`  whole first look:    ${(med('walkMs') + med('sizeMs')).toFixed(1)} ms, ${med('bytes') + med('sizeBytes')} bytes read (${((med('bytes') + med('sizeBytes')) / med('found')).toFixed(0)} per pool)`);
  bench.finish({ pools: N, runs: rows });
  if (med('found') < N) {
    console.error(`leakscope bench: the walk found ${med('found')} of ${N} pools`);
    process.exitCode = 1;
  }
} finally {
  child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
