// One pass of the inputs into two sinks (the report's engine and its window grid), so that the
// files are read, decompressed and decoded once. The first sink keeps its fast path (the engine);
// the second gets Event objects, exactly as a plain sink of readInputs always does.

import type { Event, EventSink, FastEventSink } from '../model/events.js';
import { fastSink } from '../model/events.js';

/** A sink that hands every event to `first`, then to `second`. Neither may change the events. */
export function teeSink(first: EventSink, second: EventSink): EventSink {
  const fast = fastSink(first);
  return fast ? new FastTee(fast, second) : { event: (e: Event) => { first.event(e); second.event(e); } };
}

class FastTee implements FastEventSink {
  /** Only when the first sink has it (sources fall back to alloc + free otherwise). */
  readonly transient?: FastEventSink['transient'];
  /** Addresses for the second sink's view of a transient allocation: negative, so no real
   *  block has one (a plain sink is given alloc + free of a fresh address for it). */
  private nextAddr = -1;

  constructor(private readonly a: FastEventSink, private readonly b: EventSink) {
    const transient = a.transient;
    if (transient) {
      this.transient = (pid, tid, t, size, stack) => {
        transient.call(a, pid, tid, t, size, stack);
        const addr = this.nextAddr--;
        b.event({ kind: 'alloc', pid, t, tid, addr, size, stack });
        b.event({ kind: 'free', pid, t, tid, addr });
      };
    }
  }

  event(e: Event): void {
    this.a.event(e);
    this.b.event(e);
  }
  alloc(pid: number, tid: number, t: number, addr: number, size: number, stack: number): void {
    this.a.alloc(pid, tid, t, addr, size, stack);
    this.b.event({ kind: 'alloc', pid, t, tid, addr, size, stack });
  }
  free(pid: number, tid: number, t: number, addr: number): void {
    this.a.free(pid, tid, t, addr);
    this.b.event({ kind: 'free', pid, t, tid, addr });
  }
  realloc(pid: number, tid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void {
    this.a.realloc(pid, tid, t, oldAddr, addr, size, stack);
    this.b.event({ kind: 'realloc', pid, t, tid, oldAddr, addr, size, stack });
  }
  poolAlloc(pid: number, tid: number, t: number, pool: number, size: number, addr: number, stack: number): void {
    this.a.poolAlloc(pid, tid, t, pool, size, addr, stack);
    this.b.event({ kind: 'pool-alloc', pid, t, tid, pool, size, addr, stack });
  }
  poolCreate(pid: number, tid: number, t: number, pool: number, parent: number, poolKind: string, tag: string, stack: number): void {
    this.a.poolCreate(pid, tid, t, pool, parent, poolKind, tag, stack);
    this.b.event({ kind: 'pool-create', pid, t, tid, pool, parent, poolKind, tag, stack });
  }
  poolDestroy(pid: number, t: number, pool: number, stack: number): void {
    this.a.poolDestroy(pid, t, pool, stack);
    this.b.event({ kind: 'pool-destroy', pid, t, pool, stack });
  }
}
