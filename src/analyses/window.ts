// A sink that keeps, per process, how many bytes each stack allocated in each time bucket and
// in which bucket they were released (or that they are still outstanding at the end). With that
// grid a report can answer "allocated in [a, b] and still outstanding at b" for any bucket range
// without keeping one record per allocation. It also gives exports their full-stack totals.
//
// Buckets cover [b * width, (b + 1) * width) of the trace clock. The width starts at 1 and
// doubles (merging neighbouring buckets) whenever an event falls past the last bucket, so the
// grid never holds more than `buckets` columns and the trace length need not be known up front.

import type { Clock, Event, FastEventSink, Frame, TraceMeta } from '../model/events.js';
import { SymbolTables } from '../model/stacks.js';
import { sampleWeight } from '../engine/sampling.js';
import { postOrder } from '../model/tree.js';

/** Stands for "never released" in Cell.f. */
export const NEVER = -1;

export interface Cell {
  stack: number;
  /** Bucket of allocation. */
  a: number;
  /** Bucket of release, NEVER while outstanding at the end of the trace. */
  f: number;
  bytes: number;
  count: number;
}

export interface WindowProcess {
  pid: number;
  cells: Cell[];
  /** Frames of every stack a cell names, leaf first. Stack 0 is the empty stack. */
  stacks: Map<number, Frame[]>;
}

export interface WindowState {
  /** Clock units per bucket. */
  width: number;
  /** Buckets in use (last bucket index + 1). */
  buckets: number;
  lastT: number;
  processes: WindowProcess[];
}

export interface WindowOptions {
  /** Most buckets the grid may hold (default 64). */
  buckets?: number;
  /** Only this process (default all). */
  pid?: number;
  /** The trace's clock. With 'seq' the grid times events by their global arrival order, as the
   *  engine does (sources number events per process), so ranges match the charts. */
  clock?: Clock;
  /** Sampled trace: each recorded allocation of size s stands for 1 / (1 - exp(-s / sampleBytes))
   *  allocations, as in the engine, so counts and bytes are estimates like the analysis's. */
  sampleBytes?: number;
}

interface Live {
  /** Bytes and count, weighted when the trace is sampled. */
  size: number;
  n: number;
  stack: number;
  t: number;
}

interface Pool {
  parent: number;
  children: Set<number>;
  byAddr: Map<number, Live>;
  /** Allocations without an address, by `stack:bucket`. */
  agg: Map<number, { stack: number; a: number; bytes: number; count: number }>;
}

class ProcState {
  live = new Map<number, Live>();
  pools = new Map<number, Pool>();
  cells = new Map<number, Cell>();
  constructor(readonly pid: number) {}
}

export class WindowSink implements FastEventSink {
  private readonly symbols = new SymbolTables();
  private readonly procs = new Map<number, ProcState>();
  private readonly max: number;
  private width = 1;
  private lastBucket = 0;
  private lastT = 0;
  private arrivals = 0;

  constructor(private readonly opts: WindowOptions = {}) {
    this.max = Math.min(1024, Math.max(2, opts.buckets ?? 64));
  }

  /** Takes the clock and sampling rate from the trace's metadata (readInputs' onMeta, before
   *  the first event), unless the options already named them. */
  begin(meta: TraceMeta): void {
    this.opts.clock ??= meta.clock;
    this.opts.sampleBytes ??= meta.sampleBytes;
  }

