// One `leakscope attach` session: finds the target processes (and new ones as they appear),
// attaches the profiles' probes to each one through the BPF loader, and turns what the probes
// report into model events for a sink (the trace writer).

import type { Event, EventSink, Frame } from '../model/events.js';
import { frame as makeFrame } from '../model/events.js';
import { StackInterner } from '../model/stacks.js';
import { BpfLoader, NOTIFY_EXIT, NOTIFY_FORK, type AggRow, type CallRecord } from './loader.js';
import { ModuleTable } from '../proc/modules.js';
import { ProbePoints } from './probe-point.js';
import { ProcMem } from '../proc/memory.js';
import { LivePools } from './live-pools.js';
import type { WalkCost } from './pool-discovery.js';
import type { AllocatorProfile, ProfileFunction, ValueSource } from './profile.js';
import { commandOf, descendants, exeOf, pidAlive, pidsRunning, ppidOf, startTicks, uptimeTicks } from '../proc/processes.js';
import { findLibrary, readMaps } from '../proc/maps.js';
import { compileSpecs, specLine, tagFromPool, type ProbeSpec } from './specs.js';
import { residentBytes } from '../proc/rss.js';

export interface AttachTarget {
  pid?: number;
  children?: boolean;
  /** Resolved path of an executable: every process running it, now and later. */
  exe?: string;
  /** The pids wanted now, by any rule (a process name, a systemd unit's cgroup): scanned like
   *  `exe`, and forks of traced processes are followed. */
  match?: () => number[];
}

export interface SessionOptions {
  target: AttachTarget;
  profiles: AllocatorProfile[];
  poolAllocs: boolean;
  mode: 'events' | 'aggregate';
  stackBytes: number;
  ringbufMb: number;
  unwindLib?: string;
  /** How often /proc is scanned for new and exited targets (ms). */
  pollMs?: number;
  /** How often live pools' sizes are read from the processes' memory (ms); 0 = never. */
  poolSampleMs?: number;
  /** No probe at all: the pools are found by walking them from the profiles' roots at every
   *  pool sample (live-pools.ts rewalk): no cost on the traced process's calls. */
  walkOnly?: boolean;
  sink: EventSink;
  /** CLOCK_MONOTONIC ns at t = 0 of the trace. */
  startMono: bigint;
  onWarning?: (msg: string) => void;
  /** A process traced from now on, after the start: forked by a traced one (with its probes
   *  from its first instruction: `parent`), or found and attached (`parent` 0). */
  onTraced?: (pid: number, parent: number) => void;
}

interface Proc {
  pid: number;
  modules: ModuleTable;
  /** Its pools: created, found alive (live-pools.ts), destroyed. */
  pools: LivePools;
  mem?: ProcMem;
  probes: number;
  /** The process whose probes it inherited at fork (it has none of its own), if any. */
  root?: number;
  /** The command line the trace has for it (a forked child's is its parent's until it changes). */
  command: string;
}

export interface SessionStats {
  processes: number;
  probes: number;
  calls: number;
  lost: number;
  probeErrors: string[];
  /** What finding the pools alive before the trace cost, summed over the processes. */
  discovery: WalkCost;
}

/** A call's value from where the profile says it is. */
function value(r: CallRecord, s: ValueSource | undefined): number {
  if (!s) return 0;
  if (s === 'ret') return r.ret;
  if (s.charCodeAt(0) === 42 /* '*' */) return r.deref;
  return r.args[s.charCodeAt(3) - 48] ?? 0;
}

/** A call's size: one source, or two multiplied (calloc). */
function sizeOf(r: CallRecord, fn: ProfileFunction): number {
  return Array.isArray(fn.size) ? value(r, fn.size[0]) * value(r, fn.size[1]) : value(r, fn.size);
}

