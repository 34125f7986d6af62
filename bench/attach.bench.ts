// attach overhead: Debian nginx (a private copy, 1 worker, our config) under wrk on loopback,
// untraced, traced by `leakscope attach --exe` (--allocator nginx by default, i.e. --mode auto;
// the probes with --mode events, with --pool-allocs, --allocator libc) and by the peer (a bpftrace 0.17 pool-leak script: ngx_create_pool entry +
// return probe with ustack, ngx_destroy_pool, keyed by pool address), on three workloads:
// `return 200` with keepalive, a 4 KiB static file with keepalive, and the same file with a new
// connection per request (a second pool per request). The floor: bpftrace with the same probes
// and empty programs (3 per keepalive request, and 1), i.e. the kernel's uprobe cost alone, and
// ours with empty programs (LEAKSCOPE_BPF_BARE) for libc and --pool-allocs.
// Runs alternate: every tracer's runs sit between two untraced runs of the same workloads and
// are compared to their mean.
// Besides req/s: CPU per request of the nginx worker (utime+stime; uprobe traps and BPF programs
// run there), of wrk, and of the tracer's own processes (loader + node, or bpftrace), and the
// machine's idle share (2 cores: a busy tracer takes its CPU from wrk or nginx).
// The default (auto) decides over its first 5 s under wrk's `return 200` load (that run is
// recorded as workload `window`); the workloads that follow run in the mode it chose.
// Then an unrelated malloc-heavy process beside a traced nginx (per-pid uprobes: no slowdown).
// Needs root. `npm run bench -- attach`; ATTACH_BENCH_SECONDS per wrk run (default 3, --quick 1);
// ATTACH_BENCH_TRACERS=auto,events,pool-allocs,libc,bpftrace,floor3,floor1,libc-floor,pool-allocs-floor,
// libc-entry,pool-allocs-entry
// and ATTACH_BENCH_WORKLOADS=ka,static,close
// pick a subset.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { buildCli } from './support/cli.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startNginx } from '../test/attach/servers.js';
import { freePort } from '../test/support/ports.js';
import { root, size, startBench, type Figure } from './support/record.js';
import { atExit, childrenOf, cpuUs, run, track, treeOf } from './support/cost.js';
import { DECISION_WINDOW_MS } from '../src/attach/auto-mode.js';

const bench = startBench('attach');
const PORT = await freePort();
const SECONDS = size('ATTACH_BENCH_SECONDS', 3, 1);
const dir = mkdtempSync(join(tmpdir(), 'leakscope-attach-bench-'));
// The CLI as users run it (tsc output): under tsx, its loader thread's compiling was counted as
// tracer CPU per request.
const cli = buildCli(dir);

interface Workload { key: string; name: string; path: string; close: boolean }
const WORKLOADS: Workload[] = [
  { key: 'ka', name: 'return 200, keepalive', path: '/', close: false },
  { key: 'static', name: '4 KiB file, keepalive', path: '/static/index.html', close: false },
  { key: 'close', name: '4 KiB file, Connection: close', path: '/static/index.html', close: true },
];

function treeCpuUs(pid: number): number {
  return treeOf(pid).reduce((a, p) => a + cpuUs(p), 0);
}

