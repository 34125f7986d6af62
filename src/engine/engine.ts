// The engine folds events into per-process state: live heap allocations, pools as a tree, per-
// site and per-pool-class aggregates, bounded time series. It never throws on odd input: what
// does not add up (free of an unknown address, destroy of an unknown pool...) is counted.

import type { Clock, Event, FastEventSink, TraceMeta } from '../model/events.js';
import { SymbolTables } from '../model/stacks.js';
import { postOrder } from '../model/tree.js';
import { LiveTable } from './live-table.js';
import { MappingTable } from './mappings.js';
import { BoundedSeries } from './series.js';
import { SiteTable } from './sites.js';
import type { EngineState, PoolClassState, PoolSiteAcc, PoolState, ProcState } from './state.js';
import { sampleWeight } from './sampling.js';
import { ACC, ACC_W, ALLOCS, BYTES, COUNT, CREATE_STACK, CREATE_T, NACC, ROW, SEQ, SLOTS, YoungPools } from './young-pools.js';

export interface EngineOptions {
  /** Trace metadata when known before the events (clock, sampling). */
  meta?: TraceMeta;
  /** Keep short-lived parentless pools as rows (young-pools.ts) until they need to be objects
   *  (default true; false folds every pool as an object, as tests compare). */
  youngPools?: boolean;
}

/** Slots of the direct-mapped cache of recently freed addresses (tells a double free from an unknown one). */
const RECENT_FREES = 4096;
/** A pool gets a series of its own from this many allocations on. */
const POOL_SERIES_AFTER = 8;
/** mmap's flag for memory that is no file's: such mappings are allocations, with a site. */
const MAP_ANONYMOUS = 0x20;
/** Destroyed pools remembered per process (late uses of a dying pool); addresses are reused by
 *  new pools, so this many covers far more than any pool's teardown. */
const DEAD_POOLS = 65536;
/** Shared by every pool without children (most of them): never added to (see makePool). */
const NO_CHILDREN: Set<PoolState> = new Set();

export class Engine implements FastEventSink {
  private readonly procs = new Map<number, ProcState>();
  private readonly order: ProcState[] = [];
  private readonly symbols = new SymbolTables();
  private readonly markers: { t: number; label: string }[] = [];
  private meta: TraceMeta | undefined;
  private clock: Clock = 'ns';
  private sampleBytes = 0;
  private events = 0;
  private lost = 0;
  private firstT = Infinity;
  private lastT = -Infinity;
  private lastPid = -1;
  private lastProc: ProcState | undefined;
  private readonly youngOn: boolean;
  private poolSeq = 0;

  constructor(opts: EngineOptions = {}) {
    if (opts.meta) this.begin(opts.meta);
    this.youngOn = opts.youngPools ?? true;
  }

  /** Sets the trace metadata (before the first event, so sampling weights apply). */
  begin(meta: TraceMeta): void {
    this.meta = meta;
    this.clock = meta.clock;
    this.sampleBytes = meta.sampleBytes && meta.sampleBytes > 0 ? meta.sampleBytes : 0;
  }

