// What the engine knows once events are folded: per-process state, handed to the analyses.

import type { Clock, TraceMeta } from '../model/events.js';
import type { SymbolScope, SymbolTables } from '../model/stacks.js';
import type { LiveTable } from './live-table.js';
import type { MappingTable } from './mappings.js';
import type { BoundedSeries } from './series.js';
import type { SiteTable } from './sites.js';
import type { YoungPools } from './young-pools.js';

/** Events that do not add up, counted per process (they never stop the fold). */
export interface Anomalies {
  unknownFree: number;
  doubleFree: number;
  unknownRealloc: number;
  unknownPool: number;
  unknownPoolDestroy: number;
  /** Frees (and pool operations) in a forked child on memory it inherited from its parent: expected, not anomalies. */
  inheritedFree?: number;
  inheritedPool?: number;
  /** Pools created with themselves as their parent: made roots. */
  poolOwnParent?: number;
  poolParentCycle?: number;
}

export interface PoolState {
  addr: number;
  parent: PoolState | undefined;
  children: Set<PoolState>;
  kind: string;
  tag: string;
  createT: number;
  createStack: number;
  destroyedT?: number;
  /** Created because an event used it before any pool-create (or it was inherited over fork). */
  implicit: boolean;
  /** Alive before the trace, found in the process's memory (`pool-found`): its creation was not
   *  seen, so its class does not count it as created, and its series starts at its found size. */
  found: boolean;
  /** Own outstanding bytes and allocation count (estimates in sampled traces). */
  bytes: number;
  count: number;
  /** Allocations over the pool's life, and clears. */
  allocs: number;
  clears: number;
  /** Outstanding allocations by site index, with the first and last allocation time since the
   *  last clear (the ages of address-less allocations). */
  sites: Map<number, PoolSiteAcc>;
  /** Allocations with an address (they can be released one by one with pool-free). */
  live: LiveTable | undefined;
  /** Bytes set by pool-size samples beyond what allocations account for. */
  sizedBytes: number;
  classKey: string;
  cls: PoolClassState;
  series: BoundedSeries | undefined;
  /** Creation order among the process's pools (`pools` iterates in it after Engine.finish()). */
  seq: number;
}

export interface PoolSiteAcc {
  bytes: number;
  count: number;
  first: number;
  last: number;
}

export interface PoolClassState {
  key: string;
  kind: string;
  /** The tag, or '' for a class made of untagged pools from one creation stack. */
  name: string;
  stack: number;
  live: number;
  /** Pools whose creation was seen; `found`: pools alive before the trace (found in memory, or
   *  first seen in use), counted apart so that `created` counts only what was seen. */
  created: number;
  found: number;
  destroyed: number;
  bytes: number;
  peakBytes: number;
  series: BoundedSeries;
  /** Bytes and allocations into pools of the class, by site index (cumulative). */
  fed: Map<number, { bytes: number; count: number }>;
  /** Engine-internal: young pools of the class that had to become objects, and that died young
   *  (new pools of a class whose pools mostly outgrow a row start as objects). */
  youngLost: number;
  youngKept: number;
}

export interface ProcState {
  pid: number;
  ppid: number;
  command: string;
  exe: string;
  /** Set when an exec replaced this image: the state is closed and kept for the report. */
  replacedByExec?: boolean;
  forked: boolean;
  /** Direct-mapped cache of this process's recently freed addresses (tells a double free from an
   *  unknown one). Per process: a forked child frees the same addresses as its parent. Made at
   *  the process's first free: a process costs little until it has data. */
  recentFree: Float64Array | undefined;
  /** Pools destroyed and not created again, oldest first, at most DEAD_POOLS (undefined until the
   *  first destroy): sources record a destroy as the call begins, and what the dying pool's
   *  cleanups and nested destroys do afterwards refers to it, not to a pool out of nothing. */
  deadPools: Set<number> | undefined;
  startT: number;
  endT: number;
  /** Time of the last event that added memory (allocation, pool creation): what follows it is teardown. */
  lastGrowT: number;
  /** Pool allocations were seen (pool sizes then come from them, not from samples). */
  sawPoolAlloc: boolean;
  exited: boolean;
  exitCode?: number;
  heap: LiveTable;
  heapBytes: number;
  heapCount: number;
  poolBytes: number;
  poolCount: number;
  mmapBytes: number;
  /** Mapped ranges with their times and sites; undefined until the process's first mmap. */
  mappings: MappingTable | undefined;
  /** Sites of anonymous mappings (stack keys as in `sites`): apart from the heap's and pools'
   *  sites, so that an mmap never touches their tables; undefined until the first one. */
  mmapSites: SiteTable | undefined;
  allocCount: number;
  allocBytes: number;
  frees: number;
  anomalies: Anomalies;
  sites: SiteTable;
  /** Pools alive, in creation order (complete after Engine.finish(): while folding, young pools
   *  are rows of `young` instead). */
  pools: Map<number, PoolState>;
  /** Pools that have only lived the common short life so far (see young-pools.ts). */
  young: YoungPools;
  /** A young pool became a PoolState since `pools` was last put in creation order. */
  poolsUnordered: boolean;
  /** Destroyed pools are forgotten except for their class aggregates. */
  classes: Map<string, PoolClassState>;
  /** The same classes by kind, then by tag (or creation stack for untagged pools). */
  classIndex: Map<string, Map<string | number, PoolClassState>>;
  total: BoundedSeries;
  heapSeries: BoundedSeries;
  poolSeries: BoundedSeries;
  rss: BoundedSeries | undefined;
  rssBytes?: number;
  markers: { t: number; label: string }[];
  /** This image's frames and stacks (an exec'd image keeps the scope it had). */
  scope: SymbolScope;
}

export interface EngineState {
  meta: TraceMeta | undefined;
  clock: Clock;
  /** Counts and bytes are estimates scaled from a sampled trace. */
  estimated: boolean;
  sampleBytes: number;
  events: number;
  lost: number;
  /** Every process image in order of appearance (exec'd images before their successors). */
  processes: ProcState[];
  symbols: SymbolTables;
  /** Markers for every process (pid 0). */
  markers: { t: number; label: string }[];
  firstT: number;
  lastT: number;
}
