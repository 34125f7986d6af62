// `leakscope analyze` end to end: the real CLI on real and generated inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TraceWriter } from '../../src/trace/writer.js';
import { StackInterner } from '../../src/model/stacks.js';
import { frame } from '../../src/model/events.js';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { testDir } from '../support/tmp.js';
import { cliSync } from '../support/cli.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string) => join(root, 'test/fixtures', name);
const dir = testDir('ls-analyze');

const analyze = (...args: string[]) => cliSync(['analyze', ...args]);

test('text report on an APR log: event clock said, verdicts in words, fits 100 columns', () => {
  const r = analyze(fixture('apr-pool-debug.httpd-1child.log.gz'));
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Clock: event sequence — times and ages count events, not seconds\./);
  assert.match(r.stdout, /=== Process 3160 \(parent 3156\)/);
  assert.match(r.stdout, /Verdict: LEAK/);
  assert.match(r.stdout, /pchild: Grew steadily/);
  assert.match(r.stdout, /Fed by\s+mod_leaky\.c:25/);
  assert.match(r.stdout, /=== Process 3156[^\n]*\nVerdict: STEADY/);
  for (const line of r.stdout.split('\n')) assert.ok([...line].length <= 100, `too wide: ${line}`);
});

test('a path longer than the terminal: header and warnings still fit 100 columns, file name kept', () => {
  const deep = join(dir, 'a-directory-name-that-is-long'.repeat(3), 'and-another-one-just-as-long'.repeat(2));
  mkdirSync(deep, { recursive: true });
  const input = join(deep, 'apr-pool-debug.httpd-1child.log.gz');
  copyFileSync(fixture('apr-pool-debug.httpd-1child.log.gz'), input);
  const r = analyze(input);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(input.length > 100);
  assert.match(r.stdout, /^Input: ….*\/apr-pool-debug\.httpd-1child\.log\.gz$/m);
  assert.match(r.stdout, /skipped 7 line\(s\)/);
  for (const line of r.stdout.split('\n')) assert.ok([...line].length <= 100, `too wide: ${line}`);
});

test('JSON report is the AnalysisResult; --pid and --top apply', () => {
  const r = analyze(fixture('nginx-debug.1worker.log.gz'), '--format', 'json', '--top', '1', '--pid', '3643');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as AnalysisResult;
  assert.equal(j.tool, 'leakscope');
  assert.equal(j.version, 1);
  assert.equal(j.clock, 'ns');
  assert.equal(j.estimated, false);
  assert.equal(j.processes.length, 1);
  const p = j.processes[0]!;
  assert.equal(p.pid, 3643);
  assert.equal(p.sites.length, 1);
  assert.equal(p.sites[0]!.label, 'GET /scratch');
  assert.equal(p.sites[0]!.count, 30);
  assert.equal(p.sites[0]!.verdict!.verdict, 'leak');
  assert.ok(p.series.total.x.length > 0 && p.series.total.x.length <= 256);
});

test('a sampled .lstrace: the report says figures are estimates', async () => {
  const path = join(dir, 'sampled.lstrace');
  const w = TraceWriter.create(path, { format: 1, clock: 'ns', source: 'recorder', command: 'srv', sampleBytes: 4096 });
  const st = new StackInterner(w, 42);
  const leak = st.stackId([frame({ fn: 'malloc' }), frame({ fn: 'remember_session', file: 'srv.c', line: 10 }), frame({ fn: 'main' })]);
  w.event({ kind: 'process', pid: 42, t: 0, ppid: 1, command: 'srv --port 1', exe: '/srv' });
  for (let i = 0; i < 500; i++) w.event({ kind: 'alloc', pid: 42, t: (i + 1) * 1e7, tid: 42, addr: 0x10000 + i * 64, size: 512, stack: leak });
  await w.close();
  const text = analyze(path);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /Sampled trace: counts and bytes are unbiased estimates/);
  assert.match(text.stdout, /remember_session \(srv\.c:10\)/);
  const j = JSON.parse(analyze(path, '--format', 'json').stdout) as AnalysisResult;
  assert.equal(j.estimated, true);
  const w1 = 1 / (1 - Math.exp(-512 / 4096));
  assert.equal(j.processes[0]!.sites[0]!.count, Math.round(500 * w1));
  assert.equal(j.processes[0]!.verdict.verdict, 'leak');
});

test('bad options and inputs: one line, non-zero exit, no stack trace', () => {
  const garbage = join(dir, 'garbage.bin');
  writeFileSync(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) & 0xff)));
  const cases: [string[], RegExp][] = [
    [[fixture('nginx-debug.1worker.log.gz'), '--top', 'x'], /argument 'x' is invalid\. It must be a whole number from 1 to 1000000/],
    [[fixture('nginx-debug.1worker.log.gz'), '--min-age', '5q'], /--min-age "5q": expected a duration/],
    [[fixture('nginx-debug.1worker.log.gz'), '--format', 'xml'], /argument 'xml' is invalid\. Allowed choices are text, json/],
    [[fixture('nginx-debug.1worker.log.gz'), '--suppress', join(dir, 'none.txt')], /no such suppression file/],
    [[fixture('nginx-debug.1worker.log.gz'), '--pid', '99999'], /no process 99999/],
    [[join(dir, 'missing.lstrace')], /no such file/],
    [[garbage], /garbage\.bin/],
  ];
  for (const [args, re] of cases) {
    const r = analyze(...args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});