  event(e: Event): void {
    // Events come in a dozen shapes: only `kind` is read before the switch, so that every other
    // field is read where a single shape reaches (monomorphic, fast) — see tick().
    switch (e.kind) {
      case 'alloc':
        return this.alloc(e.pid, e.tid, e.t, e.addr, e.size, e.stack);
      case 'free':
        return this.free(e.pid, e.tid, e.t, e.addr);
      case 'realloc':
        return this.realloc(e.pid, e.tid, e.t, e.oldAddr, e.addr, e.size, e.stack);
      case 'pool-alloc':
        return this.poolAlloc(e.pid, e.tid, e.t, e.pool, e.size, e.addr, e.stack);
      case 'pool-free': {
        const t = this.tick(e.t);
        return this.poolFree(this.proc(e.pid, t), e.pool, e.addr, t);
      }
      case 'pool-create':
        return this.poolCreate(e.pid, e.tid, e.t, e.pool, e.parent, e.poolKind, e.tag, e.stack);
      case 'pool-destroy':
        return this.poolDestroy(e.pid, e.t, e.pool, e.stack);
      case 'pool-clear': {
        const t = this.tick(e.t);
        const p = this.proc(e.pid, t);
        const pool = this.poolObject(p, e.pool);
        if (!pool) {
          if (!this.dead(p, e.pool)) this.unknownPool(p, 'destroy');
        } else {
          pool.clears++;
          this.emptyPool(p, pool, t);
          this.recordPool(p, pool, t);
          this.afterPools(p, t);
        }
        return;
      }
      case 'pool-tag': {
        const t = this.tick(e.t);
        const p = this.proc(e.pid, t);
        const pool = this.poolOrImplicit(p, e.pool, t);
        if (pool && pool.tag !== e.tag) {
          pool.tag = e.tag;
          this.moveToClass(p, pool, t);
        }
        return;
      }
      case 'pool-size': {
        const t = this.tick(e.t);
        const p = this.proc(e.pid, t);
        const pool = this.poolOrImplicit(p, e.pool, t);
        if (!pool) return;
        const delta = e.bytes - pool.bytes;
        if (delta === 0) return;
        // A sampled size is growth only for sources that see no allocations: where allocations
        // are seen, a size learnt late (a log line printed as a pool is torn down) is no sign of
        // activity, and must not push the start of teardown past the real last allocation.
        if (delta > 0 && !p.sawPoolAlloc) p.lastGrowT = t;
        pool.sizedBytes += delta;
        pool.bytes = e.bytes;
        p.poolBytes += delta;
        this.classBytes(pool.cls, delta, t);
        this.recordPool(p, pool, t);
        this.afterPools(p, t);
        return;
      }
      case 'pool-found': {
        const t = this.tick(e.t);
        return this.poolFound(this.proc(e.pid, t), e.pool, e.parent, e.poolKind, e.tag, t);
      }
      case 'pool-cleanup': {
        const t = this.tick(e.t);
        this.proc(e.pid, t);
        return;
      }
      case 'mmap': {
        const t = this.tick(e.t);
        return this.mmap(this.proc(e.pid, t), e.addr, e.size, e.flags, e.stack, t);
      }
      case 'munmap': {
        const t = this.tick(e.t);
        const p = this.proc(e.pid, t);
        // An address never mapped (a file mapping a source did not report, an inherited one) is no anomaly.
        if (p.mappings && e.size > 0) this.unmap(p, p.mappings, e.addr, e.addr + e.size, t);
        return;
      }
      case 'rss': {
        const t = this.tick(e.t);
        const p = this.proc(e.pid, t);
        p.rssBytes = e.bytes;
        (p.rss ??= new BoundedSeries()).add(t, e.bytes);
        return;
      }
      case 'marker': {
        const t = this.tick(e.t);
        if (e.pid === 0) this.markers.push({ t, label: e.label });
        else this.proc(e.pid, t).markers.push({ t, label: e.label });
        return;
      }
      case 'lost': {
        this.tick(e.t);
        this.lost += e.count;
        return;
      }
      case 'frame': {
        this.events++; // definitions carry no time
        this.symbols.scope(e.pid).defineFrame(e.id, e.frame);
        return;
      }
      case 'stack': {
        this.events++;
        this.symbols.scope(e.pid).defineStack(e.id, e.parent, e.frame);
        return;
      }
      case 'process': {
        const t = this.tick(e.t);
        const p = this.proc(e.pid, t);
        p.ppid = e.ppid;
        p.command = e.command;
        p.exe = e.exe;
        return;
      }
      case 'fork': {
        const t = this.tick(e.t);
        this.symbols.fork(e.pid, e.parentPid);
        const old = this.procs.get(e.pid);
        // A source may announce the child (a 'process' event) before its fork: reuse that entry
        // while it holds nothing; a pid seen with memory before is an earlier process (pid reuse).
        const fresh = old && old.allocCount === 0 && old.pools.size === 0 && old.young.count === 0 && old.heap.count === 0;
        if (old && !fresh) old.endT = Math.max(old.endT, t);
        const p = fresh ? old : this.newProc(e.pid, t);
        p.ppid = e.parentPid;
        p.forked = true;
        p.scope = this.symbols.scope(e.pid);
        const parent = this.procs.get(e.parentPid);
        if (parent) {
          p.command ||= parent.command;
          p.exe ||= parent.exe;
        }
        return;
      }
      case 'exec': {
        const t = this.tick(e.t);
        const old = this.proc(e.pid, t);
        old.replacedByExec = true;
        old.endT = t;
        // The old image keeps its own symbol scope for the report; the new one starts afresh.
        this.symbols.reset(e.pid);
        const p = this.newProc(e.pid, t);
        p.ppid = old.ppid;
        p.command = e.command;
        p.exe = e.exe;
        return;
      }
      case 'exit': {
        const t = this.tick(e.t);
        const p = this.proc(e.pid, t);
        p.exited = true;
        p.exitCode = e.code;
        return;
      }
      default: {
        // brk, shm, kernel, module: not folded into state.
        const t = this.tick(e.t);
        if (e.pid !== 0) this.proc(e.pid, t);
        return;
      }
    }
  }

  // --- the fast path (FastEventSink): the commonest events without an Event object -----------

  alloc(pid: number, _tid: number, rawT: number, addr: number, size: number, stack: number): void {
    const t = this.tick(rawT);
    const p = this.proc(pid, t);
    this.heapAlloc(p, addr, size, stack, t);
    this.afterHeap(p, t);
  }

  free(pid: number, _tid: number, rawT: number, addr: number): void {
    const t = this.tick(rawT);
    if (addr === 0) return;
    const p = this.proc(pid, t);
    this.heapFree(p, addr, t);
    this.afterHeap(p, t);
  }

