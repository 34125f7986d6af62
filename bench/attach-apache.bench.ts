// attach overhead on Debian's apache2 (prefork, 2 children, our config), keepalive requests for
// a 3-byte static file (`/`) under wrk on loopback: untraced, and traced by `leakscope attach
// --pid MASTER --children` with the default profile (apr: pool lifecycle probes, sizes read
// from the pools, and the discovery walk of the pools alive at attach). Traced runs sit between
// untraced runs and are compared to the mean of their two neighbours.
// Needs root. `npm run bench -- attach` (with attach.bench.ts) or `-- attach-apache`;
// ATTACH_BENCH_SECONDS per wrk run (default 3), APACHE_BENCH_ROUNDS (default 3).

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startApache } from '../test/attach/servers.js';
import { freePort } from '../test/support/ports.js';

const root = new URL('..', import.meta.url).pathname;
const SECONDS = Number(process.env.ATTACH_BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.APACHE_BENCH_ROUNDS ?? 3);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-apache-bench-'));

function wrk(port: number): number {
  const r = spawnSync('wrk', ['-t1', '-c2', `-d${SECONDS}s`, `http://127.0.0.1:${port}/`], { encoding: 'utf8' });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!rps || /Non-2xx|Socket errors/.test(r.stdout)) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return Number(rps[1]);
}

async function traced<T>(master: number, f: () => T): Promise<{ value: T; note: string }> {
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
  return { value, note: `${/\((\d+) calls/.exec(err)?.[1] ?? '?'} calls, ${found} pools found at attach${lost ? `, ${lost} LOST` : ''}` };
}

const port = await freePort();
const server = await startApache(join(dir, 'srv'), port, 'StartServers 2\nMinSpareServers 2\nMaxSpareServers 2\nMaxRequestWorkers 2\n');
try {
  const master = server.master.pid!;
  wrk(port); // warm-up
  const plain: number[] = [wrk(port)];
  const ratios: string[] = [];
  const rows: string[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t = await traced(master, () => wrk(port));
    plain.push(wrk(port));
    const base = (plain[i]! + plain[i + 1]!) / 2;
    ratios.push(`${((100 * t.value) / base).toFixed(1)}%`);
    rows.push(`  round ${i + 1}: untraced ${plain[i]!.toFixed(0)} / ${plain[i + 1]!.toFixed(0)} req/s, traced ${t.value.toFixed(0)} req/s = ${ratios[i]} (${t.note})`);
  }
  const commit = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8' }).stdout.trim();
  console.log(`apache2 prefork, 2 children, wrk -t1 -c2 -d${SECONDS}s keepalive GET / (commit ${commit}, load average ${loadavg().map((x) => x.toFixed(2)).join(' ')})`);
  console.log(rows.join('\n'));
  console.log(`  default profile keeps ${ratios.join(', ')} of the untraced request rate`);
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
