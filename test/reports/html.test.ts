import { test } from 'node:test';
import assert from 'node:assert/strict';
import { safeJson, escapeHtml } from '../../src/reports/html/render.js';
import { htmlReport } from '../../src/reports/html/report.js';
import { buildReportData } from '../../src/reports/html/data.js';
import { WindowSink } from '../../src/analyses/window.js';
import { scenario, scenarioResult, HOSTILE } from './scenario.js';

test('safeJson cannot close a script element or open a comment', () => {
  const s = safeJson({ a: '</script><script>x()</script>', b: '<!-- -->', c: 'a\u2028b\u2029c', d: '&amp;' });
  assert.ok(!/[<>&\u2028\u2029]/.test(s), s);
  assert.deepEqual(JSON.parse(s), { a: '</script><script>x()</script>', b: '<!-- -->', c: 'a\u2028b\u2029c', d: '&amp;' });
  assert.equal(escapeHtml(`<a href="x">'&`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;');
});

test('report page: hostile names appear only escaped, one script runs, data round-trips', async () => {
  const s = scenario({ hostile: true });
  const w = new WindowSink();
  for (const e of s.events) w.event(e);
  const result = scenarioResult(s);
  const html = await htmlReport(result, w.finish());
  assert.ok(!html.includes(HOSTILE), 'raw hostile text never appears');
  assert.ok(!html.includes('<script>window.__pwned'), 'no injected script element');
  assert.ok(!html.includes('<img src=x'), 'no injected element');
  assert.equal((html.match(/<script/g) ?? []).length, 2, 'the data element and the bundle');
  assert.match(html, /Content-Security-Policy" content="default-src 'none'; script-src 'sha256-/);
  const json = html.match(/<script type="application\/json" id="leakscope-data">(.*?)<\/script>/s)![1]!;
  const data = JSON.parse(json);
  assert.equal(data.processes[0].pools[0].tag, s.poolTag);
  assert.ok(data.strings.some((x: string) => x.includes(HOSTILE)));
  assert.ok(!/https?:\/\//.test(html.replace(/http:\/\/www\.w3\.org\/[A-Za-z0-9/]*/g, '')), 'no network addresses besides XML namespaces');
});

test('report data: limits cap stacks and points, the rest is merged and stated', () => {
  const s = scenario();
  const w = new WindowSink();
  for (const e of s.events) w.event(e);
  const d = buildReportData(scenarioResult(s), w.finish(), { points: 50, stacks: 2, sites: 1, pools: 10, lines: 1, cells: 100_000, processes: 500 });
  const p = d.processes[0]!;
  assert.equal(p.x.length, 50);
  for (const l of p.lines) assert.equal(l.y.length, 50);
  assert.equal(p.sites.length, 1);
  assert.equal(p.sitesTotal, 3);
  assert.equal(p.flame!.stacks.length, 3, 'two kept + the merged rest');
  assert.equal(p.flame!.dropped, 2);
  const total = p.flame!.b.reduce((a, b) => a + b, 0);
  assert.equal(total, 100 * (1000 + 500 + 200 + 300), 'merging loses no bytes');
  // The step sampler keeps the last (peak) value at the end.
  const tot = p.lines.find((l) => l.group === 'total')!;
  assert.equal(tot.y[tot.y.length - 1], 100 * 1300);
});

test('report data: over the cell budget, buckets merge in pairs, then stacks; no byte is lost', () => {
  const s = scenario();
  const w = new WindowSink();
  for (const e of s.events) w.event(e);
  const ws = w.finish();
  const r = scenarioResult(s);
  const full = buildReportData(r, ws).processes[0]!.flame!;
  assert.ok(full.s.length > 150, `grid has ${full.s.length} cells`);
  assert.equal(full.width, ws.width);
  // 20 processes sharing 2,000 cells: 100 for each.
  const many = { ...r, processes: Array(20).fill(r.processes[0]) };
  const squeezed = buildReportData(many, ws, { points: 50, stacks: 2000, sites: 10, pools: 10, lines: 1, cells: 2000, processes: 500 }).processes[0]!.flame!;
  assert.ok(squeezed.s.length <= 100, `${squeezed.s.length} cells`);
  assert.ok(squeezed.width >= 2 * full.width);
  assert.equal(Math.log2(squeezed.width / full.width) % 1, 0, 'merged in pairs');
  assert.ok(squeezed.buckets < full.buckets);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  assert.equal(sum(squeezed.b), sum(full.b));
  assert.equal(sum(squeezed.c), sum(full.c));
  // Outstanding at the end is unchanged by merging.
  const endBytes = (f: typeof full) => sum(f.b.filter((_, i) => f.f[i] === -1));
  assert.equal(endBytes(squeezed), endBytes(full));
});
