// What the HTML report embeds: the AnalysisResult cut down to what the page shows, plus the
// window grid (allocation bucket x release bucket per stack) so the page can recompute the flame
// graph and the table for a time range. Everything is aggregated and capped here, and the caps are
// embedded so the page can state them.

import type { AnalysisResult, PoolReport, ProcessReport, Series, SiteReport, Verdict } from '../../analyses/result.js';
import { frameLabel } from '../../model/events.js';
import type { WindowProcess, WindowState } from '../../analyses/window.js';
import { stackTotals } from '../../analyses/window.js';

export interface ReportLimits {
  /** Points per chart series (a uniform grid over the trace, step-sampled). */
  points: number;
  /** Stacks kept for the flame graph per process (the rest merged into one "(other stacks)" frame). */
  stacks: number;
  /** Sites in the table per process. */
  sites: number;
  /** Pool tree nodes per process. */
  pools: number;
  /** Pool classes and sites drawn as lines on the chart. */
  lines: number;
  /** Grid cells embedded for the whole report: past it, time buckets are merged in pairs
   *  (coarser ranges), then the smallest stacks are merged. */
  cells: number;
  /** Processes embedded in full (charts, sites, pools, flame graph): the worst verdicts and the
   *  most outstanding memory first; the others keep their summary row only, so a trace of
   *  20,000 short-lived processes gives a page a browser can open. */
  processes: number;
}

export const DEFAULT_LIMITS: ReportLimits = { points: 800, stacks: 2000, sites: 500, pools: 2000, lines: 3, cells: 400_000, processes: 500 };

export interface ChartLine {
  name: string;
  group: 'total' | 'heap' | 'pools' | 'rss' | 'pool' | 'site';
  y: (number | null)[];
}

export interface SiteRow {
  key: string;
  label: string;
  via?: string;
  pool?: string;
  bytes: number;
  count: number;
  share: number;
  allocatedBytes: number;
  allocatedCount: number;
  oldestT: number;
  verdict?: string;
  why?: string;
  stack: string[];
}

export interface PoolNode {
  pool: string;
  kind: string;
  tag: string;
  bytes: number;
  treeBytes: number;
  allocs: number;
  clears: number;
  age: number;
  createSite: string;
  verdict?: string;
  why?: string;
  children: PoolNode[];
}

export interface FlameData {
  /** Frame labels per kept stack, root first, as indices into ReportData.strings. */
  stacks: number[][];
  /** Original stack ids (site keys) of the kept stacks; -1 for the merged rest. */
  ids: number[];
  /** The grid, one entry per cell: stack index, alloc bucket, release bucket (-1 never), bytes, count. */
  s: number[];
  a: number[];
  f: number[];
  b: number[];
  c: number[];
  /** Stacks merged into "(other stacks)". */
  dropped: number;
  /** Clock units per bucket of this grid (the window's width, or a multiple when merged). */
  width: number;
  buckets: number;
}

export interface ProcessData {
  pid: number;
  ppid: number;
  command: string;
  exited: boolean;
  startT: number;
  endT: number;
  verdict: Verdict;
  outstanding: ProcessReport['outstanding'];
  allocated: ProcessReport['allocated'];
  rssBytes?: number;
  /** What to try when nothing could be judged (verdict no-calls). */
  hint?: string;
  top?: { what: 'site' | 'pool'; label: string; bytes: number; peak?: number };
  x: number[];
  lines: ChartLine[];
  markers: { t: number; label: string }[];
  sites: SiteRow[];
  sitesTotal: number;
  pools: PoolNode[];
  poolsTotal: number;
  poolClasses: { name: string; kind: string; live: number; created: number; found?: number; destroyed: number; bytes: number; peakBytes: number; verdict: string; why: string }[];
  flame?: FlameData;
  /** Past limits.processes: only the summary row is embedded (no series, sites, pools, flame). */
  omitted?: boolean;
}

