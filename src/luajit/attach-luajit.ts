// attachLuajit: traces the LuaJIT GC allocator of running processes into a .lstrace file.
//
// The native tracer (native/luajit) finds each process's global_State through an exported
// lua_* function, probes its allocator (allocf) by address, and reports every allocation,
// reallocation and free with the Lua stack of the running lua_State. Here the records become
// model events: alloc / realloc / free with interned Lua stacks, one scope per pid.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { commandOf, exeOf, pidAlive, ppidOf } from '../proc/processes.js';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { profilesDir } from '../attach/profile.js';
import { UserError } from '../errors.js';
import { StackInterner } from '../model/stacks.js';
import type { Event, EventSink } from '../model/events.js';
import { TraceWriter } from '../trace/writer.js';
import { findNative, nativePath } from '../native/locate.js';
import { ProtoCache } from './protos.js';
import { detectLuajit } from './detect.js';
import { LjOp, RecordParser, type LjEvent, type LjRecord } from './records.js';
import { recordFrames } from './stacks.js';
import { TraceResolver } from './traces.js';
import { notBuiltHint } from '../doctor/not-built.js';

export interface AttachLuajitOptions {
  pids: number[];
  durationMs: number;
  /** .lstrace path to write. */
  out: string;
  signal?: AbortSignal;
  /**
   * After durationMs, how long at most to wait for one full GC cycle per process while frees
   * are still recorded but new allocations no longer are (default 10 s; 0 = stop at once).
   * Then what is outstanding was reachable: garbage the lazy GC had not collected is gone.
   */
  settleMs?: number;
  /** Another build of the tracer (the bench compares two builds in one run). */
  tracer?: string;
  /** Called once the trace is open with a function that adds a marker (every process, now). */
  onMarkable?: (mark: (label: string) => void) => void;
  /** Called when a process's allocator is probed: its allocations are recorded from now on. */
  onTraced?: (pid: number) => void;
}

export interface AttachLuajitResult {
  events: number;
  lost: number;
  warnings: string[];
  /** Per BPF program, runs and total run time: only when LSTRACE_LUAJIT_STATS is set. */
  bpfStats?: Record<string, { runs: number; ns: number }>;
  /** With bpfStats: walks, frames, Lua stack words copied / read alone, machine code found in the first 32 words / further / not (lj_alloc.bpf.c C_*). */
  bpfCounters?: number[];
}

/** Said with every trace: what outstanding LuaJIT memory means. */
export const LAZY_GC_NOTE =
  'LuaJIT frees garbage lazily (incremental GC): outstanding bytes include garbage not yet collected; only growth across several GC cycles is a leak.';
/** lj_rec_event.op bit: a block made while settling (LJ_OP_DRAIN). */
const OP_DRAIN = 0x80;

/** Below this many GC cycles in the traced time, growth says little about Lua leaks. */
export const MIN_GC_CYCLES = 3;
export const SETTLED_NOTE =
  'LuaJIT frees garbage lazily (incremental GC); after the traced time one full GC cycle ran in each allocating process (blocks made meanwhile not counted, frees of older ones recorded), so what is outstanding at the end was reachable. Only growth across several GC cycles is a leak.';

interface TracerMessage {
  event: string;
  pid?: number;
  message?: string;
  events?: number;
  lost?: number;
  module?: string;
  g?: string;
  programs?: Record<string, { runs: number; ns: number }>;
  counters?: number[];
}

/** The Lua API functions whose first call reveals a lua_State (profiles/allocators/luajit.json). */
function discoverFunctions(): string[] {
  try {
    const p = JSON.parse(readFileSync(join(profilesDir(), 'luajit.json'), 'utf8')) as { luajit?: { discover?: unknown } };
    const list = p.luajit?.discover;
    if (Array.isArray(list)) return list.filter((s): s is string => typeof s === 'string' && /^lua[L_]?[A-Za-z_]\w*$/.test(s)).slice(0, 16);
  } catch { /* the tracer's defaults */ }
  return [];
}

/** Converts tracer records to model events (usable on its own, e.g. in tests). */
export class LuajitEventConverter {
  private readonly interner: StackInterner;
  /** Stacks that could not be converted (counted, their events keep no stack). */
  badStacks = 0;
  /** Events that could not be written (counted). */
  badEvents = 0;
  /** Per pid: allocations counted. */
  readonly allocs = new Map<number, number>();
  /** Per pid: blocks made while settling and still live (not counted). */
  private readonly drain = new Map<number, Set<number>>();
  /** Tracer stack id -> model stack id. */
  private readonly stacks = new Map<number, number>();
  readonly protos = new ProtoCache();
  readonly traces = new TraceResolver(this.protos);
  events = 0;

  constructor(private readonly sink: EventSink, private readonly startMonoNs: number) {
    this.interner = new StackInterner(sink);
  }

  private emit(e: Event): void {
    this.sink.event(e);
    this.events++;
  }

