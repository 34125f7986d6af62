// `leakscope report` end to end without a browser: the page embeds what the analysis found,
// and bad input or an unwritable output is one line on stderr.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { analyzeFiles } from '../../src/pipeline/analyze-files.js';
import { cliSync } from '../support/cli.js';

const fixture = new URL('../fixtures/nginx-debug.1worker.log.gz', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'leakscope-report-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function embedded(html: string): any {
  return JSON.parse(html.match(/<script type="application\/json" id="leakscope-data">(.*?)<\/script>/s)![1]!);
}

test('report of the nginx debug log embeds the analysis: processes, verdicts, outstanding bytes, sites', async () => {
  const out = join(dir, 'nginx.html');
  const r = cliSync(['report', fixture, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const data = embedded(readFileSync(out, 'utf8'));
  const result = await analyzeFiles([fixture]);
  assert.deepEqual(data.processes.map((p: any) => p.pid), result.processes.map((p) => p.pid));
  for (const p of result.processes) {
    const d = data.processes.find((x: any) => x.pid === p.pid);
    assert.equal(d.verdict.verdict, p.verdict.verdict);
    assert.deepEqual(d.outstanding, p.outstanding);
    assert.deepEqual(d.sites.map((s: any) => [s.label, s.bytes]), p.sites.map((s) => [s.label, s.bytes]));
    // The grid agrees with the analysis on what is outstanding at the end.
    if (d.flame) {
      const end = d.flame.b.filter((_: number, i: number) => d.flame.f[i] === -1).reduce((a: number, b: number) => a + b, 0);
      assert.equal(end, p.outstanding.heapBytes + p.outstanding.poolBytes, `pid ${p.pid}`);
    }
  }
  // The fixture's known leak: 30 forgotten 4096-byte pool blocks in the worker.
  const total = result.processes.reduce((a, p) => a + p.outstanding.heapBytes + p.outstanding.poolBytes, 0);
  assert.ok(total >= 30 * 4096, String(total));
});

test('report: garbage input and unwritable output are one-line errors', () => {
  const garbage = join(dir, 'garbage.bin');
  writeFileSync(garbage, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
  const r = cliSync(['report', garbage, '-o', join(dir, 'g.html')]);
  assert.notEqual(r.code, 0);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^leakscope: /);
  const w = cliSync(['report', fixture, '-o', join(dir, 'no', 'such', 'dir', 'x.html')]);
  assert.notEqual(w.code, 0);
  assert.match(w.stderr, /^leakscope: .*x\.html: cannot write \(no such directory\); nothing was written, choose another output file\n$/);
  const missing = cliSync(['report', fixture]);
  assert.notEqual(missing.code, 0);
  assert.match(missing.stderr, /required option '-o, --output <file>'/);
});

test('report --open: with a desktop the page goes to xdg-open; without one its path is printed', async () => {
  // A stand-in xdg-open on PATH that records what it was asked to open.
  const bin = join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  const opened = join(dir, 'opened.txt');
  writeFileSync(join(bin, 'xdg-open'), `#!/bin/sh\nprintf '%s\\n' "$@" > '${opened}'\n`);
  chmodSync(join(bin, 'xdg-open'), 0o755);
  const out = join(dir, 'open me "now".html');
  const r = cliSync(['report', fixture, '-o', out, '--open'], { env: { DISPLAY: ':97', WAYLAND_DISPLAY: '', PATH: `${bin}:${process.env.PATH}` } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, '', 'nothing printed when a browser was started');
  for (let i = 0; i < 100 && !existsSync(opened); i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal(readFileSync(opened, 'utf8'), `${out}\n`, 'xdg-open got the report, as one argument');
  const headless = cliSync(['report', fixture, '-o', out, '--open'], { env: { DISPLAY: '', WAYLAND_DISPLAY: '', PATH: `${bin}:${process.env.PATH}` } });
  assert.equal(headless.code, 0, headless.stderr);
  assert.equal(headless.stdout, `${out}\n`);
});
