import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { Event } from '../../src/model/events.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { readTrace } from '../../src/trace/reader.js';
import { eventsArb } from './arbitrary-events.js';
import { meta } from './events-sample.js';

const dir = mkdtempSync(join(tmpdir(), 'lstrace-prop-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

test('random event sequences round-trip identically, whatever the chunk size', async () => {
  let i = 0;
  await fc.assert(
    fc.asyncProperty(eventsArb, fc.constantFrom(64, 300, 4096, 1 << 20), async (events, chunkBytes) => {
      const path = join(dir, `p${i++}.lstrace`);
      const w = TraceWriter.create(path, meta, { chunkBytes });
      for (const e of events) w.event(e);
      await w.close();
      const got: Event[] = [];
      const r = await readTrace(path, { event: (e) => got.push(e) });
      assert.deepStrictEqual(got, events);
      assert.deepStrictEqual(r.warnings, []);
      assert.equal(r.chunks, w.chunks);
    }),
    { numRuns: 300 },
  );
});

test('values outside what the format carries are refused, not silently changed', () => {
  const w = TraceWriter.create(join(dir, 'bad.lstrace'), meta);
  assert.throws(() => w.event({ kind: 'free', pid: 1, t: 0, tid: 1, addr: -1 }), /non-negative integer/);
  assert.throws(() => w.event({ kind: 'free', pid: 1, t: 0, tid: 1, addr: 1.5 }), /non-negative integer/);
  assert.throws(() => w.event({ kind: 'free', pid: 1, t: 0.5, tid: 1, addr: 1 }), /integer/);
  assert.throws(() => w.event({ kind: 'rss', pid: 1, t: 0, bytes: 2 ** 60 }), /non-negative integer/);
});

test('a refused event leaves the trace valid: the events around it are kept', async () => {
  const path = join(dir, 'refused.lstrace');
  const w = TraceWriter.create(path, meta);
  const ok1: Event = { kind: 'alloc', pid: 5, t: 10, tid: 6, addr: 100, size: 8, stack: 0 };
  const ok2: Event = { kind: 'free', pid: 5, t: 20, tid: 6, addr: 100 };
  w.event(ok1);
  assert.throws(() => w.event({ kind: 'pool-create', pid: 9, t: 15, tid: 9, pool: 1, parent: -5, poolKind: 'x'.repeat(100_000), tag: 't', stack: 0 }));
  w.event(ok2);
  await w.close();
  const got: Event[] = [];
  const r = await readTrace(path, { event: (e) => got.push(e) });
  assert.deepStrictEqual(got, [ok1, ok2]);
  assert.deepStrictEqual(r.warnings, []);
});
