// A bounded time series of one entity's own changes (a pool's bytes, a site's outstanding
// bytes, a process total). Memory is bounded whatever the trace length: at most `cap` points;
// when full, neighbouring points merge pairwise and from then on each point stands for twice as
// many changes. A point keeps the time and value of its last change plus the lowest and highest
// value it covered, so troughs (a clear) and peaks survive merging. Repeats (a change that leaves
// the value as it was) are not recorded.

export const SERIES_CAP = 256;

export interface SeriesPoints {
  x: number[];
  y: number[];
  lo: number[];
  hi: number[];
}

export class BoundedSeries {
  x: number[] = [];
  y: number[] = [];
  lo: number[] = [];
  hi: number[] = [];
  /** Changes per committed point. */
  private stride = 1;
  /** Changes folded into the open (not yet committed) point. */
  private pending = 0;
  private px = 0;
  private py = 0;
  private plo = Infinity;
  private phi = -Infinity;
  private lastY = NaN;
  /** The most recent value (also for entities with a single change). */
  peak = -Infinity;

  constructor(private readonly cap = SERIES_CAP) {}

  add(t: number, v: number): void {
    if (v === this.lastY) return;
    this.lastY = v;
    if (v > this.peak) this.peak = v;
    this.px = t;
    this.py = v;
    if (v < this.plo) this.plo = v;
    if (v > this.phi) this.phi = v;
    if (++this.pending >= this.stride) this.commit();
  }

  private commit(): void {
    this.x.push(this.px);
    this.y.push(this.py);
    this.lo.push(this.plo);
    this.hi.push(this.phi);
    this.pending = 0;
    this.plo = Infinity;
    this.phi = -Infinity;
    if (this.x.length >= this.cap) this.halve();
  }

  private halve(): void {
    const { x, y, lo, hi } = this;
    const n = x.length >> 1;
    for (let i = 0; i < n; i++) {
      const a = 2 * i;
      const b = a + 1;
      x[i] = x[b]!;
      y[i] = y[b]!;
      lo[i] = Math.min(lo[a]!, lo[b]!);
      hi[i] = Math.max(hi[a]!, hi[b]!);
    }
    x.length = y.length = lo.length = hi.length = n;
    this.stride *= 2;
  }

  get length(): number {
    return this.x.length + (this.pending > 0 ? 1 : 0);
  }

  get last(): number {
    return Number.isNaN(this.lastY) ? 0 : this.lastY;
  }

  /** The points, the open one included. */
  points(): SeriesPoints {
    const out = { x: this.x.slice(), y: this.y.slice(), lo: this.lo.slice(), hi: this.hi.slice() };
    if (this.pending > 0) {
      out.x.push(this.px);
      out.y.push(this.py);
      out.lo.push(this.plo);
      out.hi.push(this.phi);
    }
    return out;
  }
}
