// `leakscope import` and `leakscope info`, end to end through the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { constants as osConstants, tmpdir } from 'node:os';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import type { Event } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { readInputs } from '../../src/sources/open.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { everyKind, meta } from './events-sample.js';
import { cliSync as cli, exited, spawnCli } from '../support/cli.js';

const root = new URL('../../', import.meta.url).pathname;
const fixtures = join(root, 'test/fixtures');
const dir = mkdtempSync(join(tmpdir(), 'lstrace-cli-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));


async function events(path: string) {
  const got: Event[] = [];
  const r = await readTrace(path, { event: (e) => got.push(e) });
  return { got, ...r };
}

function bigTrace(path: string): Event[] {
  const evs: Event[] = [...everyKind];
  for (let i = 0; i < 150_000; i++) evs.push({ kind: 'alloc', pid: 100, t: 10_000 + i, tid: 100 + (i % 3), addr: 0x1000 + i * 32, size: 32, stack: 2 });
  const w = TraceWriter.create(path, meta);
  for (const e of evs) w.event(e);
  void w.close();
  return evs;
}

test('import: a trace imports to an identical trace (byte for byte with default chunks)', async () => {
  const src = join(dir, 'src.lstrace');
  const evs = bigTrace(src);
  const out = join(dir, 'out.lstrace');
  const r = cli(['import', src, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '');
  assert.equal(r.stderr, `leakscope: imported ${evs.length.toLocaleString('en')} events from 1 file into ${out} (${readFileSync(out).length.toLocaleString('en')} bytes); 0 bad records, 0 warnings\n`);
  assert.ok(readFileSync(out).equals(readFileSync(src)));
  const back = await events(out);
  assert.deepStrictEqual(back.got, evs);
  assert.deepStrictEqual(back.meta, meta);
  assert.deepStrictEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('import: compressed traces and stdout output', async () => {
  const r = cli(['import', join(fixtures, 'lstrace/every-kind.lstrace.zst'), '-o', '-']);
  assert.equal(r.code, 0, r.stderr);
  const p = join(dir, 'from-stdout.lstrace');
  writeFileSync(p, r.stdoutBytes);
  const back = await events(p);
  assert.deepStrictEqual(back.got, everyKind);
  assert.match(r.stderr, new RegExp(`imported ${everyKind.length} events from 1 file into stdout`));
});

for (const [name, clock] of [['apr-pool-debug.httpd-1child.log.gz', 'seq'], ['nginx-debug.1worker.log.gz', 'ns']] as const) test(`import: ${name} becomes a trace holding exactly the events its source produces`, async () => {
  const log = join(fixtures, name);
  const direct: Event[] = [];
  const { meta: logMeta, stats } = await readInputs([log], { event: (e) => direct.push(e) });
  assert.ok(direct.length > 500);
  const out = join(dir, `${name}.lstrace`);
  const r = cli(['import', log, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const back = await events(out);
  assert.deepStrictEqual(back.got, direct);
  assert.deepStrictEqual(back.meta, logMeta);
  assert.equal(back.meta.clock, clock);
  const warnings = stats[0]!.warnings.length;
  assert.match(r.stderr, new RegExp(`imported ${direct.length.toLocaleString('en')} events from 1 file into .*; ${stats[0]!.badRecords} bad records, ${warnings} warning`));
});

test('import: bad inputs fail with one line, exit 2, and leave no output behind', () => {
  const garbage = join(dir, 'garbage.txt');
  writeFileSync(garbage, 'just some text\n');
  const out = join(dir, 'never.lstrace');
  let r = cli(['import', garbage, '-o', out]);
  assert.equal(r.code, 2);
  assert.equal(r.stderr, `leakscope: ${garbage}: unknown format (expected a leakscope trace, APR pool-debug log, nginx debug log, Valgrind XML or heaptrack trace); use --from NAME to force\n`);
  assert.ok(!existsSync(out));
  r = cli(['import', garbage, '-o', out, '--from', 'nope']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^leakscope: unknown input format "nope" for --from \(known: lstrace, [^\n]*\)\n$/);
  const src = join(dir, 'same.lstrace');
  bigTrace(src);
  r = cli(['import', src, '-o', src]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /is also an input/);
  r = cli(['import', src, '-o', join(dir, 'no/such/dir/x.lstrace')]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^leakscope: .*x\.lstrace: cannot write \(no such directory\); nothing was written, choose another output file\n$/);
  assert.deepStrictEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('info: JSON counts, processes, span, chunks; a truncated trace shows its warning', async () => {
  const p = join(dir, 'info.lstrace');
  const w = TraceWriter.create(p, meta, { chunkBytes: 200 });
  for (const e of everyKind) w.event(e);
  await w.close();
  const bytes = readFileSync(p);
  writeFileSync(p, bytes.subarray(0, bytes.length - 3));
  const r = cli(['info', p, '--format', 'json']);
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout).files[0];
  const kept = (await events(p)).events;
  assert.equal(info.events, kept);
  assert.ok(kept < everyKind.length && kept > 0);
  const expectKinds: Record<string, number> = {};
  for (const e of everyKind.slice(0, kept)) expectKinds[e.kind] = (expectKinds[e.kind] ?? 0) + 1;
  assert.deepStrictEqual(info.byKind, expectKinds);
  assert.equal(info.chunks, w.chunks - 1);
  assert.deepStrictEqual(info.meta, meta);
  assert.equal(info.source, 'lstrace');
  assert.equal(info.processes[0].pid, 100);
  assert.equal(info.processes[0].command, 'nginx: master process');
  assert.equal(info.warnings.length, 1);
  assert.match(info.warnings[0], /last chunk truncated at byte \d+ \(writer killed\?\)/);

  const full = join(dir, 'full.lstrace');
  writeFileSync(full, bytes);
  const t = cli(['info', full]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, new RegExp(`^${full}: leakscope trace, format 1, ${bytes.length} B, ${w.chunks} chunks\n`));
  assert.match(t.stdout, new RegExp(`\\n {2}events: {4}${everyKind.length}\\n`));
  assert.match(t.stdout, /\n +100 \(parent 1\) {2}nginx: master process {2}— 11 events {2}\[exit 0\]\n/);
  assert.match(t.stdout, new RegExp(`\\n +101 \\(parent 100\\) {2}sh -c true {2}— ${everyKind.filter((e) => e.pid === 101).length} events {2}\\[exit -9\\]\\n`));
  assert.match(t.stdout, /time span: 0\.000 s \.\. 1125899\.907 s/);
  assert.match(t.stdout, /warnings: {2}none\n$/);

  const piped = cli(['info', '-', '--format', 'json'], { input: readFileSync(join(fixtures, 'lstrace/every-kind.lstrace.zst')) });
  assert.equal(piped.code, 0, piped.stderr);
  const pj = JSON.parse(piped.stdout).files[0];
  assert.equal(pj.path, '-');
  assert.equal(pj.compression, 'zstd');
  assert.equal(pj.events, everyKind.length);

  const bad = cli(['info', join(dir, 'nothing-here')]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^leakscope: .*nothing-here: no such file\n$/);
});

test('import: interrupted while writing, it leaves the previous file and no half or temporary file', async () => {
  // A big input (the APR log eight times over, 36 MB of text): seconds of writing to interrupt.
  const text = gunzipSync(readFileSync(join(fixtures, 'apr-pool-debug.httpd-1child.log.gz')));
  const big = join(dir, 'interrupted.log');
  writeFileSync(big, Buffer.concat(Array.from({ length: 8 }, () => text)));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const out = join(dir, `interrupted-${signal}.lstrace`);
    writeFileSync(out, 'the previous trace\n');
    const child = spawnCli(['import', big, '-o', out]);
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    // Interrupt once the temporary file beside the output (.NAME.PID.RANDOM.tmp) has data in it: mid-write.
    const prefix = `.interrupted-${signal}.lstrace.${child.pid}.`;
    const tmp = () => readdirSync(dir).find((f) => f.startsWith(prefix) && f.endsWith('.tmp'));
    for (let i = 0; ; i++) {
      const t = tmp();
      if (t !== undefined && existsSync(join(dir, t)) && statSync(join(dir, t)).size > 0) break;
      assert.ok(child.exitCode === null, `import ended before it was interrupted: ${stderr}`);
      assert.ok(i < 1200, 'no temporary file within 60 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    child.kill(signal);
    const code = await exited(child);
    assert.equal(code, 128 + osConstants.signals[signal], `${signal}: ended by the signal (${stderr})`);
    assert.equal(readFileSync(out, 'utf8'), 'the previous trace\n', `${signal}: the previous file is intact`);
    assert.deepStrictEqual(readdirSync(dir).filter((f) => f.endsWith('.tmp')), [], `${signal}: no temporary file left`);
  }
});
