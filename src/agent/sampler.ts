// Each sample turns a target's live state (model.ts) into the numbers the agent serves: per
// process, per pool class and per site, what is outstanding now, with the growth verdict and
// slope of its rolling series. Classes and sites are summed over the target's processes (a
// worker that is replaced keeps its class's series going); the top K of each, leaks first, are
// shown by name and the rest summed as "other", so the number of series stays bounded.

import { readFileSync } from 'node:fs';
import { VERDICT_RANK, type Verdict } from '../analyses/result.js';
import { ppidOf } from '../proc/processes.js';
import type { TargetModel } from './model.js';
import { Parts, Ring, SeriesTable } from './series.js';

export interface ProcSnap {
  pid: number;
  ppid: number;
  exe: string;
  command: string;
  role: 'master' | 'worker';
  bytes: number;
  blocks: number;
  pools: number;
  poolBytes: number;
  heapBytes: number;
  rssBytes: number | undefined;
  verdict: Verdict | undefined;
}

export interface EntitySnap {
  name: string;
  /** Pool kind (nginx, apr) for classes; 'pool' (creation site) or 'heap' for sites. */
  kind: string;
  bytes: number;
  count: number;
  /** Of `count`, the pools found alive when the trace began (their creation not seen). */
  found: number;
  verdict: Verdict | undefined;
  /** Summed from the entities past the top K. */
  other?: boolean;
}

export interface TargetNumbers {
  processes: ProcSnap[];
  classes: EntitySnap[];
  sites: EntitySnap[];
}

export const OTHER = 'other';

function rssOf(pid: number): number | undefined {
  try {
    const f = readFileSync(`/proc/${pid}/statm`, 'latin1').split(' ');
    return Number(f[1]) * 4096;
  } catch {
    return undefined;
  }
}

interface Acc {
  name: string;
  kind: string;
  bytes: number;
  count: number;
  found: number;
}

function add(m: Map<string, Acc>, key: string, name: string, kind: string, bytes: number, count: number, found = 0): void {
  const a = m.get(key);
  if (a) {
    a.bytes += bytes;
    a.count += count;
    a.found += found;
  } else m.set(key, { name, kind, bytes, count, found });
}

export interface SamplerOptions {
  points: number;
  trackedSeries: number;
  topSites: number;
  topClasses: number;
}

export class Sampler {
  private readonly procSeries: SeriesTable;
  private readonly classSeries: SeriesTable;
  private readonly siteSeries: SeriesTable;
  private readonly otherClasses: Ring;
  private readonly otherSites: Ring;

  constructor(private readonly o: SamplerOptions) {
    this.procSeries = new SeriesTable(o.points, o.trackedSeries);
    this.classSeries = new SeriesTable(o.points, o.trackedSeries, true);
    this.siteSeries = new SeriesTable(o.points, o.trackedSeries, true);
    this.otherClasses = new Ring(o.points);
    this.otherSites = new Ring(o.points);
  }

  get topSites(): number {
    return this.o.topSites;
  }

  /** The rolling series of a process's outstanding bytes (x in seconds). */
  processSeries(pid: number): Ring | undefined {
    return this.procSeries.get(String(pid));
  }

  /** The verdict of a class or a site of the target (summed over its processes). */
  verdictOf(what: 'class' | 'site', kind: string, name: string): Verdict | undefined {
    return (what === 'class' ? this.classSeries : this.siteSeries).get(`${kind}\u0000${name}`)?.verdict;
  }

  /** Series held now (the agent's own bound, for its metrics and tests). */
  get seriesCount(): number {
    return this.procSeries.size + this.classSeries.size + this.siteSeries.size;
  }