export class AttachSession {
  private loader!: BpfLoader;
  private readonly specs: ProbeSpec[];
  private readonly procs = new Map<number, Proc>();
  /** Pids seen (attached, being attached, or gone) so a pid is attached once. */
  private readonly seen = new Set<number>();
  /** Pids whose exit was handled while /proc still showed them (still exiting, or a zombie not
   *  reaped yet), with their start time: a scan must not take them for new processes. A process
   *  given the pid later has another start time. */
  private readonly dying = new Map<number, number>();
  private readonly buildIds = new Map<string, string>();
  private readonly probePoints = new ProbePoints();
  private readonly interner: StackInterner;
  private timers: NodeJS.Timeout[] = [];
  private lostSeen = 0;
  private stopped = false;
  /** The first scan is done: processes traced from now on are announced (onTraced). */
  private started = false;
  private attachQueue: Promise<void> = Promise.resolve();
  private readonly warned = new Set<string>();
  private endResolve!: () => void;
  /** Clock ticks since boot when the session started: processes started later were forked while traced. */
  private readonly startTick = uptimeTicks();
  /** Resolves when no target is left and none can come (pid targets exited). */
  readonly ended: Promise<void>;
  readonly stats: SessionStats = { processes: 0, probes: 0, calls: 0, lost: 0, probeErrors: [], discovery: { walks: 0, found: 0, rejected: 0, reads: 0, bytes: 0, ms: 0 } };

  private constructor(private readonly opts: SessionOptions) {
    this.specs = compileSpecs(opts.profiles, { poolAllocs: opts.poolAllocs, mode: opts.mode });
    this.interner = new StackInterner(opts.sink);
    this.ended = new Promise((r) => { this.endResolve = r; });
  }

  static async start(opts: SessionOptions): Promise<AttachSession> {
    const s = new AttachSession(opts);
    s.loader = await BpfLoader.start(
      { mode: opts.mode, stackBytes: opts.stackBytes, ringbufMb: opts.ringbufMb, unwindLib: opts.unwindLib, startMono: opts.startMono },
      {
        call: (r) => s.onCall(r),
        notify: (k, pid, ts, a0, a1) => s.onNotify(k, pid, ts, a0, a1),
        lost: (rb, maps) => s.onLost(rb + maps),
        stack: (id, pid, pcs) => s.loaderStacks.set(id, { pid, pcs, id: 0 }),
        stacksReset: () => s.loaderStacks.clear(),
      },
    );
    for (const spec of s.specs) {
      const st = await s.loader.command(specLine(spec).split('\t'));
      if (st.ok !== true) throw new Error(`loader refused spec ${spec.index}: ${String(st.error)}`);
    }
    await s.scan();
    s.started = true;
    s.timers.push(setInterval(() => void s.scan(), opts.pollMs ?? 250));
    if ((opts.poolSampleMs ?? 0) > 0 && opts.mode === 'events') s.timers.push(setInterval(() => { s.samplePools(); s.sampleProcesses(); }, opts.poolSampleMs));
    return s;
  }

  get unwinder(): boolean {
    return this.loader.unwinder;
  }

  /** What one probe hit costs a traced process here (µs), as the loader measured it; undefined
   *  when it could not. */
  get hitCostUs(): number | undefined {
    return this.loader.hitCostUs;
  }

  get loaderWarnings(): string[] {
    return this.loader.warnings;
  }

  /** Pids currently traced. */
  get pids(): number[] {
    return [...this.procs.keys()];
  }

  private now(): number {
    return Number(process.hrtime.bigint() - this.opts.startMono);
  }

  private t(ts: bigint): number {
    const d = ts - this.opts.startMono;
    return d < 0n ? 0 : Number(d);
  }

  private emit(e: Event): void {
    this.opts.sink.event(e);
  }

  private warn(key: string, msg: string): void {
    if (this.warned.has(key)) return;
    this.warned.add(key);
    this.opts.onWarning?.(msg);
  }

