// Growth verdicts: does this series (a pool's bytes, a site's outstanding bytes, a process
// total) leak? The statistics run on the entity's own changes (consecutive repeats dropped, at
// most ~128 points), so a pool that only changes when a leaking request hits it reads as the
// steady climb it is, however much other traffic happens in between.
//
//   leak     grew through its window (Mann–Kendall trend test: significant, p < 0.05, over >= 8
//            changes) in more than one step (no single jump of what it keeps holds half of it),
//            and kept what it grew: its floor near the end holds a good part of the rise, and it
//            did not stop growing early.
//   growing  grew after start-up and kept it, but with too little evidence (few changes, a weak
//            trend, one step up that then held) to call it a leak. Few points of kept growth are
//            never "steady".
//   bounded  grew, then gave it back (it came back down to its early floor after its peak: a
//            clear, a destroy, frees), or grew early and then held its level while the process
//            kept working (a cache that fills, an LRU at capacity).
//   steady   no meaningful growth: its highs after start-up are no higher than at the start.
//
// A whole made of parts that come and go (a pool class: the sum of its live pools) can rise
// because more of its parts are live at once (a request's pool per open keepalive connection),
// with every part made and destroyed: nothing is kept. When the caller says which parts hold it
// (`heldSince`), growth counts only if the parts alive when it was halfway up its rise still hold
// a good part of it (a leak's old pools stay, or its one pool grows); otherwise it is bounded.
//
// Where in the window something happened is measured by the process's own activity (the share of
// its changes made before it: `position`), not by the wall clock, when the caller gives one: an
// idle hour is no evidence that memory is held, and a slow start-up does not move the window.
// Growth during warm-up (the first 15% of that activity, or longer when the caller says start-up
// lasted longer) does not count; nor do releases after `until` (teardown at shutdown releases
// everything, leaks included).

import { formatBytes } from '../model/units.js';
import type { Series, Verdict } from './result.js';
import { mannKendall, theilSen } from './trend.js';

export interface GrowthOptions {
  /** The window the entity lives in (defaults to the series' own x range), in the trace clock. */
  window?: [number, number];
  /** Fraction of the window treated as warm-up (default 0.15). */
  warmup?: number;
  /** Start-up lasts at least until this time (a process that forks its workers or daemonizes). */
  startupUntil?: number;
  /** Points after this time are ignored (process teardown)... */
  until?: number;
  /** ...and points after this position (`position`'s scale): teardown within one clock reading. */
  untilPosition?: number;
  /** Growth below this many units (bytes) is not meaningful (default 0). */
  minGrowth?: number;
  /** Words for the unit of x in explanations ('events', 's'); default none. */
  xUnit?: string;
  /** Multiply slopes by this to express them per xUnit (1e9 for ns → s). */
  xScale?: number;
  /**
   * Positions in the window (0..1) of ascending times, e.g. the process's activity before each.
   * Default: the time's place between the window's ends.
   */
  position?: (xs: readonly number[]) => number[];
  /** What one use of the entity is, in words ('a connection'), when it is released after each. */
  use?: string;
  /** For a whole made of parts (a pool class): what the parts alive at or before x (the series'
   *  clock) hold now, and what a part is in words ('pools'). */
  heldSince?: (x: number) => number;
  parts?: string;
}

/** Points the statistics look at, at most. */
export const VERDICT_POINTS = 128;
const MIN_TREND_POINTS = 8;
const ALPHA = 0.05;
/** A leak keeps at least this fraction of its rise in its floor near the end. */
const RETAINED = 0.25;
/** One jump of the kept level holding this share of all it kept is a step, not a trend. */
const STEP_SHARE = 0.5;
/** Growth that stopped before this fraction of the window, followed by activity, is a plateau. */
const PLATEAU_BY = 0.3;
/** Back within this fraction of the rise above the floor: released. */
const NEAR_FLOOR = 0.1;
/** More uses than this (each shorter than a tenth of the window, on average) are churn... */
const MANY_USES = 10;
/** ...unless the tallest is more than this many times the usual one (the 90th percentile). */
const OUTLIER = 2;

interface Pts {
  x: number[];
  /** Positions in the window, 0..1. */
  pos: number[];
  y: number[];
  lo: number[];
  hi: number[];
}