/** Busy and total jiffies of the whole machine. */
function machine(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

interface Run { rps: number; requests: number; workerUs: number; wrkUs: number; tracerUs: number; idle: number }

/** One wrk run; wrk's own CPU comes from the shell's `times` (its children's user and system). */
async function wrk(w: Workload, worker: number, tracerPid?: number, seconds = SECONDS): Promise<Run> {
  const args = ['-t1', '-c16', `-d${seconds}s`, ...(w.close ? ['-H', 'Connection: close'] : []), `http://127.0.0.1:${PORT}${w.path}`];
  const w0 = cpuUs(worker);
  const t0 = tracerPid ? treeCpuUs(tracerPid) : 0;
  const m0 = machine();
  // the shell's `times`: wrk's CPU; a kill of the bench stops wrk too (the trap)
  const r = await run('bash', ['-c', 'trap \'kill $p 2>/dev/null\' TERM INT; wrk "$@" & p=$!; wait $p; times', 'wrk', ...args]);
  const m1 = machine();
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(r.stdout);
  const reqs = /(\d+) requests in/.exec(r.stdout);
  const times = r.stdout.trim().split('\n').pop()!.match(/(\d+)m([\d.]+)s/g) ?? [];
  if (!rps || !reqs || times.length < 2) throw new Error(`wrk: ${r.stdout}${r.stderr}`);
  const sec = (t: string) => { const m = /(\d+)m([\d.]+)s/.exec(t)!; return Number(m[1]) * 60 + Number(m[2]); };
  const requests = Number(reqs[1]);
  return {
    rps: Number(rps[1]),
    requests,
    workerUs: (cpuUs(worker) - w0) / requests,
    wrkUs: ((sec(times[0]!) + sec(times[1]!)) * 1e6) / requests,
    tracerUs: tracerPid ? (treeCpuUs(tracerPid) - t0) / requests : 0,
    idle: 1 - (m1.busy - m0.busy) / (m1.total - m0.total),
  };
}

interface Tracer { key: string; name: string; start(exe: string): Promise<{ pid: number; stop(): Promise<string>; said?(): string }> }

/** Starts `child`, resolves once `ready` matched its stderr (or stdout). */
async function started(child: ChildProcess, ready: RegExp): Promise<() => string> {
  let out = '';
  await new Promise<void>((resolve, reject) => {
    const on = (d: Buffer) => { out += d.toString(); if (ready.test(out)) resolve(); };
    child.stderr?.on('data', on);
    child.stdout?.on('data', on);
    child.on('exit', () => reject(new Error(`tracer exited: ${out}`)));
  });
  await new Promise((r) => setTimeout(r, 500)); // every process attached
  return () => out;
}

/** SIGINT; for bpftrace (`repeat`), again every second until it ended: bpftrace 0.17 misses one
 *  that lands just before it blocks in epoll_wait, and then waits for an event that never comes
 *  (a loaded run hung here for 40 minutes). Our CLI ends at the first, and a second one would
 *  cut its finish short. SIGKILL after 60 s, said in the output. */
async function stopChild(child: ChildProcess, text: () => string, repeat = false): Promise<string> {
  const done = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGINT');
  const nudge = repeat ? setInterval(() => child.kill('SIGINT'), 1000) : undefined;
  let killed = false;
  const killer = setTimeout(() => { killed = true; child.kill('SIGKILL'); }, 60_000);
  await done;
  if (nudge) clearInterval(nudge);
  clearTimeout(killer);
  return killed ? `${text()}\n(killed: no exit 60 s after SIGINT)` : text();
}

function ours(key: string, name: string, args: string[], env: Record<string, string> = {}): Tracer {
  return {
    key, name,
    async start(exe) {
      const trace = join(dir, 'bench.lstrace');
      const child = track(spawn(process.execPath, [cli, 'attach', '--exe', exe, ...args, '-o', trace, '--no-report'], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } }));
      const text = await started(child, /leakscope: tracing/);
      return {
        pid: child.pid!,
        said: text,
        async stop() {
          const out = await stopChild(child, text);
          rmSync(trace, { force: true });
          const lost = /(\d+) events were lost/.exec(out)?.[1];
          return `${/\((\d+) calls/.exec(out)?.[1] ?? '?'} calls${lost ? `, ${lost} LOST` : ''}`;
        },
      };
    },
  };
}

/** What bpftrace users run to find leaked nginx pools: live pools keyed by address, with the
 *  creating stack and size. The executable is positional argument $1: never part of the text. */
const BPFTRACE_POOLS = `uprobe:$1:ngx_create_pool { @size[tid] = arg0; }
uretprobe:$1:ngx_create_pool /@size[tid]/ { @pool_size[retval] = @size[tid]; @pool_stack[retval] = ustack; @pool_t[retval] = nsecs; delete(@size[tid]); @created = count(); }
uprobe:$1:ngx_destroy_pool { delete(@pool_size[arg0]); delete(@pool_stack[arg0]); delete(@pool_t[arg0]); @destroyed = count(); }
END { print(@created); print(@destroyed); clear(@size); clear(@pool_size); clear(@pool_stack); clear(@pool_t); }
`;

const bpftrace: Tracer = {
  key: 'bpftrace', name: 'peer: bpftrace 0.17 pool script',
  async start(exe) {
    const script = join(dir, 'pools.bt');
    writeFileSync(script, BPFTRACE_POOLS);
    const child = track(spawn('bpftrace', [script, exe], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, BPFTRACE_MAP_KEYS_MAX: '65536' } }));
    const text = await started(child, /Attaching \d+ probes?/);
    return {
      pid: child.pid!,
      async stop() {
        const out = await stopChild(child, text, true);
        return `${/@created: (\d+)/.exec(out)?.[1] ?? '?'} pools created`;
      },
    };
  },
};

/** The floor of any uprobe tracer of pool lifecycles: the same probes, programs that do
 *  nothing. What is left is the kernel's cost of stopping the worker at each probe. */