  /** A stack's first use (the tracer's stack id, unique across processes). */
  stack(id: number, r: LjRecord): void {
    try {
      this.stacks.set(id, this.interner.stackId(recordFrames(r, this.protos, this.traces), r.pid));
    } catch {
      // Never let one odd record stop the trace: its events go without a stack.
      this.badStacks++;
    }
  }

  event(e: LjEvent): void {
    try {
      this.convert(e);
    } catch {
      this.badEvents++; // an out-of-range value the trace format cannot hold: dropped, counted
    }
  }

  private convert(e: LjEvent): void {
    const t = Math.max(0, e.ts - this.startMonoNs);
    const op = e.op & 0x7f;
    if (e.op & OP_DRAIN) {
      // Made while settling: not counted; remembered so that its free or move is not either.
      const set = this.drained(e.pid);
      if (op === LjOp.Realloc && !set.delete(e.ptr)) {
        // An older block moved while settling: it lives on (at its new address).
        this.emit({ kind: 'realloc', pid: e.pid, t, tid: e.tid, oldAddr: e.ptr, addr: e.ret, size: e.nsize, stack: this.stacks.get(e.stack) ?? 0 });
        return;
      }
      set.add(e.ret);
      return;
    }
    if (op === LjOp.Free) {
      if (this.drain.get(e.pid)?.delete(e.ptr)) return;
      this.emit({ kind: 'free', pid: e.pid, t, tid: e.tid, addr: e.ptr });
    } else if (op === LjOp.Alloc) {
      this.allocs.set(e.pid, (this.allocs.get(e.pid) ?? 0) + 1);
      this.emit({ kind: 'alloc', pid: e.pid, t, tid: e.tid, addr: e.ret, size: e.nsize, stack: this.stacks.get(e.stack) ?? 0 });
    } else if (op === LjOp.Realloc) {
      this.emit({ kind: 'realloc', pid: e.pid, t, tid: e.tid, oldAddr: e.ptr, addr: e.ret, size: e.nsize, stack: this.stacks.get(e.stack) ?? 0 });
    }
  }

  private drained(pid: number): Set<number> {
    let s = this.drain.get(pid);
    if (!s) {
      s = new Set();
      this.drain.set(pid, s);
    }
    return s;
  }

  /** A process left: its prototypes are no longer readable, and its addresses may be reused. */
  processGone(pid: number): void {
    this.protos.drop(pid);
    this.traces.drop(pid);
    this.drain.delete(pid);
  }
}