  transient(pid: number, _tid: number, rawT: number, size: number, stack: number, count = 1): void {
    const t = this.tick(rawT);
    // The frees and the other allocations: two records each, as alloc + free would count.
    for (let i = 1; i < 2 * count; i++) this.tick(rawT);
    const p = this.proc(pid, t);
    const site = p.sites.of(stack, false);
    const w = this.weight(size);
    p.allocCount += w * count;
    p.allocBytes += w * size * count;
    p.frees += count;
    p.sites.allocated(site, w * count, w * size * count);
    p.heapSeries.touch(p.heapBytes + w * size);
    p.total.touch(p.heapBytes + p.poolBytes + w * size);
  }

  realloc(pid: number, _tid: number, rawT: number, oldAddr: number, addr: number, size: number, stack: number): void {
    const t = this.tick(rawT);
    const p = this.proc(pid, t);
    if (oldAddr === 0) {
      if (addr !== 0) this.heapAlloc(p, addr, size, stack, t);
    } else if (addr === 0 && size === 0) {
      this.heapFree(p, oldAddr, t);
    } else if (addr === 0) {
      // realloc failed: the old block stays.
    } else {
      const i = p.heap.find(oldAddr);
      if (i < 0) {
        if (p.forked) p.anomalies.inheritedFree = (p.anomalies.inheritedFree ?? 0) + 1;
        else p.anomalies.unknownRealloc++;
      } else this.heapRemove(p, i, t);
      this.heapAlloc(p, addr, size, stack, t);
    }
    this.afterHeap(p, t);
  }

  poolAlloc(pid: number, _tid: number, rawT: number, pool: number, size: number, addr: number, stack: number): void {
    const t = this.tick(rawT);
    const p = this.proc(pid, t);
    if (p.young.count !== 0) {
      const row = p.young.find(pool);
      if (row >= 0) {
        if (addr === 0 && this.youngAlloc(p, row, size, stack, t)) return;
        this.allocInPool(p, this.promote(p, pool, row), size, addr, stack, t);
        return;
      }
    }
    const target = this.poolOrImplicit(p, pool, t);
    if (target) this.allocInPool(p, target, size, addr, stack, t);
    else this.deadAlloc(p, size, stack, t);
  }

  poolCreate(pid: number, _tid: number, rawT: number, pool: number, parent: number, poolKind: string, tag: string, stack: number): void {
    const t = this.tick(rawT);
    this.createPool(this.proc(pid, t), pool, parent, poolKind, tag, stack, t);
  }

  poolDestroy(pid: number, rawT: number, addr: number, _stack: number): void {
    const t = this.tick(rawT);
    const p = this.proc(pid, t);
    if (p.young.count !== 0) {
      const row = p.young.find(addr);
      if (row >= 0) {
        this.youngDestroy(p, addr, row, t);
        this.afterPools(p, t);
        return;
      }
    }
    const pool = p.pools.get(addr);
    if (!pool) {
      // a child destroyed by its dying parent, after the parent's destroy was recorded
      if (!this.dead(p, addr)) this.unknownPool(p, 'destroy');
    } else {
      this.destroyPool(p, pool, t, true);
      this.afterPools(p, t);
    }
  }

  /** Counts an event and returns its time in the engine's clock. */
  private tick(raw: number): number {
    this.events++;
    // With a 'seq' clock, sources number events per process (a log line's index in its process),
    // which erases the time a process spent idle while others worked. The global arrival order
    // keeps it, and is just as valid a sequence: use it.
    const t = this.clock === 'seq' ? this.events : raw;
    if (t > this.lastT) this.lastT = t;
    if (t < this.firstT) this.firstT = t;
    return t;
  }

  finish(): EngineState {
    for (const p of this.order) this.settlePools(p);
    return {
      meta: this.meta,
      clock: this.clock,
      estimated: this.sampleBytes > 0,
      sampleBytes: this.sampleBytes,
      events: this.events,
      lost: this.lost,
      processes: this.order.slice(),
      symbols: this.symbols,
      markers: this.markers.slice(),
      firstT: this.firstT === Infinity ? 0 : this.firstT,
      lastT: this.lastT === -Infinity ? 0 : this.lastT,
    };
  }

  // --- processes ----------------------------------------------------------------------------

  private proc(pid: number, t: number): ProcState {
    let p: ProcState | undefined;
    if (pid === this.lastPid) p = this.lastProc!;
    else {
      p = this.procs.get(pid) ?? this.newProc(pid, t);
      this.lastPid = pid;
      this.lastProc = p;
    }
    if (t > p.endT) p.endT = t;
    return p;
  }

