// Damaged traces: cut at any byte, a flipped byte anywhere, garbage, a bad header, unknown records.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import type { Event } from '../../src/model/events.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { readTrace } from '../../src/trace/reader.js';
import { UserError } from '../../src/errors.js';
import { everyKind, meta } from './events-sample.js';

const dir = mkdtempSync(join(tmpdir(), 'lstrace-dmg-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

interface Written {
  bytes: Buffer;
  events: Event[];
  headerEnd: number;
  /** After each chunk: the file size and how many events precede it. */
  chunkEnds: { end: number; events: number }[];
}

/** Writes `events` with small chunks, recording where each chunk ends (from the writer's counters, not the reader). */
async function writeWithBoundaries(events: Event[], chunkBytes: number): Promise<Written> {
  const path = join(dir, `w${Math.random().toString(36).slice(2)}.lstrace`);
  const w = TraceWriter.create(path, meta, { chunkBytes });
  const headerEnd = w.bytes;
  const chunkEnds: Written['chunkEnds'] = [];
  events.forEach((e, i) => {
    const before = w.chunks;
    w.event(e);
    if (w.chunks !== before) chunkEnds.push({ end: w.bytes, events: i + 1 });
  });
  await w.close();
  if (chunkEnds.at(-1)?.end !== w.bytes) chunkEnds.push({ end: w.bytes, events: events.length });
  return { bytes: readFileSync(path), events, headerEnd, chunkEnds };
}

async function readBytes(bytes: Buffer) {
  const path = join(dir, `r${Math.random().toString(36).slice(2)}.lstrace`);
  writeFileSync(path, bytes);
  const got: Event[] = [];
  const warnings: string[] = [];
  const r = await readTrace(path, { event: (e) => got.push(e) }, { onWarning: (m) => warnings.push(m) });
  rmSync(path);
  return { got, r, warnings, path };
}

function manyEvents(n: number): Event[] {
  const out: Event[] = [];
  for (let i = 0; i < n; i++) out.push({ ...everyKind[i % everyKind.length]!, t: everyKind[i % everyKind.length]!.kind === 'frame' || everyKind[i % everyKind.length]!.kind === 'stack' ? 0 : i * 1000 } as Event);
  return out;
}

test('cut at any byte: exactly the events of the complete chunks before the cut, plus a warning', async () => {
  const w = await writeWithBoundaries(manyEvents(400), 300);
  assert.ok(w.chunkEnds.length > 20);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: w.headerEnd, max: w.bytes.length }), async (cut) => {
      const { got, r, warnings } = await readBytes(w.bytes.subarray(0, cut));
      const complete = w.chunkEnds.filter((c) => c.end <= cut);
      const expected = complete.length ? complete.at(-1)!.events : 0;
      assert.deepStrictEqual(got, w.events.slice(0, expected));
      const lastEnd = complete.length ? complete.at(-1)!.end : w.headerEnd;
      if (cut === lastEnd) {
        assert.deepStrictEqual(r.warnings, []);
      } else {
        assert.deepStrictEqual(r.warnings, [
          `${r.warnings[0]!.split(':')[0]}: last chunk truncated at byte ${lastEnd} (writer killed?); ${expected} events before it kept`,
        ]);
        assert.deepStrictEqual(warnings, r.warnings); // also passed to onWarning
      }
    }),
    { numRuns: 250 },
  );
});

test('cut inside the header: a UserError naming the file', async () => {
  const w = await writeWithBoundaries(manyEvents(10), 300);
  for (const cut of [1, 5, 8, 11, 12, w.headerEnd - 1]) {
    const path = join(dir, `hdr${cut}.lstrace`);
    writeFileSync(path, w.bytes.subarray(0, cut));
    await assert.rejects(readTrace(path, { event() {} }), (e: Error) => e instanceof UserError && e.message.startsWith(`${path}: trace header truncated`));
  }
});

test('a flipped byte anywhere in a chunk: that chunk is skipped, the others kept', async () => {
  const w = await writeWithBoundaries(manyEvents(400), 300);
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: w.headerEnd, max: w.bytes.length - 1 }), fc.integer({ min: 1, max: 255 }), async (at, xor) => {
      const bad = Buffer.from(w.bytes);
      bad[at]! ^= xor;
      const k = w.chunkEnds.findIndex((c) => c.end > at);
      const from = k === 0 ? 0 : w.chunkEnds[k - 1]!.events;
      const to = w.chunkEnds[k]!.events;
      const { got, r } = await readBytes(bad);
      assert.deepStrictEqual(got, [...w.events.slice(0, from), ...w.events.slice(to)]);
      assert.equal(r.warnings.length, 1, r.warnings.join('\n'));
      const start = k === 0 ? w.headerEnd : w.chunkEnds[k - 1]!.end;
      if (k === w.chunkEnds.length - 1) assert.match(r.warnings[0]!, new RegExp(`(damaged chunk|damaged data from byte|last chunk truncated at byte) ${start}`));
      else assert.match(r.warnings[0]!, new RegExp(`damaged chunk at byte ${start} \\(.*\\); skipped \\d+ bytes to the next good chunk`));
      assert.equal(r.chunks, w.chunkEnds.length - 1);
    }),
    { numRuns: 250 },
  );
});

