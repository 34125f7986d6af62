// The pools of one traced process as `attach` knows them: created during the trace, found alive
// (pool-discovery.ts), or destroyed. Emits `pool-found` (with a size) for every pool the trace
// has not heard of before an event about it goes out, so the engine never makes a pool up; and
// remembers destroyed pools, whose cleanups and children keep referring to them after the
// destroy's probe (at the call's entry) reported them gone.

import type { Event } from '../model/events.js';
import { layoutChecks, PoolDiscoverer, type FoundPool, type PoolSet, type WalkCost } from './pool-discovery.js';
import { poolBytes } from './poolwalk.js';
import { type ProcMem } from '../proc/memory.js';
import type { AllocatorProfile } from './profile.js';
import { exeOf } from '../proc/processes.js';
import { findLibrary, readMaps } from '../proc/maps.js';

interface LivePool {
  profile: AllocatorProfile;
  parent: number;
  /** Its tag as the trace has it ('' none yet). */
  tag: string;
  /** Its creation stack (the trace's id; 0 none): the site whose tag it remembers. */
  stack: number;
  /** Its tag was read (from a probe, a walk or its memory), not guessed from its site. */
  tagRead: boolean;
}

/** Creation sites whose tag is remembered, per process (a bound: sites are few, stacks may not be). */
const SITE_TAGS = 65536;

/** What a walk from the roots is told: nothing is known, so it reports every pool it reaches. */
const EVERY_POOL: PoolSet = { known: () => false, dead: () => false };

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

  /** @param tagAt per profile, where its pools hold their tag when tags are read from the pools
   *  (specs.ts tagFromPool), or -1 */
  constructor(readonly pid: number, private readonly host: LivePoolsHost, private readonly tagAt: (profile: AllocatorProfile) => number = () => -1) {}

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

  /** `guessed`: the tag is its site's (siteTag), to be read from the pool by the next sample. */
  created(pool: number, parent: number, profile: AllocatorProfile, tag = '', stack = 0, guessed = false): void {
    this.gone.delete(pool);
    this.add(pool, parent, profile, tag, stack);
    if (guessed) this.pools.get(pool)!.tagRead = false;
  }

  /**
   * The tag a pool made at this creation stack will be given, when tags are read from the pools
   * (not probed): the tag the last pool made there had. A pool is tagged just after its creation,
   * at the same place in the code, so its site names it; until then a pool alive for a few
   * milliseconds (a keepalive connection's request pool) would sit in its creation site's class.
   * A pool whose own tag turns out otherwise is retagged when its tag is read.
   */
  siteTag(stack: number): string {
    return stack ? (this.siteTags.get(stack) ?? '') : '';
  }

  private readonly siteTags = new Map<number, string>();

  /** A pool's tag as a probe read it: whether the trace did not have it yet (a live pool's). */
  retag(pool: number, tag: string): boolean {
    const lp = this.pools.get(pool);
    if (!lp) return false;
    this.learn(lp, tag);
    lp.tagRead = true;
    if (lp.tag === tag) return false;
    lp.tag = tag;
    return true;
  }

  private learn(lp: LivePool, tag: string): void {
    if (!lp.stack || !tag) return;
    if (this.siteTags.size >= SITE_TAGS && !this.siteTags.has(lp.stack)) this.siteTags.clear();
    this.siteTags.set(lp.stack, tag);
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

  /**
   * Walk mode (no probes): the pools reachable from the profiles' roots now. A pool not known
   * yet is announced as found; a known pool no longer reachable (or now under another parent: its
   * address was reused) is destroyed at this walk's time. What lives and dies between two walks is
   * not seen; what grows, or piles up under a parent, is.
   */
  rewalk(profiles: AllocatorProfile[], t: number): void {
    const reached = new Set<number>();
    let walked = false;
    for (const profile of profiles) {
      const d = this.discoverer(profile);
      if (!d) continue;
      walked = true;
      const fresh: FoundPool[] = [];
      for (const f of d.fromRoots(EVERY_POOL)) {
        if (reached.has(f.pool)) continue;
        reached.add(f.pool);
        const lp = this.pools.get(f.pool);
        if (lp && lp.parent === f.parent) continue;
        if (lp) this.destroyed(f.pool, t);
        fresh.push(f);
      }
      this.announce(fresh, profile, t);
    }
    if (!walked) return;
    for (const pool of [...this.pools.keys()]) if (!reached.has(pool) && this.pools.has(pool)) this.destroyed(pool, t);
  }

  /** A pool and its descendants gone (children first, as the allocator destroys them). */
  private destroyed(pool: number, t: number): void {
    for (const k of [...(this.children.get(pool) ?? [])]) this.destroyed(k, t);
    this.host.emit({ kind: 'pool-destroy', pid: this.pid, t, pool, stack: 0 });
    this.forget(pool, true);
    // the address may hold a new pool at the next walk
    this.gone.delete(pool);
  }

  /** Reads the size of live pools from the process's memory, at most `limit` of them. */
  sample(t: number, limit: number): void {
    if (this.pools.size === 0) return;
    const mem = this.host.mem();
    if (!mem) return;
    let n = 0;
    for (const [pool, lp] of this.pools) {
      if (n++ >= limit) break;
      // a pool tagged after its creation, when tags are not probed: its tag from its memory
      if ((lp.tag === '' || !lp.tagRead) && this.tagAt(lp.profile) >= 0) {
        const tag = this.discoverer(lp.profile)?.tagOf(pool);
        if (tag) {
          lp.tagRead = true;
          this.learn(lp, tag);
          if (tag !== lp.tag) {
            lp.tag = tag;
            this.host.emit({ kind: 'pool-tag', pid: this.pid, t, pool, tag });
          }
        }
      }
      const lists = lp.profile.poolSize?.lists;
      if (!lists) continue;
      const bytes = poolBytes(mem, pool, lists);
      if (bytes !== undefined) this.host.emit({ kind: 'pool-size', pid: this.pid, t, pool, bytes });
    }
  }

  private add(pool: number, parent: number, profile: AllocatorProfile, tag: string, stack = 0): void {
    this.pools.set(pool, { profile, parent, tag, stack, tagRead: tag !== '' });
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
      this.add(f.pool, f.parent, profile, f.tag);
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
