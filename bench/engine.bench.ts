// Engine throughput and memory: a synthetic trace of N events (default 10M) that ends with 1M
// live allocations, written with TraceWriter, then (1) the events straight into the Engine (no
// reader), (2) the reader alone into a no-op sink (the
// baseline), the floor (the reader into a no-op fast sink; the reader feeding only a live table),
// (3) read + Engine + analyze.
// Memory: the live table's own bytes per live allocation, against a Map of objects holding the
// same 1M allocations (the naive baseline, measured in the same run), and peak RSS.
// Two address patterns, each in its own child process (so each has its own peak RSS):
// - glibc: addresses as a real allocator gives them (dense: chunks carved from a top pointer,
//   a freed chunk reused LIFO by the next request of its size), the realistic figure;
// - spread: every allocation at a fresh address 4 KiB past the previous one, nothing reused,
//   neighbours never share a cache line (the figure before 2026-11-24), the worst case.
//   npm run bench -- engine        (--quick: LSBENCH_EVENTS=2000000 LSBENCH_LIVE=200000;
//                                   LSBENCH_PATTERN=glibc|spread for one pattern;
//                                   LSBENCH_KEEP=DIR keeps the traces there, for profiling)
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event, EventSink, FastEventSink, TraceMeta } from '../src/model/events.js';
import { TraceWriter } from '../src/trace/writer.js';
import { readTrace } from '../src/trace/reader.js';
import { Engine } from '../src/engine/engine.js';
import { LiveTable } from '../src/engine/live-table.js';
import { analyze } from '../src/analyses/analyze.js';
import { rng } from '../test/support/rng.js';
import { size, startBench, type Figure } from './support/record.js';

const N = size('LSBENCH_EVENTS', 10_000_000, 2_000_000);
const LIVE = size('LSBENCH_LIVE', 1_000_000, 200_000);
const PIDS = [2001, 2002];
const STACKS = 2000;
const meta: TraceMeta = { format: 1, clock: 'ns', source: 'bench', startWallMs: Date.now() };
const gc = (globalThis as { gc?: () => void }).gc;
type Pattern = 'glibc' | 'spread';
const PATTERN = process.env.LSBENCH_PATTERN as Pattern | undefined;

if (PATTERN === undefined) {
  // Parent: one child process per pattern; each hands its figures back in a file.
  const bench = startBench('engine');
  const tmp = mkdtempSync(join(tmpdir(), 'ls-engine-bench-figures-'));
  const figures: Record<string, Figure> = { events: N, live: LIVE };
  let status = 0;
  for (const pattern of ['glibc', 'spread'] as const) {
    console.log(`\n--- address pattern: ${pattern}${pattern === 'spread' ? ' (worst case)' : ' (realistic)'}`);
    const out = join(tmp, `${pattern}.json`);
    const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!], {
      stdio: 'inherit',
      env: { ...process.env, LSBENCH_PATTERN: pattern, LSBENCH_CHILD_OUT: out },
    });
    if (r.status !== 0) status = 1;
    else figures[pattern] = JSON.parse(readFileSync(out, 'utf8')) as Figure;
  }
  rmSync(tmp, { recursive: true, force: true });
  if (status === 0) bench.finish(figures);
  process.exit(status);
}
if (PATTERN !== 'glibc' && PATTERN !== 'spread') throw new Error(`LSBENCH_PATTERN: glibc or spread, not ${PATTERN}`);

/**
 * Where allocations go. glibc-like: per process, a top pointer carving chunks (request + 8
 * bytes of header, rounded up to 16, at least 32) and LIFO free lists by chunk size (tcache and
 * fastbins behave so; coalescing of larger chunks is not modelled). Spread: a fresh address
 * 4 KiB past the previous one for every allocation, nothing reused.
 */
