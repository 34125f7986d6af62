// "No calls seen": a process traced (its window known) in which no allocation, free, pool or
// mapping call was seen. That is not "steady" — nothing was measured — so it is a state of its
// own, with a hint that depends on what produced the trace (data, not code paths).

import type { ProcState } from '../engine/state.js';
import type { Clock } from '../model/events.js';
import type { Verdict } from './result.js';

/** What to try, by the source that produced the trace ('attach', 'recorder', ...). */
const HINTS: Record<string, string> = {
  attach:
    'Its allocator may not be the one probed (Debian\'s libapr takes its blocks with mmap, not malloc; a program may have an allocator of its own), ' +
    'or it was idle: try the profile attach chooses by itself (leave out --allocator), a profile for its allocator (docs/allocator-profiles.md), ' +
    'or `leakscope kernel` for mmap/brk; and drive it while tracing.',
  recorder:
    'It may allocate with an allocator of its own rather than the malloc family the recorder interposes: ' +
    'try `leakscope attach` with a profile for its allocator (docs/allocator-profiles.md), or `leakscope kernel` for mmap/brk.',
};
const DEFAULT_HINT = 'The input holds no allocation, free or pool record for this process.';

/** Whether the process had any memory event: allocation, free, pool operation or mapping. */
export function sawMemoryCalls(p: ProcState): boolean {
  const a = p.anomalies;
  return p.allocCount > 0 || p.frees > 0 || p.classes.size > 0 || p.pools.size > 0 || p.young.count > 0 ||
    p.mappings !== undefined || p.mmapBytes !== 0 || p.heap.count > 0 ||
    a.unknownFree + a.doubleFree + a.unknownRealloc + a.unknownPool + a.unknownPoolDestroy + (a.inheritedFree ?? 0) + (a.inheritedPool ?? 0) > 0;
}

export function noCallsHint(source: string | undefined): string {
  return (source && HINTS[source]) || DEFAULT_HINT;
}

function duration(ns: number, clock: Clock): string {
  if (clock !== 'ns') return `${ns} events`;
  const s = ns / 1e9;
  return s >= 1 ? `${s.toFixed(s >= 100 ? 0 : 1)} s` : `${Math.round(ns / 1e6)} ms`;
}

/** The verdict of a process in which nothing was called. */
export function noCallsVerdict(p: ProcState, clock: Clock): Verdict {
  return {
    verdict: 'no-calls', n: 0, slope: 0, mkS: 0, mkZ: 0, pValue: 1, tau: 0, first: 0, peak: 0, last: 0, lastGrowthAt: 0,
    explanation: `No allocation, free or pool call was seen in this process during the ${duration(p.endT - p.startT, clock)} it was traced: there is nothing to judge its memory by.`,
  };
}
