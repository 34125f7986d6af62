// A bounded time series of one entity's own changes (a pool's bytes, a site's outstanding
// bytes, a process total). Memory is bounded whatever the trace length: at most `cap` points;
// when full, neighbouring points merge pairwise and from then on each point stands for twice as
// many changes. A point keeps the time and value of its last change plus the lowest and highest
// value it covered, so troughs (a clear) and peaks survive merging. Repeats (a change that leaves
// the value as it was) are not recorded.
//
// Storage: typed arrays that start small and double up to `cap` (most entities change a few
// times); times in f64, values in f32 (7 significant digits: plenty for a verdict or a chart, and
// 20 bytes a point instead of 32).

export const SERIES_CAP = 256;
/** Per-site series: the verdict looks at <= 128 points anyway, and a trace can have many sites. */
export const SITE_SERIES_CAP = 128;

export interface SeriesPoints {
  x: number[];
  y: number[];
  lo: number[];
  hi: number[];
}

const NO_X = new Float64Array(0);
const NO_Y = new Float32Array(0);

export class BoundedSeries {
  // Empty until the first committed point: most series of most processes stay short or empty.
  private x = NO_X;
  private y = NO_Y;
  private lo = NO_Y;
  private hi = NO_Y;
  private n = 0;
  /** Changes per committed point. */
  private stride = 1;
  /** Changes folded into the open (not yet committed) point. */
  private pending = 0;
  private px = 0;
  private py = 0;
  private plo = Infinity;
  private phi = -Infinity;
  private lastY = NaN;
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

  /** A value held for an instant and given back at once: raises the peaks, adds no point. */
  touch(v: number): void {
    if (v > this.peak) this.peak = v;
    if (v > this.phi) this.phi = v;
  }

  private commit(): void {
    let n = this.n;
    if (n === this.x.length) this.enlarge();
    this.x[n] = this.px;
    this.y[n] = this.py;
    this.lo[n] = this.plo;
    this.hi[n] = this.phi;
    this.n = ++n;
    this.pending = 0;
    this.plo = Infinity;
    this.phi = -Infinity;
    if (n >= this.cap) this.halve();
  }

  private enlarge(): void {
    const size = Math.min(this.cap, Math.max(4, this.x.length * 2));
    const x = new Float64Array(size);
    const y = new Float32Array(size);
    const lo = new Float32Array(size);
    const hi = new Float32Array(size);
    x.set(this.x);
    y.set(this.y);
    lo.set(this.lo);
    hi.set(this.hi);
    this.x = x;
    this.y = y;
    this.lo = lo;
    this.hi = hi;
  }

  private halve(): void {
    const { x, y, lo, hi } = this;
    const n = this.n >> 1;
    for (let i = 0; i < n; i++) {
      const a = 2 * i;
      const b = a + 1;
      x[i] = x[b]!;
      y[i] = y[b]!;
      lo[i] = Math.min(lo[a]!, lo[b]!);
      hi[i] = Math.max(hi[a]!, hi[b]!);
    }
    this.n = n;
    this.stride *= 2;
  }

  get length(): number {
    return this.n + (this.pending > 0 ? 1 : 0);
  }

  get last(): number {
    return Number.isNaN(this.lastY) ? 0 : this.lastY;
  }

  /** Bytes held by the series' arrays. */
  get memoryBytes(): number {
    return this.x.length * 20;
  }

  /** The points, the open one included. */
  points(): SeriesPoints {
    const n = this.n;
    const out: SeriesPoints = {
      x: Array.from(this.x.subarray(0, n)),
      y: Array.from(this.y.subarray(0, n)),
      lo: Array.from(this.lo.subarray(0, n)),
      hi: Array.from(this.hi.subarray(0, n)),
    };
    if (this.pending > 0) {
      out.x.push(this.px);
      out.y.push(Math.fround(this.py));
      out.lo.push(Math.fround(this.plo));
      out.hi.push(Math.fround(this.phi));
    }
    return out;
  }
}
