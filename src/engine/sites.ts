// Per-process aggregates by allocation site. A site is a stack id, split by kind: heap
// allocations and pool allocations from the same stack are different sites (index = dense).

import { BoundedSeries } from './series.js';

export class SiteTable {
  private readonly index = new Map<number, number>();
  /** Site key: stack * 2 + (pool ? 1 : 0). */
  readonly keys: number[] = [];
  outCount: number[] = [];
  outBytes: number[] = [];
  allocCount: number[] = [];
  allocBytes: number[] = [];
  /** Outstanding bytes over time (allocated lazily: a site with one allocation needs none). */
  readonly series: (BoundedSeries | undefined)[] = [];
  /** Tag of the last pool a pool site fed. */
  readonly poolTag: (string | undefined)[] = [];
  private lastKey = -1;
  private lastIdx = -1;

  get length(): number {
    return this.keys.length;
  }

  /** Dense index of a site, created on first use. */
  of(stack: number, pool: boolean): number {
    const key = stack * 2 + (pool ? 1 : 0);
    if (key === this.lastKey) return this.lastIdx;
    let i = this.index.get(key);
    if (i === undefined) {
      i = this.keys.length;
      this.index.set(key, i);
      this.keys.push(key);
      this.outCount.push(0);
      this.outBytes.push(0);
      this.allocCount.push(0);
      this.allocBytes.push(0);
      this.series.push(undefined);
      this.poolTag.push(undefined);
    }
    this.lastKey = key;
    this.lastIdx = i;
    return i;
  }

  stackOf(i: number): number {
    return Math.floor(this.keys[i]! / 2);
  }
  isPool(i: number): boolean {
    return (this.keys[i]! & 1) === 1;
  }

  alloc(i: number, count: number, bytes: number, t: number): void {
    this.allocCount[i]! += count;
    this.allocBytes[i]! += bytes;
    this.outCount[i]! += count;
    this.outBytes[i]! += bytes;
    this.record(i, t);
  }

  release(i: number, count: number, bytes: number, t: number): void {
    this.outCount[i]! -= count;
    this.outBytes[i]! -= bytes;
    // Float sums of sampled weights may leave dust.
    if (this.outCount[i]! < 1e-6) {
      this.outCount[i] = 0;
      this.outBytes[i] = 0;
    }
    this.record(i, t);
  }

  private record(i: number, t: number): void {
    let s = this.series[i];
    if (!s) s = this.series[i] = new BoundedSeries();
    s.add(t, this.outBytes[i]!);
  }
}
