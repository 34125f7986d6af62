// What every per-process analysis needs: the process state, how to name its sites, and how to
// judge its series (the process window, teardown, the clock's unit).

import type { EngineState, ProcState } from '../engine/state.js';
import type { BoundedSeries } from '../engine/series.js';
import type { Series, Verdict } from './result.js';
import { growthVerdict } from './growth.js';
import type { GrowthOptions } from './growth.js';
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
  /** Start of the process's teardown (see teardownStart), if it has one. */
  until: number | undefined;
}

/** The terminal part of a process's window in which a final descent counts as teardown. */
const TEARDOWN_TAIL = 0.05;

/**
 * Where a process's teardown begins: the final descent of its total, in the last 5% of its
 * window, down to less than half of where it started (a server destroying its pools, a program
 * freeing everything before exit). Releases from then on do not count as "released": a pool
 * destroyed at shutdown still leaked while the process ran. Tiny rises during the descent (a
 * log discovering a few unlogged bytes as it prints a destroy) do not interrupt it.
 */
export function teardownStart(total: Series, w0: number, w1: number): number | undefined {
  const { x, y } = total;
  const n = Math.min(x.length, y.length);
  if (n < 2) return undefined;
  const limit = w1 - TEARDOWN_TAIL * (w1 - w0);
  let i = n - 1;
  while (i > 0 && x[i]! >= limit) {
    const prev = y[i - 1]!;
    const cur = y[i]!;
    if (prev < cur - 0.01 * Math.max(Math.abs(prev), Math.abs(cur), 1)) break;
    i--;
  }
  const from = y[i]!;
  const end = y[n - 1]!;
  if (i === n - 1 || from <= 0 || end > 0.5 * from) return undefined;
  return x[i]!;
}

export function toSeries(s: BoundedSeries | undefined): Series {
  if (!s) return { x: [], y: [] };
  return s.points();
}

/** Judges an entity's series within its process: window from its start to the process end,
 *  releases after the process's last growth (teardown) ignored. */
export function judge(ctx: ProcContext, series: Series, from?: number): Verdict {
  const { p, state } = ctx;
  const start = from ?? series.x[0] ?? p.startT;
  const opts: GrowthOptions = {
    window: [Math.min(start, p.endT), p.endT],
    until: ctx.until,
    minGrowth: MIN_GROWTH_BYTES,
    ...(state.clock === 'ns' ? { xUnit: 's', xScale: 1e9 } : { xUnit: 'event', xScale: 1 }),
  };
  return growthVerdict(series, opts);
}
