// The result of analysing one trace: what every report (text, JSON, HTML, exports) renders.
// This is also the documented JSON output of `leakscope analyze --format json`
// (docs/json-output.md); change it only compatibly.

import type { Clock, Frame } from '../model/events.js';
import type { Anomalies } from '../engine/state.js';

/**
 * What an entity's memory did. The first four judge its growth while the process ran (growth.ts):
 * `leak`, `growing`, `bounded`, `steady`. `unfreed` ("not freed at exit") is a fact, not a trend:
 * the process exited still holding the entity's memory, and its growth while it ran was no leak
 * (that growth verdict is kept in `trend`). `no-calls`: a process in which no allocation, free,
 * pool or mapping call was seen (nothing to judge; ProcessReport.hint says what to try).
 */
export type VerdictKind = 'leak' | 'growing' | 'bounded' | 'steady' | 'unfreed' | 'no-calls';
/** The verdicts of growth alone. */
export type GrowthKind = 'leak' | 'growing' | 'bounded' | 'steady';

/** Verdicts by how much a user should look at them first (0 first). */
export const VERDICT_RANK: Record<VerdictKind, number> = { leak: 0, growing: 1, unfreed: 2, bounded: 3, steady: 4, 'no-calls': 5 };

/** The growth verdict of one series, with the numbers behind it so a user can judge. */
export interface Verdict {
  verdict: VerdictKind;
  /** Points the statistic saw (after dropping repeats). */
  n: number;
  /** Theil–Sen slope, bytes per clock unit (per second for 'ns' clocks is slope * 1e9). */
  slope: number;
  /** Mann–Kendall S, normal score Z, two-sided p-value and Kendall's tau. */
  mkS: number;
  mkZ: number;
  pValue: number;
  tau: number;
  first: number;
  peak: number;
  last: number;
  /** Where in the window (0..1) the series last grew, measured by the process's activity (the
   *  share of its changes made before that point) when the process is known. */
  lastGrowthAt: number;
  /** One sentence (or two): why this verdict. */
  explanation: string;
  /** `unfreed` verdicts: the growth verdict of what the entity did while the process ran. */
  trend?: GrowthKind;
  /** Entities of a process that exited: what they still held then. */
  atExit?: { bytes: number };
  /** `bounded` by releases after each use (a connection, a request): the tallest use, how many
   *  uses were released, its growth per clock unit (when its time span is not empty) and its
   *  changes on the way up. */
  perUse?: { peak: number; uses: number; rate?: number; steps: number };
}

/** A bounded series: x in the trace clock, one y per x. */
export interface Series {
  x: number[];
  y: number[];
  /** Lowest and highest value each point covered (a point may stand for several changes). */
  lo?: number[];
  hi?: number[];
}

export interface SiteReport {
  /** Stable key within the process (the stack id). */
  key: string;
  /** The site as shown: the first frame that matters, after suppressions. */
  label: string;
  /** Frames, leaf first, with allocator internals already dropped. */
  stack: Frame[];
  /** The pool API the allocation went through ('ngx_palloc', 'apr_palloc', ...), if any. */
  via?: string;
  /** Pool tag or class when the allocations are pool allocations. */
  pool?: string;
  count: number;
  bytes: number;
  /** bytes / process outstanding total. */
  share: number;
  allocatedCount: number;
  allocatedBytes: number;
  /** Times (trace clock) of the oldest and youngest outstanding allocation. */
  oldestT: number;
  youngestT: number;
  verdict?: Verdict;
  series?: Series;
}

export interface PoolReport {
  pool: string; // hex address
  parent: string; // hex address, '0x0' for a root
  kind: string;
  tag: string;
  createdT: number;
  /** Destroy time, absent while the pool lives. */
  destroyedT?: number;
  age: number;
  /** Bytes in this pool, and in it plus its descendants. */
  bytes: number;
  treeBytes: number;
  allocs: number;
  clears: number;
  createStack: Frame[];
  createSite: string;
  /** Alive before the trace: found in the process's memory (its creation time is unknown;
   *  `createdT` is when it was found). */
  found?: boolean;
  children: PoolReport[];
  /** Sites feeding this pool (outstanding). */
  sites: { label: string; bytes: number; count: number }[];
  verdict?: Verdict;
  series?: Series;
}

/** Pools of one kind of use (same tag or same creation site), summed. */
export interface PoolClassReport {
  name: string;
  kind: string;
  live: number;
  /** Pools whose creation the trace saw. */
  created: number;
  /** Pools alive before the trace (found in memory, or first seen in use): not counted in `created`. */
  found: number;
  destroyed: number;
  bytes: number;
  peakBytes: number;
  verdict: Verdict;
  series: Series;
  /** Sites that fed the class while it grew. */
  sites: { label: string; bytes: number; count: number }[];
}

/** What the engine counted as not adding up (engine/state.ts). */
export type { Anomalies } from '../engine/state.js';

export interface ProcessReport {
  pid: number;
  ppid: number;
  command: string;
  exe: string;
  startT: number;
  endT: number;
  exited: boolean;
  exitCode?: number;
  /** This image was replaced by an exec; a later entry with the same pid is the new image. */
  replacedByExec?: boolean;
  verdict: Verdict;
  outstanding: { heapBytes: number; heapCount: number; poolBytes: number; poolCount: number; mmapBytes: number };
  allocated: { count: number; bytes: number; frees: number };
  anomalies: Anomalies;
  sites: SiteReport[];
  /** Pools never destroyed, as a forest (roots first). */
  pools: PoolReport[];
  poolClasses: PoolClassReport[];
  series: { total: Series; heap: Series; pools: Series; rss?: Series };
  markers: { t: number; label: string }[];
  /** Last RSS sample, when the source has them. */
  rssBytes?: number;
  /** What to try when nothing could be judged (verdict `no-calls`). */
  hint?: string;
}

export interface AnalysisResult {
  tool: 'leakscope';
  version: number;
  source: string;
  inputs: string[];
  clock: Clock;
  /** Human unit of the clock: 'ns' or 'events'. */
  clockUnit: string;
  startWallMs?: number;
  /** Counts and bytes are unbiased estimates from a sampled trace. */
  estimated: boolean;
  events: number;
  lost: number;
  warnings: string[];
  processes: ProcessReport[];
}
