// What one target holds now: per process, its live pools (with their creation stacks, tags and
// sizes), its live heap blocks (events mode) or the kernel's per-site table (aggregate mode),
// and what each stack has made so far. It is fed the attach session's events as they come, and
// only ever holds what is live: a pool destroyed, a block freed or a process gone is forgotten,
// so its size follows the targets' live memory, capped per process (limits), not the uptime.

import type { Event, EventSink, Frame, ModuleEvent } from '../model/events.js';
import type { AggRow } from '../attach/loader.js';
import type { StackRec, StackTable } from './stacks.js';

export interface LivePool {
  stack: StackRec;
  /** The session's stack id (in the creating process's scope), for trace segments. */
  sid: number;
  /** Alive before the trace (found in the process's memory): no creation stack. */
  found?: boolean;
  /** When it was made (s on the agent's clock, like the samples); -Infinity when found. */
  born: number;
  kind: string;
  tag: string;
  bytes: number;
  parent: number;
}

export interface Made {
  count: number;
  bytes: number;
}

export interface AggSite {
  stack: StackRec;
  liveCount: number;
  liveBytes: number;
  totalCount: number;
  totalBytes: number;
}

export class ProcModel {
  ppid = 0;
  command = '';
  exe = '';
  /** Traced parent in the same target (a worker's master), 0 for a root. */
  tracedParent = 0;
  /** Session frame id → file place, session stack id → (parent, frame), resolved stacks. */
  readonly frames = new Map<number, { path: string; off: number; frame: Frame } | null>();
  /** The session's module records, kept so a trace segment can start self-contained. */
  readonly modules = new Map<string, ModuleEvent>();
  readonly stackDefs = new Map<number, { parent: number; frame: number }>();
  readonly resolved = new Map<number, StackRec>();
  readonly pools = new Map<number, LivePool>();
  readonly children = new Map<number, Set<number>>();
  readonly blocks = new Map<number, { stack: StackRec; sid: number; size: number }>();
  heapBytes = 0;
  /** What each stack made (pools created, blocks allocated): pprof's alloc_* values. */
  readonly made = new Map<StackRec, Made>();
  /** Aggregate mode: the kernel's table for this process at the last sample. */
  agg: AggSite[] = [];
  constructor(readonly pid: number, readonly since: number) {}
}

export interface ModelLimits {
  poolsPerProcess: number;
  blocksPerProcess: number;
}

/** Resolves a (pid, pc) to its module file and offset (the attach session knows the maps). */
export interface Locate {
  locate(pid: number, pc: number): { path: string; fileOffset: number } | undefined;
}

export class TargetModel implements EventSink {
  readonly procs = new Map<number, ProcModel>();
  lost = 0;
  exits = 0;
  /** Pools and blocks not kept because a process was at its cap. */
  overCap = 0;
  /** Event time (ns on the session's clock) of the last event seen. */
  lastT = 0;
  locator: Locate | undefined;

  constructor(readonly stacks: StackTable, private readonly limits: ModelLimits, private readonly now: () => number) {}

  event(e: Event): void {
    if (e.t > this.lastT) this.lastT = e.t;
    switch (e.kind) {
      case 'process': {
        const p = this.proc(e.pid);
        p.ppid = e.ppid;
        p.command = e.command;
        p.exe = e.exe;
        p.tracedParent = this.procs.has(e.ppid) ? e.ppid : 0;
        return;
      }
      case 'fork': {
        const parent = this.procs.get(e.parentPid);
        const p = new ProcModel(e.pid, this.now());
        this.procs.set(e.pid, p);
        p.ppid = e.parentPid;
        p.tracedParent = parent ? e.parentPid : 0;
        if (parent) {
          p.command = parent.command;
          p.exe = parent.exe;
          // a forked child starts with its parent's pools (same memory, same stacks)
          for (const [a, lp] of parent.pools) p.pools.set(a, { ...lp });
          for (const [a, kids] of parent.children) p.children.set(a, new Set(kids));
        }
        return;
      }
      case 'exit':
        if (this.procs.delete(e.pid)) this.exits++;
        return;
      case 'frame': {
        const p = this.proc(e.pid);
        const where = e.frame.module ? this.locator?.locate(e.pid, e.frame.pc) : undefined;
        p.frames.set(e.id, where ? { path: where.path, off: where.fileOffset, frame: e.frame } : null);
        return;
      }
      case 'module':
        this.proc(e.pid).modules.set(`${e.base}:${e.path}`, e);
        return;
      case 'stack':
        this.proc(e.pid).stackDefs.set(e.id, { parent: e.parent, frame: e.frame });
        return;
      case 'pool-create': {
        const p = this.proc(e.pid);
        const stack = this.stackOf(p, e.stack);
        this.count(p, stack, 1, 0);
        if (p.pools.size >= this.limits.poolsPerProcess && !p.pools.has(e.pool)) {
          this.overCap++;
          return;
        }
        this.dropPool(p, e.pool);
        p.pools.set(e.pool, { stack, sid: e.stack, born: e.t / 1e9, kind: e.poolKind, tag: e.tag, bytes: 0, parent: e.parent });
        if (e.parent) {
          let kids = p.children.get(e.parent);
          if (!kids) p.children.set(e.parent, (kids = new Set()));
          kids.add(e.pool);
        }
        return;
      }
      case 'pool-found': {
        // alive before the trace, found by the session's discovery walk (parents first)
        const p = this.proc(e.pid);
        if (p.pools.has(e.pool)) return;
        if (p.pools.size >= this.limits.poolsPerProcess) {
          this.overCap++;
          return;
        }
        p.pools.set(e.pool, { stack: this.stacks.found, sid: 0, found: true, born: -Infinity, kind: e.poolKind, tag: e.tag, bytes: 0, parent: e.parent });
        if (e.parent) {
          let kids = p.children.get(e.parent);
          if (!kids) p.children.set(e.parent, (kids = new Set()));
          kids.add(e.pool);
        }
        return;
      }
      case 'pool-size': {
        const lp = this.procs.get(e.pid)?.pools.get(e.pool);
        if (lp) {
          // what a stack made counts each pool at the largest size seen
          if (e.bytes > lp.bytes) this.count(this.procs.get(e.pid)!, lp.stack, 0, e.bytes - lp.bytes);
          lp.bytes = e.bytes;
        }
        return;
      }
      case 'pool-tag': {
        const lp = this.procs.get(e.pid)?.pools.get(e.pool);
        if (lp) lp.tag = e.tag;
        return;
      }
      case 'pool-destroy': {
        const p = this.procs.get(e.pid);
        if (p) this.dropPool(p, e.pool);
        return;
      }
      case 'pool-clear': {
        // a clear destroys the pool's children; its own size comes with a pool-size event
        const p = this.procs.get(e.pid);
        const kids = p?.children.get(e.pool);
        if (p && kids) for (const k of [...kids]) this.dropPool(p, k);
        return;
      }
      case 'alloc':
        this.alloc(e.pid, e.addr, e.size, e.stack);
        return;
      case 'free':
        this.free(e.pid, e.addr);
        return;
      case 'realloc':
        if (e.oldAddr) this.free(e.pid, e.oldAddr);
        if (e.addr) this.alloc(e.pid, e.addr, e.size, e.stack);
        return;
      case 'lost':
        this.lost += e.count;
        return;
      default:
        return;
    }
  }

