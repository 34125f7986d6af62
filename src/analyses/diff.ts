// What grew: between two traces (by site label and pool class, summed over processes), or
// between two points of one trace (per process, from the window grid and the pool-class series).

import type { AnalysisResult, ProcessReport, Series, SiteReport } from './result.js';
import type { WindowState } from './window.js';
import { outstandingAt } from './window.js';
import { frameLabel } from '../model/events.js';
import { UserError } from '../errors.js';

export interface DiffSide {
  bytes: number;
  count?: number;
}

export interface DiffRow {
  kind: 'total' | 'site' | 'pool';
  /** Set when comparing two points of one trace. */
  pid?: number;
  name: string;
  before: DiffSide;
  after: DiffSide;
  delta: number;
}

export interface DiffResult {
  mode: 'traces' | 'points';
  before: string;
  after: string;
  clock: string;
  rows: DiffRow[];
}

type Acc = Map<string, { kind: DiffRow['kind']; pid?: number; name: string; before: DiffSide; after: DiffSide }>;

function add(acc: Acc, kind: DiffRow['kind'], name: string, side: 'before' | 'after', bytes: number, count: number | undefined, pid?: number): void {
  const key = `${kind}\u0000${pid ?? ''}\u0000${name}`;
  let r = acc.get(key);
  if (!r) {
    r = { kind, pid, name, before: { bytes: 0 }, after: { bytes: 0 } };
    acc.set(key, r);
  }
  r[side].bytes += bytes;
  if (count !== undefined) r[side].count = (r[side].count ?? 0) + count;
}

function rows(acc: Acc): DiffRow[] {
  const order = { total: 0, pool: 1, site: 2 };
  return [...acc.values()]
    .map((r) => ({ ...r, delta: r.after.bytes - r.before.bytes }))
    .filter((r) => r.kind === 'total' || r.before.bytes !== 0 || r.after.bytes !== 0)
    .sort((a, b) => order[a.kind] - order[b.kind] || b.delta - a.delta || a.name.localeCompare(b.name));
}

/** Two traces: outstanding at the end of each, by site (label and pool) and by pool class. */
export function diffTraces(a: AnalysisResult, b: AnalysisResult): DiffResult {
  if (a.clock !== b.clock) throw new UserError(`cannot compare a trace timed in ${a.clockUnit} with one timed in ${b.clockUnit}`);
  const acc: Acc = new Map();
  for (const [side, r] of [['before', a], ['after', b]] as const) {
    for (const p of r.processes) {
      add(acc, 'total', 'all processes', side, p.outstanding.heapBytes + p.outstanding.poolBytes, p.outstanding.heapCount + p.outstanding.poolCount);
      for (const s of p.sites) add(acc, 'site', siteName(s), side, s.bytes, s.count);
      for (const c of p.poolClasses) add(acc, 'pool', c.name, side, c.bytes, undefined);
    }
  }
  return { mode: 'traces', before: a.inputs.join(', '), after: b.inputs.join(', '), clock: a.clockUnit, rows: rows(acc) };
}

export interface Point {
  t: number;
  label: string;
}

/** A range edge: a marker's label, or a time ('1500ms', '30s', '2m'; a bare number is in the trace's clock units). */
export function resolvePoint(text: string, result: AnalysisResult, what: string): Point {
  const markers = result.processes.flatMap((p) => p.markers);
  const m = markers.find((x) => x.label === text);
  if (m) return { t: m.t, label: `marker "${m.label}"` };
  const units: Record<string, number> = { ns: 1, us: 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };
  const x = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|ms|s|m|h)?\s*$/.exec(text);
  if (x) {
    const v = Number(x[1]);
    if (x[2]) {
      if (result.clock !== 'ns') throw new UserError(`${what} "${text}": this input has no clock (its times count events); give an event number or a marker name`);
      return { t: v * units[x[2]]!, label: text };
    }
    return { t: v, label: result.clock === 'ns' ? `${v} ns` : `event ${v}` };
  }
  const names = [...new Set(markers.map((y) => y.label))];
  throw new UserError(`${what} "${text}": not a time (e.g. 30s, 1500ms) nor a marker name${names.length ? ` (markers: ${names.slice(0, 10).map((n) => JSON.stringify(n)).join(', ')})` : ' (the trace has no markers)'}`);
}

/** Step value of a series at t (its last point at or before t; 0 before it starts). */
function valueAt(s: Series | undefined, t: number): number {
  if (!s || s.x.length === 0) return 0;
  let lo = 0;
  let hi = s.x.length - 1;
  if (s.x[0]! > t) return 0;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (s.x[mid]! <= t) lo = mid;
    else hi = mid - 1;
  }
  return s.y[lo]!;
}

/** Two points of one trace: per process, outstanding by site at each point (to the grid's bucket)
 *  and pool classes from their series. */
export function diffPoints(result: AnalysisResult, window: WindowState, from: Point, to: Point): DiffResult {
  const acc: Acc = new Map();
  const byPid = new Map(window.processes.map((p) => [p.pid, p]));
  for (const p of result.processes) {
    const w = byPid.get(p.pid);
    for (const [side, pt] of [['before', from], ['after', to]] as const) {
      add(acc, 'total', `pid ${p.pid} total`, side, valueAt(p.series.total, pt.t), undefined, p.pid);
      for (const c of p.poolClasses) add(acc, 'pool', c.name, side, valueAt(c.series, pt.t), undefined, p.pid);
      if (!w) continue;
      const labels = siteLabels(p);
      const b = Math.floor(pt.t / window.width);
      for (const [stack, v] of outstandingAt(w, b)) {
        const name = labels.get(String(stack)) ?? labels.get(`pool:${stack}`) ?? (w.stacks.get(stack)?.[0] ? frameLabel(w.stacks.get(stack)![0]!) : '(no stack)');
        add(acc, 'site', name, side, v.bytes, v.count, p.pid);
      }
    }
  }
  return { mode: 'points', before: from.label, after: to.label, clock: result.clockUnit, rows: rows(acc) };
}

/** A site's name across traces: its label, and how it allocated (heap and mmap sites of one
 *  stack are two sites), and its pool. */
function siteName(s: SiteReport): string {
  return `${s.label}${s.via === 'mmap' ? ' via mmap' : ''}${s.pool ? ` [pool ${s.pool}]` : ''}`;
}

function siteLabels(p: ProcessReport): Map<string, string> {
  return new Map(p.sites.map((s) => [s.key, siteName(s)]));
}
