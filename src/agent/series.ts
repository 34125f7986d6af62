// Rolling series: the last `window` of samples of one entity (a process's outstanding bytes, a
// pool class's, a site's), in a fixed ring, with its growth verdict from the same statistic the
// reports use (analyses/growth.ts). A bounded table of them per target: past its cap the series
// with the least memory behind it is dropped (it starts afresh if it comes back).

import { growthVerdict, type GrowthOptions } from '../analyses/growth.js';
import type { Series, Verdict } from '../analyses/result.js';

export class Ring {
  private readonly x: Float64Array;
  private readonly y: Float64Array;
  private start = 0;
  private n = 0;
  verdict: Verdict | undefined;

  constructor(readonly cap: number) {
    this.x = new Float64Array(cap);
    this.y = new Float64Array(cap);
  }

  /** t in seconds. */
  push(t: number, v: number): void {
    const i = (this.start + this.n) % this.cap;
    this.x[i] = t;
    this.y[i] = v;
    if (this.n < this.cap) this.n++;
    else this.start = (this.start + 1) % this.cap;
  }

  get length(): number {
    return this.n;
  }

  get last(): number {
    return this.n ? this.y[(this.start + this.n - 1) % this.cap]! : 0;
  }

  series(): Series {
    const x: number[] = new Array(this.n);
    const y: number[] = new Array(this.n);
    for (let k = 0; k < this.n; k++) {
      const i = (this.start + k) % this.cap;
      x[k] = this.x[i]!;
      y[k] = this.y[i]!;
    }
    return { x, y };
  }

  /** The verdict on the window so far (x in seconds: the slope is per second). */
  judge(more: GrowthOptions = {}): Verdict {
    return (this.verdict = growthVerdict(this.series(), { ...more, xUnit: 's', xScale: 1 }));
  }
}

/** The parts of one entity now: when each was made (s, -Infinity: before the trace) and what it holds. */
export class Parts {
  private readonly born: number[] = [];
  private readonly bytes: number[] = [];

  add(born: number, bytes: number): void {
    this.born.push(born);
    this.bytes.push(bytes);
  }

  /** What the parts made at or before x hold now. */
  heldSince(x: number): number {
    let held = 0;
    for (let i = 0; i < this.born.length; i++) if (this.born[i]! <= x) held += this.bytes[i]!;
    return held;
  }
}

export class SeriesTable {
  private readonly rings = new Map<string, Ring>();
  /** Samples in a row each series has been 0 (absent). */
  private readonly zeros = new Map<string, number>();

  /** `keepGone`: an entity no longer there (a pool class with no live pool) keeps its series,
   *  at 0, until it has been 0 for a whole window; otherwise its series ends at once. */
  constructor(private readonly points: number, private readonly cap: number, private readonly keepGone = false) {}

  get size(): number {
    return this.rings.size;
  }

  get(key: string): Ring | undefined {
    return this.rings.get(key);
  }

  /** Keys of the series held, present or not. */
  keys(): IterableIterator<string> {
    return this.rings.keys();
  }

  /** Adds a sample to every key of `values` (and 0 to the gone ones that are kept); `parts`
   *  gives the entities made of parts (pool classes) what their parts hold (growth.ts). */
  sample(t: number, values: Map<string, number>, parts?: Map<string, Parts>): void {
    for (const k of [...this.rings.keys()]) {
      if (values.has(k)) continue;
      const z = (this.zeros.get(k) ?? 0) + 1;
      if (!this.keepGone || z >= this.points) {
        this.rings.delete(k);
        this.zeros.delete(k);
        continue;
      }
      this.zeros.set(k, z);
      const r = this.rings.get(k)!;
      r.push(t, 0);
      r.judge();
    }
    let keys = [...values.keys()];
    if (keys.length > this.cap) {
      // keep the series with the most memory behind them, drop the rest
      keys.sort((a, b) => values.get(b)! - values.get(a)!);
      const keep = new Set(keys.slice(0, this.cap));
      for (const k of values.keys()) if (!keep.has(k)) this.rings.delete(k);
      keys = [...keep];
    }
    // the gone ones kept at 0 give way first
    let over = this.rings.size + keys.filter((k) => !this.rings.has(k)).length - this.cap;
    for (const k of this.zeros.keys()) {
      if (over <= 0) break;
      if (values.has(k)) continue;
      this.rings.delete(k);
      this.zeros.delete(k);
      over--;
    }
    for (const k of keys) {
      this.zeros.delete(k);
      let r = this.rings.get(k);
      if (!r) this.rings.set(k, (r = new Ring(this.points)));
      r.push(t, values.get(k)!);
      const held = parts?.get(k);
      r.judge(held ? { heldSince: (x) => held.heldSince(x), parts: 'pools' } : {});
    }
  }
}