  private newProc(pid: number, t: number): ProcState {
    const p: ProcState = {
      pid, ppid: 0, command: '', exe: '', forked: false,
      startT: t, endT: t, lastGrowT: t, sawPoolAlloc: false, exited: false,
      heap: new LiveTable(), heapBytes: 0, heapCount: 0, recentFree: undefined, deadPools: undefined,
      poolBytes: 0, poolCount: 0, mmapBytes: 0, mappings: undefined, mmapSites: undefined,
      allocCount: 0, allocBytes: 0, frees: 0,
      anomalies: { unknownFree: 0, doubleFree: 0, unknownRealloc: 0, unknownPool: 0, unknownPoolDestroy: 0 },
      sites: new SiteTable(), pools: new Map(), young: new YoungPools(), poolsUnordered: false, classes: new Map(), classIndex: new Map(),
      total: new BoundedSeries(), heapSeries: new BoundedSeries(), poolSeries: new BoundedSeries(),
      rss: undefined, markers: [], scope: this.symbols.scope(pid),
    };
    this.procs.set(pid, p);
    this.order.push(p);
    this.lastPid = pid;
    this.lastProc = p;
    return p;
  }

  private afterHeap(p: ProcState, t: number): void {
    p.heapSeries.add(t, p.heapBytes);
    p.total.add(t, p.heapBytes + p.poolBytes);
  }

  private afterPools(p: ProcState, t: number): void {
    p.poolSeries.add(t, p.poolBytes);
    p.total.add(t, p.heapBytes + p.poolBytes);
  }

  // --- heap -----------------------------------------------------------------------------------

  private weight(size: number): number {
    return this.sampleBytes > 0 ? sampleWeight(size, this.sampleBytes) : 1;
  }

  private heapAlloc(p: ProcState, addr: number, size: number, stack: number, t: number): void {
    if (addr === 0) return;
    const heap = p.heap;
    heap.reserve();
    const slot = heap.probe(addr);
    const site = p.sites.of(stack, false);
    if (slot >= 0) {
      // The address is live again without a free we saw: the old block is gone.
      this.heapRemove(p, slot, t);
      heap.insertNew(addr, size, site, t);
    } else heap.insertAt(~slot, addr, size, site, t);
    const w = this.weight(size);
    p.heapCount += w;
    p.heapBytes += w * size;
    p.allocCount += w;
    p.allocBytes += w * size;
    p.sites.alloc(site, w, w * size, t);
    p.lastGrowT = t;
    if (p.recentFree !== undefined) {
      const h = recentSlot(addr);
      if (p.recentFree[h] === addr) p.recentFree[h] = 0;
    }
  }

  private heapFree(p: ProcState, addr: number, t: number): void {
    const i = p.heap.find(addr);
    if (i < 0) {
      if (p.recentFree?.[recentSlot(addr)] === addr) p.anomalies.doubleFree++;
      else if (p.forked) p.anomalies.inheritedFree = (p.anomalies.inheritedFree ?? 0) + 1;
      else p.anomalies.unknownFree++;
      return;
    }
    this.heapRemove(p, i, t);
    (p.recentFree ??= new Float64Array(RECENT_FREES))[recentSlot(addr)] = addr;
  }

  private heapRemove(p: ProcState, i: number, t: number): void {
    const heap = p.heap;
    const size = heap.sizeAt(i);
    const site = heap.siteAt(i);
    heap.removeAt(i);
    const w = this.weight(size);
    p.heapCount -= w;
    p.heapBytes -= w * size;
    if (p.heapCount < 1e-6) p.heapCount = p.heapBytes = 0;
    p.frees++;
    p.sites.release(site, w, w * size, t);
  }

  // --- mappings (rare: kept apart from the heap's tables) ------------------------------------

  private mmap(p: ProcState, addr: number, size: number, flags: number, stack: number, t: number): void {
    p.lastGrowT = t;
    if (!(size > 0) || addr + size <= addr) return;
    const m = (p.mappings ??= new MappingTable());
    // A mapping over mapped addresses (MAP_FIXED, or an unmap no source saw) replaces them.
    this.unmap(p, m, addr, addr + size, t);
    let site = -1;
    if (flags & MAP_ANONYMOUS) {
      const sites = (p.mmapSites ??= new SiteTable());
      site = sites.of(stack, false);
      sites.alloc(site, 1, size, t);
    }
    m.add(addr, addr + size, site, t);
    p.mmapBytes += size;
  }

  private unmap(p: ProcState, m: MappingTable, lo: number, hi: number, t: number): void {
    if (m.length === 0) return;
    const sites = p.mmapSites;
    p.mmapBytes -= m.unmap(lo, hi, (site, bytes, pieces) => {
      // A site counts the ranges it holds: a hole punched in one makes two.
      if (site >= 0) sites!.release(site, -pieces, bytes, t);
    });
  }

  // --- pools ----------------------------------------------------------------------------------

