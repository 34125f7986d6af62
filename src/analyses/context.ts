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
    until: p.lastGrowT < p.endT ? p.lastGrowT : undefined,
    minGrowth: MIN_GROWTH_BYTES,
    ...(state.clock === 'ns' ? { xUnit: 's', xScale: 1e9 } : { xUnit: 'event', xScale: 1 }),
  };
  return growthVerdict(series, opts);
}
