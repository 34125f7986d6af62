// Outstanding memory grouped by allocation site (heap and pool allocations, anonymous mappings),
// with ages, shares and, for the top sites, a growth verdict.

import type { Series, SiteReport } from './result.js';
import type { ProcContext } from './context.js';
import { atExit, judge } from './context.js';
import { sampleWeight } from '../engine/sampling.js';
import type { SiteTable } from '../engine/sites.js';
import { SITE_SERIES_CAP } from '../engine/series.js';

export interface LeakSitesOptions {
  top: number;
  /** Only allocations at least this old (trace clock units) at the process's end. */
  minAge?: number;
}

interface Acc {
  count: number;
  bytes: number;
  oldest: number;
  youngest: number;
}

interface Group {
  key: number; // smallest site index
  members: number[];
  /** The table the members index: the process's sites, or its mmap sites. */
  table: SiteTable;
  pool: boolean;
  mmap: boolean;
  count: number;
  bytes: number;
  allocatedCount: number;
  allocatedBytes: number;
  oldest: number;
  youngest: number;
}

export function leakSites(ctx: ProcContext, opts: LeakSitesOptions): SiteReport[] {
  const { p, state } = ctx;
  const sites = p.sites;
  const S = state.sampleBytes;
  const w = (size: number) => (S > 0 ? sampleWeight(size, S) : 1);
  const cutoff = opts.minAge !== undefined ? p.endT - opts.minAge : Infinity;
  const acc: (Acc | undefined)[] = new Array(sites.length);
  const get = (i: number): Acc => (acc[i] ??= { count: 0, bytes: 0, oldest: Infinity, youngest: -Infinity });
  const add = (i: number, count: number, bytes: number, first: number, last: number) => {
    const a = get(i);
    a.count += count;
    a.bytes += bytes;
    if (first < a.oldest) a.oldest = first;
    if (last > a.youngest) a.youngest = last;
  };

  // One pass over the live heap for ages (and counts when filtering by age).
  const heap = p.heap;
  heap.forEach((i) => {
    const t = heap.timeAt(i);
    if (t > cutoff) return;
    const size = heap.sizeAt(i);
    const k = w(size);
    add(heap.siteAt(i), k, k * size, t, t);
  });
  for (const pool of p.pools.values()) {
    const addressed = new Set<number>();
    if (pool.live) {
      const live = pool.live;
      live.forEach((i) => {
        const site = live.siteAt(i);
        addressed.add(site);
        const t = live.timeAt(i);
        if (t > cutoff) return;
        const size = live.sizeAt(i);
        const k = w(size);
        add(site, k, k * size, t, t);
      });
    }
    for (const [site, acc] of pool.sites) {
      if (addressed.has(site)) continue;
      // Address-less allocations: known by site only, with the first and last allocation times.
      if (acc.first > cutoff) continue;
      add(site, acc.count, acc.bytes, acc.first, Math.min(acc.last, cutoff));
    }
  }

  // Group site indexes that resolve to the same site once internals are dropped.
  const groups = new Map<string, Group>();
  addGroups(ctx, groups, sites, acc, false);

  // Anonymous mappings still mapped, by the site of their mmap (what remains of one after an
  // unmap from its middle counts as two), apart from heap and pool sites of the same stack.
  const mmapSites = p.mmapSites;
  const m = p.mappings;
  if (mmapSites && m) {
    const macc: (Acc | undefined)[] = new Array(mmapSites.length);
    for (let r = 0; r < m.length; r++) {
      const site = m.sites[r]!;
      const t = m.times[r]!;
      if (site < 0 || t > cutoff) continue;
      const a = (macc[site] ??= { count: 0, bytes: 0, oldest: Infinity, youngest: -Infinity });
      a.count++;
      a.bytes += m.ends[r]! - m.starts[r]!;
      if (t < a.oldest) a.oldest = t;
      if (t > a.youngest) a.youngest = t;
    }
    addGroups(ctx, groups, mmapSites, macc, true);
  }

  const ranked = [...groups.values()].sort((a, b) => b.bytes - a.bytes || b.count - a.count).slice(0, opts.top);
  return ranked.map((g) => {
    const sites = g.table;
    const stack = sites.stackOf(g.key);
    const shape = ctx.resolver.shape(stack);
    // The group's series: the sum of its members' (the same caller reached through different
    // stacks or allocator internals: three blocks from start-up and two late ones are one site
    // that grew late, not the start-up member's flat line).
    let main = g.members[0]!;
    for (const m of g.members) if (sites.outBytes(m) > sites.outBytes(main)) main = m;
    const series: Series = g.members.length === 1 ? sites.series(main) : sumSeries(g.members.map((m) => sites.series(m)));
    const r: SiteReport = {
      key: g.mmap ? `mmap:${stack}` : g.pool ? `pool:${stack}` : String(stack),
      label: shape.label,
      stack: shape.stack,
      count: round(g.count),
      bytes: round(g.bytes),
      // Sampled traces sum float estimates in two orders (engine totals, these groups): a site
      // holding everything may come out a rounding error above the total.
      share: ctx.outstanding > 0 ? Math.min(1, g.bytes / ctx.outstanding) : 0,
      allocatedCount: round(g.allocatedCount),
      allocatedBytes: round(g.allocatedBytes),
      oldestT: g.oldest,
      youngestT: g.youngest,
      verdict: atExit(ctx.p, judge(ctx, series, ctx.p.startT), round(g.bytes)),
      series,
    };
    if (g.mmap) r.via = 'mmap';
    else if (shape.via) r.via = shape.via;
    if (g.pool) r.pool = sites.poolTag[main] ?? '(untagged pool)';
    return r;
  });
}