  private unknownPool(p: ProcState, what: 'destroy' | 'use'): void {
    if (p.forked) p.anomalies.inheritedPool = (p.anomalies.inheritedPool ?? 0) + 1;
    else if (what === 'destroy') p.anomalies.unknownPoolDestroy++;
    else p.anomalies.unknownPool++;
  }

  /** The pool at an address as an object (a young one is promoted), or undefined. */
  private poolObject(p: ProcState, addr: number): PoolState | undefined {
    const pool = p.pools.get(addr);
    if (pool || p.young.count === 0) return pool;
    const row = p.young.find(addr);
    return row >= 0 ? this.promote(p, addr, row) : undefined;
  }

  /** The pool at an address, made up (and counted as an anomaly) when unknown; undefined for a
   *  pool destroyed and not created since (a dying pool's cleanups use it). */
  private poolOrImplicit(p: ProcState, addr: number, t: number): PoolState | undefined {
    const pool = this.poolObject(p, addr);
    if (pool) return pool;
    if (this.dead(p, addr)) return undefined;
    this.unknownPool(p, 'use');
    return this.makePool(p, addr, undefined, '', '', 0, t, true);
  }

  private dead(p: ProcState, addr: number): boolean {
    return p.deadPools !== undefined && p.deadPools.has(addr);
  }

  private markDead(p: ProcState, addr: number): void {
    const d = (p.deadPools ??= new Set());
    d.add(addr);
    if (d.size > DEAD_POOLS) d.delete(d.values().next().value as number);
  }

  /** An allocation into a pool whose destroy has begun: its site allocated it, and the pool's
   *  end releases it at once (it never outlives the pool, and makes no pool of its own). */
  private deadAlloc(p: ProcState, size: number, stack: number, t: number): void {
    const site = p.sites.of(stack, true);
    const w = this.weight(size);
    const bytes = w * size;
    p.allocCount += w;
    p.allocBytes += bytes;
    p.frees += w;
    p.sites.alloc(site, w, bytes, t);
    p.sites.release(site, w, bytes, t);
  }

  /** A pool alive before the trace, found in the process's memory. Parents come before their
   *  children; a pool already known keeps what the trace says of it. */
  private poolFound(p: ProcState, addr: number, parentAddr: number, kind: string, tag: string, t: number): void {
    if (addr === 0) return;
    const known = this.poolObject(p, addr);
    const parent = parentAddr !== 0 ? this.poolObject(p, parentAddr) : undefined;
    if (known) {
      // first seen in use (an anomaly then): now placed, tagged, and known to predate the trace
      if (!known.implicit) return;
      if (parent && !known.parent && !ancestorOf(known, parent)) this.adopt(parent, known);
      known.implicit = false;
      this.leaveClass(p, known, t);
      known.found = true;
      known.tag = tag;
      known.kind = kind;
      this.joinClass(p, known, t);
      return;
    }
    p.deadPools?.delete(addr);
    this.makePool(p, addr, parent, kind, tag, 0, t, false, true);
  }

  private adopt(parent: PoolState, child: PoolState): void {
    child.parent = parent;
    if (parent.children === NO_CHILDREN) parent.children = new Set();
    parent.children.add(child);
  }

  private createPool(p: ProcState, addr: number, parentAddr: number, kind: string, tag: string, stack: number, t: number): void {
    // Same address again without a destroy we saw: the old pool is gone.
    const row = p.young.count !== 0 ? p.young.find(addr) : -1;
    const old = row >= 0 ? undefined : p.pools.get(addr);
    if (old && old.found && (old.parent?.addr ?? 0) === parentAddr) {
      // A walk of the live pools read this pool before its creation reached us: it is this one.
      return this.createdAfterAll(p, old, kind, tag, stack, t);
    }
    if (old && old.implicit && old.allocs === 0 && old.sizedBytes === 0 && parentAddr !== addr) {
      // Named only as a parent (or by a tag) before its creation reached us: it is this pool,
      // with its children. (A pool seen in use is an older one at the same address: it goes.)
      // The creation's parent wins; one of its own descendants named as its parent (a cycle)
      // is cut loose from its parent first.
      const parent = parentAddr !== 0 ? this.poolOrImplicit(p, parentAddr, t) : undefined;
      if (parent && parent !== old.parent) {
        if (ancestorOf(old, parent)) {
          p.anomalies.poolParentCycle = (p.anomalies.poolParentCycle ?? 0) + 1;
          parent.parent?.children.delete(parent);
          parent.parent = undefined;
        }
        old.parent?.children.delete(old);
        this.adopt(parent, old);
      }
      return this.createdAfterAll(p, old, kind, tag, stack, t);
    }
    if (row >= 0) this.youngDestroy(p, addr, row, t);
    else if (old) this.destroyPool(p, old, t, true);
    if (p.deadPools !== undefined) p.deadPools.delete(addr);
    let parent: PoolState | undefined;
    if (parentAddr === addr && addr !== 0) p.anomalies.poolOwnParent = (p.anomalies.poolOwnParent ?? 0) + 1;
    else if (parentAddr !== 0) parent = this.poolOrImplicit(p, parentAddr, t);
    const c = parent === undefined && addr !== 0 && this.youngOn ? this.classOf(p, kind, tag, stack) : undefined;
    // A class whose pools mostly outgrow a row (many allocations or sites: a promotion costs
    // more than the object would have) gets objects, but tries a young pool now and then.
    if (c && (c.youngLost <= 2 * c.youngKept + 8 || (c.created & 63) === 0)) {
      c.live++;
      c.created++;
      p.young.add(addr, c, t, stack, this.poolSeq++);
    } else this.makePool(p, addr, parent, kind, tag, stack, t, false);
    p.lastGrowT = t;
    if (old || row >= 0) this.afterPools(p, t);
  }