/** The page's data: the analysis' header fields as they are, plus what the page adds. */
export interface ReportData
  extends Pick<AnalysisResult, 'source' | 'inputs' | 'clock' | 'clockUnit' | 'startWallMs' | 'estimated' | 'events' | 'lost' | 'warnings'> {
  title: string;
  generated: string;
  limits: ReportLimits;
  /** Clock units per window bucket, 0 when there is no window grid. */
  bucketWidth: number;
  buckets: number;
  strings: string[];
  processes: ProcessData[];
}

export function buildReportData(result: AnalysisResult, window: WindowState | undefined, limits: ReportLimits = DEFAULT_LIMITS): ReportData {
  const strings = new StringTable();
  const byPid = new Map<number, WindowProcess>();
  for (const p of window?.processes ?? []) byPid.set(p.pid, p);
  return {
    title: `leakscope report: ${result.inputs.join(', ')}`,
    generated: new Date().toISOString(),
    source: result.source,
    inputs: result.inputs,
    clock: result.clock,
    clockUnit: result.clockUnit,
    startWallMs: result.startWallMs,
    estimated: result.estimated,
    events: result.events,
    lost: result.lost,
    warnings: result.warnings.slice(0, 50),
    limits,
    bucketWidth: window?.width ?? 0,
    buckets: window?.buckets ?? 0,
    strings: strings.values,
    processes: (() => {
      const full = fullProcesses(result.processes, limits.processes);
      const budget = Math.max(100, Math.floor(limits.cells / Math.max(1, Math.min(result.processes.length, limits.processes ?? Infinity))));
      return result.processes.map((p) => (full.has(p)
        ? processData(p, byPid.get(p.pid), strings, limits, budget, window?.width ?? 0, window?.buckets ?? 0)
        : summaryOnly(p)));
    })(),
  };
}

const RANK: Record<string, number> = { leak: 3, growing: 2, bounded: 1, steady: 0 };

/** The processes embedded in full: the worst verdicts, then the most outstanding memory. */
function fullProcesses(ps: ProcessReport[], max = Infinity): Set<ProcessReport> {
  if (ps.length <= max) return new Set(ps);
  const out = (p: ProcessReport) => p.outstanding.heapBytes + p.outstanding.poolBytes + p.outstanding.mmapBytes;
  return new Set([...ps].sort((a, b) => (RANK[b.verdict.verdict] ?? 0) - (RANK[a.verdict.verdict] ?? 0) || out(b) - out(a)).slice(0, max));
}

/** A process past the limit: its summary row. */
function summaryOnly(p: ProcessReport): ProcessData {
  return {
    pid: p.pid, ppid: p.ppid, command: p.command, exited: p.exited, startT: p.startT, endT: p.endT, verdict: p.verdict,
    outstanding: p.outstanding, allocated: p.allocated, rssBytes: p.rssBytes, x: [], lines: [], markers: [],
    sites: [], sitesTotal: p.sites.length, pools: [], poolsTotal: 0, poolClasses: [], omitted: true,
  };
}

function processData(p: ProcessReport, w: WindowProcess | undefined, strings: StringTable, limits: ReportLimits, cellBudget: number, width: number, buckets: number): ProcessData {
  const { x, lines } = chartLines(p, limits);
  const topSite = p.sites.reduce<SiteReport | undefined>((m, s) => (!m || s.bytes > m.bytes ? s : m), undefined);
  const bad = (v?: Verdict) => v && (v.verdict === 'leak' || v.verdict === 'growing');
  const topClass = [...p.poolClasses].filter((c) => bad(c.verdict)).sort((a, b) => b.bytes - a.bytes || b.peakBytes - a.peakBytes)[0];
  const top = topClass && (!topSite || topClass.bytes >= topSite.bytes)
    ? { what: 'pool' as const, label: topClass.name, bytes: topClass.bytes, peak: topClass.peakBytes }
    : topSite ? { what: 'site' as const, label: topSite.label, bytes: topSite.bytes } : undefined;
  const pools = { n: 0 };
  return {
    pid: p.pid,
    ppid: p.ppid,
    command: p.command,
    exited: p.exited,
    startT: p.startT,
    endT: p.endT,
    verdict: p.verdict,
    outstanding: p.outstanding,
    allocated: p.allocated,
    rssBytes: p.rssBytes,
    hint: p.hint,
    top,
    x,
    lines,
    markers: p.markers.slice(0, 500),
    sites: [...p.sites].sort((a, b) => b.bytes - a.bytes).slice(0, limits.sites).map(siteRow),
    sitesTotal: p.sites.length,
    pools: p.pools.map((r) => poolNode(r, pools, limits.pools)).filter((n): n is PoolNode => n !== undefined),
    poolsTotal: countPools(p.pools),
    poolClasses: p.poolClasses.slice(0, 200).map((c) => ({
      name: c.name, kind: c.kind, live: c.live, created: c.created, found: c.found, destroyed: c.destroyed, bytes: c.bytes,
      peakBytes: c.peakBytes, verdict: c.verdict.verdict, why: c.verdict.explanation,
    })),
    flame: w ? flameData(w, strings, limits.stacks, cellBudget, width, buckets) : undefined,
  };
}

