// `attach --interval`: a light live view of what grows, kept beside the trace writer. Per process
// and call site (the immediate caller), the outstanding heap bytes and live pools' bytes are
// sampled each interval; sites are ranked by growth since attach, with a growth verdict on their
// sampled series.

import { growthVerdict, formatAmount } from '../analyses/growth.js';
import type { Series, VerdictKind } from '../analyses/result.js';
import type { Event, EventSink } from '../model/events.js';

interface Site {
  pid: number;
  what: 'heap' | 'pool';
  leafFrame: number;
  bytes: number;
  count: number;
  series: Series;
}

export interface GrowthRow {
  pid: number;
  what: 'heap' | 'pool';
  /** The call site (a return address), 0 without a stack. */
  pc: number;
  growth: number;
  bytes: number;
  count: number;
  verdict: VerdictKind;
}

const MAX_POINTS = 512;

/** Heap sites grow in bytes; pools in bytes once their sizes are read, else in count. */
function measure(s: Site): number {
  return s.what === 'heap' || s.bytes > 0 ? s.bytes : s.count;
}

export class LiveGrowth implements EventSink {
  private readonly sites = new Map<string, Site>();
  private readonly blocks = new Map<string, { site: Site; size: number }>();
  private readonly pools = new Map<string, { site: Site; bytes: number; found?: boolean; sized?: boolean }>();
  /** stack id → leaf frame id, per pid */
  private readonly stackLeaf = new Map<string, number>();
  private readonly frames = new Map<string, { pc: number; module: string }>();
  private readonly stackParent = new Map<string, number>();

  constructor(private readonly next: EventSink) {}

  private site(pid: number, what: 'heap' | 'pool', stack: number, t: number): Site {
    const leaf = this.stackLeaf.get(`${pid}:${stack}`) ?? 0;
    const key = `${pid}:${what}:${leaf}`;
    let s = this.sites.get(key);
    // a site first seen now held nothing before: its growth counts from zero
    if (!s) this.sites.set(key, (s = { pid, what, leafFrame: leaf, bytes: 0, count: 0, series: { x: [t], y: [0] } }));
    return s;
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
        this.stackParent.set(`${e.pid}:${e.id}`, e.parent);
        break;
      case 'alloc':
      case 'realloc': {
        if (e.kind === 'realloc' && e.oldAddr) this.free(e.pid, e.oldAddr);
        if (!e.addr) break;
        const s = this.site(e.pid, 'heap', e.stack, e.t);
        s.bytes += e.size;
        s.count++;
        this.blocks.set(`${e.pid}:${e.addr}`, { site: s, size: e.size });
        break;
      }
      case 'free':
        this.free(e.pid, e.addr);
        break;
      case 'pool-create': {
        const s = this.site(e.pid, 'pool', e.stack, e.t);
        s.count++;
        this.pools.set(`${e.pid}:${e.pool}`, { site: s, bytes: 0 });
        break;
      }
      case 'pool-found': {
        // alive before the trace (no creation stack): what it grows from now counts, neither
        // its existence nor the bytes it already held (see pool-size)
        const s = this.site(e.pid, 'pool', 0, e.t);
        this.pools.set(`${e.pid}:${e.pool}`, { site: s, bytes: 0, found: true });
        break;
      }
      case 'pool-size': {
        const p = this.pools.get(`${e.pid}:${e.pool}`);
        if (p) {
          p.site.bytes += e.bytes - p.bytes;
          // a found pool's first size was there before the trace: the site's baseline, not growth
          if (p.found && !p.sized) for (let i = 0; i < p.site.series.y.length; i++) p.site.series.y[i]! += e.bytes - p.bytes;
          p.sized = true;
          p.bytes = e.bytes;
        }
        break;
      }
      case 'pool-destroy': {
        const k = `${e.pid}:${e.pool}`;
        const p = this.pools.get(k);
        if (p) {
          p.site.bytes -= p.bytes;
          if (!p.found) p.site.count--;
          this.pools.delete(k);
        }
        break;
      }
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

  /** Samples every site at time t (trace clock). */
  sample(t: number): void {
    for (const s of this.sites.values()) {
      if (s.series.x.length >= MAX_POINTS) {
        // keep every other point: a bounded series over the whole session
        s.series.x = s.series.x.filter((_, i) => i % 2 === 0);
        s.series.y = s.series.y.filter((_, i) => i % 2 === 0);
      }
      s.series.x.push(t);
      s.series.y.push(measure(s));
    }
  }

  /** The sites that grew most since attach, with verdicts. */
  top(n: number): GrowthRow[] {
    const rows: GrowthRow[] = [];
    for (const s of this.sites.values()) {
      const y = s.series.y;
      if (y.length === 0) continue;
      const growth = measure(s) - y[0]!;
      if (growth <= 0) continue;
      const f = this.frames.get(`${s.pid}:${s.leafFrame}`);
      const v = growthVerdict(s.series, { xUnit: 's', xScale: 1e9 });
      rows.push({ pid: s.pid, what: s.what, pc: f?.pc ?? 0, growth, bytes: s.bytes, count: s.count, verdict: v.verdict });
    }
    return rows.sort((a, b) => b.growth - a.growth).slice(0, n);
  }
}

/** `labels` maps `pid:pc` to a function name. */
export function formatGrowthRows(rows: GrowthRow[], labels: Map<string, string>, when: Date): string {
  const head = `[${when.toTimeString().slice(0, 8)}] Top ${rows.length} growing sites since attach:`;
  if (rows.length === 0) return `${head}\n  (nothing grew)\n`;
  const lines = rows.map((r) => {
    const grew = r.what === 'pool' && r.bytes === 0 ? `+${r.growth} pools` : `+${formatAmount(r.growth)}`;
    const held = r.what === 'pool' ? `${r.count} live pools, ${formatAmount(r.bytes)}` : `${r.count} blocks, ${formatAmount(r.bytes)}`;
    const site = r.pc ? labels.get(`${r.pid}:${r.pc}`) ?? `0x${r.pc.toString(16)}` : '(no stack)';
    return `  pid ${r.pid}  ${grew}  (${held})  ${r.verdict}  ${site}`;
  });
  return `${head}\n${lines.join('\n')}\n`;
}
