// analyze(): engine state → AnalysisResult, the one structure every report renders.

import type { EngineState, ProcState } from '../engine/state.js';
import type { AnalysisResult, PoolClassReport, ProcessReport, Series, SiteReport, Verdict } from './result.js';
import type { ProcContext } from './context.js';
import { activityClock, atExit, judge, startupEnd, teardownStart, toSeries } from './context.js';
import { leakSites, round } from './leak-sites.js';
import { livePools, poolClasses } from './pools.js';
import { SiteResolver } from './symbols.js';
import { defaultFrameRules, Suppressions } from './suppressions.js';
import type { FrameRules } from './suppressions.js';
import { formatBytes } from '../model/units.js';
import { noCallsHint, noCallsVerdict, sawMemoryCalls } from './no-calls.js';

export const RESULT_VERSION = 1;

export interface AnalyzeOptions {
  /** Sites per process (default 20). */
  top?: number;
  /** Only this process (every image of it). */
  pid?: number;
  /** Only allocations at least this old, in trace clock units (ns, or events). */
  minAge?: number;
  /** Sites to ignore (LSan-style), already loaded. */
  suppressions?: Suppressions;
  /** Allocator internals to drop (default: profiles/suppressions/default.txt). */
  frameRules?: FrameRules;
  inputs?: string[];
  warnings?: string[];
  source?: string;
  /** Records the sources could not read, added to `lost`. */
  lost?: number;
}

export function analyze(state: EngineState, opts: AnalyzeOptions = {}): AnalysisResult {
  const top = opts.top ?? 20;
  const rules = opts.frameRules ?? defaultFrameRules();
  const suppress = opts.suppressions ?? new Suppressions();
  const procs = state.processes.filter((p) => opts.pid === undefined || p.pid === opts.pid);
  return {
    tool: 'leakscope',
    version: RESULT_VERSION,
    source: opts.source ?? state.meta?.source ?? 'unknown',
    inputs: opts.inputs ?? [],
    clock: state.clock,
    clockUnit: state.clock === 'ns' ? 'ns' : 'events',
    ...(state.meta?.startWallMs !== undefined ? { startWallMs: state.meta.startWallMs } : {}),
    estimated: state.estimated,
    events: state.events,
    lost: state.lost + (opts.lost ?? 0),
    warnings: opts.warnings ?? [],
    processes: procs.map((p) => processReport(state, p, { top, minAge: opts.minAge, rules, suppress })),
  };
}

function processReport(state: EngineState, p: ProcState, o: { top: number; minAge?: number; rules: FrameRules; suppress: Suppressions }): ProcessReport {
  const ctx: ProcContext = {
    state, p,
    resolver: new SiteResolver(p.scope, o.rules),
    suppress: o.suppress,
    // Anonymous mappings are allocations too (sites via 'mmap'); file mappings are not.
    outstanding: p.heapBytes + p.poolBytes + (p.mappings?.siteBytes ?? 0),
    until: undefined,
  };
  const total = toSeries(p.total);
  const teardown = teardownStart(total, p.startT, p.endT);
  ctx.until = teardown?.t;
  ctx.position = activityClock(activityTimes(p, total));
  // The same point as a position of the process's activity (several may share its clock reading).
  if (teardown) ctx.untilPosition = ctx.position(total.x)[teardown.index];
  ctx.startupUntil = startupEnd(state, p);
  const sites = leakSites(ctx, { top: o.top, minAge: o.minAge });
  const pools = livePools(ctx);
  const classes = poolClasses(ctx);
  const called = sawMemoryCalls(p);
  const verdict = called ? processVerdict(p, judge(ctx, total, p.startT), sites, classes, ctx.outstanding) : noCallsVerdict(p, state.clock);
  const r: ProcessReport = {
    pid: p.pid,
    ppid: p.ppid,
    command: p.command,
    exe: p.exe,
    startT: p.startT,
    endT: p.endT,
    exited: p.exited,
    verdict,
    outstanding: {
      heapBytes: round(p.heapBytes), heapCount: round(p.heapCount),
      poolBytes: round(p.poolBytes), poolCount: round(p.poolCount), mmapBytes: p.mmapBytes,
    },
    allocated: { count: round(p.allocCount), bytes: round(p.allocBytes), frees: round(p.frees) },
    anomalies: { ...p.anomalies },
    sites,
    pools,
    poolClasses: classes,
    series: { total, heap: toSeries(p.heapSeries), pools: toSeries(p.poolSeries), ...(p.rss ? { rss: toSeries(p.rss) } : {}) },
    markers: [...state.markers, ...p.markers].sort((a, b) => a.t - b.t),
  };
  if (p.exitCode !== undefined) r.exitCode = p.exitCode;
  if (p.replacedByExec) r.replacedByExec = true;
  if (p.rssBytes !== undefined) r.rssBytes = p.rssBytes;
  if (!called) r.hint = noCallsHint(state.meta?.source);
  return r;
}

