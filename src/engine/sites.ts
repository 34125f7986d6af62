// Per-process aggregates by allocation site. A site is a stack id, split by kind: heap
// allocations and pool allocations from the same stack are different sites (index = dense).
//
// Layout: everything a change touches sits in one 128-byte record per site (two adjacent cache
// lines of one Float64Array): the outstanding and allocated totals and the open point of the
// site's series. The committed points (a BoundedSeries-like store) are touched only every
// `stride` changes. With thousands of sites hit at random, chasing a series object per change
// cost several cache misses; this costs one or two.

import { SITE_SERIES_CAP } from './series.js';
import type { SeriesPoints } from './series.js';

const DENSE_MAX = 1 << 22;
const REC = 16;
// Fields of a site record.
const OUT_COUNT = 0, OUT_BYTES = 1, ALLOC_COUNT = 2, ALLOC_BYTES = 3;
const PX = 4, PY = 5, PLO = 6, PHI = 7, PENDING = 8, STRIDE = 9;

/** Committed points of one site: interleaved x, y, lo, hi; at most SITE_SERIES_CAP. */
class Points {
  d = new Float64Array(16);
  n = 0;

  /** Appends a point; returns true when the store halved (each point now covers twice the changes). */
  push(x: number, y: number, lo: number, hi: number): boolean {
    let d = this.d;
    const o = 4 * this.n;
    if (o === d.length) {
      const bigger = new Float64Array(Math.min(4 * SITE_SERIES_CAP, d.length * 2));
      bigger.set(d);
      this.d = d = bigger;
    }
    d[o] = x;
    d[o + 1] = y;
    d[o + 2] = lo;
    d[o + 3] = hi;
    if (++this.n < SITE_SERIES_CAP) return false;
    const n = this.n >> 1;
    for (let i = 0; i < n; i++) {
      const a = 8 * i;
      const b = 4 * i;
      d[b] = d[a + 4]!;
      d[b + 1] = d[a + 5]!;
      d[b + 2] = Math.min(d[a + 2]!, d[a + 6]!);
      d[b + 3] = Math.max(d[a + 3]!, d[a + 7]!);
    }
    this.n = n;
    return true;
  }
}

export class SiteTable {
  private readonly index = new Map<number, number>();
  /** Site key: stack * 2 + (pool ? 1 : 0). */
  readonly keys: number[] = [];
  private rec = new Float64Array(64 * REC);
  private readonly pts: (Points | undefined)[] = [];
  /** Tag of the last pool a pool site fed. */
  readonly poolTag: (string | undefined)[] = [];
  /** Site index + 1 by key for small keys (stack ids are dense from 1): no hashing on the hot path. */
  private dense = new Int32Array(1024);

  get length(): number {
    return this.keys.length;
  }

  /** Dense index of a site, created on first use. */
  of(stack: number, pool: boolean): number {
    const key = stack * 2 + (pool ? 1 : 0);
    if (key < DENSE_MAX) {
      if (key < this.dense.length) {
        const d = this.dense[key]!;
        if (d !== 0) return d - 1;
      } else {
        const bigger = new Int32Array(Math.min(DENSE_MAX, Math.max(key + 1, this.dense.length * 2)));
        bigger.set(this.dense);
        this.dense = bigger;
      }
    }
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.keys.length;
      this.index.set(key, i);
      this.keys.push(key);
      this.pts.push(undefined);
      this.poolTag.push(undefined);
      if ((i + 1) * REC > this.rec.length) {
        const bigger = new Float64Array(this.rec.length * 2);
        bigger.set(this.rec);
        this.rec = bigger;
      }
      const o = i * REC;
      this.rec[o + STRIDE] = 1;
      this.rec[o + PLO] = Infinity;
      this.rec[o + PHI] = -Infinity;
    }
    if (key < DENSE_MAX) this.dense[key] = i + 1;
    return i;
  }

  stackOf(i: number): number {
    return Math.floor(this.keys[i]! / 2);
  }
  isPool(i: number): boolean {
    return (this.keys[i]! & 1) === 1;
  }
  outCount(i: number): number {
    return this.rec[i * REC + OUT_COUNT]!;
  }
  outBytes(i: number): number {
    return this.rec[i * REC + OUT_BYTES]!;
  }
  allocCount(i: number): number {
    return this.rec[i * REC + ALLOC_COUNT]!;
  }
  allocBytes(i: number): number {
    return this.rec[i * REC + ALLOC_BYTES]!;
  }

  alloc(i: number, count: number, bytes: number, t: number): void {
    const r = this.rec;
    const o = i * REC;
    r[o + ALLOC_COUNT] += count;
    r[o + ALLOC_BYTES] += bytes;
    r[o + OUT_COUNT] += count;
    r[o + OUT_BYTES] += bytes;
    if (bytes !== 0) this.record(r, o, i, t);
  }

  release(i: number, count: number, bytes: number, t: number): void {
    const r = this.rec;
    const o = i * REC;
    r[o + OUT_COUNT] -= count;
    r[o + OUT_BYTES] -= bytes;
    // Float sums of sampled weights may leave dust.
    if (r[o + OUT_COUNT]! < 1e-6) {
      r[o + OUT_COUNT] = 0;
      r[o + OUT_BYTES] = 0;
    }
    if (bytes !== 0) this.record(r, o, i, t);
  }

  /** Folds the site's new outstanding bytes into its open point; commits every `stride` changes. */
  private record(r: Float64Array, o: number, i: number, t: number): void {
    const v = r[o + OUT_BYTES]!;
    r[o + PX] = t;
    r[o + PY] = v;
    if (v < r[o + PLO]!) r[o + PLO] = v;
    if (v > r[o + PHI]!) r[o + PHI] = v;
    if (++r[o + PENDING]! >= r[o + STRIDE]!) {
      const p = (this.pts[i] ??= new Points());
      if (p.push(t, v, r[o + PLO]!, r[o + PHI]!)) r[o + STRIDE] *= 2;
      r[o + PENDING] = 0;
      r[o + PLO] = Infinity;
      r[o + PHI] = -Infinity;
    }
  }

  /** The site's outstanding bytes over time (its own changes), the open point included. */
  series(i: number): SeriesPoints {
    const out: SeriesPoints = { x: [], y: [], lo: [], hi: [] };
    const p = this.pts[i];
    if (p) {
      for (let k = 0; k < p.n; k++) {
        out.x.push(p.d[4 * k]!);
        out.y.push(p.d[4 * k + 1]!);
        out.lo.push(p.d[4 * k + 2]!);
        out.hi.push(p.d[4 * k + 3]!);
      }
    }
    const o = i * REC;
    const r = this.rec;
    if (r[o + PENDING]! > 0) {
      out.x.push(r[o + PX]!);
      out.y.push(r[o + PY]!);
      out.lo.push(r[o + PLO]!);
      out.hi.push(r[o + PHI]!);
    }
    return out;
  }
}