export function growthVerdict(series: Series, opts: GrowthOptions = {}): Verdict {
  const raw = normalise(series, opts.until);
  if (raw.x.length === 0) return flat(0, 'no data: no change of its memory was recorded');
  const w0 = opts.window?.[0] ?? raw.x[0]!;
  const w1 = Math.max(opts.window?.[1] ?? raw.x[raw.x.length - 1]!, w0);
  const place = opts.position ?? ((xs: readonly number[]) => xs.map((x) => (w1 > w0 ? (x - w0) / (w1 - w0) : 1)));
  let all: Pts = { ...raw, pos: place(raw.x) };
  if (opts.untilPosition !== undefined) {
    let k = all.pos.length;
    while (k > 1 && all.pos[k - 1]! > opts.untilPosition) k--;
    if (k < all.pos.length) all = { x: all.x.slice(0, k), pos: all.pos.slice(0, k), y: all.y.slice(0, k), lo: all.lo.slice(0, k), hi: all.hi.slice(0, k) };
  }
  const start = place([w0])[0] ?? 0;
  const end = 1;
  const span = Math.max(end - start, 0);
  let cutoff = start + (opts.warmup ?? 0.15) * span;
  if (opts.startupUntil !== undefined) cutoff = Math.max(cutoff, startupPosition(all, opts.startupUntil, place));
  const pts = decimate(afterWarmup(all, cutoff), VERDICT_POINTS);
  const n = pts.x.length;
  const { x, y, lo, hi, pos } = pts;
  const mk = mannKendall(y);
  const slope = theilSen(x, y);
  const first = y[0]!;
  const last = y[n - 1]!;
  let peak = -Infinity;
  let peakIdx = 0;
  for (let i = 0; i < n; i++) if (hi[i]! > peak) { peak = hi[i]!; peakIdx = i; }
  // The early level: the first twentieth of the points (at least two, so one period of churn is
  // seen), short enough that growth soon after warm-up still counts as growth.
  const qe = Math.min(n, Math.max(2, Math.ceil(n / 20)));
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
  // The lowest it came down to after it first came near its peak (within a tenth of the rise:
  // a sawtooth whose last tooth happens to be the tallest was released by the teeth before).
  let nearPeak = peakIdx;
  for (let i = 0; i < n; i++) if (hi[i]! >= peak - NEAR_FLOOR * rise) { nearPeak = i; break; }
  // (A point that ends lower than its high gave it back within itself.)
  let afterPeakLo = y[nearPeak]! < hi[nearPeak]! ? y[nearPeak]! : Infinity;
  for (let i = nearPeak + 1; i < n; i++) afterPeakLo = Math.min(afterPeakLo, lo[i]!);

  // The level it keeps from a point on is its floor from there (the lowest it comes down to
  // later); the level it keeps at the end, that floor over its last twentieth (a few points, so
  // one low sample of churn does not decide it). Where it last grew is where its kept level first
  // came within a tenth of that: spikes of churn given back at once are not growth; a leak's kept
  // level rises to the end, a cache's stops when it is full.
  const kept = suffixMin(lo);
  const keptEnd = kept[Math.max(0, n - Math.max(1, Math.ceil(n / 20)))]!;
  let lastGrowthIdx = 0;
  if (keptEnd > kept[0]!) {
    while (lastGrowthIdx < n - 1 && kept[lastGrowthIdx]! < keptEnd - 0.1 * (keptEnd - kept[0]!)) lastGrowthIdx++;
  }
  const lastGrowthPos = pos[lastGrowthIdx]!;
  const lastGrowthAt = span > 0 ? clamp01((lastGrowthPos - start) / span) : 1;

  const base: Omit<Verdict, 'verdict' | 'explanation'> = {
    n, slope, mkS: mk.s, mkZ: mk.z, pValue: mk.p, tau: mk.tau, first, peak, last, lastGrowthAt,
  };
  const fmt = (v: number) => formatBytes(v);
  const pct = (f: number) => `${Math.round(f * 100)}%`;
  const minGrowth = opts.minGrowth ?? 0;

  const grew = rise > minGrowth && rise > 0 && (peak - earlyHi > 0.2 * rise || (n < 4 && last > first));
  // Released: after it came near its peak it came back down near its early floor, and its floor
  // near the end is there too (noise alone can end a leaking series low; it cannot bring its
  // floor back down).
  const floorRise = lateLo - earlyLo;
  const released = rise > minGrowth && afterPeakLo - earlyLo < RETAINED * rise && floorRise < RETAINED * rise;
  // Released again and again: uses (rises back to the floor). Alike uses (none more than twice as
  // tall as nine in ten of them), many or quick, are churn (steady). A few long ones, or uses far
  // taller than the usual (a long stream on one connection), are growth given back (bounded).
  const u = released ? uses(pts, Math.min(...lo), peakIdx) : undefined;
  if (u && u.count >= 2) {
    // Alike uses are churn when there are many, or when even the tallest rose in a few changes
    // (a pool created, filled and destroyed per request): a sawtooth of long teeth is growth.
    const alike = u.rise <= OUTLIER * u.typical && (u.count > MANY_USES || u.longest < MIN_TREND_POINTS);
    if (alike) {
      return { ...base, verdict: 'steady', explanation: `No growth that stays: it returns to its floor after each of its ${u.count} uses${opts.use ? ` (${opts.use} each)` : ''}, up to ${fmt(peak)}.` };
    }
    return {
      ...base, verdict: 'bounded', explanation: useWords(u, opts),
      perUse: { peak: u.rise, uses: u.count, ...(u.rate !== undefined ? { rate: u.rate } : {}), steps: u.steps },
    };
  }
  if (!grew) {
    const why = n < 4 ? `no meaningful change after start-up (level ${fmt(last)})`
      : `no meaningful growth: ${n} changes between ${fmt(earlyLo)} and ${fmt(peak)}, the highs no higher than at the start`;
    return { ...base, verdict: 'steady', explanation: `${cap(why)}.` };
  }
  if (released) {
    return {
      ...base, verdict: 'bounded',
      explanation: `Grew from ${fmt(earlyLo)} to a peak of ${fmt(peak)}, then was released to ${fmt(afterPeakLo)}${last > afterPeakLo ? ` (${fmt(last)} at the end)` : ''}.`,
    };
  }
  if (opts.heldSince) {
    // Halfway through the rise of its kept level, by level, not by time (parts made at an uneven
    // rate, late requests on a loaded machine, put the time's midpoint anywhere on the rise): the
    // first point whose low is half-way up. The parts alive then held at least that; a leak's
    // still do, renewed parts hold little of it.
    const keptRise = keptEnd - earlyLo;
    let midIdx = 0;
    while (midIdx < n - 1 && lo[midIdx]! < earlyLo + keptRise / 2) midIdx++;
    const mid = x[midIdx]!;
    const held = opts.heldSince(mid);
    if (keptRise > 0 && held - earlyLo < RETAINED * keptRise) {
      const parts = opts.parts ?? 'parts';
      return {
        ...base, verdict: 'bounded',
        explanation: `Rose from ${fmt(earlyLo)} to ${fmt(keptEnd)}, but no memory is kept: the ${parts} alive halfway through that rise hold ${fmt(Math.max(0, held))} now, newer ${parts} the rest, made as those before them were released; its level follows how many are live at once.`,
      };
    }
  }
  const significant = n >= MIN_TREND_POINTS && mk.p < ALPHA && mk.s > 0;
  // One step up and then a level is not a trend. What the series keeps from a point on is its
  // floor from there (the lowest it comes down to later); when one jump of that floor holds at
  // least half of what it kept, the growth was a single step.
  const step = largestFloorJump(lo);
  const continues = !(step.kept > 0 && step.jump >= STEP_SHARE * step.kept);
  const retained = keptEnd - earlyLo >= RETAINED * rise;
  const changesAfter = n - 1 - lastGrowthIdx;
  // A plateau needs evidence that the process kept working while the level held: activity after
  // its last growth (positions are activity) and changes of its own, or a window measured in time.
  const plateau = lastGrowthAt < PLATEAU_BY && (changesAfter >= Math.max(MIN_TREND_POINTS, n / 4) || (opts.position !== undefined && lastGrowthAt < PLATEAU_BY));
  const rate = slopeWords(slope, opts);
  if (significant && retained && !plateau && continues) {
    return {
      ...base, verdict: 'leak',
      explanation: `Grew steadily from ${fmt(first)} to ${fmt(last)}${rate} and never gave it back (Mann–Kendall p=${formatP(mk.p)}, tau=${mk.tau.toFixed(2)}, ${n} changes; last grew at ${pct(lastGrowthAt)} of its activity).`,
    };
  }
  if (plateau) {
    return {
      ...base, verdict: 'bounded',
      explanation: `Grew to ${fmt(peak)} by ${pct(lastGrowthAt)} of its activity, then held between ${fmt(lateLo)} and ${fmt(peak)} while the process kept working${changesAfter > 0 ? ` (${changesAfter} more changes of its own)` : ''}.`,
    };
  }
  const stepAt = span > 0 ? clamp01((pos[step.at]! - start) / span) : 1;
  const weak = n < MIN_TREND_POINTS ? `only ${n} change${n === 1 ? '' : 's'} after start-up`
    : !significant ? `weak trend, p=${formatP(mk.p)}`
    : !retained ? `its floor rose only to ${fmt(lateLo)}`
    : `one step holds most of it: ${fmt(step.jump)} at ${pct(stepAt)} of its activity, then it held`;
  return {
    ...base, verdict: 'growing',
    explanation: `Grew from ${fmt(first)} to ${fmt(last)}${rate} and kept it, but the evidence is thin (${weak}).`,
  };
}