  event(e: Event): void {
    const t = this.arrive(e.t);
    switch (e.kind) {
      case 'frame':
        this.symbols.scope(e.pid).defineFrame(e.id, e.frame);
        return;
      case 'stack':
        this.symbols.scope(e.pid).defineStack(e.id, e.parent, e.frame);
        return;
      case 'fork':
        this.symbols.fork(e.pid, e.parentPid);
        return;
      case 'exec':
        this.symbols.reset(e.pid);
        this.procs.delete(e.pid);
        return;
      default:
        break;
    }
    if (this.skip(e.pid)) return;
    switch (e.kind) {
      case 'alloc':
        return this.onAlloc(e.pid, t, e.addr, e.size, e.stack);
      case 'free':
        return this.onFree(e.pid, t, e.addr);
      case 'realloc':
        return this.onRealloc(e.pid, t, e.oldAddr, e.addr, e.size, e.stack);
      case 'pool-create':
        return this.onPoolCreate(e.pid, t, e.pool, e.parent);
      case 'pool-destroy':
        return this.onPoolDestroy(e.pid, t, e.pool);
      case 'pool-clear':
        this.tick(t);
        this.releasePool(this.proc(e.pid), e.pool, t, false);
        return;
      case 'pool-alloc':
        return this.onPoolAlloc(e.pid, t, e.pool, e.size, e.addr, e.stack);
      case 'pool-free': {
        this.tick(t);
        const p = this.proc(e.pid);
        const pool = p.pools.get(e.pool);
        const l = pool?.byAddr.get(e.addr);
        if (pool && l) {
          pool.byAddr.delete(e.addr);
          this.add(p, l.stack, this.bucket(l.t), this.bucket(t), l.size, l.n);
        }
        return;
      }
      default:
        if (t > this.lastT) this.tick(t);
        return;
    }
  }

  // The fast path (FastEventSink): what event() does with the same event, without the object.

