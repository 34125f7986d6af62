// The agent's live state in the shapes the existing reports take: a window grid (for the pprof
// export and the report's flame graph) and an AnalysisResult (for the HTML report), so /, and
// /debug/pprof/heap are the report and the export leakscope already writes, for now.

import type { AnalysisResult, PoolClassReport, ProcessReport, Series, SiteReport, Verdict } from '../analyses/result.js';
import { RESULT_VERSION } from '../analyses/analyze.js';
import { FOUND_SITE } from '../analyses/pools.js';
import { NEVER, type Cell, type WindowProcess, type WindowState } from '../analyses/window.js';
import type { Frame } from '../model/events.js';
import type { ProcModel } from './model.js';
import type { StackRec } from './stacks.js';
import type { TargetWatch } from './watch.js';

export interface ViewFilter {
  target?: string;
  pid?: number;
}

interface StackUse {
  rec: StackRec;
  kind: 'pool' | 'heap';
  inuseBytes: number;
  inuseCount: number;
  madeBytes: number;
  madeCount: number;
}

/** Per stack of one process: what is live now and what was made since attach. */
function stackUse(p: ProcModel): Map<StackRec, StackUse> {
  const m = new Map<StackRec, StackUse>();
  const get = (rec: StackRec, kind: 'pool' | 'heap'): StackUse => {
    let u = m.get(rec);
    if (!u) m.set(rec, (u = { rec, kind, inuseBytes: 0, inuseCount: 0, madeBytes: 0, madeCount: 0 }));
    return u;
  };
  for (const lp of p.pools.values()) {
    const u = get(lp.stack, 'pool');
    u.inuseBytes += lp.bytes;
    u.inuseCount++;
  }
  for (const b of p.blocks.values()) {
    const u = get(b.stack, 'heap');
    u.inuseBytes += b.size;
    u.inuseCount++;
  }
  for (const a of p.agg) {
    const u = get(a.stack, 'heap');
    u.inuseBytes += Math.max(0, a.liveBytes);
    u.inuseCount += Math.max(0, a.liveCount);
    u.madeBytes += a.totalBytes;
    u.madeCount += a.totalCount;
  }
  for (const [rec, made] of p.made) {
    const u = m.get(rec) ?? get(rec, p.pools.size > 0 ? 'pool' : 'heap');
    u.madeBytes += made.bytes;
    u.madeCount += made.count;
  }
  return m;
}

function selected(watches: TargetWatch[], f: ViewFilter): TargetWatch[] {
  return watches.filter((w) => f.target === undefined || w.name === f.target);
}

/** The grid of every selected process: one column, outstanding cells and released ones. */
export function windowOf(watches: TargetWatch[], f: ViewFilter, nowNs: number): WindowState {
  const processes: WindowProcess[] = [];
  for (const w of selected(watches, f)) {
    if (w.mode === 'luajit') {
      for (const p of w.luajit?.window?.processes ?? []) if (f.pid === undefined || p.pid === f.pid) processes.push(p);
      continue;
    }
    for (const p of w.model.procs.values()) {
      if (f.pid !== undefined && p.pid !== f.pid) continue;
      const cells: Cell[] = [];
      const stacks = new Map<number, Frame[]>();
      for (const u of stackUse(p).values()) {
        const id = u.rec.id;
        stacks.set(id, w.stacks.modelFrames(u.rec));
        if (u.inuseCount > 0 || u.inuseBytes > 0) cells.push({ stack: id, a: 0, f: NEVER, bytes: u.inuseBytes, count: u.inuseCount });
        const gone = { bytes: Math.max(0, u.madeBytes - u.inuseBytes), count: Math.max(0, u.madeCount - u.inuseCount) };
        if (gone.count > 0 || gone.bytes > 0) cells.push({ stack: id, a: 0, f: 0, ...gone });
      }
      processes.push({ pid: p.pid, cells, stacks });
    }
  }
  return { width: Math.max(1, nowNs), buckets: 1, lastT: nowNs, processes };
}

const NO_VERDICT: Verdict = {
  verdict: 'steady', n: 0, slope: 0, mkS: 0, mkZ: 0, pValue: 1, tau: 0, first: 0, peak: 0, last: 0, lastGrowthAt: 0,
  explanation: 'Not enough samples yet.',
};

function nsSeries(s: Series | undefined): Series {
  return s ? { x: s.x.map((x) => Math.round(x * 1e9)), y: s.y } : { x: [], y: [] };
}