class Addresses {
  private top = 0x5555_5556_0010;
  private readonly bins = new Map<number, number[]>();
  constructor(private readonly pattern: Pattern) {}
  take(size: number): number {
    if (this.pattern === 'spread') {
      const a = this.top;
      this.top += 4096;
      return a;
    }
    const chunk = chunkOf(size);
    const bin = this.bins.get(chunk);
    if (bin && bin.length) return bin.pop()!;
    const a = this.top;
    this.top += chunk;
    return a;
  }
  give(addr: number, size: number): void {
    if (this.pattern === 'spread') return;
    const chunk = chunkOf(size);
    let bin = this.bins.get(chunk);
    if (!bin) this.bins.set(chunk, (bin = []));
    bin.push(addr);
  }
}

function chunkOf(size: number): number {
  return Math.max(32, (size + 8 + 15) & ~15);
}

/**
 * N events: symbol definitions, then a server-like mix in which the live set climbs to LIVE
 * allocations by the end: allocs (with one of 2000 stacks, skewed: see hotStack), frees of recent allocations,
 * reallocs, per-request pools (create, 3 allocations, destroy), RSS samples.
 */
function generate(emit: (e: Event) => void): void {
  const rand = rng(7);
  let count = 0;
  for (const pid of PIDS) {
    emit({ kind: 'process', pid, t: 0, ppid: 1, command: 'bench-server', exe: '/usr/sbin/bench' }); count++;
    for (let f = 1; f <= 500; f++, count++) emit({ kind: 'frame', pid, t: 0, id: f, frame: { pc: 0x7f00_0000_0000 + f * 64, module: '/usr/sbin/bench', fn: `fn_${f}`, file: 'srv.c', line: f, inlined: false } });
    for (let s = 1; s <= STACKS; s++, count++) emit({ kind: 'stack', pid, t: 0, id: s, parent: s > 12 ? s - 12 : 0, frame: 1 + (s % 500) });
  }
  // Reused event objects: the engine keeps nothing of an event but its numbers and strings.
  const a = { kind: 'alloc', pid: 0, t: 0, tid: 0, addr: 0, size: 0, stack: 0 } as Extract<Event, { kind: 'alloc' }>;
  const f = { kind: 'free', pid: 0, t: 0, tid: 0, addr: 0 } as Extract<Event, { kind: 'free' }>;
  const re = { kind: 'realloc', pid: 0, t: 0, tid: 0, oldAddr: 0, addr: 0, size: 0, stack: 0 } as Extract<Event, { kind: 'realloc' }>;
  const pa = { kind: 'pool-alloc', pid: 0, t: 0, tid: 0, pool: 0, size: 0, addr: 0, stack: 0 } as Extract<Event, { kind: 'pool-alloc' }>;
  const rest = N - count;
  // Fraction of allocations never freed, so that the live set reaches LIVE before the end
  // (allocations are ~39% of the events once reallocs and pool events are counted).
  const allocShare = 0.45;
  const keep = Math.min(1, LIVE / (rest * 0.36));
  const recent = new Float64Array(4096);
  let recentN = 0;
  const recentPid = new Int32Array(4096);
  const recentSize = new Float64Array(4096);
  const heaps = new Map(PIDS.map((pid) => [pid, new Addresses(PATTERN!)]));
  // Pools are malloc'd too (an nginx request pool is a 1 KiB block from the heap).
  const poolHeaps = new Map(PIDS.map((pid) => [pid, new Addresses(PATTERN!)]));
  let t = 0;
  let live = 0;
  while (count < N) {
    const pid = PIDS[(rand() * 2) | 0]!;
    t += 100 + ((rand() * 1000) | 0);
    const r = rand();
    if (r < allocShare || recentN === 0) {
      a.pid = pid; a.t = t; a.tid = pid; a.size = 16 + ((rand() * rand() * 4096) | 0); a.addr = heaps.get(pid)!.take(a.size); a.stack = hotStack(rand);
      emit(a); count++;
      if (rand() < keep && live < LIVE) live++;
      else {
        // The ring keeps the last 4096 frees-to-be; one that falls off it stays live.
        recent[recentN & 4095] = a.addr; recentPid[recentN & 4095] = pid; recentSize[recentN & 4095] = a.size; recentN++;
      }
    } else if (r < 0.85) {
      if (recentN === 0) continue;
      recentN--;
      f.pid = recentPid[recentN & 4095]!; f.t = t; f.tid = f.pid; f.addr = recent[recentN & 4095]!;
      emit(f); count++;
      heaps.get(f.pid)!.give(f.addr, recentSize[recentN & 4095]!);
    } else if (r < 0.9 && recentN > 0) {
      const i = (recentN - 1) & 4095;
      const heap = heaps.get(recentPid[i]!)!;
      re.pid = recentPid[i]!; re.t = t; re.tid = re.pid; re.oldAddr = recent[i]!; re.size = 64 + ((rand() * 512) | 0); re.addr = heap.take(re.size); re.stack = hotStack(rand);
      heap.give(re.oldAddr, recentSize[i]!);
      recent[i] = re.addr;
      recentSize[i] = re.size;
      emit(re); count++;
    } else if (count + 5 <= N) {
      const pool = poolHeaps.get(pid)!.take(1024);
      emit({ kind: 'pool-create', pid, t, tid: pid, pool, parent: 0, poolKind: 'nginx', tag: 'request', stack: hotStack(rand) });
      for (let k = 0; k < 3; k++) {
        pa.pid = pid; pa.t = t; pa.tid = pid; pa.pool = pool; pa.size = 64 + ((rand() * 1024) | 0); pa.addr = 0; pa.stack = hotStack(rand);
        emit(pa);
      }
      emit({ kind: 'pool-destroy', pid, t, pool, stack: 0 });
      poolHeaps.get(pid)!.give(pool, 1024);
      count += 5;
    } else {
      emit({ kind: 'rss', pid, t, bytes: 1e9 }); count++;
    }
  }
}

