// Growth verdicts: does this series (a pool's bytes, a site's outstanding bytes, a process
// total) leak? The statistics run on the entity's own changes (consecutive repeats dropped, at
// most ~128 points), so a pool that only changes when a leaking request hits it reads as the
// steady climb it is, however much other traffic happens in between.
//
//   leak     grew through its window (significant Mann–Kendall trend, p < 0.05, >= 8 points)
//            and kept what it grew: its floor near the end holds most of the rise, last ≈ peak.
//   growing  grew, but with too little evidence (few points, weak trend) to call it a leak.
//   bounded  grew, then gave it back (last well below peak: a clear, a destroy, frees), or grew
//            early and then held its level while it kept changing (a cache, a buffer that fills).
//   steady   no meaningful growth: its highs after the start are no higher than at the start.
//
// Growth during warm-up (the first part of the window: start-up, a pool's first allocations) is
// not growth in the steady state and does not count; nor do releases after `until` (teardown at
// shutdown releases everything, leaks included).

import { formatBytes } from '../model/units.js';
import type { Series, Verdict } from './result.js';
import { mannKendall, theilSen } from './trend.js';

export interface GrowthOptions {
  /** The window the entity lives in (defaults to the series' own x range). */
  window?: [number, number];
  /** Fraction of the window treated as warm-up (default 0.15). */
  warmup?: number;
  /** Points after this time are ignored (process teardown). */
  until?: number;
  /** Growth below this many units (bytes) is not meaningful (default 0). */
  minGrowth?: number;
  /** Words for the unit of x in explanations ('events', 's'); default none. */
  xUnit?: string;
  /** Multiply slopes by this to express them per xUnit (1e9 for ns → s). */
  xScale?: number;
}

/** Points the statistics look at, at most. */
export const VERDICT_POINTS = 128;
const MIN_TREND_POINTS = 8;
const ALPHA = 0.05;
/** A leak keeps at least this fraction of its rise in its floor near the end. */
const RETAINED = 0.25;
/** Growth that stopped before this fraction of the window, followed by a long run of changes, is a plateau. */
const PLATEAU_BY = 0.3;

interface Pts {
  x: number[];
  y: number[];
  lo: number[];
  hi: number[];
}

export function growthVerdict(series: Series, opts: GrowthOptions = {}): Verdict {
  const all = normalise(series, opts.until);
  if (all.x.length === 0) return flat(0, 'no data');
  const w0 = opts.window?.[0] ?? all.x[0]!;
  const w1 = Math.max(opts.window?.[1] ?? all.x[all.x.length - 1]!, w0);
  const span = w1 - w0;
  const cutoff = w0 + (opts.warmup ?? 0.15) * span;
  const pts = decimate(afterWarmup(all, cutoff), VERDICT_POINTS);
  const n = pts.x.length;
  const { x, y, lo, hi } = pts;
  const mk = mannKendall(y);
  const slope = theilSen(x, y);
  const first = y[0]!;
  const last = y[n - 1]!;
  let peak = -Infinity;
  for (const v of hi) if (v > peak) peak = v;
  // The early level: the first tenth of the points (at least two, so one period of churn is seen).
  const qe = Math.min(n, Math.max(2, Math.ceil(n / 10)));
  let earlyLo = Infinity;
  let earlyHi = -Infinity;
  for (let i = 0; i < qe; i++) {
    earlyLo = Math.min(earlyLo, lo[i]!);
    earlyHi = Math.max(earlyHi, hi[i]!);
  }
  // With few points, the "early part" is the first point alone.
  if (n < 4) {
    earlyLo = Math.min(lo[0]!, y[0]!);
    earlyHi = y[0]!;
  }
  // The floor near the end: the last quarter of the points.
  const ql = Math.max(1, Math.floor(n / 4));
  let lateLo = Infinity;
  for (let i = n - ql; i < n; i++) lateLo = Math.min(lateLo, lo[i]!);
  const rise = peak - earlyLo;

  // Where the series last reached a new high (by more than 0.5% of its rise: churn at the top
  // soon stops beating its own maximum by that much, while a ramp of <= 128 points climbs >= 0.8% a step).
  let runMax = hi[0]!;
  let lastGrowthX = x[0]!;
  let lastGrowthIdx = 0;
  for (let i = 1; i < n; i++) {
    if (hi[i]! > runMax + 0.005 * rise) {
      lastGrowthX = x[i]!;
      lastGrowthIdx = i;
    }
    if (hi[i]! > runMax) runMax = hi[i]!;
  }
  const lastGrowthAt = span > 0 ? clamp01((lastGrowthX - w0) / span) : 1;

  const base: Omit<Verdict, 'verdict' | 'explanation'> = {
    n, slope, mkS: mk.s, mkZ: mk.z, pValue: mk.p, tau: mk.tau, first, peak, last, lastGrowthAt,
  };
  const fmt = (v: number) => formatBytes(v);
  const pct = (f: number) => `${Math.round(f * 100)}%`;
  const minGrowth = opts.minGrowth ?? 0;

  const grew = rise > minGrowth && rise > 0 && (peak - earlyHi > 0.2 * rise || (n < 4 && last > first));
  if (!grew) {
    const why = n < 4 ? `no meaningful change after warm-up (level ${fmt(last)})`
      : `no meaningful growth: ${n} changes between ${fmt(earlyLo)} and ${fmt(peak)}, the highs no higher than at the start`;
    return { ...base, verdict: 'steady', explanation: `${cap(why)}.` };
  }
  // Released: it ends well below its peak and its floor came back down near where it started
  // (noise alone can end a leaking series low; it cannot bring its floor back down).
  const floorRise = lateLo - earlyLo;
  const released = last - earlyLo < 0.5 * rise && floorRise < RETAINED * rise;
  if (released) {
    return { ...base, verdict: 'bounded', explanation: `Grew from ${fmt(earlyLo)} to a peak of ${fmt(peak)}, then was released to ${fmt(last)}.` };
  }
  const significant = n >= MIN_TREND_POINTS && mk.p < ALPHA && mk.s > 0;
  const retained = floorRise >= RETAINED * rise;
  const changesAfter = n - 1 - lastGrowthIdx;
  const plateau = lastGrowthAt < PLATEAU_BY && changesAfter >= Math.max(MIN_TREND_POINTS, n / 4);
  const rate = slopeWords(slope, opts);
  if (significant && retained && !plateau) {
    return {
      ...base, verdict: 'leak',
      explanation: `Grew steadily from ${fmt(first)} to ${fmt(last)}${rate} and never gave it back (Mann–Kendall p=${formatP(mk.p)}, tau=${mk.tau.toFixed(2)}, ${n} changes; last grew at ${pct(lastGrowthAt)} of its window).`,
    };
  }
  if (plateau) {
    return {
      ...base, verdict: 'bounded',
      explanation: `Grew to ${fmt(peak)} by ${pct(lastGrowthAt)} of its window, then held between ${fmt(lateLo)} and ${fmt(peak)} over ${changesAfter} more changes.`,
    };
  }
  const weak = n < MIN_TREND_POINTS ? `only ${n} changes` : !significant ? `weak trend, p=${formatP(mk.p)}` : `its floor rose only to ${fmt(lateLo)}`;
  return {
    ...base, verdict: 'growing',
    explanation: `Grew from ${fmt(first)} to ${fmt(last)}${rate}, but the evidence is thin (${weak}).`,
  };
}

