// Cost of one ls_unwind at a uprobe-like stop, with the per-pid cache (module reports, CFI
// kept) against the baseline of a fresh Dwfl per sample (perf's util/unwind-libdw.c way), on
// two stacks: unw-deep at unw_leaf (17 frames deep, -O2 -fomit-frame-pointer, through libc's
// qsort), and Debian's stripped nginx (a private copy, 1 worker) at ngx_create_pool, where an
// attach probe fires for every connection.
import { buildNative, buildProgram, root, startProgram, stop, tempDir, unwindTool } from '../test/unwind/harness.js';
import { startNginx } from '../test/attach/servers.js';
import { freePort } from '../test/support/ports.js';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { startBench, size } from './support/record.js';

const bench = startBench('unwind');
const REPEAT = size('LSBENCH_UNWIND_REPEAT', 20000, 2000);
const FRESH_REPEAT = size('LSBENCH_UNWIND_FRESH', 200, 50);

// gdb holds the process at the breakpoint while ls-unwind-test measures on that stop (its
// timings go to stderr). No separate debug files: gdb attaches faster and unwinds as we do.
function gdbArgs(pid: number, breakpoint: string, extra: string): string[] {
  return ['-batch', '-nx', '-iex', 'set debuginfod enabled off', '-iex', 'set debug-file-directory /nonexistent', '-p', String(pid), '-ex', `break ${breakpoint}`, '-ex', 'continue',
    '-ex', `eval "shell ${unwindTool} mem %d 0x%lx 0x%lx 0x%lx ${extra} 2>&1", ${pid}, $pc, $sp, $rbp`];
}

interface Timing { us: number; cold: number; frames: number }
function parse(s: string): Timing {
  const m = /us_per_unwind ([\d.]+) cold_us ([\d.]+) frames (\d+)/.exec(s);
  if (!m) throw new Error(`no timing in:\n${s}`);
  return { us: Number(m[1]), cold: Number(m[2]), frames: Number(m[3]) };
}

/** The nginx worker's parent is the master we started. */
function workerOf(master: number): number {
  const kids = readFileSync(`/proc/${master}/task/${master}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number);
  if (!kids.length) throw new Error('no nginx worker');
  return kids[0]!;
}

/** gdb at ngx_create_pool of the worker: requests are sent until the worker stops there. */
async function atNginxPool(worker: number, port: number, extra: string): Promise<string> {
  const gdb = spawn('gdb', gdbArgs(worker, '*ngx_create_pool', extra), { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  gdb.stdout.on('data', (d: Buffer) => (out += d.toString()));
  gdb.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<void>((r) => gdb.once('close', () => r()));
  let finished = false;
  void done.then(() => (finished = true));
  const timer = setTimeout(() => gdb.kill('SIGKILL'), 120_000);
  // A new connection creates a pool; until gdb has attached and set its breakpoint they pass.
  while (!finished) {
    spawn('curl', ['-s', '-o', '/dev/null', '--max-time', '2', `http://127.0.0.1:${port}/`], { stdio: 'ignore' });
    await Promise.race([done, new Promise((r) => setTimeout(r, 300))]);
  }
  clearTimeout(timer);
  return out;
}

buildNative();
const dir = tempDir('ls-unw-bench-');
const prog = buildProgram('unw-deep', dir);
const child = await startProgram(prog);
const port = await freePort();
const nginx = await startNginx(dir, port, 1);
try {
  const run = (extra: string) => spawnSync('gdb', gdbArgs(child.pid!, '*unw_leaf', extra), { cwd: root }).stdout.toString();
  const cached = parse(run(`--repeat ${REPEAT}`));
  const fresh = parse(run(`--repeat ${FRESH_REPEAT} --fresh`));
  console.log(`unw-deep at unw_leaf, frames per stack: ${cached.frames}`);
  console.log(`  cached (per-pid Dwfl):       ${cached.us.toFixed(2)} us/unwind (first unwind of a pid ${cached.cold.toFixed(0)} us)`);
  console.log(`  baseline (Dwfl per sample):  ${fresh.us.toFixed(2)} us/unwind`);
  console.log(`  speed-up: ${(fresh.us / cached.us).toFixed(1)}x`);

  const worker = workerOf(nginx.master.pid!);
  const ncached = parse(await atNginxPool(worker, port, `--repeat ${REPEAT}`));
  const nfresh = parse(await atNginxPool(worker, port, `--repeat ${FRESH_REPEAT} --fresh`));
  console.log(`Debian nginx worker at ngx_create_pool (stripped, no frame pointers), frames per stack: ${ncached.frames}`);
  console.log(`  cached (per-pid Dwfl):       ${ncached.us.toFixed(2)} us/unwind (first unwind of a pid ${ncached.cold.toFixed(0)} us)`);
  console.log(`  baseline (Dwfl per sample):  ${nfresh.us.toFixed(2)} us/unwind`);
  console.log(`  speed-up: ${(nfresh.us / ncached.us).toFixed(1)}x`);
  bench.finish({
    repeat: REPEAT,
    unwDeep: { frames: cached.frames, warmUs: cached.us, coldUs: cached.cold, freshUs: fresh.us },
    nginx: { frames: ncached.frames, warmUs: ncached.us, coldUs: ncached.cold, freshUs: nfresh.us },
  });
} finally {
  await stop(child);
  await nginx.stop();
  rmSync(dir, { recursive: true, force: true });
}
