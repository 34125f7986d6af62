// `report` (analyzeWithWindow) reads its inputs once: the engine and the window grid are fed by
// one readInputs through a tee, both by the fast path. The result, the grid and the page data are
// exactly those of the former two passes (analyzeFiles, then a second read into a WindowSink
// given Event objects), for every kind of input
// (seq-clock logs, traces, heaptrack's transient allocations, several files, --pid); and an
// input that can be read only once (a named pipe, `report <(zcat …)`) now works.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { spawnCli } from '../support/cli.js';
import { createReadStream, createWriteStream, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pipeline } from 'node:stream/promises';
import { analyzeFiles } from '../../src/pipeline/analyze-files.js';
import { analyzeWithWindow } from '../../src/pipeline/window-run.js';
import { WindowSink } from '../../src/analyses/window.js';
import { readInputs } from '../../src/sources/open.js';
import { buildReportData } from '../../src/reports/html/data.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixture = (name: string) => join(root, 'test/fixtures', name);
let dir = '';
let heaptrack = '';

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-one-pass-'));
  const exe = join(dir, 'ht-leak');
  execFileSync('gcc', ['-O1', '-g', '-o', exe, join(root, 'test/programs/ht-leak.c')]);
  execFileSync('heaptrack', [exe, '20000'], { cwd: dir, stdio: 'ignore' });
  heaptrack = join(dir, readdirSync(dir).find((f) => /^heaptrack\.ht-leak\.\d+\.zst$/.test(f))!);
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** The former report: the analysis, then a second pass of the inputs into the grid, which
 *  gets Event objects (a plain sink) as it did before it had the fast path. */
async function twoPasses(paths: string[], pid?: number) {
  const result = await analyzeFiles(paths, { pid });
  const win = new WindowSink({ pid, clock: result.clock });
  const { meta } = await readInputs(paths, { event: (e) => win.event(e) }, { onMeta: (m) => win.begin(m) });
  return { meta, result, window: win.finish() };
}

const json = (x: unknown) => JSON.stringify(x, (_k, v) => (v instanceof Map ? [...v.entries()] : v));
const pageData = (r: { result?: any; window: any }) => json({ ...buildReportData(r.result, r.window), generated: '' });

test('one pass gives the two passes\' result, grid and page data, byte for byte', { timeout: 60_000 }, async () => {
  const cases: [string[], number?][] = [
    [[fixture('apr-pool-debug.httpd-1child.log.gz')]],
    [[fixture('nginx-debug.1worker.log.gz')]],
    [[fixture('lstrace/every-kind.lstrace.zst')]],
    [[heaptrack]],
    [[fixture('nginx-debug.1worker.log.gz'), fixture('nginx-debug.1worker.log.gz')]],
    [[fixture('apr-pool-debug.httpd-1child.log.gz')], 3153],
  ];
  for (const [paths, pid] of cases) {
    const what = `${paths.map((p) => p.split('/').pop()).join(' + ')}${pid ? ` --pid ${pid}` : ''}`;
    const old = await twoPasses(paths, pid);
    const one = await analyzeWithWindow(paths, { pid });
    assert.ok(one.window.processes.some((p) => p.cells.length > 0), `${what}: an empty grid proves nothing`);
    assert.equal(json(one.result), json(old.result), `${what}: result`);
    assert.equal(json(one.window), json(old.window), `${what}: grid`);
    assert.equal(json(one.meta), json(old.meta), `${what}: meta`);
    assert.equal(pageData(one), pageData(old), `${what}: page data`);
  }
});

test('report of a named pipe (written once) works: the input is read once', { timeout: 60_000 }, async () => {
  const fifo = join(dir, 'log.fifo');
  execFileSync('mkfifo', [fifo]);
  const out = join(dir, 'fifo.html');
  const cli = spawnCli(['report', fifo, '-o', out]);
  let stderr = '';
  cli.stderr!.on('data', (d) => (stderr += d));
  // One writer, once: a second opening of the pipe would wait forever for another.
  await pipeline(createReadStream(fixture('nginx-debug.1worker.log.gz')), createWriteStream(fifo));
  const timer = setTimeout(() => cli.kill(), 45_000);
  const code = await new Promise<number | null>((resolve) => cli.on('close', resolve));
  clearTimeout(timer);
  assert.equal(code, 0, `exit ${code}: ${stderr}`);
  assert.match(stderr, /^leakscope: wrote .*fifo\.html/);
  const data = JSON.parse(readFileSync(out, 'utf8').match(/<script type="application\/json" id="leakscope-data">(.*?)<\/script>/s)![1]!);
  const direct = await analyzeFiles([fixture('nginx-debug.1worker.log.gz')]);
  assert.deepEqual(data.processes.map((p: any) => [p.pid, p.outstanding]), direct.processes.map((p) => [p.pid, p.outstanding]));
  assert.ok(data.buckets > 1, 'the grid was filled in the same pass');
});