export async function attachLuajit(opts: AttachLuajitOptions): Promise<AttachLuajitResult> {
  const warnings: string[] = [];
  const pids = [...new Set(opts.pids)].filter((p) => Number.isInteger(p) && p > 0);
  if (!pids.length) throw new UserError('no valid pid given to trace; pass --pid with a process id');
  if (!findNative('luajit')) throw new UserError(`the LuaJIT tracer is not built (${nativePath('luajit')}): ${notBuiltHint('luajit')}`);

  const startMono = process.hrtime.bigint();
  const writer = TraceWriter.create(opts.out, {
    format: 1,
    clock: 'ns',
    startWallMs: Date.now(),
    startMonoNs: startMono.toString(),
    source: 'attach-luajit',
    command: `attach --allocator luajit --pid ${pids.join(',')}`,
    hostname: hostname(),
  });
  const conv = new LuajitEventConverter(writer, Number(startMono));
  for (const pid of pids) {
    const p = { ppid: ppidOf(pid), command: commandOf(pid), exe: exeOf(pid) ?? '' };
    writer.event({ kind: 'process', pid, t: 0, ppid: p.ppid, command: p.command, exe: p.exe });
  }
  writer.event({ kind: 'marker', pid: 0, t: 0, label: 'luajit: outstanding = GC memory not freed yet; the GC frees lazily, only growth across several GC cycles is a leak' });

  // Which module of each process to probe, found here (detect.ts); the tracer looks nothing up.
  const args: string[] = [];
  for (const pid of pids) {
    const lj = detectLuajit(pid);
    if (lj.supported) args.push('--pid', String(pid), '--lib', lj.module);
    else warnings.push(`pid ${pid}: ${lj.reason}`);
  }
  if (args.length === 0) {
    await writer.close();
    throw new UserError(`no process could be traced for LuaJIT: ${warnings[0] ?? 'no supported LuaJIT found'}`);
  }
  for (const fn of discoverFunctions()) args.push('--discover', fn);
  args.push('--duration-ms', String(Math.max(0, Math.floor(opts.durationMs))));
  const settleMs = Math.max(0, Math.floor(opts.settleMs ?? 10_000));
  args.push('--settle-ms', String(settleMs));
  const settled = new Set<number>();
  const now = () => Math.max(0, Number(process.hrtime.bigint() - startMono));
  opts.onMarkable?.((label) => writer.event({ kind: 'marker', pid: 0, t: now(), label }));
  const proc = spawn(opts.tracer ?? nativePath('luajit'), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let lost = 0;
  let tracerEvents = -1;
  let bpfStats: AttachLuajitResult['bpfStats'];
  let bpfCounters: number[] | undefined;
  let fatal = '';
  let startedTargets = -1;
  const gcCycles = new Map<number, number>();
  const gone = new Set<number>();
  const exited = (pid: number) => {
    if (gone.has(pid)) return;
    gone.add(pid);
    writer.event({ kind: 'exit', pid, t: now(), code: 0 });
    warnings.push(`pid ${pid} exited while traced`);
  };
  const parser = new RecordParser(conv);
  proc.stdout.on('data', (c: Buffer) => parser.push(c));
  let errBuf = '';
  const onLine = (line: string) => {
    if (!line.trim()) return;
    let m: TracerMessage;
    try {
      m = JSON.parse(line) as TracerMessage;
    } catch {
      warnings.push(`luajit tracer: ${line.trim()}`);
      return;
    }
    if (m.event === 'warning') warnings.push(`pid ${m.pid}: ${m.message}`);
    else if (m.event === 'error') fatal = m.message ?? 'error';
    else if (m.event === 'started') startedTargets = (m as { targets?: number }).targets ?? 0;
    else if (m.event === 'state' && m.pid) opts.onTraced?.(m.pid);
    else if (m.event === 'gc' && m.pid) gcCycles.set(m.pid, (m as { cycles?: number }).cycles ?? 0);
    else if (m.event === 'settling') writer.event({ kind: 'marker', pid: 0, t: now(), label: 'luajit: traced time over, settling (new allocations no longer recorded)' });
    else if (m.event === 'settled' && m.pid) {
      settled.add(m.pid);
      writer.event({ kind: 'marker', pid: m.pid, t: now(), label: 'luajit: a full GC cycle ran, settled' });
    }
    else if (m.event === 'bpfstats') {
      bpfStats = m.programs;
      bpfCounters = m.counters;
    }
    else if (m.event === 'done') {
      lost = m.lost ?? 0;
      tracerEvents = m.events ?? 0;
    } else if (m.event === 'exit' && m.pid) exited(m.pid);
  };
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (s: string) => {
    errBuf += s;
    let i: number;
    while ((i = errBuf.indexOf('\n')) >= 0) {
      onLine(errBuf.slice(0, i));
      errBuf = errBuf.slice(i + 1);
    }
  });

  const stop = () => {
    if (proc.exitCode === null && proc.pid) proc.kill('SIGINT');
  };
  opts.signal?.addEventListener('abort', stop, { once: true });
  if (opts.signal?.aborted) stop();

  const code = await new Promise<number>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (c) => resolve(c ?? 1));
  });
  opts.signal?.removeEventListener('abort', stop);
  onLine(errBuf);

  // Judged once all records are in (stderr and stdout are separate pipes).
  for (const [pid, n] of gcCycles) {
    if (!conv.allocs.get(pid)) warnings.push(`pid ${pid}: its Lua VM allocated nothing while traced`);
    else if (n < MIN_GC_CYCLES) {
      warnings.push(`pid ${pid}: only ${n} full GC cycle(s) seen while traced: too few to tell a growing Lua heap from garbage not yet collected; trace longer or under more load`);
    } else warnings.push(`pid ${pid}: at least ${n} full GC cycles while traced`);
  }
  // A process that died late, or while the tracer was busy, may not have been reported.
  for (const pid of pids) if (!gone.has(pid) && !pidAlive(pid)) exited(pid);
  if (conv.badEvents) warnings.push(`luajit tracer: ${conv.badEvents} event(s) with out-of-range values dropped`);
  if (conv.badStacks) warnings.push(`luajit tracer: ${conv.badStacks} stack(s) could not be decoded; their allocations have no stack`);
  if (parser.bad) warnings.push(`luajit tracer: ${parser.bad} corrupt record stream(s) dropped`);
  if (parser.leftover) warnings.push(`luajit tracer: a partial record (${parser.leftover} bytes) at the end was dropped`);
  if (lost) writer.event({ kind: 'lost', pid: 0, t: Math.max(0, Number(process.hrtime.bigint() - startMono)), count: lost, reason: 'luajit ring buffer full' });
  await writer.close();
  conv.protos.close();
  if (fatal || (code !== 0 && tracerEvents < 0)) {
    throw new UserError(`luajit tracer: ${fatal || `exited with status ${code}`}`);
  }
  if (startedTargets === 0) {
    throw new UserError(`no process could be traced for LuaJIT: ${warnings[0] ?? 'no supported LuaJIT found'}`);
  }
  warnings.push(settleMs > 0 && settled.size > 0 ? SETTLED_NOTE : LAZY_GC_NOTE);
  return { events: conv.events, lost, warnings, ...(bpfStats ? { bpfStats, bpfCounters } : {}) };
}