/** The largest rise of the floor-from-here-on (suffix minimum of lo) between two points, where,
 *  and the floor's whole rise. */
function largestFloorJump(lo: number[]): { jump: number; at: number; kept: number } {
  const n = lo.length;
  const floor = suffixMin(lo);
  let jump = 0;
  let at = 0;
  for (let i = 1; i < n; i++) {
    const d = floor[i]! - floor[i - 1]!;
    if (d > jump) {
      jump = d;
      at = i;
    }
  }
  return { jump, at, kept: n ? floor[n - 1]! - floor[0]! : 0 };
}

/** For each point, the lowest value from it to the end: the level kept from then on. */
function suffixMin(lo: readonly number[]): number[] {
  const out = new Array<number>(lo.length);
  let m = Infinity;
  for (let i = lo.length - 1; i >= 0; i--) {
    m = Math.min(m, lo[i]!);
    out[i] = m;
  }
  return out;
}

/** The position where start-up ends: that of the last point at or before `t`, or of `t`. */
function startupPosition(p: Pts, t: number, place: (xs: readonly number[]) => number[]): number {
  let k = -1;
  while (k + 1 < p.x.length && p.x[k + 1]! <= t) k++;
  return k >= 0 ? p.pos[k]! + 1e-12 : place([t])[0]!;
}