  /** A found pool turns out to have been created in the trace: it counts as created, with its stack. */
  private createdAfterAll(p: ProcState, pool: PoolState, kind: string, tag: string, stack: number, t: number): void {
    this.leaveClass(p, pool, t);
    pool.found = false;
    pool.implicit = false;
    pool.createStack = stack;
    pool.createT = Math.min(pool.createT, t);
    pool.kind = kind;
    if (tag) pool.tag = tag;
    this.joinClass(p, pool, t);
  }

  /** Allocation without an address into a young pool; false (nothing done) when the pool must
   *  first become an object: a fifth site, or enough allocations to earn a series (recordPool). */
  private youngAlloc(p: ProcState, row: number, size: number, stack: number, t: number): boolean {
    const r = p.young.rows;
    const o = row * ROW;
    const w = this.weight(size);
    if (r[o + ALLOCS]! + w >= POOL_SERIES_AFTER) return false;
    const site = p.sites.of(stack, true);
    const n = r[o + NACC]!;
    let a = o + ACC;
    let k = 0;
    while (k < n && r[a] !== site) {
      k++;
      a += ACC_W;
    }
    if (k === SLOTS) return false;
    const bytes = w * size;
    r[o + BYTES] += bytes;
    r[o + COUNT] += w;
    r[o + ALLOCS] += w;
    if (k < n) {
      r[a + 1] += bytes;
      r[a + 2] += w;
      r[a + 4] = t;
    } else {
      r[a] = site;
      r[a + 1] = bytes;
      r[a + 2] = w;
      r[a + 3] = t;
      r[a + 4] = t;
      r[o + NACC] = n + 1;
    }
    const c = p.young.cls[row]!;
    this.fedByPool(p, c, c.name, site, w, bytes, t);
    return true;
  }

  /** Destroys a young pool: what emptyPool + destroyPool do to a pool without children. */
  private youngDestroy(p: ProcState, addr: number, row: number, t: number): void {
    const y = p.young;
    const r = y.rows;
    const o = row * ROW;
    const c = y.cls[row]!;
    const n = r[o + NACC]!;
    const sites = p.sites;
    for (let k = 0, a = o + ACC; k < n; k++, a += ACC_W) sites.release(r[a]!, r[a + 2]!, r[a + 1]!, t);
    const count = r[o + COUNT]!;
    const bytes = r[o + BYTES]!;
    p.frees += count;
    p.poolBytes -= bytes;
    p.poolCount -= count;
    if (p.poolCount < 1e-6) p.poolCount = 0;
    if (Math.abs(p.poolBytes) < 1e-6) p.poolBytes = 0;
    if (bytes !== 0) this.classBytes(c, -bytes, t);
    y.remove(addr, row);
    c.live--;
    c.destroyed++;
    c.youngKept++;
    this.markDead(p, addr);
  }

  /** A young pool becomes the PoolState it would have been all along. */
  private promote(p: ProcState, addr: number, row: number): PoolState {
    const y = p.young;
    const r = y.rows;
    const o = row * ROW;
    const c = y.cls[row]!;
    const sites = new Map<number, PoolSiteAcc>();
    const n = r[o + NACC]!;
    for (let k = 0, a = o + ACC; k < n; k++, a += ACC_W) sites.set(r[a]!, { bytes: r[a + 1]!, count: r[a + 2]!, first: r[a + 3]!, last: r[a + 4]! });
    // Kind and tag are the class's: a class is found by kind, then by tag (or, untagged, by
    // creation stack, and then its name is '' as the tag was).
    const pool: PoolState = {
      addr, parent: undefined, children: NO_CHILDREN, kind: c.kind, tag: c.name, createT: r[o + CREATE_T]!, createStack: r[o + CREATE_STACK]!, implicit: false, found: false,
      bytes: r[o + BYTES]!, count: r[o + COUNT]!, allocs: r[o + ALLOCS]!, clears: 0, sites,
      live: undefined, sizedBytes: 0, classKey: c.key, cls: c, series: undefined, seq: r[o + SEQ]!,
    };
    y.remove(addr, row);
    c.youngLost++;
    p.pools.set(addr, pool);
    p.poolsUnordered = true;
    return pool;
  }

