// LuaJIT allocator tracing overhead: Debian nginx + lua module serving a handler that leaks
// into a module-level table and builds short-lived tables, under wrk on loopback.
//
// In one run, per scenario: untraced and traced measurements alternate (U T U T ... U), so a
// traced figure always has untraced neighbours measured minutes apart at most. Reported: req/s
// ratio, the nginx workers' CPU time per request and per allocator call (much less sensitive
// to what else runs on a shared machine than req/s), the BPF programs' own run time per
// allocator call (kernel BPF run-time statistics), and the tracer process's CPU.
//
// A traced run that lost events (ring buffer full) or recorded fewer events than the probes
// saw calls is REJECTED: it is printed as such and kept out of the summary, so a fast but
// lossy run can never pass for a win. The process exits non-zero when a run was rejected.
//
// Variants (LSBENCH_VARIANTS, comma-separated; default `full`), to split the cost:
//   full    every allocation recorded with its Lua stack (what `attach` does)
//   nomcode the Lua stack walk without the search for the running trace's machine code
//   nowalk  every allocator call recorded, no Lua stack walk
//   bare    the same probes, whose programs return at once: the uprobe stops alone
//   old     `full` with another build of the tracer, LSBENCH_OLD_TRACER=path (to compare two
//           builds in one run; a build without BPF statistics gives no per-program split)
// LSBENCH_SECTIONS=1 also prints what the walk did and the time of each section of the
// allocation probe (timed in BPF; the timing itself costs ~0.2 us per allocation).
// LSBENCH_SECONDS (6; --quick 2), LSBENCH_ROUNDS (2; --quick 1), LSBENCH_GARBAGE (30,0): window,
// rounds, scenarios.
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { attachLuajit } from '../src/luajit/attach-luajit.js';
import { startLuaServer } from '../test/luajit/nginx-server.js';
import { size, startBench, type Figure } from './support/record.js';
import { track, trackPid } from './support/cost.js';

const bench = startBench('luajit');
const SECONDS = size('LSBENCH_SECONDS', 6, 2);
const ROUNDS = Math.max(1, size('LSBENCH_ROUNDS', 2, 1));
// Short-lived tables built per request: 30 makes an allocation-heavy handler (~60 allocator
// calls per request), 0 a light one (the leak's few allocations only).
const SCENARIOS = (process.env.LSBENCH_GARBAGE ?? '30,0').split(',').map(Number);
const VARIANTS = (process.env.LSBENCH_VARIANTS ?? 'full').split(',').filter(Boolean);
for (const v of VARIANTS) if (!['full', 'nomcode', 'nowalk', 'bare', 'old'].includes(v)) throw new Error(`unknown variant ${v}`);
const dir = mkdtempSync(join(tmpdir(), 'ls-luajit-bench-'));
const script = join(dir, 'labels.lua');
const pexec = promisify(execFile);

// A new label per request: the table really grows, as in the leak being hunted.
function writeScript(garbage: number, tag: string): void {
  writeFileSync(script, `local counter = 0
function setup(thread) counter = counter + 1; thread:set("id", counter) end
function request() n = (n or 0) + 1; return wrk.format(nil, "/leak?garbage=${garbage}&label=${tag}" .. id .. "_" .. n) end
`);
}

/** utime + stime of a process, in clock ticks (1/100 s). */
function cpuTicks(pid: number): number {
  try {
    const st = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

/** Our child processes called `name` (the tracer started by attachLuajit). */
function childrenNamed(name: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const st = readFileSync(`/proc/${d}/stat`, 'latin1');
      const comm = st.slice(st.indexOf('(') + 1, st.lastIndexOf(')'));
      const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === name && ppid === process.pid) out.push(Number(d));
    } catch { /* gone */ }
  }
  return out;
}

interface BpfProg { id: number; name?: string; run_cnt?: number; run_time_ns?: number }

async function bpfProgs(): Promise<BpfProg[]> {
  try {
    const { stdout } = await pexec('bpftool', ['prog', 'show', '-j'], { maxBuffer: 64 << 20 });
    return JSON.parse(stdout) as BpfProg[];
  } catch {
    return []; // bpftool missing: no split
  }
}

const LJ_PROGS = new Set(['lj_discover', 'lj_alloc_enter', 'lj_free_site', 'lj_malloc_site', 'lj_realloc_site', 'lj_alloc_exit']);

/**
 * Run count and run time of the tracer's BPF programs (statistics enabled by the tracer,
 * LSTRACE_LUAJIT_STATS): ours are those loaded after `afterId`, by name (this bpftool lists
 * no owner pids), while the bench lock keeps other LuaJIT tracers away.
 */