interface Uses {
  /** Completed uses (rises followed by a return near the floor), and the tallest one. */
  count: number;
  peak: number;
  /** The usual height of a use above the floor (the 90th percentile), and the tallest one's. */
  typical: number;
  rise: number;
  /** Changes from the tallest use's start to its peak, and the most any use took to its top. */
  steps: number;
  longest: number;
  /** Its growth per clock unit, when its x range is not empty. */
  rate?: number;
  /** It came back near the floor after the tallest use. */
  releasedAfter: boolean;
}

/** Splits the series at its returns near the floor; the tallest use is the one holding the peak. */
function uses(p: Pts, floor: number, peakIdx: number): Uses | undefined {
  const n = p.x.length;
  let peak = -Infinity;
  for (const v of p.hi) peak = Math.max(peak, v);
  const band = floor + NEAR_FLOOR * (peak - floor);
  // A use rises above the band and ends back in it; a point may hold a whole use (its high above
  // the band, its last value back in it: a pool created and destroyed between two points).
  let count = 0;
  let up = false;
  let top = -Infinity;
  let start = 0;
  let topAt = 0;
  let longest = 0;
  const heights: number[] = [];
  let tallestStart = 0;
  // A use is a rise above the floor (by more than 1% of the tallest), however small, that comes
  // back down to it: a point's low says it came back, even when the point (merged changes) ends
  // on the next use's rise.
  const above = floor + 0.01 * (peak - floor);
  for (let i = 0; i < n; i++) {
    if (p.hi[i]! > above) {
      up = true;
      if (p.hi[i]! > top) { top = p.hi[i]!; topAt = i; }
    }
    if (p.lo[i]! <= above) {
      if (up) {
        count++;
        heights.push(top - floor);
        longest = Math.max(longest, topAt - start);
      }
      up = false;
      top = -Infinity;
      start = i;
      if (i < peakIdx) tallestStart = i;
    }
  }
  let releasedAfter = false;
  for (let i = peakIdx + 1; i < n; i++) if (p.lo[i]! <= band) releasedAfter = true;
  const dx = p.x[peakIdx]! - p.x[tallestStart]!;
  const out: Uses = { count, peak, typical: quantile(heights, 0.9), rise: peak - floor, steps: peakIdx - tallestStart, longest, releasedAfter };
  if (dx > 0) out.rate = (peak - p.y[tallestStart]!) / dx;
  return out;
}

