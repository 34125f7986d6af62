// `attach --interval`: a light live view of what grows, kept beside the trace writer. Per process
// and call site (the immediate caller), the outstanding heap bytes and live pools' bytes are
// sampled each interval; the view ranks what grew in the interval just ended (what a user
// watching it asks), with the growth since attach and a verdict on the sampled series beside it.
// Pools whose creation was not seen (made before attach) still count: by their sampled sizes and
// the allocations into them, each as its own row. When no probed function has been called at all
// the view says so, instead of "nothing grew".

import { growthVerdict, formatAmount } from '../analyses/growth.js';
import type { Series, VerdictKind } from '../analyses/result.js';
import type { Event, EventSink } from '../model/events.js';

interface Site {
  pid: number;
  what: 'heap' | 'pool';
  leafFrame: number;
  /** A pool known only by its address (created before attach): 'pool 0x… "tag"'. */
  label?: string;
  bytes: number;
  count: number;
  series: Series;
  /** The measure at the last two samples: the interval's growth is their difference. */
  prev: number;
  last: number;
  /** The measure when the site was first seen: growth since attach counts from it. */
  base: number;
}

interface Pool {
  site: Site;
  bytes: number;
  /** Found alive (pool-found): its first size is its baseline, not growth. */
  found?: boolean;
}

export interface GrowthRow {
  pid: number;
  what: 'heap' | 'pool';
  /** The call site (a return address), 0 without a stack. */
  pc: number;
  /** Shown instead of a call site (a pool known only by its address). */
  label?: string;
  /** Growth in the last interval. */
  growth: number;
  /** Growth since attach. */
  total: number;
  bytes: number;
  count: number;
  verdict: VerdictKind;
}

export interface GrowthView {
  rows: GrowthRow[];
  /** Length of the interval the rows' growth is over, and time traced so far (trace clock, ns). */
  intervalNs: number;
  tracedNs: number;
  /** Allocation, free and pool calls seen so far, in every traced process. */
  calls: number;
}

const MAX_POINTS = 512;

/** Heap sites grow in bytes; pools in bytes once their sizes are read, else in count. */
function measure(s: Site): number {
  return s.what === 'heap' || s.bytes > 0 ? s.bytes : s.count;
}

export class LiveGrowth implements EventSink {
  private readonly sites = new Map<string, Site>();
  private readonly blocks = new Map<string, { site: Site; size: number }>();
  private readonly pools = new Map<string, Pool>();
  private readonly tags = new Map<string, string>();
  /** stack id → leaf frame id, per pid */
  private readonly stackLeaf = new Map<string, number>();
  private readonly frames = new Map<string, { pc: number; module: string }>();
  private calls = 0;
  private firstT = -1;
  private prevT = 0;
  private lastT = 0;

  constructor(private readonly next: EventSink) {}

  private site(pid: number, what: 'heap' | 'pool', stack: number, t: number): Site {
    const leaf = this.stackLeaf.get(`${pid}:${stack}`) ?? 0;
    return this.siteByKey(`${pid}:${what}:${leaf}`, pid, what, leaf, t);
  }

  private siteByKey(key: string, pid: number, what: 'heap' | 'pool', leaf: number, t: number, label?: string): Site {
    let s = this.sites.get(key);
    // a site first seen now held nothing before: its growth counts from zero
    if (!s) this.sites.set(key, (s = { pid, what, leafFrame: leaf, label, bytes: 0, count: 0, series: { x: [t], y: [0] }, prev: 0, last: 0, base: 0 }));
    return s;
  }

  /** A pool whose creation was not seen: a row of its own, its first known size the baseline. */
  private unknownPool(pid: number, pool: number, t: number): Pool {
    const k = `${pid}:${pool}`;
    const p: Pool = { site: this.siteByKey(`${pid}:pool@${pool}`, pid, 'pool', 0, t, poolLabel(pool, this.tags.get(k))), bytes: 0 };
    p.site.count = 1;
    this.pools.set(k, p);
    return p;
  }

