// A small, fully known workload as events, for report tests: per step (10 ms apart) one leaked
// 1000-byte malloc, one 500-byte malloc freed a step later, a request pool (200 bytes) created and
// destroyed, and 300 bytes into a process-lifetime pool that is never cleared. Markers at steps
// 20 and 60; RSS every step. `hostile` puts markup into every name a trace can carry.

import type { Event, EventSink, Frame, TraceMeta } from '../../src/model/events.js';
import { frame, frameLabel } from '../../src/model/events.js';
import { StackInterner } from '../../src/model/stacks.js';
import type { AnalysisResult, ProcessReport, SiteReport, Verdict } from '../../src/analyses/result.js';

export const STEP = 10_000_000; // 10 ms in ns
export const HOSTILE = `<script>window.__pwned=1</script>"'<img src=x onerror="window.__pwned=2"><!--\u2028`;

export interface Scenario {
  meta: TraceMeta;
  events: Event[];
  steps: number;
  pid: number;
  leakFrames: Frame[];
  tempFrames: Frame[];
  poolFrames: Frame[];
  poolTag: string;
  /** Stack ids of the leak, temp and pool sites. */
  ids: { leak: number; temp: number; pool: number };
}

export function scenario(opts: { steps?: number; pid?: number; hostile?: boolean } = {}): Scenario {
  const steps = opts.steps ?? 100;
  const pid = opts.pid ?? 4242;
  const h = opts.hostile ? HOSTILE : '';
  const events: Event[] = [];
  const sink: EventSink = { event: (e) => events.push(e) };
  const interner = new StackInterner(sink, pid);
  const main = frame({ fn: 'main', file: 'server.c', line: 10 });
  const handle = frame({ fn: 'handle_request', file: 'server.c', line: 42 });
  const leakFrames = [frame({ fn: `leaky_alloc${h}`, file: `leaky${h}.c`, line: 7 }), handle, main];
  const tempFrames = [frame({ fn: 'temp_buf', file: 'buf.c', line: 3 }), handle, main];
  const poolFrames = [frame({ fn: 'remember', file: 'cache.c', line: 25 }), main];
  const reqFrames = [frame({ fn: 'make_request', file: 'server.c', line: 50 }), handle, main];
  const poolTag = `pchild${h}`;
  const leak = interner.stackId(leakFrames);
  const temp = interner.stackId(tempFrames);
  const poolSite = interner.stackId(poolFrames);
  const req = interner.stackId(reqFrames);
  events.push({ kind: 'process', pid, t: 0, ppid: 1, command: `server ${h}`, exe: '/usr/sbin/server' });
  const child = 0x7000;
  events.push({ kind: 'pool-create', pid, t: 0, tid: pid, pool: child, parent: 0, poolKind: 'apr', tag: poolTag, stack: poolSite });
  let addr = 0x10000;
  for (let i = 1; i <= steps; i++) {
    const t = i * STEP;
    events.push({ kind: 'alloc', pid, t, tid: pid, addr: addr++ * 16, size: 1000, stack: leak });
    const tmp = addr++ * 16;
    events.push({ kind: 'alloc', pid, t: t + 1, tid: pid, addr: tmp, size: 500, stack: temp });
    events.push({ kind: 'free', pid, t: t + STEP / 2, tid: pid, addr: tmp });
    const rp = 0x9000 + (i % 7) * 0x100;
    events.push({ kind: 'pool-create', pid, t: t + 2, tid: pid, pool: rp, parent: child, poolKind: 'apr', tag: 'request', stack: req });
    events.push({ kind: 'pool-alloc', pid, t: t + 3, tid: pid, pool: rp, size: 200, addr: 0, stack: req });
    events.push({ kind: 'pool-destroy', pid, t: t + 4, pool: rp, stack: req });
    events.push({ kind: 'pool-alloc', pid, t: t + 5, tid: pid, pool: child, size: 300, addr: 0, stack: poolSite });
    events.push({ kind: 'rss', pid, t: t + 6, bytes: 4_000_000 + i * 1400 });
    if (i === 20) events.push({ kind: 'marker', pid: 0, t: t + 7, label: `warmup done${h}` });
    if (i === 60) events.push({ kind: 'marker', pid: 0, t: t + 7, label: 'load' });
  }
  const meta: TraceMeta = { format: 1, clock: 'ns', startWallMs: Date.UTC(2026, 0, 1), source: 'recorder', command: `server ${h}` };
  return { meta, events, steps, pid, leakFrames, tempFrames, poolFrames, poolTag, ids: { leak, temp, pool: poolSite } };
}