async function bpfProgStats(afterId: number): Promise<Map<string, { runs: number; ns: number }>> {
  const m = new Map<string, { runs: number; ns: number }>();
  for (const p of await bpfProgs()) {
    if (p.id <= afterId || !p.name || !LJ_PROGS.has(p.name)) continue;
    const cur = m.get(p.name) ?? { runs: 0, ns: 0 };
    m.set(p.name, { runs: cur.runs + (p.run_cnt ?? 0), ns: cur.ns + (p.run_time_ns ?? 0) });
  }
  return m;
}

/** Programs that run once per allocator call (fast tail-call sites, or the entry probe). */
const CALL_PROGS = ['lj_free_site', 'lj_malloc_site', 'lj_realloc_site', 'lj_alloc_enter'];

interface Run { rps: number; requests: number; workerCpuUs: number }

/**
 * Requests/s, and the nginx workers' CPU time per request: on a shared 2-core machine the
 * throughput depends on what else runs, the CPU a request costs much less so.
 */
async function measured(seconds: number, workers: number[]): Promise<Run> {
  const before = workers.reduce((a, p) => a + cpuTicks(p), 0);
  const r = await wrkRun(seconds);
  const ticks = workers.reduce((a, p) => a + cpuTicks(p), 0) - before;
  return { rps: r.rps, requests: r.requests, workerCpuUs: (ticks * 10_000) / Math.max(1, r.requests) };
}

// Asynchronous: the event loop must keep reading the tracer's output while wrk runs.
function wrkRun(seconds: number): Promise<{ rps: number; requests: number }> {
  return new Promise((resolve, reject) => {
    const c = track(spawn('wrk', ['-t2', '-c32', `-d${seconds}s`, '-s', script, `http://127.0.0.1:${server.port}/`]));
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.stderr.on('data', (d: Buffer) => (out += d.toString()));
    c.on('error', reject);
    c.on('close', () => {
      const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
      const n = /(\d+) requests in/.exec(out);
      if (m && n) resolve({ rps: Number(m[1]), requests: Number(n[1]) });
      else reject(new Error(`wrk printed no rate: ${out}`));
    });
  });
}

interface Traced extends Run {
  variant: string;
  tracerUs: number;
  /** This process's CPU per request: converting and writing the tracer's records. */
  consumerUs: number;
  /** Allocator calls per request in the measured window (BPF run counts). */
  callsPerReq: number;
  /** Of which frees (one uprobe stop each; an allocation takes two). */
  freesPerReq: number;
  /** BPF programs' run time per allocator call, ns, in the measured window; per program too. */
  bpfNsPerCall: number;
  bpfSplit: string;
  events: number;
  calls: number;
  lost: number;
  rejected: string;
}