function floor(key: string, name: string, probes: string[]): Tracer {
  return {
    key, name,
    async start(exe) {
      const script = join(dir, `${key}.bt`);
      writeFileSync(script, probes.map((p) => `${p} {}`).join('\n'));
      const child = track(spawn('bpftrace', [script, exe], { stdio: ['ignore', 'pipe', 'pipe'] }));
      const text = await started(child, /Attaching \d+ probes?/);
      return { pid: child.pid!, async stop() { await stopChild(child, text, true); return `${probes.length} empty probe${probes.length > 1 ? 's' : ''}`; } };
    },
  };
}

const TRACERS: Tracer[] = [
  ours('auto', 'leakscope -a nginx (the default: --mode auto)', ['--allocator', 'nginx']),
  ours('events', 'leakscope -a nginx --mode events (the probes)', ['--allocator', 'nginx', '--mode', 'events']),
  ours('pool-allocs', 'leakscope -a nginx --pool-allocs', ['--allocator', 'nginx', '--pool-allocs']),
  ours('libc', 'leakscope -a libc', ['--allocator', 'libc']),
  bpftrace,
  floor('floor3', 'floor: the 3 probes, empty (bpftrace)', ['uprobe:$1:ngx_create_pool', 'uretprobe:$1:ngx_create_pool', 'uprobe:$1:ngx_destroy_pool']),
  floor('floor1', 'floor: 1 probe, empty (bpftrace)', ['uprobe:$1:ngx_destroy_pool']),
  // Our own probes with programs that return at once (LEAKSCOPE_BPF_BARE): the floor of the
  // modes bpftrace 0.17 cannot attach per process (libc) or that have many probes.
  ours('libc-floor', 'floor: leakscope -a libc, empty programs', ['--allocator', 'libc'], { LEAKSCOPE_BPF_BARE: '1' }),
  // Every probe at the function's first byte, as before probe points moved past flag-setting
  // instructions (glibc's free, nginx's ngx_palloc/ngx_pnalloc single-stepped there).
  ours('libc-entry', 'leakscope -a libc, probes at entry', ['--allocator', 'libc'], { LEAKSCOPE_PROBE_AT_ENTRY: '1' }),
  ours('pool-allocs-entry', 'leakscope -a nginx --pool-allocs, probes at entry', ['--allocator', 'nginx', '--pool-allocs'], { LEAKSCOPE_PROBE_AT_ENTRY: '1' }),
  ours('pool-allocs-floor', 'floor: leakscope -a nginx --pool-allocs, empty programs', ['--allocator', 'nginx', '--pool-allocs'], { LEAKSCOPE_BPF_BARE: '1' }),
];

function pick<T extends { key: string }>(all: T[], env: string | undefined): T[] {
  if (!env) return all;
  const want = env.split(',');
  return all.filter((x) => want.includes(x.key));
}

/** malloc/free rounds of the unrelated loop: ~0.9 s here, long enough that a scheduler hiccup
 *  is not a slowdown (at 20M, 0.17 s, one run read 1.07x). */
const LOOP_ROUNDS = 100_000_000;
const LOOP_RUNS = 3;

/** The loop's seconds, LOOP_RUNS times. */
async function mallocLoop(bin: string): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < LOOP_RUNS; i++) out.push(Number((await run(bin, [String(LOOP_ROUNDS)])).stdout.trim()));
  return out;
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