  /** t in seconds since the agent started. */
  sample(model: TargetModel, t: number): TargetNumbers {
    const procVals = new Map<string, number>();
    const classes = new Map<string, Acc>();
    const sites = new Map<string, Acc>();
    // the pools of each class and pool site, with when each was made: growth that newer pools
    // hold while the older ones were destroyed (a request's pool) is no memory kept
    const classParts = new Map<string, Parts>();
    const siteParts = new Map<string, Parts>();
    const part = (m: Map<string, Parts>, key: string, born: number, bytes: number) => {
      let ps = m.get(key);
      if (!ps) m.set(key, (ps = new Parts()));
      ps.add(born, bytes);
    };
    const procs: ProcSnap[] = [];
    for (const p of model.procs.values()) {
      let poolBytes = 0;
      for (const lp of p.pools.values()) {
        poolBytes += lp.bytes;
        const site = lp.stack.label ?? '(unnamed)';
        const cls = lp.tag || (lp.found ? site : `created at ${site}`);
        add(classes, `${lp.kind}\u0000${cls}`, cls, lp.kind, lp.bytes, 1, lp.found ? 1 : 0);
        add(sites, `pool\u0000${site}`, site, 'pool', lp.bytes, 1);
        part(classParts, `${lp.kind}\u0000${cls}`, lp.born, lp.bytes);
        part(siteParts, `pool\u0000${site}`, lp.born, lp.bytes);
      }
      let heapBytes = p.heapBytes;
      let heapBlocks = p.blocks.size;
      for (const b of p.blocks.values()) {
        const site = b.stack.label ?? '(unnamed)';
        add(sites, `heap\u0000${site}`, site, 'heap', b.size, 1);
      }
      for (const a of p.agg) {
        if (a.liveCount <= 0) continue;
        heapBytes += a.liveBytes;
        heapBlocks += a.liveCount;
        const site = a.stack.label ?? '(unnamed)';
        add(sites, `heap\u0000${site}`, site, 'heap', a.liveBytes, a.liveCount);
      }
      const bytes = poolBytes + heapBytes;
      procVals.set(String(p.pid), bytes);
      procs.push({
        pid: p.pid, ppid: p.ppid, exe: p.exe, command: p.command,
        // the parent now, not at fork: a new master of a binary upgrade is its old master's
        // child until that one quits
        role: model.procs.has(ppidOf(p.pid)) ? 'worker' : 'master',
        bytes, blocks: heapBlocks + p.pools.size, pools: p.pools.size, poolBytes, heapBytes,
        rssBytes: rssOf(p.pid), verdict: undefined,
      });
    }
    this.procSeries.sample(t, procVals);
    for (const p of procs) p.verdict = this.procSeries.get(String(p.pid))?.verdict;
    return {
      processes: procs.sort((a, b) => a.pid - b.pid),
      classes: this.top(classes, this.classSeries, this.otherClasses, this.o.topClasses, t, classParts),
      sites: this.top(sites, this.siteSeries, this.otherSites, this.o.topSites, t, siteParts),
    };
  }

  /** The top k entities (leaks first, then the most bytes), and the rest summed as "other". */
  private top(all: Map<string, Acc>, table: SeriesTable, other: Ring, k: number, t: number, parts: Map<string, Parts>): EntitySnap[] {
    const vals = new Map<string, number>();
    for (const [key, a] of all) vals.set(key, a.bytes);
    table.sample(t, vals, parts);
    const rows: EntitySnap[] = [];
    for (const [key, a] of all) rows.push({ name: a.name, kind: a.kind, bytes: a.bytes, count: a.count, found: a.found, verdict: table.get(key)?.verdict });
    // entities seen in the window and gone now (no live pool of a class) stay, at 0
    for (const key of table.keys()) {
      if (all.has(key)) continue;
      const cut = key.indexOf('\u0000');
      rows.push({ name: key.slice(cut + 1), kind: key.slice(0, cut), bytes: 0, count: 0, found: 0, verdict: table.get(key)?.verdict });
    }
    rows.sort((x, y) => (VERDICT_RANK[x.verdict?.verdict ?? 'steady'] - VERDICT_RANK[y.verdict?.verdict ?? 'steady']) || y.bytes - x.bytes || (x.name < y.name ? -1 : 1));
    const shown = rows.slice(0, k);
    const rest = rows.slice(k);
    const restBytes = rest.reduce((s, r) => s + r.bytes, 0);
    other.push(t, restBytes);
    if (rest.length > 0 || other.length > 1) {
      shown.push({ name: OTHER, kind: OTHER, bytes: restBytes, count: rest.reduce((s, r) => s + r.count, 0), found: rest.reduce((s, r) => s + r.found, 0), verdict: other.judge(), other: true });
    }
    return shown;
  }
}