async function tracedRun(variant: string, garbage: number, tag: string): Promise<Traced> {
  const out = join(dir, 'bench.lstrace');
  const ac = new AbortController();
  const lastId = Math.max(0, ...(await bpfProgs()).map((p) => p.id));
  // 1: BPF run-time statistics only; 2 (LSBENCH_SECTIONS=1): also time the probe's sections
  // (their own timing costs ~0.2 us per allocation: not for overhead figures).
  process.env.LSTRACE_LUAJIT_STATS = process.env.LSBENCH_SECTIONS === '1' ? '2' : '1';
  process.env.LSTRACE_LUAJIT_MODE = variant === 'old' ? 'full' : variant;
  const tracerPath = variant === 'old' ? process.env.LSBENCH_OLD_TRACER : undefined;
  if (variant === 'old' && !tracerPath) throw new Error('variant old needs LSBENCH_OLD_TRACER=path of another lstrace-luajit build');
  // A build that does not enable the BPF statistics itself: enabled here for its run (the
  // same global switch the tracer holds while it runs), restored after.
  const statsSysctl = '/proc/sys/kernel/bpf_stats_enabled';
  let statsWas = '';
  if (variant === 'old') {
    try {
      statsWas = readFileSync(statsSysctl, 'utf8').trim();
      writeFileSync(statsSysctl, '1');
    } catch { /* no split for it */ }
  }
  const traced = attachLuajit({ pids: server.workers, durationMs: (SECONDS + 60) * 1000, out, settleMs: 0, signal: ac.signal, tracer: tracerPath });
  delete process.env.LSTRACE_LUAJIT_MODE;
  await new Promise((r) => setTimeout(r, 1500)); // tracer loaded
  writeScript(garbage, `${tag}d`);
  const discoveryRequests = (await wrkRun(1)).requests; // discovery: the first Lua API call of each worker
  writeScript(garbage, tag);
  const tracer = childrenNamed('lstrace-luajit');
  const tracerBefore = tracer.reduce((a, p) => a + cpuTicks(p), 0);
  const statsBefore = await bpfProgStats(lastId);
  const nodeBefore = process.cpuUsage();
  const run = await measured(SECONDS, server.workers);
  const nodeCpu = process.cpuUsage(nodeBefore);
  const consumerUs = (nodeCpu.user + nodeCpu.system) / Math.max(1, run.requests);
  const statsAfter = await bpfProgStats(lastId);
  const tracerUs = ((tracer.reduce((a, p) => a + cpuTicks(p), 0) - tracerBefore) * 10_000) / Math.max(1, run.requests);
  ac.abort();
  const res = await traced;
  if (statsWas) writeFileSync(statsSysctl, statsWas);
  const delta = (name: string) => {
    const a = statsAfter.get(name);
    const b = statsBefore.get(name);
    return { runs: (a?.runs ?? 0) - (b?.runs ?? 0), ns: (a?.ns ?? 0) - (b?.ns ?? 0) };
  };
  const windowCalls = CALL_PROGS.reduce((s, n) => s + delta(n).runs, 0);
  const windowFrees = delta('lj_free_site').runs;
  const names = [...statsAfter.keys()].filter((n) => n.startsWith('lj_')).sort();
  const windowNs = names.reduce((s, n) => s + delta(n).ns, 0);
  const bpfSplit = names
    .map((n) => ({ n, ...delta(n) }))
    .filter((d) => d.runs > 0)
    .map((d) => `${d.n} ${d.runs} x ${(d.ns / d.runs).toFixed(0)} ns`)
    .join(', ');
  // Whole attach: what the tracer recorded vs the calls its probes saw (the tracer's own stats).
  const st = res.bpfStats ?? {};
  // (a build without its own statistics: the window's counts stand in for the whole attach's)
  const calls = res.bpfStats ? CALL_PROGS.reduce((s, n) => s + (st[n]?.runs ?? 0), 0) : 0;
  const [walks = 0, frames = 0, copied = 0, read = 0, mc32 = 0, mc128 = 0, mcNone = 0, nsHead = 0, nsPrep = 0, nsFrames = 0, nsMcode = 0, nsSubmit = 0, cacheHits = 0, cacheDrops = 0] = res.bpfCounters ?? [];
  const allocs = st.lj_alloc_exit?.runs ?? 0;
  const per = (ns: number, n: number) => (n ? (ns / n).toFixed(0) : '-');
  const walkInfo = walks
    ? `; walks ${walks} (${cacheHits} reused from the walk cache, ${cacheDrops} cache entries dropped by a free), ${(frames / Math.max(1, walks - cacheHits)).toFixed(1)} frames/walk done, Lua stack words copied ${copied} / read alone ${read}, machine code found in 32 words ${mc32}, further ${mc128}, not ${mcNone}; ` +
      `lj_alloc_exit sections (ns, timed in BPF): head ${per(nsHead, allocs)} per allocation, walk setup ${per(nsPrep, walks)} + frames ${per(nsFrames, walks)} per walk, ` +
      `machine code search ${per(nsMcode, mc32 + mc128 + mcNone)} per search, record ${per(nsSubmit, allocs)} per allocation`
    : '';
  let rejected = '';
  if (res.lost > 0) rejected = `${res.lost} events lost (ring buffer full)`;
  else if (variant !== 'bare' && calls > 0 && res.events < 0.99 * calls) rejected = `recorded ${res.events} events for ${calls} allocator calls`;
  else if (!windowCalls && variant !== 'old') rejected = 'no BPF run-time statistics (bpftool or kernel.bpf_stats_enabled unavailable)';
  // A build without statistics: calls per request from the events it recorded (the whole
  // attach, discovery run included: a slight overestimate).
  const callsPerReq = windowCalls ? windowCalls / Math.max(1, run.requests) : res.events / Math.max(1, run.requests + discoveryRequests);
  return {
    ...run,
    variant,
    tracerUs,
    consumerUs,
    callsPerReq,
    freesPerReq: windowFrees / Math.max(1, run.requests),
    bpfNsPerCall: windowNs / Math.max(1, windowCalls),
    bpfSplit: bpfSplit + walkInfo,
    events: res.events,
    calls,
    lost: res.lost,
    rejected,
  };
}

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);
let anyRejected = false;
const summaries: Figure[] = [];

