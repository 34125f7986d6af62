// Per-process aggregates by allocation site. A site is a stack id, split by kind: heap
// allocations and pool allocations from the same stack are different sites (index = dense).
//
// Layout: everything a change touches sits in one 104-byte record per site (of one Float64Array):
// the outstanding and allocated totals, the open point of the site's series and where its
// committed points are. The committed points (a BoundedSeries-like store) sit in one arena shared
// by all sites and are touched only every `stride` changes. With thousands of sites hit at
// random, chasing a series object per change cost several cache misses; this costs one or two.

import { SITE_SERIES_CAP } from './series.js';
import type { SeriesPoints } from './series.js';

const DENSE_MAX = 1 << 22;
const REC = 13;
// Fields of a site record.
const OUT_COUNT = 0, OUT_BYTES = 1, ALLOC_COUNT = 2, ALLOC_BYTES = 3;
const PX = 4, PY = 5, PLO = 6, PHI = 7, PENDING = 8, STRIDE = 9;
/** Where the site's committed points are in the arena: offset, capacity (doubles), count. */
const POFF = 10, PCAP = 11, PN = 12;
/** Committed points of a site start with room for 4 and double up to SITE_SERIES_CAP. */
const FIRST_BLOCK = 16;
const LAST_BLOCK = 4 * SITE_SERIES_CAP;

export class SiteTable {
  private readonly index = new Map<number, number>();
  /** Site key: stack * 2 + (pool ? 1 : 0). */
  readonly keys: number[] = [];
  // Small until used: a trace can hold 100,000 processes with one site each, or none.
  private rec = new Float64Array(0);
  /** Committed points of every site (interleaved x, y, lo, hi), in blocks of FIRST_BLOCK <<
   *  k doubles: one array, so that a commit is one store where the record says, not a chase of
   *  a per-site object (several cache misses once thousands of sites are hit at random). */
  private arena = new Float64Array(0);
  private arenaUsed = 0;
  /** Freed blocks (a site outgrew them) by size class, for reuse. */
  private readonly freeBlocks: number[][] = [];
  /** Tag of the last pool a pool site fed. */
  readonly poolTag: (string | undefined)[] = [];
  /** Site index + 1 by key for small keys (stack ids are dense from 1): no hashing on the hot path. */
  private dense = new Int32Array(16);

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
      this.poolTag.push(undefined);
      if ((i + 1) * REC > this.rec.length) {
        const bigger = new Float64Array(Math.max(4 * REC, this.rec.length * 2));
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
    r[o + ALLOC_COUNT] = r[o + ALLOC_COUNT]! + count;
    r[o + ALLOC_BYTES] = r[o + ALLOC_BYTES]! + bytes;
    r[o + OUT_COUNT] = r[o + OUT_COUNT]! + count;
    r[o + OUT_BYTES] = r[o + OUT_BYTES]! + bytes;
    if (bytes !== 0) this.record(r, o, i, t);
  }

  /** Allocated and freed at once: the allocation totals only (outstanding is unchanged). */
  allocated(i: number, count: number, bytes: number): void {
    const o = i * REC;
    this.rec[o + ALLOC_COUNT] = this.rec[o + ALLOC_COUNT]! + count;
    this.rec[o + ALLOC_BYTES] = this.rec[o + ALLOC_BYTES]! + bytes;
  }

