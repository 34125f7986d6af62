import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import type { Event } from '../../src/model/events.js';
import { readInputs } from '../../src/sources/open.js';
import { UserError } from '../../src/errors.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { everyKind, meta } from '../trace/events-sample.js';

const fixtures = new URL('../fixtures/lstrace/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'lstrace-open-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));

async function collect(paths: string[], opts = {}) {
  const got: Event[] = [];
  const r = await readInputs(paths, { event: (e) => got.push(e) }, opts);
  return { got, ...r };
}

async function writeTrace(name: string, events: Event[], m = meta, chunkBytes?: number): Promise<string> {
  const p = join(dir, name);
  const w = TraceWriter.create(p, m, { chunkBytes });
  for (const e of events) w.event(e);
  await w.close();
  return p;
}

function allocs(n: number, pid = 7): Event[] {
  const out: Event[] = [];
  for (let i = 0; i < n; i++) out.push({ kind: 'alloc', pid, t: 1000 + i * 17, tid: pid, addr: 0x10000 + i * 64, size: 1 + (i % 500), stack: i % 13 });
  return out;
}

test('a plain trace is detected and read', async () => {
  const { got, meta: m, stats } = await collect([join(fixtures, 'every-kind.lstrace')]);
  assert.deepStrictEqual(got, everyKind);
  assert.deepStrictEqual(m, meta);
  assert.equal(stats.length, 1);
  assert.equal(stats[0]!.source, 'lstrace');
  assert.equal(stats[0]!.compression, 'none');
  assert.equal(stats[0]!.events, everyKind.length);
  assert.deepStrictEqual(stats[0]!.warnings, []);
});

test('zstd (made by the zstd tool) is detected by magic bytes, not by name', async () => {
  const p = join(dir, 'renamed.bin');
  copyFileSync(join(fixtures, 'every-kind.lstrace.zst'), p);
  const { got, stats } = await collect([p]);
  assert.deepStrictEqual(got, everyKind);
  assert.equal(stats[0]!.compression, 'zstd');
});

test('gzip is detected by magic bytes, not by name', async () => {
  const p = join(dir, 'trace.txt');
  writeFileSync(p, gzipSync(readFileSync(join(fixtures, 'every-kind.lstrace'))));
  const { got, stats } = await collect([p]);
  assert.deepStrictEqual(got, everyKind);
  assert.equal(stats[0]!.compression, 'gzip');
});

test('a large zstd stream of many frames/blocks decodes, and a cut one keeps its prefix with a warning', async () => {
  const events = allocs(200_000);
  const p = await writeTrace('big.lstrace', events, meta, 64 * 1024);
  execFileSync('zstd', ['-q', '-f', '-3', p, '-o', `${p}.zst`]);
  const full = await collect([`${p}.zst`]);
  assert.equal(full.got.length, events.length);
  assert.deepStrictEqual(full.got[123456], events[123456]);
  assert.deepStrictEqual(full.stats[0]!.warnings, []);

  const zst = readFileSync(`${p}.zst`);
  const cut = join(dir, 'cut.zst');
  writeFileSync(cut, zst.subarray(0, Math.floor(zst.length * 0.6)));
  const part = await collect([cut]);
  assert.ok(part.got.length > 0 && part.got.length < events.length, `got ${part.got.length}`);
  assert.deepStrictEqual(part.got, events.slice(0, part.got.length));
  const w = part.stats[0]!.warnings.join('\n');
  assert.match(w, /zstd data cut short|zstd data damaged/);
  assert.match(w, /last chunk truncated at byte \d+/);
});

test('a cut gzip file keeps what decompressed, with a warning', async () => {
  const events = allocs(100_000);
  const p = await writeTrace('big2.lstrace', events, meta, 64 * 1024);
  const gz = gzipSync(readFileSync(p));
  const cut = join(dir, 'cut.gz');
  writeFileSync(cut, gz.subarray(0, Math.floor(gz.length / 2)));
  const part = await collect([cut]);
  assert.ok(part.got.length > 0 && part.got.length < events.length);
  assert.deepStrictEqual(part.got, events.slice(0, part.got.length));
  assert.match(part.stats[0]!.warnings.join('\n'), /gzip data cut short/);
});