  alloc(pid: number, _tid: number, t: number, addr: number, size: number, stack: number): void {
    const at = this.arrive(t);
    if (!this.skip(pid)) this.onAlloc(pid, at, addr, size, stack);
  }
  free(pid: number, _tid: number, t: number, addr: number): void {
    const at = this.arrive(t);
    if (!this.skip(pid)) this.onFree(pid, at, addr);
  }
  realloc(pid: number, _tid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void {
    const at = this.arrive(t);
    if (!this.skip(pid)) this.onRealloc(pid, at, oldAddr, addr, size, stack);
  }
  poolAlloc(pid: number, _tid: number, t: number, pool: number, size: number, addr: number, stack: number): void {
    const at = this.arrive(t);
    if (!this.skip(pid)) this.onPoolAlloc(pid, at, pool, size, addr, stack);
  }
  poolCreate(pid: number, _tid: number, t: number, pool: number, parent: number): void {
    const at = this.arrive(t);
    if (!this.skip(pid)) this.onPoolCreate(pid, at, pool, parent);
  }
  poolDestroy(pid: number, t: number, pool: number): void {
    const at = this.arrive(t);
    if (!this.skip(pid)) this.onPoolDestroy(pid, at, pool);
  }
  /** An allocation freed at once: exactly an alloc and a free of an address no other block has. */
  transient(pid: number, tid: number, t: number, size: number, stack: number, count = 1): void {
    for (let i = 0; i < count; i++) this.transientOne(pid, tid, t, size, stack);
  }

  private transientOne(pid: number, _tid: number, t: number, size: number, stack: number): void {
    const ta = this.arrive(t);
    const tf = this.arrive(t);
    if (this.skip(pid)) return;
    this.tick(ta);
    const p = this.proc(pid);
    const l = this.live(size, stack, ta);
    this.tick(tf);
    this.add(p, stack, this.bucket(ta), this.bucket(tf), l.size, l.n);
  }

  /** Counts an event in arrival order; its time on the grid's clock. */
  private arrive(t: number): number {
    this.arrivals++;
    return this.opts.clock === 'seq' ? this.arrivals : t;
  }

  private skip(pid: number): boolean {
    return this.opts.pid !== undefined && pid !== this.opts.pid;
  }

  private onAlloc(pid: number, t: number, addr: number, size: number, stack: number): void {
    this.tick(t);
    // The address is live again without a free we saw: the old block is gone.
    const p = this.proc(pid);
    this.freeHeap(p, addr, t);
    p.live.set(addr, this.live(size, stack, t));
  }

  private onFree(pid: number, t: number, addr: number): void {
    this.tick(t);
    this.freeHeap(this.proc(pid), addr, t);
  }

  private onRealloc(pid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void {
    this.tick(t);
    const p = this.proc(pid);
    if (addr === 0 && size > 0) return; // realloc failed: the old block stays
    if (oldAddr !== 0) this.freeHeap(p, oldAddr, t);
    if (addr !== 0) {
      this.freeHeap(p, addr, t);
      p.live.set(addr, this.live(size, stack, t));
    }
  }

  private onPoolCreate(pid: number, t: number, addr: number, parent: number): void {
    this.tick(t);
    const p = this.proc(pid);
    const old = p.pools.get(addr);
    if (old) this.releasePool(p, addr, t, true);
    p.pools.set(addr, newPool(parent));
    if (parent !== 0) this.pool(p, parent).children.add(addr);
  }

  private onPoolDestroy(pid: number, t: number, addr: number): void {
    this.tick(t);
    this.releasePool(this.proc(pid), addr, t, true);
  }

  private onPoolAlloc(pid: number, t: number, addr: number, size: number, blockAddr: number, stack: number): void {
    this.tick(t);
    const pool = this.pool(this.proc(pid), addr);
    if (blockAddr !== 0 && !pool.byAddr.has(blockAddr)) {
      pool.byAddr.set(blockAddr, this.live(size, stack, t));
    } else {
      const a = this.bucket(t);
      const key = stack * this.max + a;
      const g = pool.agg.get(key);
      const l = this.live(size, stack, t);
      if (g) {
        g.bytes += l.size;
        g.count += l.n;
      } else pool.agg.set(key, { stack, a, bytes: l.size, count: l.n });
    }
  }

  finish(): WindowState {
    const processes: WindowProcess[] = [];
    for (const p of this.procs.values()) {
      for (const l of p.live.values()) this.add(p, l.stack, this.bucket(l.t), NEVER, l.size, l.n);
      for (const pool of p.pools.values()) {
        for (const l of pool.byAddr.values()) this.add(p, l.stack, this.bucket(l.t), NEVER, l.size, l.n);
        for (const g of pool.agg.values()) this.add(p, g.stack, g.a, NEVER, g.bytes, g.count);
      }
      p.live.clear();
      p.pools.clear();
      const scope = this.symbols.scope(p.pid);
      const stacks = new Map<number, Frame[]>();
      const cells = [...p.cells.values()];
      for (const c of cells) if (!stacks.has(c.stack)) stacks.set(c.stack, scope.stackFrames(c.stack));
      processes.push({ pid: p.pid, cells, stacks });
    }
    processes.sort((a, b) => a.pid - b.pid);
    return { width: this.width, buckets: this.lastBucket + 1, lastT: this.lastT, processes };
  }

  private live(size: number, stack: number, t: number): Live {
    const w = this.opts.sampleBytes ? sampleWeight(size, this.opts.sampleBytes) : 1;
    return { size: size * w, n: w, stack, t };
  }

  private proc(pid: number): ProcState {
    let p = this.procs.get(pid);
    if (!p) {
      p = new ProcState(pid);
      this.procs.set(pid, p);
    }
    return p;
  }

  /** A pool we did not see created (inherited over fork, or a cut trace) is made on first use. */
  private pool(p: ProcState, addr: number): Pool {
    let pool = p.pools.get(addr);
    if (!pool) {
      pool = newPool(0);
      p.pools.set(addr, pool);
    }
    return pool;
  }

  private freeHeap(p: ProcState, addr: number, t: number): void {
    const l = p.live.get(addr);
    if (!l) return;
    p.live.delete(addr);
    this.add(p, l.stack, this.bucket(l.t), this.bucket(t), l.size, l.n);
  }

  /** Releases the pool's allocations and destroys its descendants; `destroy` removes the pool too.
   *  Descendants are walked without recursion, once each: the input decides how deep a tree is,
   *  and a pool named as its own parent (or a loop of them) must end. */
  private releasePool(p: ProcState, addr: number, t: number, destroy: boolean): void {
    const pool = p.pools.get(addr);
    if (!pool) return;
    if (pool.children.size === 0) return this.releaseOne(p, addr, pool, t, destroy);
    postOrder(addr, (a) => [...(p.pools.get(a)?.children ?? [])], (a) => {
      const q = p.pools.get(a);
      if (q) this.releaseOne(p, a, q, t, a === addr ? destroy : true);
    });
  }

  private releaseOne(p: ProcState, addr: number, pool: Pool, t: number, destroy: boolean): void {
    const f = this.bucket(t);
    for (const l of pool.byAddr.values()) this.add(p, l.stack, this.bucket(l.t), f, l.size, l.n);
    for (const g of pool.agg.values()) this.add(p, g.stack, g.a, f, g.bytes, g.count);
    pool.byAddr.clear();
    pool.agg.clear();
    pool.children.clear();
    if (destroy) {
      p.pools.delete(addr);
      const parent = p.pools.get(pool.parent);
      parent?.children.delete(addr);
    }
  }

  private add(p: ProcState, stack: number, a: number, f: number, bytes: number, count: number): void {
    if (f !== NEVER && f < a) f = a; // threads' chunks interleave: a free may carry an earlier time
    // Numeric keys: (stack, a, f) packed; a < max and -1 <= f < max.
    const key = (stack * this.max + a) * (this.max + 1) + f + 1;
    const c = p.cells.get(key);
    if (c) {
      c.bytes += bytes;
      c.count += count;
    } else p.cells.set(key, { stack, a, f, bytes, count });
  }

  private bucket(t: number): number {
    return Math.max(0, Math.floor(t / this.width));
  }

  /** Widens the buckets until t fits, merging cells and pending pool aggregates. */
  private tick(t: number): void {
    if (t > this.lastT) this.lastT = t;
    let shift = 0;
    while (t >= this.width * this.max) {
      this.width *= 2;
      shift++;
    }
    if (shift > 0) this.rebucket(shift);
    const b = this.bucket(t);
    if (b > this.lastBucket) this.lastBucket = b;
  }

  private rebucket(shift: number): void {
    const d = 2 ** shift;
    this.lastBucket = Math.floor(this.lastBucket / d);
    for (const p of this.procs.values()) {
      const cells = p.cells;
      p.cells = new Map();
      for (const c of cells.values()) {
        this.add(p, c.stack, Math.floor(c.a / d), c.f === NEVER ? NEVER : Math.floor(c.f / d), c.bytes, c.count);
      }
      for (const pool of p.pools.values()) {
        if (pool.agg.size === 0) continue;
        const agg = pool.agg;
        pool.agg = new Map();
        for (const g of agg.values()) {
          const a = Math.floor(g.a / d);
          const key = g.stack * this.max + a;
          const h = pool.agg.get(key);
          if (h) {
            h.bytes += g.bytes;
            h.count += g.count;
          } else pool.agg.set(key, { stack: g.stack, a, bytes: g.bytes, count: g.count });
        }
      }
    }
  }
}

function newPool(parent: number): Pool {
  return { parent, children: new Set(), byAddr: new Map(), agg: new Map() };
}

/** Per-stack totals over the whole trace: what exports write. */
export interface StackTotals {
  stack: number;
  allocBytes: number;
  allocCount: number;
  inuseBytes: number;
  inuseCount: number;
}

export function stackTotals(p: WindowProcess): StackTotals[] {
  const m = new Map<number, StackTotals>();
  for (const c of p.cells) {
    let s = m.get(c.stack);
    if (!s) {
      s = { stack: c.stack, allocBytes: 0, allocCount: 0, inuseBytes: 0, inuseCount: 0 };
      m.set(c.stack, s);
    }
    s.allocBytes += c.bytes;
    s.allocCount += c.count;
    if (c.f === NEVER) {
      s.inuseBytes += c.bytes;
      s.inuseCount += c.count;
    }
  }
  return [...m.values()];
}

/** Bytes and count per stack outstanding at the end of bucket `b`
 *  (allocated in a bucket ≤ b and not released in a bucket ≤ b). */
export function outstandingAt(p: WindowProcess, b: number): Map<number, { bytes: number; count: number }> {
  const m = new Map<number, { bytes: number; count: number }>();
  for (const c of p.cells) {
    if (c.a > b || (c.f !== NEVER && c.f <= b)) continue;
    const s = m.get(c.stack);
    if (s) {
      s.bytes += c.bytes;
      s.count += c.count;
    } else m.set(c.stack, { bytes: c.bytes, count: c.count });
  }
  return m;
}