function addGroups(ctx: ProcContext, groups: Map<string, Group>, sites: SiteTable, acc: (Acc | undefined)[], mmap: boolean): void {
  for (let i = 0; i < sites.length; i++) {
    const a = acc[i];
    if (!a || a.count <= 0) continue;
    const stack = sites.stackOf(i);
    if (ctx.suppress.patterns.length && ctx.suppress.suppressed(ctx.resolver.frames(stack))) continue;
    const shape = ctx.resolver.shape(stack);
    const pool = sites.isPool(i);
    // One site per label (and allocator API): the same first frame that matters reached through
    // different callers is one site, its series the sum of theirs.
    const gk = `${mmap ? 'm' : pool ? 'p' : 'h'}\u0000${shape.label}\u0000${shape.via ?? ''}`;
    let g = groups.get(gk);
    if (!g) {
      g = { key: i, members: [], table: sites, pool, mmap, count: 0, bytes: 0, allocatedCount: 0, allocatedBytes: 0, oldest: Infinity, youngest: -Infinity };
      groups.set(gk, g);
    }
    g.members.push(i);
    g.count += a.count;
    g.bytes += a.bytes;
    g.allocatedCount += sites.allocCount(i);
    g.allocatedBytes += sites.allocBytes(i);
    g.oldest = Math.min(g.oldest, a.oldest);
    g.youngest = Math.max(g.youngest, a.youngest);
  }
}

/**
 * The sum of step series: each member's change is a point of the sum, the other members at their
 * last value (0 before their first point). Changes at one reading of the clock stay apart, in
 * each member's own order (a coarse clock ticks every few ms: 60 requests in 30 ms are 60
 * changes, not the 8 readings they fell on). Members changing at the same reading come one after
 * the other: their true interleaving is unknown.
 */
export function sumSeries(list: Series[]): Series {
  const xs = [...new Set(list.flatMap((s) => s.x))].sort((a, b) => a - b);
  const out: Series = { x: [], y: [], lo: [], hi: [] };
  const idx = list.map(() => 0);
  const cur = list.map(() => 0);
  let total = 0;
  for (const x of xs) {
    list.forEach((s, k) => {
      let i = idx[k]!;
      while (i < s.x.length && s.x[i]! <= x) {
        const y = s.y[i]!;
        total += y - cur[k]!;
        cur[k] = y;
        const others = total - y;
        out.x.push(x);
        out.y.push(total);
        out.lo!.push(others + Math.min(s.lo?.[i] ?? y, y));
        out.hi!.push(others + Math.max(s.hi?.[i] ?? y, y));
        i++;
      }
      idx[k] = i;
    });
  }
  while (out.x.length > 2 * SITE_SERIES_CAP) halve(out);
  return out;
}

/** Pairs of consecutive points made one (the later point's value, both ranges): the sum of many
 *  members stays as short as a report's series may be, still one point per few changes. */
function halve(s: Series): void {
  const n = s.x.length;
  const m = Math.ceil(n / 2);
  for (let k = 0; k < m; k++) {
    const a = 2 * k;
    const b = Math.min(a + 1, n - 1);
    s.x[k] = s.x[b]!;
    s.y[k] = s.y[b]!;
    s.lo![k] = Math.min(s.lo![a]!, s.lo![b]!);
    s.hi![k] = Math.max(s.hi![a]!, s.hi![b]!);
  }
  s.x.length = s.y.length = s.lo!.length = s.hi!.length = m;
}

/** Estimates (sampled traces) are fractional; integers stay integers. */
export function round(v: number): number {
  return Math.round(v);
}
