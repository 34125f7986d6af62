// The reader's fast path (FastEventSink: direct calls, no Event object) must give exactly what
// the object path gives: the same events at the decoder, the same engine state and analysis.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Event, EventSink, FastEventSink, TraceMeta } from '../../src/model/events.js';
import { fastSink } from '../../src/model/events.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { readTrace } from '../../src/trace/reader.js';
import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';
import { eventsArb } from '../trace/arbitrary-events.js';

const dir = mkdtempSync(join(tmpdir(), 'ls-fastpath-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

/** Records fast calls back as the events they stand for. */
class Recorder implements FastEventSink {
  got: Event[] = [];
  event(e: Event): void { this.got.push(e); }
  alloc(pid: number, tid: number, t: number, addr: number, size: number, stack: number): void {
    this.got.push({ kind: 'alloc', pid, t, tid, addr, size, stack });
  }
  free(pid: number, tid: number, t: number, addr: number): void {
    this.got.push({ kind: 'free', pid, t, tid, addr });
  }
  realloc(pid: number, tid: number, t: number, oldAddr: number, addr: number, size: number, stack: number): void {
    this.got.push({ kind: 'realloc', pid, t, tid, oldAddr, addr, size, stack });
  }
  poolAlloc(pid: number, tid: number, t: number, pool: number, size: number, addr: number, stack: number): void {
    this.got.push({ kind: 'pool-alloc', pid, t, tid, pool, size, addr, stack });
  }
  poolCreate(pid: number, tid: number, t: number, pool: number, parent: number, poolKind: string, tag: string, stack: number): void {
    this.got.push({ kind: 'pool-create', pid, t, tid, pool, parent, poolKind, tag, stack });
  }
  poolDestroy(pid: number, t: number, pool: number, stack: number): void {
    this.got.push({ kind: 'pool-destroy', pid, t, pool, stack });
  }
}

// Events that interact: few processes, addresses, pools and stacks, so that frees, reallocs,
// destroys and clears find what they name (and sometimes do not).
const pid = fc.integer({ min: 1, max: 3 });
const addr = fc.integer({ min: 0, max: 24 }).map((k) => k * 16);
const pool = fc.integer({ min: 1, max: 6 }).map((k) => 0x1000 * k);
const stack = fc.integer({ min: 0, max: 8 });
const size = fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.constant(2 ** 33));
const dt = fc.integer({ min: 0, max: 1000 });
const step: fc.Arbitrary<Omit<Event, 't'> & { dt: number }> = fc.oneof(
  fc.record({ kind: fc.constant('alloc' as const), pid, dt, tid: pid, addr, size, stack }),
  fc.record({ kind: fc.constant('free' as const), pid, dt, tid: pid, addr }),
  fc.record({ kind: fc.constant('realloc' as const), pid, dt, tid: pid, oldAddr: addr, addr, size, stack }),
  fc.record({ kind: fc.constant('pool-create' as const), pid, dt, tid: pid, pool, parent: fc.oneof(fc.constant(0), pool), poolKind: fc.constantFrom('nginx', 'apr'), tag: fc.constantFrom('', 'request', 'conn'), stack }),
  fc.record({ kind: fc.constant('pool-destroy' as const), pid, dt, pool, stack }),
  fc.record({ kind: fc.constant('pool-clear' as const), pid, dt, pool, stack }),
  fc.record({ kind: fc.constant('pool-alloc' as const), pid, dt, tid: pid, pool, size, addr, stack }),
  fc.record({ kind: fc.constant('pool-free' as const), pid, dt, pool, addr }),
  fc.record({ kind: fc.constant('pool-tag' as const), pid, dt, pool, tag: fc.constantFrom('request', 'conn') }),
  fc.record({ kind: fc.constant('fork' as const), pid, dt, parentPid: pid }),
  fc.record({ kind: fc.constant('rss' as const), pid, dt, bytes: size }),
) as fc.Arbitrary<Omit<Event, 't'> & { dt: number }>;
const timedEvents = fc.array(step, { maxLength: 400 }).map((steps) => {
  let t = 0;
  return steps.map(({ dt: d, ...rest }) => ({ ...rest, t: (t += d) }) as Event);
});

async function write(events: Event[], meta: TraceMeta, chunkBytes: number): Promise<string> {
  const path = join(dir, `t${Math.random().toString(36).slice(2)}.lstrace`);
  const w = TraceWriter.create(path, meta, { chunkBytes });
  for (const e of events) w.event(e);
  await w.close();
  return path;
}

function analyzed(engine: Engine): unknown {
  return JSON.parse(JSON.stringify(analyze(engine.finish(), { top: 50 })));
}

test('the engine has a fast path, wrappers that only forward event() do not', () => {
  assert.ok(fastSink(new Engine()));
  assert.equal(fastSink({ event() {} } as EventSink), undefined);
});

test('the decoder gives a fast sink exactly the events it gives an object sink', async () => {
  await fc.assert(
    fc.asyncProperty(eventsArb, fc.constantFrom(64, 4096), async (events, chunkBytes) => {
      const path = await write(events, { format: 1, clock: 'ns', source: 'test' }, chunkBytes);
      const plain: Event[] = [];
      await readTrace(path, { event: (e) => plain.push(e) });
      const rec = new Recorder();
      await readTrace(path, rec);
      assert.deepStrictEqual(rec.got, plain);
      rmSync(path);
    }),
    { numRuns: 150 },
  );
});

test('read into the engine: the fast path and the object path give identical state and analysis', async () => {
  await fc.assert(
    fc.asyncProperty(timedEvents, fc.constantFrom<TraceMeta['clock']>('ns', 'seq'), fc.constantFrom(0, 512), async (events, clock, sampleBytes) => {
      const meta: TraceMeta = { format: 1, clock, source: 'test', ...(sampleBytes ? { sampleBytes } : {}) };
      const path = await write(events, meta, 300);
      const fast = new Engine({ meta });
      await readTrace(path, fast);
      const slow = new Engine({ meta });
      await readTrace(path, { event: (e) => slow.event(e) });
      assert.deepStrictEqual(analyzed(fast), analyzed(slow));
      rmSync(path);
    }),
    { numRuns: 150 },
  );
});