/** The report of every selected process, as `analyze` would give it for the current window. */
export function resultOf(watches: TargetWatch[], f: ViewFilter, meta: { startWallMs: number; top: number }): AnalysisResult {
  const processes: ProcessReport[] = [];
  const warnings: string[] = [];
  let events = 0;
  let lost = 0;
  for (const w of selected(watches, f)) {
    events += w.probeHits;
    lost += w.lost;
    if (w.problem) warnings.push(`target ${w.name}: ${w.problem}`);
    if (w.mode === 'luajit') {
      for (const p of w.luajit?.result?.processes ?? []) if (f.pid === undefined || p.pid === f.pid) processes.push(p);
      continue;
    }
    for (const snap of w.numbers.processes) {
      const p = w.model.procs.get(snap.pid);
      if (!p || (f.pid !== undefined && p.pid !== f.pid)) continue;
      const sites = new Map<string, SiteReport>();
      const classes = new Map<string, PoolClassReport>();
      for (const u of stackUse(p).values()) {
        const label = u.rec.label ?? '(unnamed)';
        const key = `${u.kind}\u0000${label}`;
        let s = sites.get(key);
        if (!s) {
          s = {
            key: String(u.rec.id), label, stack: w.stacks.modelFrames(u.rec), count: 0, bytes: 0, share: 0,
            allocatedCount: 0, allocatedBytes: 0, oldestT: 0, youngestT: 0, verdict: w.sampler.verdictOf('site', u.kind, label),
            ...(u.rec.via ? { via: u.rec.via } : {}),
          };
          sites.set(key, s);
        }
        s.bytes += u.inuseBytes;
        s.count += u.inuseCount;
        s.allocatedBytes += u.madeBytes;
        s.allocatedCount += u.madeCount;
      }
      for (const lp of p.pools.values()) {
        const name = lp.tag || (lp.found ? FOUND_SITE : `created at ${lp.stack.label ?? '(unnamed)'}`);
        const key = `${lp.kind}\u0000${name}`;
        let c = classes.get(key);
        if (!c) {
          const v = w.sampler.verdictOf('class', lp.kind, name) ?? NO_VERDICT;
          c = { name, kind: lp.kind, live: 0, created: 0, found: 0, destroyed: 0, bytes: 0, peakBytes: 0, verdict: v, series: { x: [], y: [] }, sites: [] };
          classes.set(key, c);
        }
        c.live++;
        if (lp.found) c.found++;
        else c.created++;
        c.bytes += lp.bytes;
        c.peakBytes = Math.max(c.peakBytes, c.bytes);
      }
      const total = nsSeries(w.sampler.processSeries(p.pid)?.series());
      const siteList = [...sites.values()].sort((a, b) => b.bytes - a.bytes).slice(0, meta.top);
      for (const s of siteList) s.share = snap.bytes > 0 ? s.bytes / snap.bytes : 0;
      let made = 0;
      let madeBytes = 0;
      for (const m of p.made.values()) {
        made += m.count;
        madeBytes += m.bytes;
      }
      processes.push({
        pid: p.pid, ppid: p.ppid, command: `${p.command} [${w.name}, ${snap.role}]`, exe: p.exe,
        startT: total.x[0] ?? 0, endT: total.x[total.x.length - 1] ?? 0, exited: false,
        verdict: snap.verdict ?? NO_VERDICT,
        outstanding: { heapBytes: snap.heapBytes, heapCount: snap.blocks - snap.pools, poolBytes: snap.poolBytes, poolCount: snap.pools, mmapBytes: 0 },
        allocated: { count: made, bytes: madeBytes, frees: 0 },
        anomalies: { unknownFree: 0, doubleFree: 0, unknownRealloc: 0, unknownPool: 0, unknownPoolDestroy: 0 },
        sites: siteList,
        pools: [],
        poolClasses: [...classes.values()].sort((a, b) => b.bytes - a.bytes),
        series: { total, heap: { x: [], y: [] }, pools: { x: [], y: [] } },
        markers: [],
        ...(snap.rssBytes !== undefined ? { rssBytes: snap.rssBytes } : {}),
      });
    }
  }
  warnings.push('Live view of leakscope agent: verdicts are those of the rolling window, for each site and pool class summed over the target\'s processes; pool classes count live pools only.');
  return {
    tool: 'leakscope', version: RESULT_VERSION, source: 'agent', inputs: selected(watches, f).map((w) => w.name),
    clock: 'ns', clockUnit: 'ns', startWallMs: meta.startWallMs, estimated: false, events, lost, warnings, processes,
  };
}