function useWords(u: Uses, opts: GrowthOptions): string {
  const use = opts.use ?? 'one use';
  const rate = u.rate !== undefined && opts.xUnit ? `≈ ${formatBytes(u.rate * (opts.xScale ?? 1))} per ${opts.xUnit}` : '';
  const step = u.steps > 0 ? `≈ ${formatBytes(u.rise / u.steps)} per change` : '';
  const how = [rate, step].filter(Boolean).join(', ');
  if (u.rise <= OUTLIER * u.typical) {
    return `Grows and is released, again and again: ${u.count} times, nine in ten up to about ${formatBytes(u.typical)} (at most ${formatBytes(u.rise)}${how ? `, ${how}` : ''}); nothing stays.`;
  }
  return `Grows during ${use} (by up to ${formatBytes(u.rise)}${how ? `, ${how}` : ''}) and is released when it ends (released at least ${u.count} times).`;
}

function flat(v: number, why: string): Verdict {
  return {
    verdict: 'steady', n: 0, slope: 0, mkS: 0, mkZ: 0, pValue: 1, tau: 0, first: v, peak: v, last: v,
    lastGrowthAt: 0, explanation: `${cap(why)}.`,
  };
}

/** Copies the points (x <= until), filling lo/hi, and drops consecutive repeats. */
function normalise(s: Series, until?: number): Omit<Pts, 'pos'> {
  const out = { x: [] as number[], y: [] as number[], lo: [] as number[], hi: [] as number[] };
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

/** Drops points before the cutoff position, keeping the last of them as the level the window starts from. */
function afterWarmup(p: Pts, cutoff: number): Pts {
  let k = 0;
  while (k < p.pos.length && p.pos[k]! < cutoff) k++;
  if (k === 0) return p;
  const from = k - 1;
  const y0 = p.y[from]!;
  return {
    x: [p.x[from]!, ...p.x.slice(k)],
    pos: [p.pos[from]!, ...p.pos.slice(k)],
    y: [y0, ...p.y.slice(k)],
    lo: [y0, ...p.lo.slice(k)],
    hi: [y0, ...p.hi.slice(k)],
  };
}

function quantile(v: number[], q: number): number {
  if (v.length === 0) return 0;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}


function decimate(p: Pts, max: number): Pts {
  let { x, pos, y, lo, hi } = p;
  while (x.length > max) {
    const nx: number[] = [], np: number[] = [], ny: number[] = [], nlo: number[] = [], nhi: number[] = [];
    // Merge from the end so the last point stays the last change.
    const off = x.length % 2;
    if (off) {
      nx.push(x[0]!); np.push(pos[0]!); ny.push(y[0]!); nlo.push(lo[0]!); nhi.push(hi[0]!);
    }
    for (let i = off; i < x.length; i += 2) {
      nx.push(x[i + 1]!);
      np.push(pos[i + 1]!);
      ny.push(y[i + 1]!);
      nlo.push(Math.min(lo[i]!, lo[i + 1]!));
      nhi.push(Math.max(hi[i]!, hi[i + 1]!));
    }
    x = nx; pos = np; y = ny; lo = nlo; hi = nhi;
  }
  return { x, pos, y, lo, hi };
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

export function formatP(p: number): string {
  return p < 1e-4 ? p.toExponential(1) : p.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
}

/** Kept for callers of the older name. */
export { formatBytes as formatAmount } from '../model/units.js';
