// `analyze --format json` against docs/json-output.schema.json, the JSON Schema of
// docs/json-output.md (ajv, strict): on every kind of input leakscope reads — the APR and nginx
// log fixtures, the every-kind trace, heaptrack, and traces the recorder makes of real programs
// (mmap sites, a stripped binary's file addresses, forked children that exit, a sampled run).
// A field the document does not describe, or a value of the wrong kind, fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { TraceWriter } from '../../src/trace/writer.js';
import { cliSync, root } from '../support/cli.js';

const schema = JSON.parse(readFileSync(join(root, 'docs/json-output.schema.json'), 'utf8')) as object;
const ajv = new Ajv({ strict: true, allErrors: true });
const validate = ajv.compile(schema);
const fixture = (name: string) => join(root, 'test/fixtures', name);
let dir = '';

function errors(): string {
  return (validate.errors ?? []).slice(0, 10).map((e) => `${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`).join('\n');
}

function analyzeJson(args: string[]): unknown {
  const r = cliSync(['analyze', '--format', 'json', ...args]);
  assert.ok(r.code === 0 || r.code === 1, `analyze ${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return JSON.parse(r.stdout);
}

function gcc(name: string, extra: string[] = []): string {
  const out = join(dir, name);
  execFileSync('gcc', ['-O2', '-g', '-fomit-frame-pointer', '-o', out, join(root, 'test/programs', `${name}.c`), ...extra]);
  return out;
}

/** `leakscope run -o TRACE -- CMD` (exit status of the command ignored: rec-fork exits 0). */
function recorded(name: string, cmd: string[], extra: string[] = []): string {
  const trace = join(dir, `${name}.lstrace`);
  const r = cliSync(['run', '--no-summary', '-o', trace, ...extra, '--', ...cmd]);
  assert.equal(r.code, 0, `run ${name}: ${r.stderr}`);
  return trace;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-json-schema-'));
  execFileSync('make', ['-s', '-C', join(root, 'native/recorder')]);
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the schema is valid JSON Schema and refuses what the document does not describe', () => {
  const ok = analyzeJson([fixture('nginx-debug.1worker.log.gz')]) as { processes: Record<string, unknown>[]; tool: string };
  assert.ok(validate(ok), errors());
  // An undocumented field, a missing one, a wrong type: each fails, so the checks below can fail.
  const extra = structuredClone(ok);
  (extra.processes[0] as Record<string, unknown>).undocumented = 1;
  assert.equal(validate(extra), false);
  const missing = structuredClone(ok) as Record<string, unknown>;
  delete missing.lost;
  assert.equal(validate(missing), false);
  const wrong = structuredClone(ok);
  (wrong.processes[0]!.outstanding as Record<string, unknown>).heapBytes = '12';
  assert.equal(validate(wrong), false);
});

test('log fixtures and the every-kind trace: the JSON output matches docs/json-output.md', () => {
  for (const input of [fixture('apr-pool-debug.httpd-1child.log.gz'), fixture('nginx-debug.1worker.log.gz'), fixture('lstrace/every-kind.lstrace')]) {
    const j = analyzeJson([input]);
    assert.ok(validate(j), `${input}:\n${errors()}`);
  }
  // Both logs at once: one result, two sources.
  const both = analyzeJson([fixture('lstrace/every-kind.lstrace'), fixture('nginx-debug.1worker.log.gz'), '--top', '3']) as { source: string };
  assert.ok(validate(both), errors());
  assert.match(both.source, /,/);
  // The APR fixture's transaction pools are bounded per use: perUse is exercised.
  assert.match(JSON.stringify(analyzeJson([fixture('apr-pool-debug.httpd-1child.log.gz')])), /"perUse":\{"peak":\d+/);
});

test('the verdict corpus captures (apache2 attach and run, nginx + Lua, vd-server, a short program) match it: unfreed with its trend, no-calls with its hint, found pools counted', () => {
  const captures = join(root, 'test/verdicts/captures');
  const all: string[] = [];
  for (const f of readdirSync(captures).filter((x) => x.endsWith('.zst')).sort()) {
    const j = analyzeJson([join(captures, f)]);
    assert.ok(validate(j), `${f}:\n${errors()}`);
    all.push(JSON.stringify(j));
  }
  const json = all.join('\n');
  assert.match(json, /"verdict":"unfreed"[^{}]*"trend":"(leak|growing|bounded|steady)","atExit":\{"bytes":\d+\}/);
  assert.match(json, /"verdict":\{"verdict":"no-calls"[^]*?"hint":"[^"]+"/);
  assert.match(json, /"found":[1-9]/);
  // The schema ties them: a trend without unfreed, or a hint without no-calls, fails.
  const withHint = JSON.parse(all.find((s) => s.includes('"no-calls"'))!) as { processes: { verdict: { verdict: string }; hint?: string }[] };
  const called = withHint.processes.find((p) => p.verdict.verdict !== 'no-calls')!;
  called.hint = 'try something';
  assert.equal(validate(withHint), false);
  const withTrend = JSON.parse(all.find((s) => s.includes('"unfreed"'))!) as { processes: { verdict: { verdict: string } }[] };
  withTrend.processes.find((p) => p.verdict.verdict === 'unfreed')!.verdict.verdict = 'steady';
  assert.equal(validate(withTrend), false);
});

test('a pool found alive at attach, and a process that made no call, match it', async () => {
  // An attach trace: the walk found a pool tree before the trace (sizes read), one of them then
  // grew; a second traced process called nothing.
  const trace = join(dir, 'found.lstrace');
  const w = TraceWriter.create(trace, { format: 1, clock: 'ns', source: 'attach', startWallMs: Date.now() });
  w.event({ kind: 'process', pid: 500, t: 0, ppid: 1, command: 'httpd -k start', exe: '/usr/sbin/apache2' });
  w.event({ kind: 'process', pid: 501, t: 0, ppid: 500, command: 'httpd -k start', exe: '/usr/sbin/apache2' });
  w.event({ kind: 'pool-found', pid: 500, t: 10, pool: 0x1000, parent: 0, poolKind: 'apr', tag: 'pglobal' });
  w.event({ kind: 'pool-found', pid: 500, t: 10, pool: 0x2000, parent: 0x1000, poolKind: 'apr', tag: 'pconf' });
  w.event({ kind: 'pool-size', pid: 500, t: 11, pool: 0x1000, bytes: 8192 });
  w.event({ kind: 'pool-size', pid: 500, t: 11, pool: 0x2000, bytes: 16384 });
  for (let i = 1; i <= 20; i++) w.event({ kind: 'pool-alloc', pid: 500, t: 100 * i, tid: 500, pool: 0x2000, size: 512, addr: 0, stack: 0 });
  w.event({ kind: 'rss', pid: 501, t: 2000, bytes: 4 << 20 });
  await w.close();
  const j = analyzeJson([trace]);
  assert.ok(validate(j), errors());
  const s = JSON.stringify(j);
  assert.match(s, /"pool":"0x2000"[^]*?"found":true/);
  assert.match(s, /"name":"pconf"[^{}]*"found":1/);
  assert.match(s, /"verdict":"no-calls"[^]*"hint":"[^"]+"/);
});

test('recorder traces of real programs (mmap sites, a stripped binary, forked children, sampled) match it', () => {
  const mmap = recorded('rec-mmap', [gcc('rec-mmap')]);
  const fork = recorded('rec-fork', [gcc('rec-fork')]);
  const full = gcc('rec-stripped');
  execFileSync('strip', ['--strip-all', full]);
  const stripped = recorded('rec-stripped', [full]);
  const sampled = recorded('sampled', [gcc('rec-loop')], ['--sample', '4096']);
  const results = [mmap, fork, stripped, sampled].map((t) => [t, analyzeJson([t])] as const);
  for (const [t, j] of results) assert.ok(validate(j), `${t}:\n${errors()}`);
  // What these inputs were chosen for is really there (the optional fields were exercised).
  const json = JSON.stringify(results.map((r) => r[1]));
  assert.match(json, /"via":"mmap"/);
  assert.match(json, /"vaddr":\d+/);
  assert.match(json, /"exitCode":\d+/);
  assert.match(json, /"estimated":true/);
});

test('a heaptrack file matches it', () => {
  const exe = gcc('ht-leak');
  execFileSync('heaptrack', ['-o', join(dir, 'heaptrack.ht-leak'), exe, '2000'], { cwd: dir, stdio: 'ignore' });
  const file = readdirSync(dir).find((f) => f.startsWith('heaptrack.ht-leak') && f.endsWith('.zst'));
  assert.ok(file, readdirSync(dir).join(' '));
  const j = analyzeJson([join(dir, file)]) as { source: string };
  assert.equal(j.source, 'heaptrack');
  assert.ok(validate(j), errors());
});