  /** Finds targets not attached yet, and targets that are gone. */
  private async scan(): Promise<void> {
    if (this.stopped) return;
    const { target } = this.opts;
    let want: number[] = [];
    if (target.match) want = target.match();
    else if (target.exe) want = pidsRunning(target.exe);
    else if (target.pid !== undefined) {
      if (pidAlive(target.pid)) want.push(target.pid);
      if (target.children) want.push(...descendants(target.pid));
    }
    for (const pid of want) {
      // never leakscope itself or its loader (an ancestor traced with --children has them below it)
      if (this.seen.has(pid) || pid === process.pid || pid === this.loader.pid) continue;
      if (this.dying.has(pid)) {
        if (startTicks(pid) === this.dying.get(pid)) continue;
        this.dying.delete(pid);
      }
      // a child that existed before attach was not forked in the trace: it starts as a process
      const forkedWhileTraced = startTicks(pid) > this.startTick;
      this.queueAttach(pid, forkedWhileTraced ? ppidOf(pid) : 0);
    }
    await this.attachQueue;
    // gone from /proc: its exit notification (with its code and exact time) is on its way from
    // the loader; only if it is still missing a scan later is the exit taken from here
    for (const pid of [...this.procs.keys()]) {
      if (pidAlive(pid)) continue;
      if (this.missing.has(pid)) this.gone(pid, -1, this.missing.get(pid)!);
      else this.missing.set(pid, this.now());
    }
    for (const pid of this.missing.keys()) if (!this.procs.has(pid)) this.missing.delete(pid);
    for (const [pid, st] of this.dying) if (startTicks(pid) !== st) this.dying.delete(pid);
    // the targets are gone: the --pid process (and its traced descendants), or with --exe every
    // process of it traced so far, with none running now (before the first one, --exe waits)
    // (a match() target never ends: its processes may come back, the agent waits for them)
    if (this.procs.size === 0 && !target.match) {
      if (target.pid !== undefined ? !pidAlive(target.pid) : this.stats.processes > 0 && pidsRunning(target.exe!).length === 0) this.endResolve();
    }
  }

  private queueAttach(pid: number, parentPid: number, forkT?: number): void {
    this.seen.add(pid);
    this.attachQueue = this.attachQueue.then(() => this.attach(pid, parentPid, forkT)).catch((err: unknown) => {
      this.warn(`attach:${pid}`, `process ${pid}: ${(err as Error).message}`);
    });
  }

  /** Whether the processes a target forks are targets too (then they inherit its probes). */
  private get followForks(): boolean {
    const { target } = this.opts;
    return target.exe !== undefined || target.children === true || target.match !== undefined;
  }

  /** A process's state, from its parent's when it was forked while traced (same heap, same
   *  pools, same modules), announced to the sink. */
  private newProc(pid: number, parentPid: number, t: number, root?: number): Proc {
    const parent = this.procs.get(parentPid);
    const proc: Proc = { pid, modules: new ModuleTable(pid, this.buildIds), pools: this.livePools(pid), probes: 0, root, command: parent?.command ?? commandOf(pid) };
    if (parent) {
      // a forked child starts as a copy of its parent: same heap, same pools (a walk finds the
      // pools it inherited, in its own memory)
      this.emit({ kind: 'fork', pid, t, parentPid });
      proc.modules.inherit(parent.modules);
      if (root !== undefined) proc.probes = parent.probes;
    } else {
      this.emit({ kind: 'process', pid, t, ppid: ppidOf(pid), command: proc.command, exe: exeOf(pid) ?? '' });
    }
    proc.modules.refresh(this.opts.sink, t);
    this.procs.set(pid, proc);
    this.stats.processes++;
    return proc;
  }

  /** A child that inherited every probe of its parent at fork: traced from its first
   *  instruction, with nothing to attach. Synchronous, so that its calls (which follow the fork
   *  notification in the loader's stream) find it. */
  private adopt(pid: number, parentPid: number, t: number, root?: number): void {
    this.seen.add(pid);
    if (this.procs.has(pid) || this.stopped) return;
    const parent = this.procs.get(parentPid);
    const proc = this.newProc(pid, parentPid, t, root ?? parent?.root ?? parentPid);
    // it has every probe since its fork: the pools it inherited are found now
    if (this.opts.mode === 'events') proc.pools.discoverAll(this.opts.profiles, this.now());
    if (this.started) this.opts.onTraced?.(pid, parentPid);
  }