  event(e: Event): void {
    this.next.event(e);
    switch (e.kind) {
      case 'frame':
        this.frames.set(`${e.pid}:${e.id}`, { pc: e.frame.pc, module: e.frame.module });
        break;
      case 'stack':
        // a stack's leaf frame is its own frame: stacks are defined root first, leaf last
        this.stackLeaf.set(`${e.pid}:${e.id}`, e.frame);
        break;
      case 'alloc':
      case 'realloc': {
        this.calls++;
        if (e.kind === 'realloc' && e.oldAddr) this.free(e.pid, e.oldAddr);
        if (!e.addr) break;
        const s = this.site(e.pid, 'heap', e.stack, e.t);
        s.bytes += e.size;
        s.count++;
        this.blocks.set(`${e.pid}:${e.addr}`, { site: s, size: e.size });
        break;
      }
      case 'free':
        this.calls++;
        this.free(e.pid, e.addr);
        break;
      case 'pool-create': {
        this.calls++;
        const s = this.site(e.pid, 'pool', e.stack, e.t);
        s.count++;
        this.pools.set(`${e.pid}:${e.pool}`, { site: s, bytes: 0 });
        break;
      }
      case 'pool-alloc': {
        this.calls++;
        // sizes read from the pool itself replace this count at the next sample
        const p = this.pools.get(`${e.pid}:${e.pool}`) ?? this.unknownPool(e.pid, e.pool, e.t);
        p.site.bytes += e.size;
        p.bytes += e.size;
        break;
      }
      case 'pool-found': {
        // alive before the trace (found by a walk of the pool tree): a row of its own; what it
        // grows from now counts, neither its existence nor the bytes it already held
        const k = `${e.pid}:${e.pool}`;
        if (e.tag) this.tags.set(k, e.tag);
        if (!this.pools.has(k)) this.unknownPool(e.pid, e.pool, e.t).found = true;
        break;
      }
      case 'pool-size': {
        const k = `${e.pid}:${e.pool}`;
        let p = this.pools.get(k);
        if (!p || p.found) {
          // first seen by its size (or found, first sized): that size is where its growth counts from
          p ??= this.unknownPool(e.pid, e.pool, e.t);
          p.found = false;
          p.site.bytes += e.bytes - p.bytes;
          p.bytes = e.bytes;
          p.site.base = p.site.prev = p.site.last = p.site.bytes;
          p.site.series = { x: [e.t], y: [p.site.bytes] };
          break;
        }
        p.site.bytes += e.bytes - p.bytes;
        p.bytes = e.bytes;
        break;
      }
      case 'pool-tag': {
        this.calls++;
        const k = `${e.pid}:${e.pool}`;
        this.tags.set(k, e.tag);
        const p = this.pools.get(k);
        if (p?.site.label) p.site.label = poolLabel(e.pool, e.tag);
        break;
      }
      case 'pool-clear':
      case 'pool-destroy': {
        this.calls++;
        const k = `${e.pid}:${e.pool}`;
        const p = this.pools.get(k);
        if (!p) break;
        p.site.bytes -= p.bytes;
        p.bytes = 0;
        if (e.kind === 'pool-destroy') {
          p.site.count--;
          this.pools.delete(k);
          this.tags.delete(k);
          // a pool known by its address alone is its own row: gone with it
          if (p.site.label) this.sites.delete(`${e.pid}:pool@${e.pool}`);
        }
        break;
      }
      case 'pool-free':
        this.calls++;
        break;
      default:
        break;
    }
  }

  private free(pid: number, addr: number): void {
    const k = `${pid}:${addr}`;
    const b = this.blocks.get(k);
    if (!b) return;
    b.site.bytes -= b.size;
    b.site.count--;
    this.blocks.delete(k);
  }

  /** Samples every site at time t (trace clock): the end of an interval. */
  sample(t: number): void {
    if (this.firstT < 0) this.firstT = t;
    this.prevT = this.lastT;
    this.lastT = t;
    for (const s of this.sites.values()) {
      if (s.series.x.length >= MAX_POINTS) {
        // keep every other point: a bounded series over the whole session
        s.series.x = s.series.x.filter((_, i) => i % 2 === 0);
        s.series.y = s.series.y.filter((_, i) => i % 2 === 0);
      }
      const m = measure(s);
      s.series.x.push(t);
      s.series.y.push(m);
      s.prev = s.last;
      s.last = m;
    }
  }

  /** The sites that grew most in the last interval (between the last two samples), with verdicts. */
  top(n: number): GrowthView {
    const rows: GrowthRow[] = [];
    for (const s of this.sites.values()) {
      const growth = s.last - s.prev;
      if (growth <= 0) continue;
      const f = this.frames.get(`${s.pid}:${s.leafFrame}`);
      const v = growthVerdict(s.series, { xUnit: 's', xScale: 1e9 });
      rows.push({ pid: s.pid, what: s.what, pc: f?.pc ?? 0, label: s.label, growth, total: s.last - s.base, bytes: s.bytes, count: s.count, verdict: v.verdict });
    }
    rows.sort((a, b) => b.growth - a.growth || b.total - a.total);
    return { rows: rows.slice(0, n), intervalNs: this.lastT - this.prevT, tracedNs: this.lastT - Math.max(this.firstT, 0), calls: this.calls };
  }
}

function poolLabel(pool: number, tag: string | undefined): string {
  return `pool 0x${pool.toString(16)}${tag ? ` "${tag}"` : ''} (made before attach)`;
}

/** Tags and names come from the traced process: no control character reaches the terminal. */
function printable(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function secs(ns: number): string {
  const s = ns / 1e9;
  return s >= 100 ? `${Math.round(s)} s` : `${s.toFixed(1)} s`;
}

/** `labels` maps `pid:pc` to a function name. */
export function formatGrowthRows(view: GrowthView, labels: Map<string, string>, when: Date): string {
  const { rows } = view;
  const span = secs(view.intervalNs);
  const head = `[${when.toTimeString().slice(0, 8)}] Top ${rows.length} growing sites in the last ${span} (${secs(view.tracedNs)} traced):`;
  if (rows.length === 0) {
    const why = view.calls === 0
      ? 'no call seen yet: no probed function has run in any traced process (is it idle, or does it allocate another way? try another --allocator, or `leakscope kernel` for mmap/brk)'
      : `nothing grew in the last ${span}`;
    return `${head}\n  (${why})\n`;
  }
  const lines = rows.map((r) => {
    const pools = r.what === 'pool' && r.bytes === 0;
    const amount = (v: number) => (pools ? `${v} pools` : formatAmount(v));
    const held = r.what === 'pool' ? `${r.count} live pool${r.count === 1 ? '' : 's'}, ${formatAmount(r.bytes)}` : `${r.count} blocks, ${formatAmount(r.bytes)}`;
    const site = r.label ?? (r.pc ? labels.get(`${r.pid}:${r.pc}`) ?? `0x${r.pc.toString(16)}` : '(no stack)');
    return `  pid ${r.pid}  +${amount(r.growth)} in ${span}  (${r.total >= 0 ? '+' : ''}${amount(r.total)} since attach; ${held})  ${r.verdict}  ${printable(site)}`;
  });
  return `${head}\n${lines.join('\n')}\n`;
}