function flat(v: number, why: string): Verdict {
  return {
    verdict: 'steady', n: 0, slope: 0, mkS: 0, mkZ: 0, pValue: 1, tau: 0, first: v, peak: v, last: v,
    lastGrowthAt: 0, explanation: `${cap(why)}.`,
  };
}

/** Copies the points (x <= until), filling lo/hi, and drops consecutive repeats. */
function normalise(s: Series, until?: number): Pts {
  const out: Pts = { x: [], y: [], lo: [], hi: [] };
  const n = Math.min(s.x.length, s.y.length);
  for (let i = 0; i < n; i++) {
    const x = s.x[i]!;
    if (until !== undefined && x > until) break;
    const y = s.y[i]!;
    const lo = Math.min(s.lo?.[i] ?? y, y);
    const hi = Math.max(s.hi?.[i] ?? y, y);
    const k = out.y.length - 1;
    if (k >= 0 && out.y[k] === y && lo >= y && hi <= y) continue;
    out.x.push(x);
    out.y.push(y);
    out.lo.push(lo);
    out.hi.push(hi);
  }
  return out;
}

/** Drops points before the cutoff, keeping the last of them as the level the window starts from. */
function afterWarmup(p: Pts, cutoff: number): Pts {
  let k = 0;
  while (k < p.x.length && p.x[k]! < cutoff) k++;
  if (k === 0) return p;
  const from = k - 1;
  const y0 = p.y[from]!;
  return {
    x: [p.x[from]!, ...p.x.slice(k)],
    y: [y0, ...p.y.slice(k)],
    lo: [y0, ...p.lo.slice(k)],
    hi: [y0, ...p.hi.slice(k)],
  };
}

function decimate(p: Pts, max: number): Pts {
  let { x, y, lo, hi } = p;
  while (x.length > max) {
    const n = Math.ceil(x.length / 2);
    const nx: number[] = [], ny: number[] = [], nlo: number[] = [], nhi: number[] = [];
    // Merge from the end so the last point stays the last change.
    const off = x.length % 2;
    if (off) {
      nx.push(x[0]!); ny.push(y[0]!); nlo.push(lo[0]!); nhi.push(hi[0]!);
    }
    for (let i = off; i < x.length; i += 2) {
      nx.push(x[i + 1]!);
      ny.push(y[i + 1]!);
      nlo.push(Math.min(lo[i]!, lo[i + 1]!));
      nhi.push(Math.max(hi[i]!, hi[i + 1]!));
    }
    x = nx; y = ny; lo = nlo; hi = nhi;
    void n;
  }
  return { x, y, lo, hi };
}

function slopeWords(slope: number, opts: GrowthOptions): string {
  if (!opts.xUnit || slope <= 0) return '';
  return ` (about ${formatBytes(slope * (opts.xScale ?? 1))} per ${opts.xUnit})`;
}

function clamp01(v: number): number {
  return v < 0 ? 0 : v > 1 ? 1 : v;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function formatP(p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
}

/** Kept for callers of the older name. */
export { formatBytes as formatAmount } from '../model/units.js';