  private async attach(pid: number, parentPid: number, forkT?: number): Promise<void> {
    if (this.stopped || !pidAlive(pid)) return;
    const t = forkT ?? this.now();
    // first: did it inherit its probes at fork? (its fork notification came before this reply)
    const st = await this.loader.command(['trace', pid, this.followForks ? 1 : 0]);
    // gone meanwhile: adopted at its fork notification and its exit handled since (both came
    // before this reply: gone() took it out of `seen`), or exited while never traced
    if (!this.seen.has(pid) || !pidAlive(pid)) return;
    if (st.inherited === true) {
      this.adopt(pid, parentPid || ppidOf(pid), t, typeof st.root === 'number' ? st.root : undefined);
      return;
    }
    if (this.stopped) return;
    const proc = this.newProc(pid, parentPid, t);
    const exe = exeOf(pid);
    const maps = readMaps(pid);
    for (const spec of this.opts.walkOnly ? [] : this.specs) {
      const where = spec.fn.in;
      const path = where === 'exe' ? exe : findLibrary(maps, where);
      if (!path) {
        this.warn(`nolib:${spec.profile.name}:${where}`, `allocator ${spec.profile.name}: ${where} is not mapped in process ${pid}; its functions are not traced there`);
        continue;
      }
      const at = this.probePoints.place(path, spec.fn.symbol);
      const r = at
        ? await this.loader.probe(spec.index, pid, path, spec.fn.symbol, at.offset, at.skip)
        : { ok: false, error: 'the file defines no such function' };
      if (r.ok) {
        proc.probes++;
        this.stats.probes++;
      } else if (pidAlive(pid)) {
        const msg = `${spec.fn.symbol} in ${path} (process ${pid}): ${r.error ?? 'cannot attach'}`;
        this.stats.probeErrors.push(msg);
        this.warn(`probe:${spec.profile.name}:${spec.fn.symbol}`, `cannot trace ${msg}`);
      }
    }
    // calls count from here: before, some probes were attached and others not yet
    await this.loader.command(['ready', pid]);
    if (this.started && !this.stopped) this.opts.onTraced?.(pid, 0);
    if (proc.probes === 0 && !this.opts.walkOnly && pidAlive(pid)) this.warn(`noprobe:${pid}`, `process ${pid}: no probe could be attached`);
    // after `ready`: a pool created from now on is probed, so the walk misses none
    if (this.opts.mode === 'events' && this.procs.get(pid) === proc) proc.pools.discoverAll(this.opts.profiles, this.now());
  }

  private livePools(pid: number): LivePools {
    const pools = new LivePools(pid, {
      emit: (e) => this.emit(e),
      mem: () => {
        const p = this.procs.get(pid);
        if (!p) return undefined;
        p.mem ??= new ProcMem(pid);
        return p.mem.ok ? p.mem : undefined;
      },
      warn: (key, msg) => this.warn(key, msg),
    }, (profile) => tagFromPool(profile, this.opts.poolAllocs));
    return pools;
  }

  private addCost(p: Proc): void {
    const c = p.pools.cost;
    const d = this.stats.discovery;
    for (const k of Object.keys(d) as (keyof WalkCost)[]) d[k] += c[k];
  }

  private gone(pid: number, code: number, t: number): void {
    const p = this.procs.get(pid);
    if (!p) return;
    this.procs.delete(pid);
    this.addCost(p);
    // the pid may be given to a new process later: it is a new target then
    this.seen.delete(pid);
    const st = startTicks(pid);
    if (st) this.dying.set(pid, st);
    this.interner.forget(pid);
    p.mem?.close();
    this.emit({ kind: 'exit', pid, t, code });
    // A process whose probes others inherited keeps them (detaching would detach those too)
    // until the last of them is gone.
    const heirs = (root: number) => [...this.procs.values()].some((q) => q.root === root);
    if (heirs(pid)) this.orphanedRoots.add(pid);
    else void this.loader.command(['untrace', pid]);
    if (p.root !== undefined && this.orphanedRoots.has(p.root) && !heirs(p.root)) {
      this.orphanedRoots.delete(p.root);
      void this.loader.command(['untrace', p.root]);
    }
  }

  /** Traced processes found gone from /proc, and when (their exit notification may follow). */
  private readonly missing = new Map<number, number>();

  /** Exited processes whose probes live on in the processes that inherited them. */
  private readonly orphanedRoots = new Set<number>();