/** Stacks skewed as in real servers: a few hot allocation sites, a long tail (r^3 over 2000 ids). */
function hotStack(rand: () => number): number {
  const r = rand();
  return 1 + ((r * r * r * STACKS) | 0);
}

/** CPU seconds used by this process (user + system): steadier than wall time on a shared machine. */
function cpu(): number {
  const c = process.cpuUsage();
  return (c.user + c.system) / 1e6;
}

function liveBytes(): number {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

const fmt = (n: number) => (n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${Math.round(n / 1e3)}k`);
const dir = mkdtempSync(join(tmpdir(), 'ls-engine-bench-'));
try {
  const path = join(dir, 'bench.lstrace');
  let t0 = performance.now();
  const w = TraceWriter.create(path, meta);
  generate((e) => w.event(e));
  await w.close();
  const writeMs = performance.now() - t0;
  if (process.env.LSBENCH_KEEP) copyFileSync(path, join(process.env.LSBENCH_KEEP, `engine-${PATTERN}-${N}.lstrace`));
  console.log(`trace: ${fmt(N)} events, ${(statSync(path).size / 1e6).toFixed(1)} MB, written in ${(writeMs / 1000).toFixed(1)} s`);

  // Baseline for memory: LIVE allocations in a Map of objects (what a naive engine would hold).
  const b0 = liveBytes();
  let naive: Map<number, { size: number; stack: number; t: number }> | undefined = new Map();
  for (let i = 0; i < LIVE; i++) naive.set(0x5555_0000_0000 + i * 4096, { size: 100 + i, stack: i & 2047, t: i * 1000 });
  const naivePer = (liveBytes() - b0) / LIVE;
  if (naive.size !== LIVE) throw new Error('baseline map lost entries'); // keeps it alive until measured
  naive = undefined;

  // Generator cost alone, to subtract from the engine-only run.
  let _sinkCount = 0;
  let c0 = cpu();
  generate(() => { _sinkCount++; });
  const genCpu = cpu() - c0;

  // (1) Engine alone.
  const before = liveBytes();
  let engine: Engine | undefined = new Engine({ meta });
  t0 = performance.now();
  c0 = cpu();
  // event() hands these records to the same methods the reader calls: the fold without decoding.
  generate((e) => engine!.event(e));
  const engCpu = cpu() - c0 - genCpu;
  const engWall = performance.now() - t0;
  let state: ReturnType<Engine['finish']> | undefined = engine.finish();
  const after = liveBytes();
  const liveCount = state.processes.reduce((n, p) => n + p.heap.count, 0);
  const engineBytes = after - before;
  const tableBytes = state.processes.reduce((n, p) => n + p.heap.memoryBytes, 0);
  console.log(`engine alone:          ${fmt(N / engCpu)} events/s of CPU time (generator subtracted; wall ${(engWall / 1000).toFixed(1)} s incl. generator)`);
  console.log(`live allocations:      ${liveCount.toLocaleString('en')}; live table ${(tableBytes / 1e6).toFixed(1)} MB = ${(tableBytes / liveCount).toFixed(1)} bytes per live allocation`);
  console.log(`baseline Map<addr, {size, stack, t}>: ${naivePer.toFixed(1)} bytes per live allocation → the live table is ${(naivePer / (tableBytes / liveCount)).toFixed(1)}x smaller`);
  console.log(`whole engine state:    ${((after - before) / 1e6).toFixed(1)} MB retained = ${((after - before) / liveCount).toFixed(1)} bytes per live allocation (table, sites, series, pools, symbols)`);
  engine = undefined;
  state = undefined;

  let heapEps = 0;
  // (1b) The heap path alone: alloc/free only, one process, LIVE live allocations (no pools, no reader).
  {
    const eng = new Engine({ meta });
    const a = { kind: 'alloc', pid: 1, t: 0, tid: 1, addr: 0, size: 64, stack: 1 } as Extract<Event, { kind: 'alloc' }>;
    const f = { kind: 'free', pid: 1, t: 0, tid: 1, addr: 0 } as Extract<Event, { kind: 'free' }>;
    const rand = rng(3);
    const M = Math.min(N, 4_000_000);
    let n = 0;
    c0 = cpu();
    for (let i = 0; n < M; i++) {
      a.t = i * 100; a.addr = 0x5555_0000_0000 + i * 64; a.stack = hotStack(rand);
      eng.event(a); n++;
      // Keep every LIVE/(M/2)-th allocation, free the rest at once.
      if (i % Math.max(1, Math.round(M / 2 / LIVE)) !== 0) { f.t = a.t + 50; f.addr = a.addr; eng.event(f); n++; }
    }
    const heapCpu = cpu() - c0;
    const st = eng.finish();
    heapEps = M / heapCpu;
  console.log(`heap path alone:       ${fmt(M / heapCpu)} events/s of CPU time (alloc/free only, ${st.processes[0]!.heap.count.toLocaleString('en')} live at the end)`);
  }

  // (2) Reader alone (baseline), (3) reader + engine + analyze.
  const nullSink: EventSink = { event() { _sinkCount++; } };
  c0 = cpu();
  await readTrace(path, nullSink);
  const readCpu = cpu() - c0;
  const e2 = new Engine({ meta });
  t0 = performance.now();
  c0 = cpu();
  await readTrace(path, e2);
  const foldCpu = cpu() - c0;
  const result = analyze(e2.finish(), { top: 20 });
  const totalCpu = cpu() - c0;
  const totalWall = performance.now() - t0;
  // The same read + engine through event() only (an Event object per record, no fast path).
  const e3 = new Engine({ meta });
  c0 = cpu();
  await readTrace(path, { event: (e) => e3.event(e) });
  const objCpu = cpu() - c0;
  // The floor of any exact engine here: the fast-path reader into a sink that does nothing, and
  // the same reader feeding nothing but a live table per process (alloc/free/realloc by address;
  // no sites, series, pools or process totals). What the engine adds on top is its output.
  const nop = () => {};
  const fastNop = { event: nop, alloc: nop, free: nop, realloc: nop, poolAlloc: nop, poolCreate: nop, poolDestroy: nop };
  c0 = cpu();
  await readTrace(path, fastNop);
  const fastReadCpu = cpu() - c0;
  const tables = new Map<number, LiveTable>();
  const table = (pid: number) => tables.get(pid) ?? tables.set(pid, new LiveTable()).get(pid)!;
  const put = (pid: number, addr: number, size: number, stack: number, t: number) => {
    const h = table(pid);
    h.reserve();
    const s = h.probe(addr);
    if (s < 0) h.insertAt(~s, addr, size, stack, t);
  };
  const drop = (pid: number, addr: number) => {
    const h = table(pid);
    const i = h.find(addr);
    if (i >= 0) h.removeAt(i);
  };
  c0 = cpu();
  const tableSink: FastEventSink = {
    ...fastNop,
    alloc: (pid, _tid, t, addr, size, stack) => put(pid, addr, size, stack, t),
    free: (pid, _tid, _t, addr) => drop(pid, addr),
    realloc: (pid, _tid, t, oldAddr, addr, size, stack) => {
      if (oldAddr !== 0) drop(pid, oldAddr);
      if (addr !== 0) put(pid, addr, size, stack, t);
    },
  };
  await readTrace(path, tableSink);
  const tableCpu = cpu() - c0;
  const tableLive = [...tables.values()].reduce((n, h) => n + h.count, 0);
  console.log(`read only (baseline):  ${fmt(N / readCpu)} events/s of CPU time`);
  console.log(`floor: read, fast path into a no-op sink: ${fmt(N / fastReadCpu)} events/s of CPU time`);
  console.log(`floor: read + live table only: ${fmt(N / tableCpu)} events/s of CPU time (${tableLive.toLocaleString('en')} live; no sites, series or pools)`);
  console.log(`read + engine, objects: ${fmt(N / objCpu)} events/s of CPU time (Event object per record, no fast path)`);
  console.log(`read + engine:         ${fmt(N / foldCpu)} events/s of CPU time = ${(foldCpu / readCpu).toFixed(2)}x the read alone`);
  // What a reader on another thread would leave this one: the fold, and the fold beyond the table.
  const foldNs = ((foldCpu - fastReadCpu) / N) * 1e9;
  const tableNs = ((tableCpu - fastReadCpu) / N) * 1e9;
  console.log(`fold without decoding: ${foldNs.toFixed(0)} ns/event (read + engine minus the no-op fast read) = ${fmt(1e9 / foldNs)} events/s; the live table ${tableNs.toFixed(0)} ns of it, the rest ${(foldNs - tableNs).toFixed(0)} ns`);
  console.log(`analyze:               ${(totalCpu - foldCpu).toFixed(2)} s CPU (${result.processes.length} processes, ${result.processes.reduce((n, p) => n + p.sites.length, 0)} sites reported)`);
  console.log(`read + engine + analyze: ${fmt(N / totalCpu)} events/s of CPU time (${fmt(N / (totalWall / 1000))} events/s wall) = ${((100 * tableCpu) / totalCpu).toFixed(0)}% of the floor's rate`);
  console.log(`peak RSS:              ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MB`);
  console.log(`load average:          ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  const child: Record<string, Figure> = {
    engineAloneEps: N / engCpu,
    liveAllocations: liveCount,
    tableBytesPerLive: tableBytes / liveCount,
    mapBytesPerLive: naivePer,
    engineBytesPerLive: engineBytes / liveCount,
    heapPathEps: heapEps,
    readEps: N / readCpu,
    fastReadEps: N / fastReadCpu,
    tableFloorEps: N / tableCpu,
    objectsEps: N / objCpu,
    foldEps: N / foldCpu,
    foldNsNoDecode: foldNs,
    tableNsNoDecode: tableNs,
    analyzeCpuS: totalCpu - foldCpu,
    totalCpuEps: N / totalCpu,
    totalWallEps: N / (totalWall / 1000),
    peakRssMB: process.resourceUsage().maxRSS / 1024,
  };
  if (process.env.LSBENCH_CHILD_OUT) writeFileSync(process.env.LSBENCH_CHILD_OUT, JSON.stringify(child));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