  release(i: number, count: number, bytes: number, t: number): void {
    const r = this.rec;
    const o = i * REC;
    r[o + OUT_COUNT] = r[o + OUT_COUNT]! - count;
    r[o + OUT_BYTES] = r[o + OUT_BYTES]! - bytes;
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
      if (this.push(r, o, t, v, r[o + PLO]!, r[o + PHI]!)) r[o + STRIDE] = r[o + STRIDE]! * 2;
      r[o + PENDING] = 0;
      r[o + PLO] = Infinity;
      r[o + PHI] = -Infinity;
    }
  }

  /** Appends a committed point to the site at record offset o; returns true when its points
   *  halved (each point now covers twice the changes). */
  private push(r: Float64Array, o: number, x: number, y: number, lo: number, hi: number): boolean {
    let off = r[o + POFF]!;
    const cap = r[o + PCAP]!;
    let n = r[o + PN]!;
    if (4 * n === cap) {
      // First point, or the block is full: move to a block twice as large.
      const size = cap === 0 ? FIRST_BLOCK : Math.min(LAST_BLOCK, cap * 2);
      const to = this.block(size);
      off = r[o + POFF]!; // block() may have compacted the arena
      if (cap !== 0) {
        this.arena.copyWithin(to, off, off + cap);
        this.release_(off, cap);
      }
      off = to;
      r[o + POFF] = off;
      r[o + PCAP] = size;
    }
    const d = this.arena;
    const w = off + 4 * n;
    d[w] = x;
    d[w + 1] = y;
    d[w + 2] = lo;
    d[w + 3] = hi;
    if (++n < SITE_SERIES_CAP) {
      r[o + PN] = n;
      return false;
    }
    n >>= 1;
    for (let k = 0; k < n; k++) {
      const a = off + 8 * k;
      const b = off + 4 * k;
      d[b] = d[a + 4]!;
      d[b + 1] = d[a + 5]!;
      d[b + 2] = Math.min(d[a + 2]!, d[a + 6]!);
      d[b + 3] = Math.max(d[a + 3]!, d[a + 7]!);
    }
    r[o + PN] = n;
    return true;
  }

  /** A block of `size` doubles in the arena (a freed one when there is one). */
  private block(size: number): number {
    const cls = Math.log2(size / FIRST_BLOCK);
    const free = this.freeBlocks[cls];
    if (free && free.length) return free.pop()!;
    if (this.arenaUsed + size > this.arena.length) this.compact(size);
    const at = this.arenaUsed;
    this.arenaUsed += size;
    return at;
  }

  /** A new arena holding only the blocks sites use (the freed ones are dropped), with room for
   *  `size` more doubles and half as much again: memory stays within ~1.5x the points held. */
  private compact(size: number): void {
    const r = this.rec;
    const old = this.arena;
    let live = size;
    for (let i = 0; i < this.keys.length; i++) live += r[i * REC + PCAP]!;
    const arena = new Float64Array(Math.max(4 * FIRST_BLOCK, Math.ceil(live * 1.5)));
    let at = 0;
    for (let i = 0; i < this.keys.length; i++) {
      const o = i * REC;
      const cap = r[o + PCAP]!;
      if (cap === 0) continue;
      const off = r[o + POFF]!;
      arena.set(old.subarray(off, off + cap), at);
      r[o + POFF] = at;
      at += cap;
    }
    this.arena = arena;
    this.arenaUsed = at;
    this.freeBlocks.length = 0;
  }

  private release_(off: number, size: number): void {
    (this.freeBlocks[Math.log2(size / FIRST_BLOCK)] ??= []).push(off);
  }

  /** The site's outstanding bytes over time (its own changes), the open point included. */
  series(i: number): SeriesPoints {
    const out: SeriesPoints = { x: [], y: [], lo: [], hi: [] };
    const o = i * REC;
    const r = this.rec;
    const d = this.arena;
    const off = r[o + POFF]!;
    const n = r[o + PN]!;
    for (let k = 0; k < n; k++) {
      out.x.push(d[off + 4 * k]!);
      out.y.push(d[off + 4 * k + 1]!);
      out.lo.push(d[off + 4 * k + 2]!);
      out.hi.push(d[off + 4 * k + 3]!);
    }
    if (r[o + PENDING]! > 0) {
      out.x.push(r[o + PX]!);
      out.y.push(r[o + PY]!);
      out.lo.push(r[o + PLO]!);
      out.hi.push(r[o + PHI]!);
    }
    return out;
  }
}