  private onNotify(kind: number, pid: number, ts: bigint, a0: number, a1: number): void {
    if (this.stopped) return;
    if (kind === NOTIFY_EXIT) {
      // task->exit_code: a signal in the low 7 bits, else the status in bits 8-15
      const code = a0 & 0x7f ? 128 + (a0 & 0x7f) : (a0 >> 8) & 0xff;
      this.gone(pid, code, this.t(ts));
    } else if (kind === NOTIFY_FORK) {
      const child = a0;
      if (!this.procs.has(pid)) return;
      // inherited every probe: traced since the fork, nothing to attach (even when a scan of
      // /proc saw it first: its attach then finds it adopted)
      if (a1 === 1) this.adopt(child, pid, this.t(ts));
      else if (!this.seen.has(child) && this.followForks) this.queueAttach(child, pid, this.t(ts));
    }
  }

  private onLost(total: number): void {
    if (total > this.lostSeen) {
      const count = total - this.lostSeen;
      this.lostSeen = total;
      this.stats.lost += count;
      this.emit({ kind: 'lost', pid: 0, t: this.now(), count, reason: 'BPF ring buffer full' });
    }
  }

  /** The loader's stacks by its id (distinct per pid and pcs), with their interned id once known. */
  private readonly loaderStacks = new Map<number, { pid: number; pcs: number[]; id: number }>();

  private stack(proc: Proc | undefined, pid: number, loaderId: number): number {
    const s = loaderId ? this.loaderStacks.get(loaderId) : undefined;
    if (!s) return 0;
    if (s.id !== 0) return s.id;
    // a stack cut short by an unknown module is not kept: the next call re-reads the maps
    return (s.id = this.internStack(proc, pid, s.pcs));
  }

  private internStack(proc: Proc | undefined, pid: number, pcs: number[]): number {
    const frames: Frame[] = [];
    for (const pc of pcs) {
      let mod = proc?.modules.moduleOf(pc);
      if (mod === undefined && proc && frames.length === 0) {
        // a library loaded since attach: read the maps again (once per miss of a first frame)
        proc.modules.refresh(this.opts.sink, this.now());
        mod = proc.modules.moduleOf(pc);
      }
      // frame-pointer walks through code built without them end in garbage: stop there
      if (mod === undefined) break;
      frames.push(makeFrame({ pc, module: mod }));
    }
    return frames.length ? this.interner.stackId(frames, pid) : 0;
  }

  private onCall(r: CallRecord): void {
    const spec = this.specs[r.spec];
    if (!spec || this.stopped) return;
    this.stats.calls++;
    const fn = spec.fn;
    if (fn.okIfRetZero && r.ret !== 0) return;
    const { pid, tid } = r;
    const t = r.t;
    const proc = this.procs.get(pid);
    switch (fn.role) {
      case 'alloc': {
        const addr = value(r, fn.addr);
        if (addr) this.emit({ kind: 'alloc', pid, t, tid, addr, size: sizeOf(r, fn), stack: this.stack(proc, pid, r.stack) });
        break;
      }
      case 'free': {
        const addr = value(r, fn.addr);
        if (addr) this.emit({ kind: 'free', pid, t, tid, addr });
        break;
      }
      case 'realloc': {
        const oldAddr = value(r, fn.old);
        const addr = value(r, fn.addr);
        const sz = sizeOf(r, fn);
        if (addr === 0 && sz !== 0) break; // failed: the old block is untouched
        this.emit({ kind: 'realloc', pid, t, tid, oldAddr, addr, size: addr ? sz : 0, stack: addr ? this.stack(proc, pid, r.stack) : 0 });
        break;
      }
      case 'pool-create': {
        const pool = value(r, fn.pool);
        if (!pool) break;
        const parent = value(r, fn.parent);
        if (proc && parent) proc.pools.ensure(parent, spec.profile, t);
        const stack = this.stack(proc, pid, r.stack);
        // tags not probed: the tag its creation site's pools had (read again at its destroy)
        const tag = fn.tag ? r.str : (proc?.pools.siteTag(stack) ?? '');
        this.emit({ kind: 'pool-create', pid, t, tid, pool, parent, poolKind: spec.profile.poolKind ?? spec.profile.name, tag, stack });
        if (r.walkNodes > 0) this.emit({ kind: 'pool-size', pid, t, pool, bytes: r.walkBytes });
        proc?.pools.created(pool, parent, spec.profile, tag, stack, !fn.tag && tag !== '');
        break;
      }
      case 'pool-destroy':
      case 'pool-clear': {
        const pool = value(r, fn.pool);
        if (!pool) break;
        proc?.pools.ensure(pool, spec.profile, t);
        // the tag the probe read from the pool (tags not probed: specs.ts tagFromPool)
        if (r.str && proc?.pools.retag(pool, r.str)) this.emit({ kind: 'pool-tag', pid, t, pool, tag: r.str });
        if (r.walkNodes > 0) this.emit({ kind: 'pool-size', pid, t, pool, bytes: r.walkBytes });
        const stack = this.stack(proc, pid, r.stack);
        this.emit(fn.role === 'pool-destroy' ? { kind: 'pool-destroy', pid, t, pool, stack } : { kind: 'pool-clear', pid, t, pool, stack });
        proc?.pools.forget(pool, fn.role === 'pool-destroy');
        break;
      }
      case 'pool-alloc':
        if (proc) proc.pools.ensure(value(r, fn.pool), spec.profile, t);
        this.emit({ kind: 'pool-alloc', pid, t, tid, pool: value(r, fn.pool), size: sizeOf(r, fn), addr: value(r, fn.addr), stack: this.stack(proc, pid, r.stack) });
        break;
      case 'pool-free':
        if (proc) proc.pools.ensure(value(r, fn.pool), spec.profile, t);
        this.emit({ kind: 'pool-free', pid, t, pool: value(r, fn.pool), addr: value(r, fn.addr) });
        break;
      case 'pool-tag': {
        const pool = value(r, fn.pool);
        if (!pool) break;
        proc?.pools.ensure(pool, spec.profile, t);
        proc?.pools.retag(pool, r.str);
        this.emit({ kind: 'pool-tag', pid, t, pool, tag: r.str });
        break;
      }
    }
  }

