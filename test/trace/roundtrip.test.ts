import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event } from '../../src/model/events.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { readTrace } from '../../src/trace/reader.js';
import { everyKind, meta } from './events-sample.js';

const dir = mkdtempSync(join(tmpdir(), 'lstrace-rt-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function roundTrip(events: Event[], chunkBytes?: number) {
  const path = join(dir, `t${Math.random().toString(36).slice(2)}.lstrace`);
  const w = TraceWriter.create(path, meta, { chunkBytes });
  for (const e of events) w.event(e);
  await w.close();
  const got: Event[] = [];
  const r = await readTrace(path, { event: (e) => got.push(e) });
  return { got, r, w };
}

test('every event kind round-trips identically', async () => {
  const { got, r } = await roundTrip(everyKind);
  assert.deepStrictEqual(got, everyKind);
  assert.deepStrictEqual(r.meta, meta);
  assert.equal(r.events, everyKind.length);
  assert.deepStrictEqual(r.warnings, []);
  assert.equal(r.chunks, 1);
});

test('every event kind round-trips across many tiny chunks (context and time restart per chunk)', async () => {
  const { got, r, w } = await roundTrip(everyKind, 64);
  assert.deepStrictEqual(got, everyKind);
  assert.ok(r.chunks > 5, `chunks ${r.chunks}`);
  assert.equal(r.chunks, w.chunks);
});

test('readTrace reads a whole-file compressed trace (zstd fixture made by the zstd tool, gzip)', async () => {
  const { readFileSync, writeFileSync } = await import('node:fs');
  const { gzipSync } = await import('node:zlib');
  const fixture = new URL('../fixtures/lstrace/', import.meta.url).pathname;
  for (const path of [join(fixture, 'every-kind.lstrace.zst'), join(dir, 'gz.lstrace.gz')]) {
    if (path.endsWith('.gz')) writeFileSync(path, gzipSync(readFileSync(join(fixture, 'every-kind.lstrace'))));
    const got: Event[] = [];
    const r = await readTrace(path, { event: (e) => got.push(e) });
    assert.deepStrictEqual(got, everyKind);
    assert.deepStrictEqual(r.warnings, []);
    assert.equal(r.chunks, 3);
  }
});