test('garbage between chunks is skipped up to the next chunk', async () => {
  const w = await writeWithBoundaries(manyEvents(100), 300);
  const cut = w.chunkEnds[2]!.end;
  const bad = Buffer.concat([w.bytes.subarray(0, cut), Buffer.from('LSCK garbage LSCKLSCK \x00\x01'), w.bytes.subarray(cut)]);
  const { got, r } = await readBytes(bad);
  assert.deepStrictEqual(got, w.events);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, new RegExp(`damaged chunk at byte ${cut} .*skipped 24 bytes`));
});

test('an unknown record type: the events before it in the chunk and all later chunks are kept', async () => {
  const w = await writeWithBoundaries(manyEvents(40), 100);
  const cut = w.chunkEnds[0]!.end;
  // A chunk with a valid CRC: CTX, MARKER "x", then record type 0x7f.
  const payload = Buffer.from([0x01, 0x07, 0x07, 0x40, 0x0a, 0x01, 0x78, 0x7f, 0x00, 0x00]);
  const head = Buffer.alloc(12);
  head.write('LSCK', 0, 'latin1');
  head.writeUInt32LE(payload.length, 4);
  head.writeUInt32LE(crc32(payload), 8);
  const bytes = Buffer.concat([w.bytes.subarray(0, cut), head, payload, w.bytes.subarray(cut)]);
  const { got, r } = await readBytes(bytes);
  const marker: Event = { kind: 'marker', pid: 7, t: 5, label: 'x' };
  assert.deepStrictEqual(got, [...w.events.slice(0, w.chunkEnds[0]!.events), marker, ...w.events.slice(w.chunkEnds[0]!.events)]);
  assert.equal(r.warnings.length, 1);
  assert.match(r.warnings[0]!, new RegExp(`chunk at byte ${cut} is damaged \\(unknown record type 0x7f at payload byte 7\\); 1 events of it kept`));
  assert.equal(r.corruptChunks, 1);
});

test('empty, garbage, bad header CRC and newer-format files are UserErrors naming the file', async () => {
  const cases: [Buffer, RegExp][] = [
    [Buffer.alloc(0), /: empty file$/],
    [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), /: not a leakscope trace \(no LSTRACE1 header\)$/],
    [Buffer.from([0x1f, 0x8b, 8, 0, 0, 0, 0, 0]), /: gzip data cut short or damaged before any byte could be decompressed$/],
    [gzipSync(Buffer.from('plain text, not a trace')), /: not a leakscope trace \(no LSTRACE1 header\)$/],
  ];
  const good = (await writeWithBoundaries(manyEvents(5), 300)).bytes;
  const badCrc = Buffer.from(good);
  badCrc[14]! ^= 0x20;
  cases.push([badCrc, /: bad trace header \(metadata CRC mismatch\)$/]);
  const json = Buffer.from(JSON.stringify({ format: 2, clock: 'ns', source: 'future' }));
  const newer = Buffer.alloc(16 + json.length);
  newer.write('LSTRACE1', 0, 'latin1');
  newer.writeUInt32LE(json.length, 8);
  json.copy(newer, 12);
  newer.writeUInt32LE(crc32(json), 12 + json.length);
  cases.push([newer, /: trace format 2 is newer than this leakscope reads \(1\); upgrade leakscope$/]);
  const huge = Buffer.from(good.subarray(0, 16));
  huge.writeUInt32LE(0xffffffff, 8);
  cases.push([huge, /: bad trace header \(metadata length 4294967295\)$/]);
  for (const [bytes, re] of cases) {
    const path = join(dir, 'bad.lstrace');
    writeFileSync(path, bytes);
    await assert.rejects(readTrace(path, { event() {} }), (e: Error) => e instanceof UserError && e.message.startsWith(`${path}: `) && re.test(e.message));
  }
  await assert.rejects(readTrace(join(dir, 'missing.lstrace'), { event() {} }), (e: Error) => e instanceof UserError && /missing\.lstrace: no such file/.test(e.message));
  await assert.rejects(readTrace(dir, { event() {} }), (e: Error) => e instanceof UserError && /is a directory/.test(e.message));
});

test('chunks appended after a truncated one (symbolize/mark after a killed writer) are still read', async () => {
  const w = await writeWithBoundaries(manyEvents(200), 300);
  const extra: Event[] = [{ kind: 'marker', pid: 0, t: 99, label: 'appended' }, { kind: 'frame', pid: 100, t: 0, id: 1, frame: { pc: 1, module: 'm', fn: 'resolved', file: 'f.c', line: 3, inlined: false } }];
  for (const back of [1, 5, 11, 12, 13, 40]) {
    const cut = w.bytes.length - back;
    const path = join(dir, `append${back}.lstrace`);
    writeFileSync(path, w.bytes.subarray(0, cut));
    const a = TraceWriter.appendTo(path);
    for (const e of extra) a.event(e);
    await a.close();
    const got: Event[] = [];
    const r = await readTrace(path, { event: (e) => got.push(e) });
    const complete = w.chunkEnds.filter((c) => c.end <= cut).at(-1)!;
    assert.deepStrictEqual(got, [...w.events.slice(0, complete.events), ...extra], `cut ${back} bytes before the end`);
    assert.equal(r.warnings.length, 1);
    assert.match(r.warnings[0]!, new RegExp(`damaged chunk at byte ${complete.end} `));
  }
});