  /** Before the state is handed out: young pools become objects, and `pools` is in creation order. */
  private settlePools(p: ProcState): void {
    if (p.young.count !== 0) for (const { addr, row } of p.young.entries()) this.promote(p, addr, row);
    if (!p.poolsUnordered) return;
    const pools = [...p.pools.values()].sort((a, b) => a.seq - b.seq);
    p.pools.clear();
    for (const pool of pools) p.pools.set(pool.addr, pool);
    p.poolsUnordered = false;
  }

  private makePool(p: ProcState, addr: number, parent: PoolState | undefined, kind: string, tag: string, stack: number, t: number, implicit: boolean, found = false): PoolState {
    const pool: PoolState = {
      addr, parent, children: NO_CHILDREN, kind, tag, createT: t, createStack: stack, implicit, found,
      bytes: 0, count: 0, allocs: 0, clears: 0, sites: new Map(),
      live: undefined, sizedBytes: 0, classKey: '', cls: undefined as unknown as PoolClassState, series: undefined, seq: this.poolSeq++,
    };
    if (parent) {
      if (parent.children === NO_CHILDREN) parent.children = new Set();
      parent.children.add(pool);
    }
    p.pools.set(addr, pool);
    this.joinClass(p, pool, t);
    return pool;
  }

  /** The class of pools of this kind and tag (or creation stack, untagged), created on first use. */
  private classOf(p: ProcState, kind: string, tag: string, stack: number): PoolClassState {
    // Classes by kind, then by tag or creation stack: no key string built per pool on the hot path.
    let byKind = p.classIndex.get(kind);
    if (!byKind) p.classIndex.set(kind, (byKind = new Map()));
    const sub: string | number = tag || stack;
    let c = byKind.get(sub);
    if (!c) {
      const key = tag ? `${kind}\u0000${tag}` : `${kind}\u0000@${stack}`;
      c = {
        key, kind, name: tag, stack, live: 0, created: 0, found: 0, destroyed: 0,
        bytes: 0, peakBytes: 0, series: new BoundedSeries(), fed: new Map(), youngLost: 0, youngKept: 0,
      };
      p.classes.set(key, c);
      byKind.set(sub, c);
    }
    return c;
  }

  private joinClass(p: ProcState, pool: PoolState, t: number): PoolClassState {
    const c = this.classOf(p, pool.kind, pool.tag, pool.createStack);
    pool.classKey = c.key;
    pool.cls = c;
    c.live++;
    // a pool whose creation was not seen (found alive, or first seen in use) is not "created"
    if (pool.found || pool.implicit) c.found++;
    else c.created++;
    if (pool.bytes !== 0) this.classBytes(c, pool.bytes, t);
    return c;
  }

  private moveToClass(p: ProcState, pool: PoolState, t: number): void {
    this.leaveClass(p, pool, t);
    this.joinClass(p, pool, t);
  }

  /** Undoes joinClass (before the pool joins another class, or the same one on other terms). */
  private leaveClass(p: ProcState, pool: PoolState, t: number): void {
    const old = pool.cls;
    old.live--;
    if (pool.found || pool.implicit) old.found--;
    else old.created--;
    if (pool.bytes !== 0) this.classBytes(old, -pool.bytes, t);
    if (old.created === 0 && old.found === 0 && old.destroyed === 0) {
      p.classes.delete(old.key);
      p.classIndex.get(old.kind)?.delete(old.name || old.stack);
    }
  }

  private classBytes(c: PoolClassState, delta: number, t: number): void {
    c.bytes += delta;
    if (c.bytes < 1e-6 && c.bytes > -1e-6) c.bytes = 0;
    if (c.bytes > c.peakBytes) c.peakBytes = c.bytes;
    c.series.add(t, c.bytes);
  }

  private recordPool(p: ProcState, pool: PoolState, t: number): void {
    if (pool.series) pool.series.add(t, pool.bytes);
    else if (pool.allocs >= POOL_SERIES_AFTER || pool.clears > 0 || pool.sizedBytes !== 0) {
      // Most pools die young after a few allocations (a request's): they get no series of their
      // own (their class has one). A pool that lives on starts its series here, from zero at its creation.
      pool.series = new BoundedSeries();
      // a found pool held its bytes before the trace: its series starts at its found size
      if (!pool.found) pool.series.add(pool.createT, 0);
      pool.series.add(t, pool.bytes);
    }
  }

