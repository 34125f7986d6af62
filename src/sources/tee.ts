// One pass of the inputs into two sinks (the report's engine and its window grid), so that the
// files are read, decompressed and decoded once. When both have the fast path (the engine and
// the grid do), the tee has it too; else both get Event objects.

import type { Event, EventSink, FastEventSink } from '../model/events.js';
import { fastSink } from '../model/events.js';

/** A sink that hands every event to `first`, then to `second`. Neither may change the events. */
export function teeSink(first: EventSink, second: EventSink): EventSink {
  const a = fastSink(first);
  const b = fastSink(second);
  if (!a || !b) return { event: (e: Event) => { first.event(e); second.event(e); } };
  return new FastTee(a, b);
}

class FastTee implements FastEventSink {
  /** Only when the first sink has it: a source falls back to alloc + free otherwise. */
  readonly transient?: FastEventSink['transient'];

  constructor(private readonly a: FastEventSink, private readonly b: FastEventSink) {
    const ta = a.transient;
    if (ta) {
      const tb = b.transient ?? transientAsAllocFree(b);
      this.transient = (pid, tid, t, size, stack, count = 1) => {
        ta.call(a, pid, tid, t, size, stack, count);
        tb.call(b, pid, tid, t, size, stack, count);
      };
    }
  }

  event(e: Event): void {
    this.a.event(e);
    this.b.event(e);
  }
  alloc(pid: number, tid: number, t: number, addr: number, size: number, stack: number): void {
    this.a.alloc(pid, tid, t, addr, size, stack);
    this.b.alloc(pid, tid, t, addr, size, stack);
  }
  free(pid: number, tid: number, t: number, addr: number): void {
    this.a.free(pid, tid, t, addr);
    this.b.free(pid, tid, t, addr);
  }
  realloc(pid: number, tid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void {
    this.a.realloc(pid, tid, t, oldAddr, addr, size, stack);
    this.b.realloc(pid, tid, t, oldAddr, addr, size, stack);
  }
  poolAlloc(pid: number, tid: number, t: number, pool: number, size: number, addr: number, stack: number): void {
    this.a.poolAlloc(pid, tid, t, pool, size, addr, stack);
    this.b.poolAlloc(pid, tid, t, pool, size, addr, stack);
  }
  poolCreate(pid: number, tid: number, t: number, pool: number, parent: number, poolKind: string, tag: string, stack: number): void {
    this.a.poolCreate(pid, tid, t, pool, parent, poolKind, tag, stack);
    this.b.poolCreate(pid, tid, t, pool, parent, poolKind, tag, stack);
  }
  poolDestroy(pid: number, t: number, pool: number, stack: number): void {
    this.a.poolDestroy(pid, t, pool, stack);
    this.b.poolDestroy(pid, t, pool, stack);
  }
}

/** A transient allocation for a sink without the call: alloc + free of an address no real
 *  block has (negative ones), as a source does for such a sink. */
function transientAsAllocFree(b: FastEventSink): NonNullable<FastEventSink['transient']> {
  let next = -1;
  return (pid, tid, t, size, stack, count = 1) => {
    for (let i = 0; i < count; i++) {
      const addr = next--;
      b.alloc(pid, tid, t, addr, size, stack);
      b.free(pid, tid, t, addr);
    }
  };
}
