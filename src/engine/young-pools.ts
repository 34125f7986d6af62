// Young pools: pools as rows of a Float64Array instead of PoolState objects, for the commonest
// pool of all — a request's: created without a parent, fed a few allocations without addresses,
// destroyed. A PoolState object, its per-site Map and their garbage cost a quarter of the
// engine's time on a server trace. A young pool holds only what such a life needs (its totals,
// its class, up to SLOTS per-site accounts); anything else (a child, an addressed allocation, a
// free, clear, tag or size event, more sites, enough allocations to earn a series, the end of
// the fold) turns it into a PoolState (Engine.promote) with exactly the state it would have had.
// Rows are found by address through a LiveTable (its site field holds the row).

import { LiveTable } from './live-table.js';
import type { PoolClassState } from './state.js';

/** Per-site accounts a young pool holds; a pool fed from more sites is promoted. */
export const SLOTS = 4;
// Fields of a row.
export const BYTES = 0, COUNT = 1, ALLOCS = 2, CREATE_T = 3, CREATE_STACK = 4, SEQ = 5, NACC = 6;
/** Accounts from ACC on: site, bytes, count, first and last allocation time. */
export const ACC = 7;
export const ACC_W = 5;
export const ROW = ACC + SLOTS * ACC_W;

export class YoungPools {
  readonly byAddr = new LiveTable();
  /** Empty until the first young pool (a process may never create one), then doubles. */
  rows = new Float64Array(0);
  /** Class of each row (its kind and tag are the class's: see Engine.promote). */
  readonly cls: (PoolClassState | undefined)[] = [];
  private readonly freeRows: number[] = [];
  private used = 0;

  get count(): number {
    return this.byAddr.count;
  }

  /** Row of a young pool, or -1. */
  find(addr: number): number {
    const i = this.byAddr.find(addr);
    return i < 0 ? -1 : this.byAddr.siteAt(i);
  }

  /** A new row for a pool known not to be young already. */
  add(addr: number, cls: PoolClassState, createT: number, createStack: number, seq: number): number {
    let row = this.freeRows.pop();
    if (row === undefined) {
      row = this.used++;
      if (this.used * ROW > this.rows.length) {
        const bigger = new Float64Array(Math.max(4 * ROW, this.rows.length * 2));
        bigger.set(this.rows);
        this.rows = bigger;
      }
    }
    const r = this.rows;
    const o = row * ROW;
    r[o + BYTES] = 0;
    r[o + COUNT] = 0;
    r[o + ALLOCS] = 0;
    r[o + CREATE_T] = createT;
    r[o + CREATE_STACK] = createStack;
    r[o + SEQ] = seq;
    r[o + NACC] = 0;
    this.cls[row] = cls;
    this.byAddr.reserve();
    this.byAddr.insertAt(~this.byAddr.probe(addr), addr, 0, row, 0);
    return row;
  }

  /** Forgets a young pool (destroyed or promoted). */
  remove(addr: number, row: number): void {
    const i = this.byAddr.find(addr);
    if (i >= 0) this.byAddr.removeAt(i);
    this.cls[row] = undefined;
    this.freeRows.push(row);
  }

  /** Addresses and rows of every young pool. */
  entries(): { addr: number; row: number }[] {
    const out: { addr: number; row: number }[] = [];
    const t = this.byAddr;
    t.forEach((i) => out.push({ addr: t.addrAt(i), row: t.siteAt(i) }));
    return out;
  }
}