  private allocInPool(p: ProcState, pool: PoolState, size: number, addr: number, stack: number, t: number): void {
    const site = p.sites.of(stack, true);
    const w = this.weight(size);
    const bytes = w * size;
    if (addr !== 0) {
      const live = (pool.live ??= new LiveTable());
      const prev = live.find(addr);
      if (prev >= 0) this.poolRelease(p, pool, prev, t);
      live.set(addr, size, site, t);
    }
    pool.bytes += bytes;
    pool.count += w;
    pool.allocs += w;
    const acc = pool.sites.get(site);
    if (acc) {
      acc.bytes += bytes;
      acc.count += w;
      acc.last = t;
    } else pool.sites.set(site, { bytes, count: w, first: t, last: t });
    this.recordPool(p, pool, t);
    this.fedByPool(p, pool.cls, pool.tag, site, w, bytes, t);
  }

  /** What an allocation into a pool does beyond the pool itself: process, site, class, series. */
  private fedByPool(p: ProcState, c: PoolClassState, tag: string, site: number, w: number, bytes: number, t: number): void {
    p.poolBytes += bytes;
    p.poolCount += w;
    p.allocCount += w;
    p.allocBytes += bytes;
    p.lastGrowT = t;
    p.sawPoolAlloc = true;
    const sites = p.sites;
    sites.alloc(site, w, bytes, t);
    sites.poolTag[site] = tag || undefined;
    const fed = c.fed.get(site);
    if (fed) {
      fed.bytes += bytes;
      fed.count += w;
    } else c.fed.set(site, { bytes, count: w });
    this.classBytes(c, bytes, t);
    this.afterPools(p, t);
  }

  /** Releases the addressed allocation at index i of the pool's table. */
  private poolRelease(p: ProcState, pool: PoolState, i: number, t: number): void {
    const live = pool.live!;
    const size = live.sizeAt(i);
    const site = live.siteAt(i);
    live.removeAt(i);
    const w = this.weight(size);
    const bytes = w * size;
    pool.bytes -= bytes;
    pool.count -= w;
    const acc = pool.sites.get(site);
    if (acc) {
      acc.bytes -= bytes;
      acc.count -= w;
      if (acc.count < 1e-6) pool.sites.delete(site);
    }
    p.poolBytes -= bytes;
    p.poolCount -= w;
    p.frees++;
    p.sites.release(site, w, bytes, t);
    this.classBytes(pool.cls, -bytes, t);
  }

  private poolFree(p: ProcState, addr: number, blockAddr: number, t: number): void {
    const pool = this.poolObject(p, addr);
    if (!pool) return this.dead(p, addr) ? undefined : this.unknownPool(p, 'use');
    const i = pool.live ? pool.live.find(blockAddr) : -1;
    if (i < 0) {
      if (p.forked || pool.implicit) p.anomalies.inheritedFree = (p.anomalies.inheritedFree ?? 0) + 1;
      else p.anomalies.unknownFree++;
      return;
    }
    this.poolRelease(p, pool, i, t);
    this.recordPool(p, pool, t);
    this.afterPools(p, t);
  }

  /** Releases every allocation of the pool and destroys its children (clear semantics). */
  private emptyPool(p: ProcState, pool: PoolState, t: number): void {
    if (pool.children.size) {
      // Descendants innermost first, without recursion: the input decides how deep a tree is.
      // By a pool's turn its children are destroyed (or, in a loop, being destroyed): forget them.
      postOrder(pool, (n) => [...n.children], (n) => {
        if (n === pool) return;
        n.children.clear();
        this.destroyPool(p, n, t);
      });
      pool.children.clear();
    }
    const sites = p.sites;
    for (const [site, acc] of pool.sites) sites.release(site, acc.count, acc.bytes, t);
    p.frees += pool.count;
    p.poolBytes -= pool.bytes;
    p.poolCount -= pool.count;
    if (p.poolCount < 1e-6) p.poolCount = 0;
    if (Math.abs(p.poolBytes) < 1e-6) p.poolBytes = 0;
    if (pool.bytes !== 0) this.classBytes(pool.cls, -pool.bytes, t);
    pool.sites.clear();
    pool.live = undefined;
    pool.bytes = 0;
    pool.count = 0;
    pool.sizedBytes = 0;
  }

  /** `current`: the caller just found the pool in p.pools (one Map operation instead of two). */
  private destroyPool(p: ProcState, pool: PoolState, t: number, current = false): void {
    this.emptyPool(p, pool, t);
    pool.destroyedT = t;
    pool.parent?.children.delete(pool);
    if (current || p.pools.get(pool.addr) === pool) p.pools.delete(pool.addr);
    const c = pool.cls;
    c.live--;
    c.destroyed++;
    this.markDead(p, pool.addr);
  }
}

/** Whether `a` is `of` or one of its ancestors. */
function ancestorOf(a: PoolState, of: PoolState): boolean {
  for (let x: PoolState | undefined = of; x; x = x.parent) if (x === a) return true;
  return false;
}

function recentSlot(addr: number): number {
  return (Math.imul((addr >>> 4) ^ (addr / 4294967296), 0x9e3779b1) >>> 20) & (RECENT_FREES - 1);
}