  private proc(pid: number): ProcModel {
    let p = this.procs.get(pid);
    if (!p) this.procs.set(pid, (p = new ProcModel(pid, this.now())));
    return p;
  }

  private count(p: ProcModel, stack: StackRec, n: number, bytes: number): void {
    const m = p.made.get(stack);
    if (m) {
      m.count += n;
      m.bytes += bytes;
    } else p.made.set(stack, { count: n, bytes });
  }

  private dropPool(p: ProcModel, pool: number): void {
    const lp = p.pools.get(pool);
    if (!lp) return;
    p.pools.delete(pool);
    const kids = p.children.get(pool);
    if (kids) {
      p.children.delete(pool);
      for (const k of kids) this.dropPool(p, k);
    }
    if (lp.parent) p.children.get(lp.parent)?.delete(pool);
  }

  private alloc(pid: number, addr: number, size: number, stackId: number): void {
    const p = this.proc(pid);
    const stack = this.stackOf(p, stackId);
    this.count(p, stack, 1, size);
    const old = p.blocks.get(addr);
    if (old) p.heapBytes -= old.size;
    else if (p.blocks.size >= this.limits.blocksPerProcess) {
      this.overCap++;
      return;
    }
    p.blocks.set(addr, { stack, sid: stackId, size });
    p.heapBytes += size;
  }

  private free(pid: number, addr: number): void {
    const p = this.procs.get(pid);
    const b = p?.blocks.get(addr);
    if (!p || !b) return;
    p.blocks.delete(addr);
    p.heapBytes -= b.size;
  }

  /** A session stack id of process p as this target's stack record. */
  private stackOf(p: ProcModel, id: number): StackRec {
    if (id === 0) return this.stacks.none;
    const known = p.resolved.get(id);
    if (known) return known;
    const frames = [];
    let cur = id;
    for (let guard = 0; cur !== 0 && guard < 256; guard++) {
      const def = p.stackDefs.get(cur);
      if (!def) break;
      const where = p.frames.get(def.frame);
      if (!where) break;
      const f = this.stacks.frame(where.path, where.off);
      if (!f) {
        // the frame table is full: counted as a stack it could not keep
        p.resolved.set(id, this.stacks.full);
        return this.stacks.full;
      }
      frames.push(f);
      cur = def.parent;
    }
    const rec = this.stacks.stack(frames);
    p.resolved.set(id, rec);
    return rec;
  }

  /** Aggregate mode: the kernel's table, rows of every process, replaces the last one. */
  setAggregate(rows: AggRow[], fnOf: (spec: number) => string | undefined): void {
    const byPid = new Map<number, AggSite[]>();
    for (const r of rows) {
      if (r.spec === 0xffffffff) continue;
      const p = this.procs.get(r.pid);
      if (!p) continue;
      // the kernel keeps the immediate caller: the site is that one frame (the allocator
      // function itself is left out, as heap profiles do, so the caller is the leaf)
      const where = this.locator?.locate(r.pid, r.site);
      const caller = where ? this.stacks.frame(where.path, where.fileOffset) : undefined;
      const frames = [caller ?? this.stacks.namedFrame(`(${fnOf(r.spec) ?? 'alloc'} from an unknown caller)`)];
      const stack = this.stacks.stack(frames);
      let list = byPid.get(r.pid);
      if (!list) byPid.set(r.pid, (list = []));
      list.push({ stack, liveCount: r.liveCount, liveBytes: r.liveBytes, totalCount: r.totalCount, totalBytes: r.totalBytes });
    }
    for (const p of this.procs.values()) p.agg = byPid.get(p.pid) ?? [];
  }

  /** Forgets every process (the session was restarted: a new one reports them afresh). */
  reset(): void {
    this.procs.clear();
  }
}
