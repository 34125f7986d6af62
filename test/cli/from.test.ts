// `--from NAME` forces an input format where detection cannot tell or tells wrong, for every
// command that reads inputs: the forced reading gives what the plain fixture gives.
//   - an APR pool-debug log behind more than 64 KiB of other httpd lines (detection sees only the
//     first 64 KiB: "unknown format");
//   - an nginx debug log that starts with a line copied from an APR log (detected as apr-log).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { readTrace } from '../../src/trace/reader.js';
import { cli, root } from '../support/cli.js';

const fixture = (name: string) => join(root, 'test/fixtures', name);
const APR = fixture('apr-pool-debug.httpd-1child.log.gz');
const NGINX = fixture('nginx-debug.1worker.log.gz');
let dir = '';
const f = (name: string) => join(dir, name);

/** What an analysis says, without what names the input file. */
function essence(r: AnalysisResult) {
  return r.processes.map((p) => ({ pid: p.pid, verdict: p.verdict.verdict, outstanding: p.outstanding, allocated: p.allocated, sites: p.sites.map((s) => [s.label, s.bytes, s.count]), classes: p.poolClasses.map((c) => [c.name, c.verdict.verdict, c.bytes]) }));
}

async function json(args: string[]): Promise<AnalysisResult> {
  const r = await cli(['analyze', '--format', 'json', ...args]);
  assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
  return JSON.parse(r.stdout) as AnalysisResult;
}

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-from-'));
  // 70 KiB of httpd lines before the first POOL DEBUG line.
  const httpd = '[Sun Nov 22 05:29:50.593114 2026] [core:notice] [pid 3153:tid 3153] AH00094: Command line: \'/usr/sbin/apache2\'\n';
  writeFileSync(f('late-apr.log'), Buffer.concat([Buffer.from(httpd.repeat(Math.ceil(70_000 / httpd.length))), gunzipSync(readFileSync(APR))]));
  const aprLine = gunzipSync(readFileSync(APR)).toString('latin1').split('\n').find((l) => l.startsWith('POOL DEBUG: ['))!;
  writeFileSync(f('quoting-nginx.log'), Buffer.concat([Buffer.from(`${aprLine}\n`), gunzipSync(readFileSync(NGINX))]));
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('an APR log behind 70 KiB of other lines: unknown without --from, the fixture\'s analysis with --from apr-log', async () => {
  const plain = await cli(['analyze', f('late-apr.log')]);
  assert.equal(plain.code, 2);
  assert.match(plain.stderr, /^leakscope: .*late-apr\.log: unknown format \(.*\); use --from NAME to force\n$/);
  const forced = await json([f('late-apr.log'), '--from', 'apr-log']);
  assert.equal(forced.source, 'apr-log');
  assert.deepEqual(essence(forced), essence(await json([APR])));
  assert.ok(forced.processes.some((p) => p.poolClasses.some((c) => c.name === 'pchild' && c.verdict.verdict === 'leak')));
});

test('an nginx log that starts with an APR line: detected as apr-log, read as nginx with --from nginx-log, by every command', async () => {
  const detected = await cli(['info', f('quoting-nginx.log'), '--format', 'json']);
  assert.equal(detected.code === 0 || detected.code === 1, true, detected.stderr);
  assert.equal(JSON.parse(detected.stdout).files[0].source, 'apr-log', 'the wrong guess this test is about');

  const expected = essence(await json([NGINX]));
  assert.deepEqual(essence(await json([f('quoting-nginx.log'), '--from', 'nginx-log'])), expected);

  const info = await cli(['info', f('quoting-nginx.log'), '--from', 'nginx-log', '--format', 'json']);
  assert.equal(info.code, 0, info.stderr);
  const plainInfo = await cli(['info', NGINX, '--format', 'json']);
  assert.equal(JSON.parse(info.stdout).files[0].source, 'nginx-log');
  assert.equal(JSON.parse(info.stdout).files[0].events, JSON.parse(plainInfo.stdout).files[0].events);

  // import: the forced trace holds the same events as the fixture's own import.
  const events = async (path: string) => {
    const out: string[] = [];
    await readTrace(path, { event: (e) => out.push(JSON.stringify(e)) });
    return out;
  };
  const [a, b] = await Promise.all([
    cli(['import', f('quoting-nginx.log'), '--from', 'nginx-log', '-o', f('forced.lstrace')]),
    cli(['import', NGINX, '-o', f('plain.lstrace')]),
  ]);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(await events(f('forced.lstrace')), await events(f('plain.lstrace')));

  // report and export take it too.
  const rep = await cli(['report', f('quoting-nginx.log'), '--from', 'nginx-log', '-o', f('forced.html')]);
  assert.equal(rep.code, 0, rep.stderr);
  assert.match(readFileSync(f('forced.html'), 'utf8'), /"source":"nginx-log"/);
  const exp = await cli(['export', f('quoting-nginx.log'), '--from', 'nginx-log', '--to', 'collapsed', '-o', f('forced.txt')]);
  const expPlain = await cli(['export', NGINX, '--to', 'collapsed', '-o', f('plain.txt')]);
  assert.equal(exp.code, 0, exp.stderr);
  assert.equal(expPlain.code, 0, expPlain.stderr);
  assert.equal(readFileSync(f('forced.txt'), 'utf8'), readFileSync(f('plain.txt'), 'utf8'));
});
