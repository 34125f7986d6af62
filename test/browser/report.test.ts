// The report page in headless Chromium: charts drew, the flame graph zooms on click, a time range
// changes the table, hostile names run nothing. Screenshots go to $LEAKSCOPE_SHOTS when set.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { launch } from './chromium.js';
import { WindowSink } from '../../src/analyses/window.js';
import { htmlReport } from '../../src/reports/html/report.js';
import { scenario, scenarioResult, STEP } from '../reports/scenario.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { cliSync } from '../support/cli.js';

let browser: BrowserContext;
let close: () => Promise<void>;
const dir = mkdtempSync(join(tmpdir(), 'leakscope-report-'));

before(async () => {
  ({ browser, close } = await launch());
});
after(async () => {
  await close();
  rmSync(dir, { recursive: true, force: true });
});

/** The scenario's report (hand-made analysis + the real window grid), open in a page. */
async function page(): Promise<{ p: Page; errors: string[] }> {
  const s = scenario();
  const w = new WindowSink();
  for (const e of s.events) w.event(e);
  const file = join(dir, 'report.html');
  writeFileSync(file, await htmlReport(scenarioResult(s), w.finish()));
  const p = await browser.newPage();
  const errors: string[] = [];
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  p.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); void d.dismiss(); });
  await p.goto(pathToFileURL(file).href);
  await p.waitForSelector('#flame svg g.frame');
  await p.waitForTimeout(500); // the flame graph's entry transition
  return { p, errors };
}

/** Non-background pixels of a canvas. */
async function inkedPixels(p: Page, selector: string): Promise<number> {
  return p.evaluate((sel) => {
    const c = document.querySelector(sel) as HTMLCanvasElement;
    const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]! > 0) n++;
    return n;
  }, selector);
}

