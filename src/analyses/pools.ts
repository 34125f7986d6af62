// Pool lifecycles: pools still alive at the end (a forest: tag, kind, creation site, age, own and
// tree bytes, feeding sites, growth verdict) and pool classes (pools of one use, summed).

import type { PoolClassState, PoolState } from '../engine/state.js';
import type { PoolClassReport, PoolReport } from './result.js';
import type { ProcContext } from './context.js';
import { atExit, judge, toSeries } from './context.js';
import { poolUse } from './uses.js';
import { VERDICT_RANK } from './result.js';
import { round } from './leak-sites.js';
import { postOrder } from '../model/tree.js';

/** Bounds on the forest in a report: children kept per pool, pools in all, and levels (real
 *  trees are under 20 deep; pools below the last level are not listed, their bytes stay in
 *  their ancestors' tree bytes, and the reports' recursive renderers stay shallow). */
const MAX_CHILDREN = 1000;
const MAX_POOLS = 5000;
export const MAX_POOL_DEPTH = 64;
const SITES_PER_POOL = 5;
/** The creation site of a pool found alive in the process (attach's discovery walk). */
export const FOUND_SITE = '(created before the trace: found alive in the process)';

export function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/** Bytes of every pool's tree (its own and its descendants'), computed without recursion. */
function treeBytesOf(roots: PoolState[]): Map<PoolState, number> {
  const memo = new Map<PoolState, number>();
  for (const root of roots) {
    if (memo.has(root)) continue;
    postOrder(root, (n) => (memo.has(n) ? [] : n.children), (n) => {
      if (memo.has(n)) return;
      let v = n.bytes;
      for (const c of n.children) v += memo.get(c) ?? 0;
      memo.set(n, v);
    });
  }
  return memo;
}

export function livePools(ctx: ProcContext): PoolReport[] {
  const { p } = ctx;
  const roots = [...p.pools.values()].filter((x) => !x.parent || x.parent.destroyedT !== undefined || p.pools.get(x.parent.addr) !== x.parent);
  const memo = treeBytesOf(roots);
  const tree = (x: PoolState) => memo.get(x) ?? x.bytes;
  const byTree = (a: PoolState, b: PoolState) => tree(b) - tree(a) || a.createT - b.createT;
  roots.sort(byTree);
  let budget = MAX_POOLS;
  // Recursion bounded by MAX_POOL_DEPTH, whatever the input's depth.
  const build = (pool: PoolState, depth: number): PoolReport => {
    budget--;
    const shape = ctx.resolver.shape(pool.createStack);
    const children: PoolReport[] = [];
    if (depth + 1 < MAX_POOL_DEPTH) {
      const kids = [...pool.children].sort(byTree);
      for (const c of kids.slice(0, MAX_CHILDREN)) {
        if (budget <= 0) break;
        children.push(build(c, depth + 1));
      }
    }
    const series = toSeries(pool.series);
    const r: PoolReport = {
      pool: hex(pool.addr),
      parent: hex(pool.parent?.addr ?? 0),
      kind: pool.kind,
      tag: pool.tag,
      createdT: pool.createT,
      age: p.endT - pool.createT,
      bytes: round(pool.bytes),
      treeBytes: round(tree(pool)),
      allocs: round(pool.allocs),
      clears: pool.clears,
      createStack: shape.stack,
      createSite: pool.createStack ? shape.label : pool.found ? FOUND_SITE : pool.implicit ? '(creation not seen: before the trace, or in a parent process)' : '(no stack)',
      children,
      sites: feeding(ctx, pool.sites),
    };
    if (pool.found) r.found = true;
    if (series.x.length > 0) {
      r.verdict = atExit(ctx.p, judge(ctx, series, pool.createT, poolUse(pool.kind, pool.tag || `created at ${shape.label}`)), pool.bytes);
      r.series = series;
    }
    return r;
  };
  const out: PoolReport[] = [];
  for (const r of roots) {
    if (budget <= 0) break;
    out.push(build(r, 0));
  }
  return out;
}

function feeding(ctx: ProcContext, bySite: Map<number, { bytes: number; count: number }>): { label: string; bytes: number; count: number }[] {
  const merged = new Map<string, { label: string; bytes: number; count: number }>();
  for (const [site, acc] of bySite) {
    const shape = ctx.resolver.shape(ctx.p.sites.stackOf(site));
    const e = merged.get(shape.label) ?? { label: shape.label, bytes: 0, count: 0 };
    e.bytes += acc.bytes;
    e.count += acc.count;
    merged.set(shape.label, e);
  }
  return [...merged.values()]
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, SITES_PER_POOL)
    .map((e) => ({ label: e.label, bytes: round(e.bytes), count: round(e.count) }));
}

/** What each class's live pools hold, by creation time: a class rises when more of its pools are
 *  live at once (a request pool per open keepalive connection) without keeping anything, and
 *  growth.ts tells that from a leak by what the pools made before the rise's midpoint hold. */
function classParts(ctx: ProcContext): Map<PoolClassState, { born: number[]; bytes: number[] }> {
  const out = new Map<PoolClassState, { born: number[]; bytes: number[] }>();
  for (const pool of ctx.p.pools.values()) {
    let e = out.get(pool.cls);
    if (!e) out.set(pool.cls, (e = { born: [], bytes: [] }));
    // A pool alive before the trace (found, or its creation unseen) was held from the start.
    e.born.push(pool.found || pool.implicit ? -Infinity : pool.createT);
    e.bytes.push(pool.bytes);
  }
  return out;
}

export function poolClasses(ctx: ProcContext): PoolClassReport[] {
  const out: PoolClassReport[] = [];
  // Only the pools alive at the end are known; in a process that exited or began its teardown
  // they are not those that held the class's level, so the rule applies to running processes.
  const parts = !ctx.p.exited && ctx.until === undefined ? classParts(ctx) : undefined;
  for (const c of ctx.p.classes.values()) {
    const own = parts?.get(c);
    const heldSince = (x: number): number => {
      let held = 0;
      if (own) for (let i = 0; i < own.born.length; i++) if (own.born[i]! <= x) held += own.bytes[i]!;
      return held;
    };
    const series = toSeries(c.series);
    const name = c.name || `created at ${ctx.resolver.shape(c.stack).label}`;
    out.push({
      name,
      kind: c.kind,
      live: c.live,
      created: c.created,
      found: c.found,
      destroyed: c.destroyed,
      bytes: round(c.bytes),
      peakBytes: round(c.peakBytes),
      verdict: atExit(ctx.p, judge(ctx, series, ctx.p.startT, poolUse(c.kind, name), parts ? { heldSince, parts: 'pools' } : {}), c.bytes),
      series,
      sites: feeding(ctx, c.fed),
    });
  }
  return out.sort((a, b) => VERDICT_RANK[a.verdict.verdict] - VERDICT_RANK[b.verdict.verdict] || b.peakBytes - a.peakBytes);
}

/** Live pools (anywhere in the forest) whose own size keeps growing. */
export function growingPools(forest: PoolReport[]): PoolReport[] {
  const out: PoolReport[] = [];
  const walk = (r: PoolReport) => {
    if (r.verdict && (r.verdict.verdict === 'leak' || r.verdict.verdict === 'growing')) out.push(r);
    r.children.forEach(walk);
  };
  forest.forEach(walk);
  return out.sort((a, b) => b.bytes - a.bytes);
}
