// attach overhead: Debian nginx (a private copy, 1 worker, our config) under wrk on loopback.
// Requests/s while traced with `leakscope attach --exe` (default --allocator nginx, with
// --pool-allocs, and --allocator libc), as ratios to untraced runs measured in the same run;
// and the runtime of an unrelated malloc-heavy process beside a traced nginx (per-pid uprobes:
// it must not slow down). Needs root. `npm run bench -- attach`.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx } from '../test/attach/servers.js';

const root = new URL('..', import.meta.url).pathname;
const PORT = 18290;
const SECONDS = Number(process.env.ATTACH_BENCH_SECONDS ?? 8);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-attach-bench-'));

function wrk(): number {
  const r = spawnSync('wrk', ['-t1', '-c16', `-d${SECONDS}s`, `http://127.0.0.1:${PORT}/`], { encoding: 'utf8' });
  const m = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  if (!m) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  return Number(m[1]);
}

function mallocLoop(bin: string): number {
  const r = spawnSync(bin, ['20000000'], { encoding: 'utf8' });
  return Number(r.stdout.trim());
}

async function traced<T>(args: string[], work: () => T): Promise<{ result: T; calls: string }> {
  const trace = join(dir, 'bench.lstrace');
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/cli/main.ts'), 'attach', ...args, '-o', trace, '--no-report'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('leakscope: tracing')) resolve();
    });
    child.on('exit', () => reject(new Error(`attach exited: ${err}`)));
  });
  await new Promise((r) => setTimeout(r, 500)); // every process attached
  const result = work();
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGINT');
  await done;
  const calls = /\((\d+) calls/.exec(err)?.[1] ?? '?';
  rmSync(trace, { force: true });
  return { result, calls };
}

const server = await startNginx(dir, PORT, 1);
const cc = spawnSync('cc', ['-O2', '-o', join(dir, 'att-mallocloop'), join(root, 'test/programs/att-mallocloop.c')]);
if (cc.status !== 0) throw new Error(String(cc.stderr));
const loop = join(dir, 'att-mallocloop');
try {
  wrk(); // warm-up
  // the machine is shared: each traced run sits between two untraced runs and is compared to
  // their mean, so drifting load hits both sides
  const configs: [string, string[]][] = [
    ['--allocator nginx (default)', ['--allocator', 'nginx']],
    ['--allocator nginx --pool-allocs', ['--allocator', 'nginx', '--pool-allocs']],
    ['--allocator libc', ['--allocator', 'libc']],
  ];
  console.log(`nginx 1 worker, wrk -t1 -c16 -d${SECONDS}s on loopback; load average ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  let before = wrk();
  for (const [name, args] of configs) {
    const t = await traced(['--exe', server.exe, ...args], wrk);
    const after = wrk();
    const base = (before + after) / 2;
    console.log(`  ${name.padEnd(34)} ${t.result.toFixed(0)} req/s vs ${before.toFixed(0)}/${after.toFixed(0)} untraced = ${((t.result / base) * 100).toFixed(1)}% (${t.calls} calls traced)`);
    before = after;
  }
  const loopBase = mallocLoop(loop);
  const loopBeside = await traced(['--exe', server.exe, '--allocator', 'libc'], () => mallocLoop(loop));
  const loopBase2 = mallocLoop(loop);
  const lb = (loopBase + loopBase2) / 2;
  console.log(`unrelated malloc loop (20M malloc/free) beside nginx traced with --allocator libc: ${loopBeside.result.toFixed(3)} s vs ${loopBase.toFixed(3)}/${loopBase2.toFixed(3)} s untraced = ${(loopBeside.result / lb).toFixed(3)}x`);
  console.log(`load average at the end ${loadavg().map((x) => x.toFixed(1)).join(' ')}`);
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