test('report page draws, zooms, follows the time range', async () => {
  const { p, errors } = await page();
  // The chart drew: uPlot holds every series, and its canvas has ink.
  const series = await p.evaluate(() => {
    const u = (window as any).__leakscope.charts.get('main');
    return { n: u.series.length, points: u.data[0].length, names: u.series.map((s: any) => s.label), last: u.data[1][u.data[1].length - 1] };
  });
  assert.ok(series.names.includes('total') && series.names.includes('RSS') && series.names.includes('heap'), series.names.join());
  assert.equal(series.last, 130_000);
  assert.ok((await inkedPixels(p, '#main-chart canvas')) > 2000);
  // Markers: dashed purple (#8e44ad) lines at their times, with their labels.
  const markerPx = await p.evaluate(() => {
    const u = (window as any).__leakscope.charts.get('main');
    const c = u.ctx.canvas as HTMLCanvasElement;
    const x = Math.round(u.valToPos(0.2, 'x', true)); // "warmup done" at step 20 = 0.2 s
    const d = u.ctx.getImageData(x - 1, 0, 3, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 0x8e) < 30 && Math.abs(d[i + 1] - 0x44) < 30 && Math.abs(d[i + 2] - 0xad) < 30) n++;
    return n;
  });
  assert.ok(markerPx > 50, `marker line pixels: ${markerPx}`);

  // The flame graph: the leaf frames are there with their share.
  const frames = await p.$$eval('#flame g.frame', (gs) => gs.map((g) => g.getAttribute('name')));
  assert.ok(frames.includes('leaky_alloc (leaky.c:7)'), frames.join('|'));
  assert.ok(!frames.includes('temp_buf (buf.c:3)'), 'freed memory is not outstanding');
  const widthOf = (name: string) => p.$eval(`#flame g.frame[name="${name}"] rect`, (r) => Number(r.getAttribute('width')));
  const full = await widthOf('pid 4242');
  const before = await widthOf('leaky_alloc (leaky.c:7)');
  assert.ok(Math.abs(before / full - 100_000 / 130_000) < 0.02, `${before}/${full}`);
  // Click: zoom to that frame; it fills the width.
  await p.click('#flame g.frame[name="remember (cache.c:25)"]');
  await p.waitForTimeout(600);
  const zoomed = await widthOf('remember (cache.c:25)');
  assert.ok(Math.abs(zoomed - full) < 2, `the clicked frame fills the graph: ${zoomed} of ${full}`);
  // Reset zoom brings back the whole graph.
  await p.click('#flame-reset');
  await p.waitForTimeout(600);
  assert.ok(Math.abs((await widthOf('leaky_alloc (leaky.c:7)')) - before) < 2);
  // Hover shows details.
  await p.hover('#flame g.frame[name="main (server.c:10)"]');
  assert.match(await p.textContent('#flame-details') ?? '', /main \(server\.c:10\)\n127 KiB \(100\.0% of bytes\)/);
  // Search: matching frames are highlighted and summed; a broken regex is taken as text.
  await p.mouse.move(0, 0);
  await p.fill('#flame-search', 'LEAKY');
  assert.equal(await p.textContent('#flame-details'), 'search "LEAKY": 97.7 KiB of 127 KiB (76.9%)');
  await p.fill('#flame-search', 'remember (');
  assert.equal(await p.textContent('#flame-details'), 'search "remember (": 29.3 KiB of 127 KiB (23.1%)');
  await p.fill('#flame-search', '');
  // Metric switch: total allocated shows the freed temp buffers too.
  await p.check('#metric-allocated');
  await p.waitForSelector('#flame g.frame[name="temp_buf (buf.c:3)"]');
  await p.check('#metric-bytes');

  // Time range: from the first marker to the second (steps 20..60). The table now holds what was
  // allocated then and is still outstanding at its end.
  const rowsBefore = await p.evaluate(() => (window as any).__leakscope.tableRows());
  assert.equal(rowsBefore[0].bytes, 100_000);
  await p.selectOption('#range-from', { index: 1 });
  await p.selectOption('#range-to', { index: 2 });
  assert.match(await p.textContent('#range-label') ?? '', /marker: warmup done → marker: load/);
  const rows = await p.evaluate(() => (window as any).__leakscope.tableRows());
  const leak = rows.find((r: any) => r.label === 'leaky_alloc (leaky.c:7)');
  assert.ok(leak, JSON.stringify(rows) + JSON.stringify(await p.evaluate(() => (window as any).__leakscope.state.range)));
  // ~40 steps of 1000 bytes, to bucket precision (buckets of 2^24 ns ≈ 1.7 steps).
  assert.ok(leak.bytes >= 36_000 && leak.bytes <= 44_000, String(leak.bytes));
  assert.ok(leak.bytes % 1000 === 0);
  const cap = await p.textContent('#sites-caption');
  assert.match(cap ?? '', /still outstanding at its end/);
  // The chart shows the selection.
  const sel = await p.evaluate(() => (window as any).__leakscope.charts.get('main').select.width);
  assert.ok(sel > 100);
  // Dragging on the chart sets a range too: the last 10% of the trace.
  const box = (await p.$('#main-chart .u-over'))!;
  const bb = (await box.boundingBox())!;
  await p.mouse.move(bb.x + bb.width * 0.9, bb.y + 50);
  await p.mouse.down();
  await p.mouse.move(bb.x + bb.width * 0.99, bb.y + 60, { steps: 5 });
  await p.mouse.up();
  const range = await p.evaluate(() => (window as any).__leakscope.state.range);
  assert.ok(range && range.t0 > 80 * STEP && range.t1 <= 102 * STEP, JSON.stringify(range));
  const late = (await p.evaluate(() => (window as any).__leakscope.tableRows())).find((r: any) => r.label === 'leaky_alloc (leaky.c:7)');
  assert.ok(late.bytes > 0 && late.bytes < 20_000, String(late.bytes));
  await p.click('#range-reset');
  assert.equal((await p.evaluate(() => (window as any).__leakscope.tableRows()))[0].bytes, 100_000);

  // Sort by count ascending, expand a stack.
  await p.click('#sites th[data-key="count"]');
  await p.click('#sites th[data-key="count"]');
  const first = await p.$eval('#sites tbody tr.site td code', (c) => c.textContent);
  assert.equal(first, 'temp_buf (buf.c:3)');
  await p.click('#sites tbody tr.site');
  assert.equal(await p.$eval('#sites tbody tr.stack', (r) => (r as HTMLElement).hidden), false);
  assert.ok(await p.isVisible('text=pchild'));
  assert.equal(await p.$eval('#range-from', (x) => (x as HTMLSelectElement).selectedIndex), 0);
  await p.waitForTimeout(500);
  if (process.env.LEAKSCOPE_SHOTS) await p.screenshot({ path: join(process.env.LEAKSCOPE_SHOTS, 'report.png'), fullPage: true });
  assert.deepEqual(errors, []);
});