const server = await startLuaServer(2);
trackPid(server.master);
try {
  for (const garbage of SCENARIOS) {
    writeScript(garbage, `g${garbage}w`);
    await wrkRun(2); // warm-up: module loaded, traces compiled
    console.log(`\nscenario garbage(${garbage}): 2 nginx workers, wrk -t2 -c32 -d${SECONDS}s, a new label (leaked table) per request; U/T alternated, ${ROUNDS} round(s) of [${VARIANTS.join(', ')}]`);
    const untraced: Run[] = [];
    const traced: Traced[] = [];
    let k = 0;
    const u = async () => {
      writeScript(garbage, `g${garbage}u${k++}_`);
      const r = await measured(SECONDS, server.workers);
      untraced.push(r);
      console.log(`  untraced          ${r.rps.toFixed(0).padStart(6)} req/s, workers ${f1(r.workerCpuUs)} us CPU/request`);
    };
    await u();
    for (let round = 0; round < ROUNDS; round++) {
      for (const v of VARIANTS) {
        const t = await tracedRun(v, garbage, `g${garbage}t${k++}_`);
        traced.push(t);
        const flag = t.rejected ? `  REJECTED: ${t.rejected}` : '';
        console.log(`  traced ${v.padEnd(7)}    ${t.rps.toFixed(0).padStart(6)} req/s, workers ${f1(t.workerCpuUs)} us CPU/request, ${f1(t.callsPerReq)} allocator calls/request (${f1(t.freesPerReq)} frees), BPF ${t.bpfNsPerCall.toFixed(0)} ns/call, tracer ${f1(t.tracerUs)} + converter ${f1(t.consumerUs)} us/request, events ${t.events}/${t.calls} calls, lost ${t.lost}${flag}`);
        console.log(`                    BPF: ${t.bpfSplit}`);
        if (t.rejected) anyRejected = true;
        await u();
      }
    }
    const baseRps = avg(untraced.map((r) => r.rps));
    const baseCpu = avg(untraced.map((r) => r.workerCpuUs));
    console.log(`  summary garbage(${garbage}) (untraced: mean of ${untraced.length} runs, ${baseRps.toFixed(0)} req/s, ${f1(baseCpu)} us CPU/request):`);
    for (const v of VARIANTS) {
      const ok = traced.filter((t) => t.variant === v && !t.rejected);
      const bad = traced.filter((t) => t.variant === v && t.rejected).length;
      if (!ok.length) {
        console.log(`    ${v}: every traced run REJECTED (lost or missing events): no figure`);
        continue;
      }
      const rps = avg(ok.map((t) => t.rps));
      const cpu = avg(ok.map((t) => t.workerCpuUs));
      const calls = avg(ok.map((t) => t.callsPerReq));
      const bpf = avg(ok.map((t) => t.bpfNsPerCall));
      const tracer = avg(ok.map((t) => t.tracerUs));
      const conv = avg(ok.map((t) => t.consumerUs));
      const perCallBase = baseCpu / Math.max(1e-9, calls);
      const perCallOver = (cpu - baseCpu) / Math.max(1e-9, calls);
      summaries.push({ garbage, variant: v, runs: ok.length, rejected: bad, untracedRps: baseRps, rps, untracedWorkerUs: baseCpu, workerUs: cpu, callsPerRequest: calls, bpfNsPerCall: bpf, tracerUs: tracer, converterUs: conv, perCallOverUs: perCallOver });
      console.log(
        `    ${v}: req/s ratio ${(rps / baseRps).toFixed(3)} (slowdown ${f2(baseRps / rps)}x); worker CPU/request ${f1(baseCpu)} -> ${f1(cpu)} us (${f2(cpu / baseCpu)}x); ` +
          `${f1(calls)} allocator calls/request: untraced ${f2(perCallBase)} us of request CPU per call, traced +${f2(perCallOver)} us per call ` +
          `(of which BPF run time ${f2(bpf / 1000)} us); tracer ${f1(tracer)} + converter ${f1(conv)} us/request${bad ? `; ${bad} run(s) rejected` : ''}`,
      );
    }
  }
  bench.finish({ seconds: SECONDS, rounds: ROUNDS, summaries });
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}
if (anyRejected) {
  console.log('\nSOME TRACED RUNS WERE REJECTED (events lost or missing): their figures are not in the summaries.');
  process.exitCode = 1;
}