function verdict(kind: Verdict['verdict'], n: number, slope: number, last: number, explanation: string): Verdict {
  return { verdict: kind, n, slope, mkS: n * (n - 1) / 2, mkZ: 12, pValue: 1e-9, tau: 1, first: 0, peak: last, last, lastGrowthAt: 1, explanation };
}

/** A hand-made AnalysisResult for the scenario (what the analyses should conclude), so report
 *  tests do not depend on the engine. */
export function scenarioResult(s: Scenario): AnalysisResult {
  const n = s.steps;
  const xs = Array.from({ length: n }, (_, i) => (i + 1) * STEP + 5);
  const leakSeries = { x: xs, y: xs.map((_, i) => (i + 1) * 1000) };
  const poolSeries = { x: xs, y: xs.map((_, i) => (i + 1) * 300) };
  const site = (key: string, frames: Frame[], bytes: number, count: number, allocatedBytes: number, allocatedCount: number, v?: Verdict, pool?: string): SiteReport => ({
    key, label: frameLabel(frames[0]!), stack: frames, pool, via: pool ? 'apr_palloc' : undefined, count, bytes, share: bytes / (n * 1300),
    allocatedCount, allocatedBytes, oldestT: STEP, youngestT: n * STEP, verdict: v, series: v ? (pool ? poolSeries : leakSeries) : undefined,
  });
  const leakV = verdict('leak', n, 1000 / STEP, n * 1000, `Grew at every step: ${n} of ${n} points up.`);
  const poolV = verdict('leak', n, 300 / STEP, n * 300, `Pool ${s.poolTag} grew at every step and was never cleared.`);
  const proc: ProcessReport = {
    pid: s.pid, ppid: 1, command: s.meta.command ?? '', exe: '/usr/sbin/server', startT: 0, endT: n * STEP + 7, exited: false,
    verdict: leakV,
    outstanding: { heapBytes: n * 1000, heapCount: n, poolBytes: n * 300, poolCount: n, mmapBytes: 0 },
    allocated: { count: n * 4, bytes: n * 2000, frees: n },
    anomalies: { unknownFree: 0, doubleFree: 0, unknownRealloc: 0, unknownPool: 0, unknownPoolDestroy: 0 },
    sites: [
      site(String(s.ids.leak), s.leakFrames, n * 1000, n, n * 1000, n, leakV),
      site(String(s.ids.pool), s.poolFrames, n * 300, n, n * 300, n, poolV, s.poolTag),
      site(String(s.ids.temp), s.tempFrames, 0, 0, n * 500, n),
    ],
    pools: [{
      pool: '0x7000', parent: '0x0', kind: 'apr', tag: s.poolTag, createdT: 0, age: n * STEP, bytes: n * 300, treeBytes: n * 300,
      allocs: n, clears: 0, createStack: s.poolFrames, createSite: frameLabel(s.poolFrames[0]!), children: [],
      sites: [{ label: frameLabel(s.poolFrames[0]!), bytes: n * 300, count: n }], verdict: poolV, series: poolSeries,
    }],
    poolClasses: [
      { name: s.poolTag, kind: 'apr', live: 1, created: 1, found: 0, destroyed: 0, bytes: n * 300, peakBytes: n * 300, verdict: poolV, series: poolSeries, sites: [] },
      { name: 'request', kind: 'apr', live: 0, created: n, found: 0, destroyed: n, bytes: 0, peakBytes: 200, verdict: verdict('steady', n, 0, 0, 'Created and destroyed per request.'), series: { x: xs, y: xs.map(() => 0) }, sites: [] },
    ],
    series: {
      total: { x: xs, y: xs.map((_, i) => (i + 1) * 1300) },
      heap: leakSeries,
      pools: poolSeries,
      rss: { x: xs, y: xs.map((_, i) => 4_000_000 + (i + 1) * 1400) },
    },
    markers: s.events.filter((e) => e.kind === 'marker').map((e) => ({ t: e.t, label: (e as { label: string }).label })),
    rssBytes: 4_000_000 + n * 1400,
  };
  return {
    tool: 'leakscope', version: 1, source: 'recorder', inputs: [`trace${s.poolTag.slice(6)}.lstrace`], clock: 'ns', clockUnit: 'ns',
    startWallMs: s.meta.startWallMs, estimated: false, events: s.events.length, lost: 0, warnings: [], processes: [proc],
  };
}