function siteRow(s: SiteReport): SiteRow {
  return {
    key: s.key, label: s.label, via: s.via, pool: s.pool, bytes: s.bytes, count: s.count, share: s.share,
    allocatedBytes: s.allocatedBytes, allocatedCount: s.allocatedCount, oldestT: s.oldestT,
    verdict: s.verdict?.verdict, why: s.verdict?.explanation, stack: s.stack.slice(0, 64).map(frameLabel),
  };
}

function poolNode(r: PoolReport, seen: { n: number }, max: number): PoolNode | undefined {
  if (seen.n >= max) return undefined;
  seen.n++;
  const children = [...r.children].sort((a, b) => b.treeBytes - a.treeBytes)
    .map((c) => poolNode(c, seen, max)).filter((n): n is PoolNode => n !== undefined);
  return {
    pool: r.pool, kind: r.kind, tag: r.tag, bytes: r.bytes, treeBytes: r.treeBytes, allocs: r.allocs, clears: r.clears,
    age: r.age, createSite: r.createSite, verdict: r.verdict?.verdict, why: r.verdict?.explanation, children,
  };
}

function countPools(rs: PoolReport[]): number {
  let n = 0;
  for (const r of rs) n += 1 + countPools(r.children);
  return n;
}

/** Every series on one uniform x grid (uPlot wants one x array per chart), sampled as steps. */
function chartLines(p: ProcessReport, limits: ReportLimits): { x: number[]; lines: ChartLine[] } {
  const all: { name: string; group: ChartLine['group']; s: Series }[] = [
    { name: 'total', group: 'total', s: p.series.total },
    { name: 'heap', group: 'heap', s: p.series.heap },
    { name: 'pools', group: 'pools', s: p.series.pools },
  ];
  if (p.series.rss && p.series.rss.x.length > 0) all.push({ name: 'RSS', group: 'rss', s: p.series.rss });
  const classes = p.poolClasses.filter((c) => c.series.x.length > 0).sort((a, b) => b.peakBytes - a.peakBytes).slice(0, limits.lines);
  for (const c of classes) all.push({ name: `pool ${c.name}`, group: 'pool', s: c.series });
  const sites = p.sites.filter((s) => s.series && s.series.x.length > 0).sort((a, b) => b.bytes - a.bytes).slice(0, limits.lines);
  for (const s of sites) all.push({ name: `site ${s.label}`, group: 'site', s: s.series! });
  const used = all.filter((l) => l.s.x.length > 0);
  let lo = Infinity;
  let hi = -Infinity;
  for (const l of used) {
    lo = Math.min(lo, l.s.x[0]!);
    hi = Math.max(hi, l.s.x[l.s.x.length - 1]!);
  }
  if (!Number.isFinite(lo)) return { x: [], lines: [] };
  lo = Math.min(lo, p.startT);
  hi = Math.max(hi, p.endT);
  const n = hi > lo ? limits.points : 1;
  const x: number[] = [];
  for (let i = 0; i < n; i++) x.push(n === 1 ? lo : lo + ((hi - lo) * i) / (n - 1));
  const lines = used.map((l) => ({ name: l.name, group: l.group, y: stepSample(l.s, x, l.group === 'rss') }));
  return { x, lines };
}