test('hostile names in a trace run nothing and show as text (through leakscope report)', async () => {
  // A real trace through the real pipeline: pool tag, symbol, file name and marker carry markup.
  const s = scenario({ hostile: true });
  const trace = join(dir, 'hostile.lstrace');
  const w = TraceWriter.create(trace, s.meta);
  for (const e of s.events) w.event(e);
  await w.close();
  const file = join(dir, 'hostile-cli.html');
  const r = cliSync(['report', trace, '-o', file, '--open'], { env: { DISPLAY: '', WAYLAND_DISPLAY: '' } });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, `${file}\n`, '--open without a desktop prints the path');
  const p = await browser.newPage();
  const errors: string[] = [];
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('dialog', (d) => { errors.push(`dialog: ${d.message()}`); void d.dismiss(); });
  await p.goto(pathToFileURL(file).href);
  await p.waitForSelector('#flame svg g.frame');
  await p.waitForTimeout(500);
  assert.equal(await p.evaluate(() => (window as any).__pwned), undefined);
  assert.equal(await p.$$eval('img', (x) => x.length), 0);
  // Shown literally: in the pool tree, the pool classes, the flame graph and the marker list.
  const tags = await p.$$eval('#pooltree code, table.classes code', (cs) => cs.map((c) => c.textContent ?? ''));
  assert.ok(tags.some((t) => t.startsWith('pchild<script>window.__pwned=1</script>"\'')), tags.join('|'));
  const names = await p.$$eval('#flame g.frame', (gs) => gs.map((g) => g.getAttribute('name') ?? ''));
  assert.ok(names.some((n) => n.startsWith('leaky_alloc<script>window.__pwned=1</script>')), names.join('|'));
  const options = await p.$$eval('#range-from option', (os) => os.map((o) => o.textContent ?? ''));
  assert.ok(options.some((o) => o.includes('warmup done<script>')), options.join('|'));
  // Hover details of a hostile frame: shown as text.
  await p.hover('#flame g.frame[name^="leaky_alloc<script>"] > rect');
  assert.ok((await p.textContent('#flame-details') ?? '').startsWith(`leaky_alloc<script>window.__pwned=1</script>"'<img src=x onerror="window.__pwned=2">`));
  // The chart, through the real engine and analyses: total, RSS, the top pool class and site, with
  // the hostile names as legend text.
  const labels: string[] = await p.evaluate(() => (window as any).__leakscope.charts.get('main').series.map((x: any) => x.label));
  assert.ok(labels.includes('total') && labels.includes('RSS'), labels.join('|'));
  assert.ok(labels.some((l) => l.startsWith('pool pchild<script>')) && labels.some((l) => l.startsWith('site leaky_alloc<script>')), labels.join('|'));
  assert.ok(await p.isVisible('text=pool pchild<script>window.__pwned=1</script>'));
  assert.equal(await p.$$eval('img', (x) => x.length), 0);
  assert.equal(await p.evaluate(() => (window as any).__pwned), undefined);
  assert.equal(await p.$$eval('script', (x) => x.length), 2);
  assert.deepEqual(errors, []);
});

test('many processes: at most 48 small multiples on one scale, the cap stated', async () => {
  const s = scenario({ steps: 20 });
  const base = scenarioResult(s);
  const procs = Array.from({ length: 60 }, (_, i) => ({ ...base.processes[0]!, pid: 1000 + i }));
  const file = join(dir, 'many.html');
  writeFileSync(file, await htmlReport({ ...base, processes: procs }, undefined));
  const p = await browser.newPage();
  const errors: string[] = [];
  p.on('pageerror', (e) => errors.push(e.message));
  await p.goto(pathToFileURL(file).href);
  await p.waitForSelector('#multiples .multiple');
  assert.equal(await p.$$eval('#multiples .multiple', (x) => x.length), 48);
  assert.match(await p.textContent('#charts') ?? '', /48 of 60 processes/);
  const maxes = await p.evaluate(() => [...(window as any).__leakscope.charts.entries()].filter(([k]: [string]) => k.startsWith('pid:')).map(([, u]: [string, any]) => u.scales.y.max));
  assert.equal(new Set(maxes).size, 1);
  // Markers are drawn on the small multiples too: purple at "warmup done" (0.2 s) in each one.
  const purple = await p.evaluate(() => [...(window as any).__leakscope.charts.entries()].filter(([k]: [string]) => k.startsWith('pid:')).map(([, u]: [string, any]) => {
    const x = Math.round(u.valToPos(0.2, 'x', true));
    const d = u.ctx.getImageData(x - 1, 0, 3, u.ctx.canvas.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - 0x8e) < 30 && Math.abs(d[i + 1] - 0x44) < 30 && Math.abs(d[i + 2] - 0xad) < 30) n++;
    return n;
  }));
  assert.equal(purple.length, 48);
  assert.ok(purple.every((n: number) => n > 20), purple.join());
  // Without a window grid the flame graph says so instead of failing.
  assert.match(await p.textContent('#flame-section') ?? '', /No stack data/);
  assert.deepEqual(errors, []);
});
