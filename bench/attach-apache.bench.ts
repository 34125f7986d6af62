// attach overhead on Debian's apache2 (prefork, 2 children, our config), keepalive requests for
// a 3-byte static file (`/`) under wrk on loopback: untraced, and traced by `leakscope attach
// --pid MASTER --children` with the default profile (apr: pool lifecycle probes, sizes read
// from the pools, and the discovery walk of the pools alive at attach). Traced runs sit between
// untraced runs and are compared to the mean of their two neighbours.
// Needs root. `npm run bench -- attach` (with attach.bench.ts) or `-- attach-apache`;
// ATTACH_BENCH_SECONDS per wrk run (default 3; --quick 1), APACHE_BENCH_ROUNDS (default 3;
// --quick 1). Writes bench/results/attach-apache.json.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApache } from '../test/attach/servers.js';
import { freePort } from '../test/support/ports.js';
import { root, size, startBench } from './support/record.js';

const bench = startBench('attach-apache');
const SECONDS = size('ATTACH_BENCH_SECONDS', 3, 1);
const ROUNDS = size('APACHE_BENCH_ROUNDS', 3, 1);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-apache-bench-'));

function wrk(port: number): number {
  const r = spawnSync('wrk', ['-t1', '-c2', `-d${SECONDS}s`, `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!rps || /Non-2xx|Socket errors/.test(r.stdout)) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return Number(rps[1]);
}

interface Note { calls: number; found: number; lost: number }
async function traced<T>(master: number, f: () => T): Promise<{ value: T; note: string; counts: Note }> {
  const trace = join(dir, 'bench.lstrace');
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'attach', '--pid', String(master), '--children', '-o', trace, '--no-report'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('leakscope: tracing')) resolve(); });
    child.once('exit', () => reject(new Error(`attach exited: ${err}`)));
  });
  await new Promise((r) => setTimeout(r, 1000)); // every child attached and walked
  const value = f();
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGINT');
  await done;
  rmSync(trace, { force: true });
  const found = /(\d+) pools alive before the trace found/.exec(err)?.[1] ?? '?';
  const lost = /(\d+) events were lost/.exec(err)?.[1];
  const calls = /\((\d+) calls/.exec(err)?.[1] ?? '?';
  return { value, note: `${calls} calls, ${found} pools found at attach${lost ? `, ${lost} LOST` : ''}`, counts: { calls: Number(calls), found: Number(found), lost: Number(lost ?? 0) } };
}

const port = await freePort();
const server = await startApache(join(dir, 'srv'), port, 'StartServers 2\nMinSpareServers 2\nMaxSpareServers 2\nMaxRequestWorkers 2\n');
try {
  const master = server.master.pid!;
  wrk(port); // warm-up
  const plain: number[] = [wrk(port)];
  const ratios: string[] = [];
  const rows: string[] = [];
  const rounds: { untracedBefore: number; untracedAfter: number; traced: number; ratio: number; calls: number; found: number; lost: number }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = await traced(master, () => wrk(port));
    plain.push(wrk(port));
    const base = (plain[i]! + plain[i + 1]!) / 2;
    ratios.push(`${((100 * t.value) / base).toFixed(1)}%`);
    rounds.push({ untracedBefore: plain[i]!, untracedAfter: plain[i + 1]!, traced: t.value, ratio: t.value / base, ...t.counts });
    rows.push(`  round ${i + 1}: untraced ${plain[i]!.toFixed(0)} / ${plain[i + 1]!.toFixed(0)} req/s, traced ${t.value.toFixed(0)} req/s = ${ratios[i]} (${t.note})`);
  }
  console.log(`apache2 prefork, 2 children, wrk -t1 -c2 -d${SECONDS}s keepalive GET /`);
  console.log(rows.join('\n'));
  console.log(`  default profile keeps ${ratios.join(', ')} of the untraced request rate`);
  bench.finish({ seconds: SECONDS, rounds });
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