const f1 = (x: number) => x.toFixed(1);
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');
const server = await startNginx(dir, PORT, 1);
track(server.master);
atExit(() => rmSync(dir, { recursive: true, force: true }));
const cc = spawnSync('cc', ['-O2', '-o', join(dir, 'att-mallocloop'), join(root, 'test/programs/att-mallocloop.c')]);
if (cc.status !== 0) throw new Error(String(cc.stderr));
const loop = join(dir, 'att-mallocloop');
try {
  await new Promise((r) => setTimeout(r, 300));
  const worker = childrenOf(server.master.pid!)[0];
  if (!worker) throw new Error('no nginx worker');
  const workloads = pick(WORKLOADS, process.env.ATTACH_BENCH_WORKLOADS);
  const tracers = pick(TRACERS, process.env.ATTACH_BENCH_TRACERS);
  console.log(`nginx 1 worker, wrk -t1 -c16 -d${SECONDS}s on loopback; load average ${load()}`);
  const line = (label: string, r: Run, extra = '') =>
    `    ${label.padEnd(36)} ${r.rps.toFixed(0).padStart(7)} req/s  nginx ${f1(r.workerUs).padStart(5)} µs/req  wrk ${f1(r.wrkUs).padStart(5)}  tracer ${f1(r.tracerUs).padStart(5)}  idle ${(r.idle * 100).toFixed(0).padStart(2)}%${extra}`;
  for (const w of workloads) await wrk(w, worker); // warm-up
  const untraced = async (): Promise<Run[]> => { const out: Run[] = []; for (const w of workloads) out.push(await wrk(w, worker)); return out; };
  let before = await untraced();
  const rows: string[] = [];
  const runs: Figure[] = [];
  const show = (runs: Run[]) => runs.forEach((r, i) => console.log(line(`untraced (${workloads[i]!.key})`, r)));
  show(before);
  for (const t of tracers) {
    const h = await t.start(server.exe);
    let autoMode = '';
    if (t.key === 'auto') {
      // the decision window under load (`return 200`, the first workload's baseline)
      const ka = WORKLOADS[0]!;
      const r = await wrk(ka, worker, h.pid, DECISION_WINDOW_MS / 1000);
      const said = h.said?.() ?? '';
      autoMode = /switched to walk mode/.test(said) ? 'walk' : /the probes stay/.test(said) ? 'events' : 'undecided';
      const base = before[workloads.indexOf(ka)]?.rps ?? NaN;
      console.log(line('auto (its decision window, ka)', r, ` = ${((r.rps / base) * 100).toFixed(1)}% of the untraced run before; ended in ${autoMode} mode`));
      console.log(`    ${said.split('\n').find((l) => /^leakscope: (warning: )?auto mode: /.test(l)) ?? '(no auto mode line)'}`);
      runs.push({ tracer: t.key, workload: 'window', rps: r.rps, untracedRps: [base], ratio: r.rps / base, mode: autoMode, seconds: DECISION_WINDOW_MS / 1000, workerUs: r.workerUs, tracerUs: r.tracerUs, wrkUs: r.wrkUs, idle: r.idle });
    }
    const traced: Run[] = [];
    for (const w of workloads) traced.push(await wrk(w, worker, h.pid));
    const what = await h.stop();
    const after = await untraced();
    traced.forEach((r, i) => {
      const b = before[i]!;
      const a = after[i]!;
      const w = workloads[i]!;
      const base = (b.rps + a.rps) / 2;
      const baseUs = (b.workerUs + a.workerUs) / 2;
      const ratio = ` = ${((r.rps / base) * 100).toFixed(1)}% of ${base.toFixed(0)}`;
      console.log(line(`${t.key} (${w.key})`, r, ratio));
      runs.push({ tracer: t.key, workload: w.key, rps: r.rps, untracedRps: [b.rps, a.rps], ratio: r.rps / base, workerUsUntraced: baseUs, workerUs: r.workerUs, tracerUs: r.tracerUs, wrkUs: r.wrkUs, idle: r.idle, ...(autoMode ? { mode: autoMode } : {}) });
      rows.push(`| ${w.name} | ${t.name} | ${r.rps.toFixed(0)} | ${b.rps.toFixed(0)} / ${a.rps.toFixed(0)} | ${((r.rps / base) * 100).toFixed(1)}% | ${f1(baseUs)} → ${f1(r.workerUs)} | ${f1(r.tracerUs)} | ${f1(r.wrkUs)} | ${(r.idle * 100).toFixed(0)}% |`);
    });
    console.log(`    (${t.key}: ${what}; load average ${load()})`);
    show(after);
    before = after;
  }
  console.log('\n| workload | tracer | req/s | untraced before / after | ratio | nginx µs/req (untraced → traced) | tracer µs/req | wrk µs/req | idle |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(r);
  const figures: Record<string, Figure> = { seconds: SECONDS, runs };
  if (!process.env.ATTACH_BENCH_NO_LOOP) {
    // medians of 3 runs each, untraced before and after the traced ones
    const base1 = await mallocLoop(loop);
    const h = await ours('libc', '', ['--allocator', 'libc']).start(server.exe);
    const besideRuns = await mallocLoop(loop);
    await h.stop();
    const base2 = await mallocLoop(loop);
    const [loopBase, beside, loopBase2] = [median(base1), median(besideRuns), median(base2)];
    const secs = (xs: number[]) => xs.map((x) => x.toFixed(3)).join(' ');
    console.log(`\nunrelated malloc loop (${LOOP_ROUNDS / 1e6}M malloc/free, medians of ${LOOP_RUNS} runs) beside nginx traced with --allocator libc: ${beside.toFixed(3)} s (${secs(besideRuns)}) vs ${loopBase.toFixed(3)} (${secs(base1)}) / ${loopBase2.toFixed(3)} (${secs(base2)}) s untraced = ${(beside / ((loopBase + loopBase2) / 2)).toFixed(3)}x`);
    figures.unrelated = { rounds: LOOP_ROUNDS, besideS: beside, untracedS: [loopBase, loopBase2], runs: { beside: besideRuns, before: base1, after: base2 }, ratio: beside / ((loopBase + loopBase2) / 2) };
  }
  bench.finish(figures);
  console.log(`load average at the end ${load()}`);
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
