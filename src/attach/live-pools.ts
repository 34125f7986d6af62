// The pools of one traced process as `attach` knows them: created during the trace, found alive
// (pool-discovery.ts), or destroyed. Emits `pool-found` (with a size) for every pool the trace
// has not heard of before an event about it goes out, so the engine never makes a pool up; and
// remembers destroyed pools, whose cleanups and children keep referring to them after the
// destroy's probe (at the call's entry) reported them gone.

import type { Event } from '../model/events.js';
import { layoutChecks, PoolDiscoverer, type PoolSet, type WalkCost } from './pool-discovery.js';
import { poolBytes, type ProcMem } from './poolwalk.js';
import type { AllocatorProfile } from './profile.js';
import { exeOf, findLibrary, readMaps } from './procfs.js';

interface LivePool {
  profile: AllocatorProfile;
  parent: number;
}

/** Destroyed pools remembered (addresses are reused by new pools: this covers any teardown). */
const DEAD_POOLS = 65536;

export interface LivePoolsHost {
  emit(e: Event): void;
  /** The process's memory, opened on first use; undefined when it cannot be read. */
  mem(): ProcMem | undefined;
  warn(key: string, msg: string): void;
}

export class LivePools implements PoolSet {
  /** Live pools, in the order they became known (found pools of the first walk first). */
  readonly pools = new Map<number, LivePool>();
  private readonly children = new Map<number, Set<number>>();
  private readonly gone = new Set<number>();
  /** Per profile: its discoverer, or null when the profile has none or its layout checks failed. */
  private readonly discoverers = new Map<AllocatorProfile, PoolDiscoverer | null>();

  constructor(readonly pid: number, private readonly host: LivePoolsHost) {}

  known(pool: number): boolean {
    return this.pools.has(pool);
  }

  dead(pool: number): boolean {
    return this.gone.has(pool);
  }

  /** The walks' cost in this process, summed over its profiles. */
  get cost(): WalkCost {
    const c: WalkCost = { walks: 0, found: 0, rejected: 0, reads: 0, bytes: 0, ms: 0 };
    for (const d of this.discoverers.values()) {
      if (!d) continue;
      for (const k of Object.keys(c) as (keyof WalkCost)[]) c[k] += d.cost[k];
    }
    return c;
  }

  created(pool: number, parent: number, profile: AllocatorProfile): void {
    this.gone.delete(pool);
    this.add(pool, parent, profile);
  }

  /** A pool destroyed (or cleared: its children only) leaves the live set with its descendants. */
  forget(pool: number, self: boolean): void {
    const kids = this.children.get(pool);
    if (kids) {
      this.children.delete(pool);
      for (const k of kids) this.forget(k, true);
    }
    if (!self) return;
    const lp = this.pools.get(pool);
    this.pools.delete(pool);
    if (lp?.parent) this.children.get(lp.parent)?.delete(pool);
    this.gone.add(pool);
    if (this.gone.size > DEAD_POOLS) this.gone.delete(this.gone.values().next().value as number);
  }

  /** Pools alive now that the trace has not heard of, from the profiles' roots (at attach). */
  discoverAll(profiles: AllocatorProfile[], t: number): void {
    for (const profile of profiles) {
      const d = this.discoverer(profile);
      if (d) this.announce(d.fromRoots(this), profile, t);
    }
  }

  /**
   * Before an event about `pool` goes out: a pool not known (and not destroyed) existed before
   * the trace, since every creation since is probed. The walk places it in its tree with the
   * other pools around it not known yet; a pool the walk cannot read (being destroyed as we
   * look) is still announced, as a root without a tag.
   */
  ensure(pool: number, profile: AllocatorProfile, t: number): void {
    if (pool === 0 || this.pools.has(pool) || this.gone.has(pool)) return;
    const d = this.discoverer(profile);
    if (d) this.announce(d.from(pool, this), profile, t);
    if (!this.pools.has(pool)) this.announce([{ pool, parent: 0, tag: '' }], profile, t);
  }

  /** Reads the size of live pools from the process's memory, at most `limit` of them. */
  sample(t: number, limit: number): void {
    if (this.pools.size === 0) return;
    const mem = this.host.mem();
    if (!mem) return;
    let n = 0;
    for (const [pool, lp] of this.pools) {
      if (n++ >= limit) break;
      const lists = lp.profile.poolSize?.lists;
      if (!lists) continue;
      const bytes = poolBytes(mem, pool, lists);
      if (bytes !== undefined) this.host.emit({ kind: 'pool-size', pid: this.pid, t, pool, bytes });
    }
  }

  private add(pool: number, parent: number, profile: AllocatorProfile): void {
    this.pools.set(pool, { profile, parent });
    if (parent) {
      let set = this.children.get(parent);
      if (!set) this.children.set(parent, (set = new Set()));
      set.add(pool);
    }
  }

  private announce(found: { pool: number; parent: number; tag: string }[], profile: AllocatorProfile, t: number): void {
    const mem = this.host.mem();
    const lists = profile.poolSize?.lists;
    const kind = kindOf(profile);
    for (const f of found) {
      this.host.emit({ kind: 'pool-found', pid: this.pid, t, pool: f.pool, parent: f.parent, poolKind: kind, tag: f.tag });
      this.add(f.pool, f.parent, profile);
      const bytes = mem && lists ? poolBytes(mem, f.pool, lists) : undefined;
      if (bytes !== undefined) this.host.emit({ kind: 'pool-size', pid: this.pid, t, pool: f.pool, bytes });
    }
  }

  private discoverer(profile: AllocatorProfile): PoolDiscoverer | null {
    let d = this.discoverers.get(profile);
    if (d !== undefined) return d;
    d = null;
    const mem = this.host.mem();
    if (profile.discover && mem) {
      const maps = readMaps(this.pid);
      const exe = exeOf(this.pid);
      const bad = layoutChecks(profile.discover, (w) => (w === 'exe' ? exe : findLibrary(maps, w))).filter((c) => !c.ok);
      if (bad.length === 0) d = new PoolDiscoverer(mem, profile.discover);
      else {
        this.host.warn(`layout:${profile.name}`, `allocator ${profile.name}: pools alive before the trace are not looked for: the allocator's code does not match the profile's layout (${bad.map((b) => `${b.says}: ${b.why}`).join('; ')})`);
      }
    }
    this.discoverers.set(profile, d);
    return d;
  }
}

function kindOf(profile: AllocatorProfile): string {
  return profile.poolKind ?? profile.name;
}