test('several files go to one sink in order; ns times are placed by wall clock', async () => {
  const a = await writeTrace('a.lstrace', allocs(3, 1), { ...meta, startWallMs: 1_000_000 });
  const b = await writeTrace('b.lstrace', allocs(2, 2), { ...meta, startWallMs: 1_000_005 });
  const { got, meta: m, stats } = await collect([a, b]);
  assert.deepStrictEqual(got.map((e) => e.pid), [1, 1, 1, 2, 2]);
  assert.equal(got[3]!.t, 1000 + 5_000_000);
  assert.equal(m.startWallMs, 1_000_000);
  assert.deepStrictEqual(stats.map((s) => s.events), [3, 2]);
});

test('seq clocks: a later file continues after the earlier one', async () => {
  const s = { format: 1, clock: 'seq' as const, source: 'test' };
  const a = await writeTrace('s1.lstrace', allocs(3, 1), s);
  const b = await writeTrace('s2.lstrace', allocs(2, 2), s);
  const { got } = await collect([a, b]);
  const ts = got.map((e) => e.t);
  assert.deepStrictEqual(ts, [1000, 1017, 1034, 1000 + 1035, 1017 + 1035]);
});

test('files with different clocks are refused', async () => {
  const a = await writeTrace('c1.lstrace', allocs(1), meta);
  const b = await writeTrace('c2.lstrace', allocs(1), { format: 1, clock: 'seq', source: 'x' });
  await assert.rejects(collect([a, b]), (e: Error) => e instanceof UserError && /c2\.lstrace: its times are event sequence numbers but .*c1\.lstrace's are nanoseconds/.test(e.message));
});

test('unknown, empty, missing, directory and --from errors are one-line UserErrors', async () => {
  const garbage = join(dir, 'garbage.bin');
  writeFileSync(garbage, Buffer.from('hello, this is not a trace\n'.repeat(10)));
  await assert.rejects(collect([garbage]), (e: Error) => e instanceof UserError && e.message === `${garbage}: unknown format (expected a leakscope trace, APR pool-debug log, nginx debug log, Valgrind XML or heaptrack trace); use --from NAME to force`);
  const empty = join(dir, 'empty.lstrace');
  writeFileSync(empty, '');
  await assert.rejects(collect([empty]), (e: Error) => e instanceof UserError && e.message === `${empty}: empty file; nothing to analyze (check the path, or that the server has written its log yet)`);
  const emptyGz = join(dir, 'empty.gz');
  writeFileSync(emptyGz, gzipSync(Buffer.alloc(0)));
  await assert.rejects(collect([emptyGz]), (e: Error) => e instanceof UserError && /empty file \(after gzip/.test(e.message));
  const cutZst = join(dir, 'cut-early.zst');
  writeFileSync(cutZst, readFileSync(join(fixtures, 'every-kind.lstrace.zst')).subarray(0, 300));
  await assert.rejects(collect([cutZst]), (e: Error) => e instanceof UserError && /cut-early\.zst: zstd data cut short or damaged before any byte/.test(e.message));
  await assert.rejects(collect([join(dir, 'nope')]), (e: Error) => e instanceof UserError && /nope: no such file/.test(e.message));
  const sub = join(dir, 'adir');
  mkdirSync(sub);
  await assert.rejects(collect([sub]), (e: Error) => e instanceof UserError && /adir: is a directory/.test(e.message));
  await assert.rejects(collect([garbage], { from: 'nosuch' }), (e: Error) => e instanceof UserError && /unknown input format "nosuch" for --from \(known: lstrace/.test(e.message));
  await assert.rejects(collect([garbage], { from: 'lstrace' }), (e: Error) => e instanceof UserError && /not a leakscope trace/.test(e.message));
});