  /** Reads the size of every live pool (found at attach or created since) from the process' memory. */
  samplePools(limitPerProcess = 16384): void {
    const t = this.now();
    for (const proc of this.procs.values()) {
      if (this.opts.walkOnly) proc.pools.rewalk(this.opts.profiles, t);
      proc.pools.sample(t, limitPerProcess);
    }
  }

  /** Every traced process's resident set now, and its command line when it changed (a worker
   *  retitles itself after fork). The RSS samples also give a process that makes no call its
   *  traced time: the trace then shows it traced until the end, not for 0 µs. */
  sampleProcesses(): void {
    const t = this.now();
    for (const proc of this.procs.values()) {
      const rss = residentBytes(proc.pid);
      if (rss === undefined) continue;
      const command = commandOf(proc.pid);
      if (command && command !== proc.command) {
        proc.command = command;
        this.emit({ kind: 'process', pid: proc.pid, t, ppid: ppidOf(proc.pid), command, exe: exeOf(proc.pid) ?? '' });
      }
      this.emit({ kind: 'rss', pid: proc.pid, t, bytes: rss });
    }
  }

  /** Aggregate mode: the kernel-side table (live blocks per call site). */
  aggregate(): Promise<AggRow[]> {
    return this.loader.aggregate();
  }

  specOf(index: number): ProbeSpec | undefined {
    return this.specs[index];
  }

  /** pc's module and file offset in process pid (for live symbol names). */
  locate(pid: number, pc: number): { path: string; fileOffset: number } | undefined {
    const p = this.procs.get(pid);
    if (p && p.modules.moduleOf(pc) === undefined) p.modules.refresh(this.opts.sink, this.now());
    return p?.modules.locate(pc);
  }

  private stopping: Promise<SessionStats> | undefined;

  /** Detaches cleanly: a last pool sample, then the loader drains what the probes queued.
   *  Once: a second call waits for the first. */
  stop(): Promise<SessionStats> {
    return (this.stopping ??= this.detach());
  }

  private async detach(): Promise<SessionStats> {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    await this.attachQueue;
    if (this.opts.mode === 'events' && (this.opts.poolSampleMs ?? 0) > 0) this.samplePools();
    if (this.opts.mode === 'events') this.sampleProcesses();
    await this.loader.stop();
    this.stopped = true;
    for (const p of this.procs.values()) {
      this.addCost(p);
      p.mem?.close();
    }
    this.endResolve();
    return this.stats;
  }
}
