// What every per-process analysis needs: the process state, how to name its sites, and how to
// judge its series (the process window, teardown, the clock's unit).

import type { EngineState, ProcState } from '../engine/state.js';
import type { BoundedSeries } from '../engine/series.js';
import type { Series, Verdict } from './result.js';
import { growthVerdict } from './growth.js';
import type { GrowthOptions } from './growth.js';
import { formatBytes } from '../model/units.js';
import type { SiteResolver } from './symbols.js';
import type { Suppressions } from './suppressions.js';

/** Growth smaller than this is never meaningful for an entity (bytes). */
export const MIN_GROWTH_BYTES = 1024;

export interface ProcContext {
  state: EngineState;
  p: ProcState;
  resolver: SiteResolver;
  suppress: Suppressions;
  /** Outstanding heap + pool bytes of the process. */
  outstanding: number;
  /** Start of the process's teardown (see teardownStart), if it has one, in time and activity. */
  until: number | undefined;
  untilPosition?: number;
  /** Positions of times in the process's life by its activity (see activityClock). */
  position?: (xs: readonly number[]) => number[];
  /** Its start-up lasts at least until then (see startupEnd). */
  startupUntil?: number;
}

/** The terminal part of a process's window in which a final descent counts as teardown. */
const TEARDOWN_TAIL = 0.05;

/** Rises met on the way down, together, may be at most this share of the drop they sit in. */
const TEARDOWN_RISES = 0.1;

/**
 * Where a process's teardown begins: the final descent of its total, in the last 5% of its
 * window (a server destroying its pools, a worker freeing its caches at shutdown, a program
 * freeing everything before exit); nothing follows it that could show the release mattered.
 * Releases from then on do not count as "released": a pool destroyed at shutdown still leaked
 * while the process ran. Tiny rises during the descent (a log discovering a few unlogged bytes as
 * it prints a destroy) do not interrupt it; but a server still working (a trace cut while it
 * runs) goes up and down with every request, each rise small beside its total: the rises passed
 * on the way down, together, must stay a small share of the drop, or it is traffic, not teardown.
 */
export function teardownStart(total: Series, w0: number, w1: number): { t: number; index: number } | undefined {
  const { x, y } = total;
  const n = Math.min(x.length, y.length);
  if (n < 2) return undefined;
  const limit = w1 - TEARDOWN_TAIL * (w1 - w0);
  const end = y[n - 1]!;
  let start = n - 1;
  let rises = 0;
  for (let i = n - 1; i > 0 && x[i]! >= limit; i--) {
    const prev = y[i - 1]!;
    const cur = y[i]!;
    if (prev < cur - 0.01 * Math.max(Math.abs(prev), Math.abs(cur), 1)) break;
    if (prev < cur) rises += cur - prev;
    if (rises <= TEARDOWN_RISES * (prev - end)) start = i - 1;
  }
  const from = y[start]!;
  if (start === n - 1 || from <= 0 || end >= from) return undefined;
  return { t: x[start]!, index: start };
}

/**
 * A process's activity clock: the position (0..1) of a time in its life is the share of its
 * changes (allocations, frees, pool calls that changed its total) made before it. Times at one
 * reading of the clock (a coarse clock ticks every few ms) share that reading's changes evenly,
 * in their order, so where a tick happens to fall does not move anything.
 */
export function activityClock(total: Series): (xs: readonly number[]) => number[] {
  const tx = total.x;
  const n = tx.length;
  const below = (v: number): number => {
    let lo = 0, hi = n;
    while (lo < hi) { const m = (lo + hi) >> 1; if (tx[m]! < v) lo = m + 1; else hi = m; }
    return lo;
  };
  const upTo = (v: number): number => {
    let lo = 0, hi = n;
    while (lo < hi) { const m = (lo + hi) >> 1; if (tx[m]! <= v) lo = m + 1; else hi = m; }
    return lo;
  };
  return (xs) => {
    const out = new Array<number>(xs.length);
    if (n === 0) return out.fill(1);
    let i = 0;
    while (i < xs.length) {
      const v = xs[i]!;
      let j = i;
      while (j < xs.length && xs[j] === v) j++;
      const a = below(v);
      const b = upTo(v);
      const m = j - i;
      for (let k = 0; k < m; k++) out[i + k] = (a + ((b - a) * (k + 0.5)) / m) / n;
      i = j;
    }
    return out;
  };
}

/**
 * When a process's start-up ends at the latest: when it first forked a child — a server handing
 * work to its workers or children, or a launcher that daemonizes (its whole traced life is then
 * start-up). Undefined when it forked none.
 */
export function startupEnd(state: EngineState, p: ProcState): number | undefined {
  let end: number | undefined;
  for (const c of state.processes) {
    if (c === p || c.ppid !== p.pid || c.startT < p.startT) continue;
    if (end === undefined || c.startT < end) end = c.startT;
  }
  return end;
}

/**
 * For a process that exited, memory it still held is a fact, not a trend (as Valgrind and LSan
 * report it): such an entity is `unfreed` ("not freed at exit") whatever its growth looked like,
 * so the verdict does not depend on timing; its growth verdict while the process ran is kept as
 * `trend` and in the words.
 */
export function atExit(p: ProcState, v: Verdict, held: number): Verdict {
  if (!p.exited || p.replacedByExec || held <= 0) return v;
  if (v.verdict === 'unfreed' || v.verdict === 'no-calls') return v;
  // Sampled traces scale bytes up by the sampling rate: an estimate, said in whole bytes.
  held = Math.round(held);
  const why = v.explanation ? `${v.explanation.charAt(0).toLowerCase()}${v.explanation.slice(1)}` : '';
  return {
    ...v, verdict: 'unfreed', trend: v.verdict, atExit: { bytes: held },
    explanation: `Not freed at exit: ${formatBytes(held)} still held when the process exited. While it ran (${v.verdict}): ${why}`,
  };
}

export function toSeries(s: BoundedSeries | undefined): Series {
  if (!s) return { x: [], y: [] };
  return s.points();
}

/** Judges an entity's series within its process: window from `from` (the entity's creation; by
 *  default its first point) to the process end, releases after teardown began ignored. */
export function judge(ctx: ProcContext, series: Series, from?: number, use?: string, more: Pick<GrowthOptions, 'heldSince' | 'parts'> = {}): Verdict {
  const { p, state } = ctx;
  const start = from ?? series.x[0] ?? p.startT;
  // Before its first point the entity held nothing: a site first allocating half-way grew then.
  if (series.x.length > 0 && series.x[0]! > start && series.y[0] !== 0) {
    series = { x: [start, ...series.x], y: [0, ...series.y], lo: [0, ...(series.lo ?? series.y)], hi: [0, ...(series.hi ?? series.y)] };
  }
  const opts: GrowthOptions = {
    window: [Math.min(start, p.endT), p.endT],
    until: ctx.until,
    ...(ctx.untilPosition !== undefined ? { untilPosition: ctx.untilPosition } : {}),
    minGrowth: MIN_GROWTH_BYTES,
    ...(state.clock === 'ns' ? { xUnit: 's', xScale: 1e9 } : { xUnit: 'event', xScale: 1 }),
    ...(ctx.position ? { position: ctx.position } : {}),
    ...(ctx.startupUntil !== undefined ? { startupUntil: ctx.startupUntil } : {}),
    ...(use ? { use } : {}),
    ...more,
  };
  return growthVerdict(series, opts);
}