/** For each grid x, the series' largest value in (previous x, x], else its last value at or before x
 *  (so a short peak between two grid points is not lost); null before the series starts. */
function stepSample(s: Series, grid: number[], _rss: boolean): (number | null)[] {
  const out: (number | null)[] = [];
  let i = 0;
  let last: number | null = null;
  for (const gx of grid) {
    let peak: number | null = null;
    while (i < s.x.length && s.x[i]! <= gx) {
      const y = s.y[i]!;
      peak = peak === null ? y : Math.max(peak, y);
      last = y;
      i++;
    }
    out.push(peak ?? last);
  }
  return out;
}

function flameData(w: WindowProcess, strings: StringTable, maxStacks: number, budget: number, width: number, buckets: number): FlameData {
  const totals = stackTotals(w);
  totals.sort((a, b) => Math.max(b.inuseBytes, b.allocBytes / 4) - Math.max(a.inuseBytes, a.allocBytes / 4));
  // Fit the budget: merge time buckets in pairs down to 32 columns, then keep fewer stacks (down
  // to 250: the small ones), then down to 8 columns and 50 stacks.
  let shift = 0;
  let keepN = Math.min(maxStacks, totals.length);
  for (;;) {
    const n = countCells(w, totals, keepN, shift, buckets);
    if (n <= budget) break;
    if ((buckets >> shift) > 32) shift++;
    else if (keepN > 250) keepN = Math.max(250, Math.floor(keepN / 2));
    else if ((buckets >> shift) > 8) shift++;
    else if (keepN > 50) keepN = Math.floor(keepN / 2);
    else break;
  }
  const d = 2 ** shift;
  const keep = new Map<number, number>();
  const stacks: number[][] = [];
  const ids: number[] = [];
  for (const t of totals.slice(0, keepN)) {
    keep.set(t.stack, stacks.length);
    const frames = w.stacks.get(t.stack) ?? [];
    const labels = frames.length ? frames.map(frameLabel).reverse() : ['(no stack)'];
    stacks.push(labels.map((l) => strings.id(l)));
    ids.push(t.stack);
  }
  const dropped = Math.max(0, totals.length - keepN);
  let other = -1;
  if (dropped > 0) {
    other = stacks.length;
    stacks.push([strings.id(`(${dropped} other stacks)`)]);
    ids.push(-1);
  }
  const fd: FlameData = { stacks, ids, s: [], a: [], f: [], b: [], c: [], dropped, width: width * d, buckets: Math.ceil(buckets / d) };
  const at = new Map<number, number>();
  const B = buckets + 1;
  for (const c of w.cells) {
    const si = keep.get(c.stack) ?? other;
    const a = Math.floor(c.a / d);
    const f = c.f < 0 ? -1 : Math.floor(c.f / d);
    const key = (si * B + a) * (B + 1) + f + 1;
    const i = at.get(key);
    if (i !== undefined) {
      fd.b[i]! += c.bytes;
      fd.c[i]! += c.count;
      continue;
    }
    at.set(key, fd.s.length);
    fd.s.push(si);
    fd.a.push(a);
    fd.f.push(f);
    fd.b.push(c.bytes);
    fd.c.push(c.count);
  }
  return fd;
}

/** Cells left after keeping the first `keepN` stacks and merging buckets by 2^shift. */
function countCells(w: WindowProcess, totals: { stack: number }[], keepN: number, shift: number, buckets: number): number {
  const index = new Map<number, number>();
  totals.slice(0, keepN).forEach((t, i) => index.set(t.stack, i + 1));
  const B = buckets + 1;
  const seen = new Set<number>();
  for (const c of w.cells) {
    const a = c.a >> shift;
    const f = c.f < 0 ? -1 : c.f >> shift;
    seen.add(((index.get(c.stack) ?? 0) * B + a) * (B + 1) + f + 1);
  }
  return seen.size;
}

class StringTable {
  readonly values: string[] = [];
  private readonly ids = new Map<string, number>();
  id(s: string): number {
    let i = this.ids.get(s);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(s);
      this.ids.set(s, i);
    }
    return i;
  }
}
