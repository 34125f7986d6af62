// Follow mode: reading a trace while a writer appends to it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import type { Event } from '../../src/model/events.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { readTrace } from '../../src/trace/reader.js';
import { everyKind, meta } from './events-sample.js';

const dir = mkdtempSync(join(tmpdir(), 'lstrace-follow-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function traceBytes(events: Event[], chunkBytes: number): Promise<Buffer> {
  const p = join(dir, `src${Math.random().toString(36).slice(2)}.lstrace`);
  const w = TraceWriter.create(p, meta, { chunkBytes });
  for (const e of events) w.event(e);
  await w.close();
  return readFileSync(p);
}

test('follow: bytes appended in odd pieces (mid-header, mid-chunk) are all read, with no warning', async () => {
  const events = [...everyKind, ...everyKind, ...everyKind];
  const bytes = await traceBytes(events, 120);
  const path = join(dir, 'pieces.lstrace');
  let writerDone = false;
  const got: Event[] = [];
  let seenWhileWriting = 0;
  let readTo = 0;
  const reading = readTrace(path, { event: (e) => got.push(e) }, { follow: true, pollMs: 10, until: () => writerDone, onProgress: (b) => (readTo = b) });
  // The file does not exist yet when the reader starts.
  await sleep(30);
  const cuts = [5, 30, 31, 200, 333, 700, 701, 1200, bytes.length];
  let prev = 0;
  for (const c of cuts) {
    const piece = bytes.subarray(prev, Math.min(c, bytes.length));
    if (prev === 0) writeFileSync(path, piece);
    else appendFileSync(path, piece);
    prev = c;
    // the reader has taken every byte written so far (readiness, not a guess at its speed)
    const upTo = Math.min(c, bytes.length);
    while (readTo < upTo) await sleep(5);
    if (c < bytes.length) seenWhileWriting = got.length;
  }
  writerDone = true;
  const r = await reading;
  assert.deepStrictEqual(got, events);
  assert.deepStrictEqual(r.warnings, []);
  assert.ok(seenWhileWriting > 0 && seenWhileWriting < events.length, `events seen while writing: ${seenWhileWriting}`);
});

test('follow: another process writing the trace, read live until it exits', async () => {
  const path = join(dir, 'live.lstrace');
  const script = join(dir, 'writer.mts');
  const writerUrl = new URL('../../src/trace/writer.ts', import.meta.url).href;
  // After each round the writer waits for a line on stdin: the test sends it once the reader
  // has seen that round, so "read while the writer runs" is shown, not hoped for.
  writeFileSync(script, `
    import { createInterface } from 'node:readline';
    import { TraceWriter } from ${JSON.stringify(writerUrl)};
    const lines = createInterface({ input: process.stdin })[Symbol.asyncIterator]();
    const w = TraceWriter.create(${JSON.stringify(path)}, { format: 1, clock: 'ns', source: 'child' });
    for (let round = 0; round < 20; round++) {
      for (let i = 0; i < 500; i++) w.event({ kind: 'alloc', pid: process.pid, t: round * 1e6 + i, tid: process.pid, addr: 4096 + i * 16, size: 16, stack: 0 });
      w.flush();
      await lines.next();
    }
    await w.close();
    process.exit(0);
  `);
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['pipe', 'inherit', 'inherit'] });
  let exited = false;
  const exit = new Promise<number | null>((resolve) => child.on('exit', (code) => { exited = true; resolve(code); }));
  let n = 0;
  let maxT = -1;
  let ordered = true;
  const reading = readTrace(path, { event: (e) => { n++; if (e.t < maxT) ordered = false; maxT = e.t; } }, { follow: true, pollMs: 20, until: () => exited });
  const seenWhileRunning: number[] = [];
  for (let round = 0; round < 20; round++) {
    while (n < (round + 1) * 500) {
      assert.ok(!exited, `the writer exited with ${n} events read`);
      await sleep(10);
    }
    seenWhileRunning.push(n);
    child.stdin!.write('next\n');
  }
  assert.equal(await exit, 0);
  const r = await reading;
  assert.equal(r.events, 20 * 500);
  assert.equal(n, 20 * 500);
  assert.ok(ordered);
  assert.deepStrictEqual(r.warnings, []);
  assert.equal(r.meta.source, 'child');
  // every round was read while the writer was still waiting to write the next one
  assert.deepStrictEqual(seenWhileRunning, Array.from({ length: 20 }, (_, i) => (i + 1) * 500));
});

test('follow: aborting with a partial chunk at the end reports it as truncated', async () => {
  const events = [...everyKind, ...everyKind];
  const bytes = await traceBytes(events, 150);
  const path = join(dir, 'abort.lstrace');
  writeFileSync(path, bytes.subarray(0, bytes.length - 10));
  const ac = new AbortController();
  const got: Event[] = [];
  let readTo = 0;
  const reading = readTrace(path, { event: (e) => got.push(e) }, { follow: true, pollMs: 10, signal: ac.signal, onProgress: (b) => (readTo = b) });
  // abort once the reader has taken the whole file (it then waits for more)
  while (readTo < bytes.length - 10) await sleep(5);
  ac.abort();
  const r = await reading;
  assert.ok(got.length > 0 && got.length < events.length);
  assert.deepStrictEqual(got, events.slice(0, got.length));
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, new RegExp(`last chunk truncated at byte \\d+ \\(writer killed\\?\\); ${got.length} events before it kept`));
});
