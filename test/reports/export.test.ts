// Exports, decoded with independent readers: pprof-format's decoder for pprof, speedscope's own
// file-format JSON schema (shipped in its package, checked with Ajv) plus what a schema cannot say
// (frame indices in range, weights summing to the profile's span), and the collapsed-stack grammar. Numbers are checked
// against the known workload (test/reports/scenario.ts).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { createRequire } from 'node:module';
import { Ajv } from 'ajv';
import { TraceWriter } from '../../src/trace/writer.js';
import { scenario } from './scenario.js';
import { cliSync } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'leakscope-export-'));
const trace = join(dir, 'scenario.lstrace');
const s = scenario({ steps: 100 });
// Per leaf function: [allocated count, allocated bytes, outstanding count, outstanding bytes].
const expected: Record<string, number[]> = {
  leaky_alloc: [100, 100_000, 100, 100_000],
  temp_buf: [100, 50_000, 0, 0],
  make_request: [100, 20_000, 0, 0],
  remember: [100, 30_000, 100, 30_000],
};

before(async () => {
  const w = TraceWriter.create(trace, s.meta);
  for (const e of s.events) w.event(e);
  await w.close();
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('pprof: a gzip\'d heap profile that pprof-format decodes, with the workload\'s numbers', () => {
  const out = join(dir, 'heap.pb.gz');
  const r = cliSync(['export', trace, '--to', 'pprof', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const raw = readFileSync(out);
  assert.equal(raw[0], 0x1f);
  assert.equal(raw[1], 0x8b);
  const p = Profile.decode(gunzipSync(raw));
  const str = (i: number | bigint) => p.stringTable.strings[Number(i)]!;
  assert.equal(p.stringTable.strings[0], '');
  assert.deepEqual(p.sampleType.map((t) => `${str(t.type)}/${str(t.unit)}`), ['alloc_objects/count', 'alloc_space/bytes', 'inuse_objects/count', 'inuse_space/bytes']);
  assert.equal(`${str(p.periodType!.type)}/${str(p.periodType!.unit)}`, 'space/bytes');
  assert.equal(str(p.defaultSampleType), 'inuse_space');
  const locs = new Map(p.location.map((l) => [Number(l.id), l]));
  const fns = new Map(p.function.map((f) => [Number(f.id), f]));
  const nameOf = (locId: number | bigint) => str(fns.get(Number(locs.get(Number(locId))!.line[0]!.functionId))!.name);
  const got: Record<string, number[]> = {};
  for (const smp of p.sample) {
    const names = smp.locationId.map(nameOf);
    got[names[0]!] = smp.value.map(Number);
    // Leaf first: the outermost caller is last.
    assert.equal(names[names.length - 1], 'main');
    assert.equal(str(smp.label[0]!.key), 'pid');
    assert.equal(Number(smp.label[0]!.num), s.pid);
  }
  assert.deepEqual(got, expected);
  const leak = p.sample.find((x) => nameOf(x.locationId[0]!) === 'leaky_alloc')!;
  assert.deepEqual(leak.locationId.map(nameOf), ['leaky_alloc', 'handle_request', 'main']);
  const leafLoc = locs.get(Number(leak.locationId[0]))!;
  assert.equal(Number(leafLoc.line[0]!.line), 7);
  assert.equal(str(fns.get(Number(leafLoc.line[0]!.functionId))!.filename), 'leaky.c');
});

const speedscopeSchema = JSON.parse(readFileSync(createRequire(import.meta.url).resolve('speedscope/dist/release/file-format-schema.json'), 'utf8'));
const validSpeedscope = new Ajv({ allErrors: true, strict: false }).compile<any>(speedscopeSchema);

/** speedscope's file format: its own schema, then what the schema cannot express. */
function checkSpeedscope(f: any): void {
  assert.ok(validSpeedscope(f), JSON.stringify(validSpeedscope.errors));
  assert.equal(f.$schema, 'https://www.speedscope.app/file-format-schema.json');
  assert.ok(Array.isArray(f.shared.frames));
  for (const fr of f.shared.frames) {
    assert.equal(typeof fr.name, 'string');
    if ('file' in fr) assert.equal(typeof fr.file, 'string');
    if ('line' in fr) assert.equal(typeof fr.line, 'number');
  }
  assert.ok(Array.isArray(f.profiles) && f.profiles.length > 0);
  for (const p of f.profiles) {
    assert.equal(p.type, 'sampled');
    assert.equal(typeof p.name, 'string');
    assert.ok(['none', 'nanoseconds', 'microseconds', 'milliseconds', 'seconds', 'bytes'].includes(p.unit));
    assert.equal(typeof p.startValue, 'number');
    assert.equal(typeof p.endValue, 'number');
    assert.equal(p.samples.length, p.weights.length);
    for (const st of p.samples) for (const i of st) assert.ok(Number.isInteger(i) && i >= 0 && i < f.shared.frames.length);
    assert.equal(p.endValue - p.startValue, p.weights.reduce((a: number, b: number) => a + b, 0));
  }
  if ('activeProfileIndex' in f) assert.ok(f.activeProfileIndex < f.profiles.length);
}

test('speedscope: valid under speedscope\'s own schema, stacks outermost first, weights in bytes', () => {
  const out = join(dir, 'heap.speedscope.json');
  const r = cliSync(['export', trace, '--to', 'speedscope', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const f = JSON.parse(readFileSync(out, 'utf8'));
  checkSpeedscope(f);
  const [inuse, alloc] = f.profiles;
  assert.equal(inuse.name, `pid ${s.pid}: outstanding bytes`);
  assert.equal(inuse.unit, 'bytes');
  const byLeaf = (p: any) => Object.fromEntries(p.samples.map((st: number[], i: number) => [f.shared.frames[st[st.length - 1]].name, p.weights[i]]));
  assert.deepEqual(byLeaf(inuse), { leaky_alloc: 100_000, remember: 30_000 });
  assert.deepEqual(byLeaf(alloc), { leaky_alloc: 100_000, temp_buf: 50_000, make_request: 20_000, remember: 30_000 });
  const leak = inuse.samples.find((st: number[]) => f.shared.frames[st[st.length - 1]].name === 'leaky_alloc');
  assert.deepEqual(leak.map((i: number) => f.shared.frames[i].name), ['main', 'handle_request', 'leaky_alloc']);
  assert.deepEqual(f.shared.frames[leak[2]], { name: 'leaky_alloc', file: 'leaky.c', line: 7 });
});

test('collapsed: root;...;leaf BYTES lines, outstanding by default, allocated on request', () => {
  const out = join(dir, 'heap.folded');
  assert.equal(cliSync(['export', trace, '--to', 'collapsed', '-o', out]).code, 0);
  const lines = readFileSync(out, 'utf8').trimEnd().split('\n').sort();
  assert.deepEqual(lines, ['main;handle_request;leaky_alloc 100000', 'main;remember 30000']);
  assert.equal(cliSync(['export', trace, '--to', 'collapsed', '--value', 'alloc', '-o', out]).code, 0);
  const all = readFileSync(out, 'utf8').trimEnd().split('\n');
  for (const l of all) assert.match(l, /^[^ ;][^;\n]*(;[^;\n]+)* \d+$/);
  assert.equal(all.reduce((a, l) => a + Number(l.split(' ').pop()), 0), 200_000);
});

test('export: bad format, missing file and garbage are one-line errors', () => {
  const bad = cliSync(['export', trace, '--to', 'svg', '-o', join(dir, 'x')]);
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /^leakscope: --to wants one of pprof, speedscope, collapsed, got "svg"\n$/);
  const missing = cliSync(['export', join(dir, 'nope.lstrace'), '--to', 'pprof', '-o', join(dir, 'x')]);
  assert.notEqual(missing.code, 0);
  assert.equal(missing.stderr.trim().split('\n').length, 1, missing.stderr);
  assert.doesNotMatch(missing.stderr, /at .*\.ts:\d+/);
});

test('pprof of the real nginx debug log agrees with the analysis on outstanding bytes per process', async () => {
  const { analyzeFiles } = await import('../../src/pipeline/analyze-files.js');
  const fixture = new URL('../fixtures/nginx-debug.1worker.log.gz', import.meta.url).pathname;
  const out = join(dir, 'nginx.pb.gz');
  const r = cliSync(['export', fixture, '--to', 'pprof', '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const p = Profile.decode(gunzipSync(readFileSync(out)));
  const inuse = new Map<number, number>();
  const objects = new Map<number, number>();
  for (const smp of p.sample) {
    const pid = Number(smp.label[0]!.num);
    inuse.set(pid, (inuse.get(pid) ?? 0) + Number(smp.value[3]));
    objects.set(pid, (objects.get(pid) ?? 0) + Number(smp.value[2]));
  }
  const result = await analyzeFiles([fixture]);
  let leaked = 0;
  for (const proc of result.processes) {
    const o = proc.outstanding;
    assert.equal(inuse.get(proc.pid) ?? 0, o.heapBytes + o.poolBytes, `pid ${proc.pid} bytes`);
    assert.equal(objects.get(proc.pid) ?? 0, o.heapCount + o.poolCount, `pid ${proc.pid} blocks`);
    leaked += o.heapBytes + o.poolBytes;
  }
  assert.ok(leaked >= 30 * 4096, 'the fixture leaks 30 pool blocks of 4096 bytes');
});
