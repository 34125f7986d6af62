// `leakscope report` on the real nginx debug log (master + one worker that leaks 30 pool blocks of
// 4096 bytes under GET /scratch; see test/fixtures), opened in headless Chromium and driven as a
// user would: every chart drew, the summary says how sure the verdict is, a click on a flame-graph
// frame zooms to it, the metric switch counts blocks, a drag on the chart changes the table, and a
// screenshot of the page is taken (to $LEAKSCOPE_SHOTS when set, else a temporary directory).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Page } from 'playwright-core';
import { launch } from './chromium.js';
import { cliSync } from '../support/cli.js';
import { formatBytes } from '../../src/model/units.js';
import { analyzeFiles } from '../../src/pipeline/analyze-files.js';

const fixture = new URL('../fixtures/nginx-debug.1worker.log.gz', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'leakscope-nginx-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Non-transparent pixels of a uPlot chart's canvas. */
function ink(p: Page, key: string): Promise<number> {
  return p.evaluate((k) => {
    const u = (window as any).__leakscope.charts.get(k);
    const c = u.ctx.canvas as HTMLCanvasElement;
    const d = u.ctx.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
    return n;
  }, key);
}

const width = (p: Page, name: string) => p.$eval(`#flame g.frame[name="${name}"] rect`, (r) => Number(r.getAttribute('width')));

test('report of the nginx debug log: charts, zoom on click, block counts, a dragged range, a screenshot', async () => {
  const out = join(dir, 'nginx.html');
  const r = cliSync(['report', fixture, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  const { browser, close } = await launch();
  try {
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
    await p.goto(pathToFileURL(out).href);
    await p.waitForSelector('#flame svg g.frame');
    await p.waitForTimeout(500); // the flame graph's entry transition

    // Summary: the leaking worker is chosen, its top site named, and how sure we are said in words.
    const worker = await p.textContent('#summary tr.sel') ?? '';
    assert.match(worker, /pid 3643/);
    assert.match(worker, /leak/);
    assert.match(worker, /site GET \/scratch — 120 KiB/);
    // The words give the analysis's own numbers (p as the page rounds it, τ to two places).
    const w = (await analyzeFiles([fixture])).processes.find((x) => x.pid === 3643)!.verdict;
    const m = /Trend very likely: Mann–Kendall p = ([\d.e+-]+), τ = (-?[\d.]+) over (\d+) points, slope [\d.]+ KiB\/s\./.exec(worker);
    assert.ok(m, worker);
    assert.ok(w.pValue < 0.001, 'very likely means p < 0.001');
    assert.ok(Math.abs(Number(m[1]) - w.pValue) <= 0.05 * w.pValue, `${m[1]} vs ${w.pValue}`);
    assert.equal(m[2], w.tau.toFixed(2));
    assert.equal(Number(m[3]), w.n);

    // Memory over time: the worker's chart has total, heap and its top sites, and drew them; every
    // small multiple with a series drew too, on one scale.
    const lines = await p.evaluate(() => (window as any).__leakscope.charts.get('main').series.map((s: any) => s.label));
    assert.deepEqual(lines.slice(1, 4), ['total', 'heap', 'site GET /scratch']);
    assert.ok((await ink(p, 'main')) > 3000);
    const multiples = await p.evaluate(() => [...(window as any).__leakscope.charts.keys()].filter((k: string) => k.startsWith('pid:')));
    assert.ok(multiples.includes('pid:3643') && multiples.length >= 2, multiples.join());
    for (const k of multiples) assert.ok((await ink(p, k)) > 300, `${k} drew`);
    assert.equal(new Set(await p.evaluate(() => [...(window as any).__leakscope.charts.entries()]
      .filter(([k]: [string]) => k.startsWith('pid:')).map(([, u]: [string, any]) => u.scales.y.max))).size, 1);

    // Flame graph: GET /scratch holds the 30 leaked blocks. Click it: it fills the graph.
    const full = await width(p, 'pid 3643');
    const scratch = await width(p, 'GET /scratch');
    assert.ok(scratch > 0 && scratch < full - 10, `${scratch} of ${full}`);
    await p.click('#flame g.frame[name="GET /scratch"]');
    await p.waitForTimeout(600);
    assert.ok(Math.abs((await width(p, 'GET /scratch')) - full) < 2, 'the clicked frame fills the graph');
    await p.click('#flame-reset');
    await p.waitForTimeout(600);
    assert.ok(Math.abs((await width(p, 'GET /scratch')) - scratch) < 2);
    // Outstanding count: hovering the frame tells its blocks (the 30 leaked ones).
    await p.check('#metric-count');
    await p.waitForTimeout(300);
    await p.hover('#flame g.frame[name="GET /scratch"]');
    assert.match(await p.textContent('#flame-details') ?? '', /^GET \/scratch\n30 blocks \(\d+\.\d% of blocks\)$/);
    await p.mouse.move(0, 0);
    await p.check('#metric-bytes');

    // A range dragged over the first 40% of the chart: the table holds what was allocated then and
    // is still outstanding at its end: fewer leaked blocks, whole 4096-byte blocks.
    const whole = await p.evaluate(() => (window as any).__leakscope.tableRows());
    const wholeScratch = whole.find((x: any) => x.label === 'GET /scratch');
    assert.deepEqual([wholeScratch.bytes, wholeScratch.count], [122_880, 30]);
    const bb = (await (await p.$('#main-chart .u-over'))!.boundingBox())!;
    await p.mouse.move(bb.x + 2, bb.y + 40);
    await p.mouse.down();
    await p.mouse.move(bb.x + bb.width * 0.4, bb.y + 50, { steps: 6 });
    await p.mouse.up();
    assert.match(await p.textContent('#sites-caption') ?? '', /still outstanding at its end/);
    const part = (await p.evaluate(() => (window as any).__leakscope.tableRows())).find((x: any) => x.label === 'GET /scratch');
    assert.ok(part && part.count > 0 && part.count < 30, JSON.stringify(part));
    assert.equal(part.bytes, part.count * 4096);
    // Its age: from its oldest outstanding block to the range's end, to bucket precision.
    const range = await p.evaluate(() => (window as any).__leakscope.state.range);
    assert.ok(part.age > 0 && part.age <= range.t1 - range.t0 + 67_108_864, JSON.stringify([part, range]));
    // Stacks with no analysed site share a leaf (ngx_alloc under GET /ok and GET /scratch): their
    // callers tell them apart.
    const labels = (await p.evaluate(() => (window as any).__leakscope.tableRows())).map((x: any) => x.label);
    assert.equal(new Set(labels).size, labels.length, labels.join(' | '));
    assert.ok(labels.includes('ngx_alloc (src/os/unix/ngx_alloc.c) ← GET /ok'), labels.join(' | '));
    // The flame graph follows the range: the frame now holds those bytes.
    await p.waitForTimeout(300);
    await p.hover('#flame g.frame[name="GET /scratch"]');
    assert.match(await p.textContent('#flame-details') ?? '', new RegExp(`^GET /scratch\\n${formatBytes(part.bytes).replace('.', '\\.')} \\(`));
    await p.mouse.move(0, 0);

    // Screenshot of the whole page: a real PNG of the page's width, not a blank one.
    const shot = join(process.env.LEAKSCOPE_SHOTS ?? dir, 'nginx-report.png');
    await p.screenshot({ path: shot, fullPage: true });
    const png = readFileSync(shot);
    assert.equal(png.subarray(1, 4).toString('latin1'), 'PNG');
    assert.equal(png.readUInt32BE(16), 1280, 'width');
    assert.ok(png.readUInt32BE(20) > 1000, 'height');
    assert.ok(png.length > 50_000, `a drawn page, not a blank one (${png.length} bytes)`);
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