/** When the process's memory changed: its total's changes and its anonymous mappings' (the
 *  total is heap and pools; a process whose memory grows by mappings is active too). */
function activityTimes(p: ProcState, total: Series): Series {
  const m = p.mmapSites;
  if (!m || m.length === 0) return total;
  const xs = [...total.x];
  for (let i = 0; i < m.length; i++) xs.push(...m.series(i).x);
  xs.sort((a, b) => a - b);
  return { x: xs, y: xs.map(() => 0) };
}

/**
 * A process leaks when its total does, or when one of its pool classes or top sites does (a
 * leak of 2 KiB a request hides easily in the churn of a busy process's total); likewise it is
 * growing when its total is steady or bounded but one of them is growing.
 */
function processVerdict(p: ProcState, own: Verdict, sites: SiteReport[], classes: PoolClassReport[], held: number): Verdict {
  // Exited holding memory: not freed at exit, unless one of its entities leaked (and was released
  // only at exit, or the leak would be `unfreed` too); the worst trend is said in words.
  const total = p.exited && held > 0 ? atExit(p, own, held) : own;
  const leaking: { what: string; v: Verdict; bytes: number }[] = [];
  for (const c of classes) if (c.verdict.verdict === 'leak') leaking.push({ what: `pool class "${c.name}"`, v: c.verdict, bytes: c.verdict.last });
  for (const s of sites) if (s.verdict?.verdict === 'leak') leaking.push({ what: `site ${s.label}`, v: s.verdict, bytes: s.bytes });
  leaking.sort((a, b) => b.bytes - a.bytes);
  const worst = leaking[0];
  const more = leaking.length > 1 ? ` (and ${leaking.length - 1} more leaking ${leaking.length > 2 ? 'entities' : 'entity'})` : '';
  if (total.verdict === 'leak') {
    return worst ? { ...total, explanation: `${total.explanation} Most of it: ${worst.what}, ${formatBytes(worst.bytes)}${more}.` } : total;
  }
  if (!worst && total.verdict === 'unfreed') {
    const trends = [...classes.map((c) => ({ what: `pool class "${c.name}"`, v: c.verdict })), ...sites.map((s) => ({ what: `site ${s.label}`, v: s.verdict! }))]
      .filter((e) => e.v && (e.v.trend === 'leak' || e.v.trend === 'growing'));
    const t = trends.find((e) => e.v.trend === 'leak') ?? trends[0];
    return t ? { ...total, explanation: `${total.explanation} Its ${t.what} grew ${t.v.trend === 'leak' ? 'like a leak' : ''} while it ran: ${formatBytes(t.v.atExit?.bytes ?? t.v.last)} of it held at exit.`.replace('grew  while', 'grew while') } : total;
  }
  if (!worst) {
    if (total.verdict === 'steady' || total.verdict === 'bounded') {
      const c = classes.find((x) => x.verdict.verdict === 'growing');
      const s = sites.find((x) => x.verdict?.verdict === 'growing');
      const growing = c ? { what: `pool class "${c.name}"`, v: c.verdict } : s ? { what: `site ${s.label}`, v: s.verdict! } : undefined;
      if (growing) return { ...total, verdict: 'growing', explanation: `${total.explanation} But its ${growing.what} is growing: ${growing.v.explanation}` };
    }
    return total;
  }
  // Raised from `unfreed`, the verdict is no longer one of those `trend` belongs to.
  const { trend: _trend, ...rest } = total;
  return {
    ...rest,
    verdict: 'leak',
    explanation: `Its ${worst.what} leaks${more}, ${formatBytes(worst.bytes)} held: ${worst.v.explanation}`,
  };
}
