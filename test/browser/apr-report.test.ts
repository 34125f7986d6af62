// `leakscope report` on the real APR pool-debug log (httpd, one child; see test/fixtures), opened
// in headless Chromium: small multiples for the three processes, the leaking child chosen first,
// its pchild pool class flagged, and a time range inside the child's life showing the leaking
// site (mod_leaky.c:25) that the end-of-trace view cannot (the child destroys its pools at exit).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { launch } from './chromium.js';
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { analyzeFiles } from '../../src/pipeline/analyze-files.js';
import { cliSync } from '../support/cli.js';

const fixture = new URL('../fixtures/apr-pool-debug.httpd-1child.log.gz', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'leakscope-apr-report-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('report of the APR pool-debug log in the browser', async () => {
  const out = join(dir, 'apr.html');
  const r = cliSync(['report', fixture, '-o', out]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /^leakscope: wrote .*apr\.html \(\d+ KiB\)\n$/);
  const { browser, close } = await launch();
  try {
    const p = await browser.newPage();
    const errors: string[] = [];
    p.on('pageerror', (e) => errors.push(e.message));
    // (How fast it loads is measured by `npm run bench -- report`, not asserted here.)
    await p.goto(pathToFileURL(out).href);
    await p.waitForSelector('#summary tbody tr');
    // Summary: the three processes, the child chosen and flagged.
    const rows = await p.$$eval('#summary tbody tr', (trs) => trs.map((tr) => [tr.getAttribute('data-pid'), tr.className, tr.querySelector('.badge')!.textContent]));
    assert.deepEqual(rows.map((x) => x[0]), ['3153', '3156', '3160']);
    assert.deepEqual(rows.find((x) => x[0] === '3160')!.slice(1), ['sel', 'leak']);
    assert.match(await p.textContent('#summary tr[data-pid="3160"]') ?? '', /pool pchild — 0 B \(peak \d+\.?\d* KiB\)/);
    // Small multiples, one shared scale, every one drew.
    const multiples = await p.evaluate(() => {
      const ls = (window as any).__leakscope;
      return [...ls.charts.entries()].filter(([k]: [string]) => k.startsWith('pid:')).map(([k, u]: [string, any]) => {
        const c = u.ctx.canvas as HTMLCanvasElement;
        const d = u.ctx.getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] > 0) ink++;
        return [k, u.scales.y.max, ink];
      });
    });
    assert.equal(multiples.length, 3);
    assert.equal(new Set(multiples.map((m: any) => m[1])).size, 1, 'one y scale');
    for (const m of multiples) assert.ok(m[2] > 300, `chart ${m[0]} drew (${m[2]} px)`);
    // The child's chart: events on x, the pchild class drawn and rising.
    const main = await p.evaluate(() => {
      const u = (window as any).__leakscope.charts.get('main');
      const i = u.series.findIndex((s: any) => s.label === 'pool pchild');
      const ys = u.data[i].filter((y: number | null) => y !== null);
      return { axis: u.axes[0].label, i, first: ys[0], peak: Math.max(...ys) };
    });
    assert.equal(main.axis, 'events');
    assert.ok(main.i > 0 && main.peak > 80_000 && main.peak > 10 * main.first, JSON.stringify(main));
    assert.match(await p.textContent('table.classes tr.bad') ?? '', /pchild/);
    // At the end the child has released everything...
    assert.ok(await p.isVisible('#flame-empty'));
    // ...but in the middle of its life the leak is plain: a range over the /leak traffic.
    const life = await p.evaluate(() => {
      const ls = (window as any).__leakscope;
      const proc = ls.data.processes.find((x: any) => x.pid === 3160);
      return { start: proc.startT, end: proc.endT };
    });
    await p.evaluate(([a, b]) => (window as any).__leakscope.setRange(a, b), [life.start, life.start + (life.end - life.start) * 0.7]);
    await p.waitForSelector('#flame g.frame[name="mod_leaky.c:25"]');
    const table = await p.evaluate(() => (window as any).__leakscope.tableRows());
    const leaky = table.find((x: any) => x.label === 'mod_leaky.c:25');
    assert.ok(leaky && leaky.bytes > 40 * 1024 && leaky.count > 20, JSON.stringify(table.slice(0, 5)));
    assert.equal(table[0].label, 'mod_leaky.c:25', 'the biggest outstanding site in that range');
    // The parent's pool tree (a click on its summary row): pconf under the root pool, ptemp under
    // pconf, each with its tag and size; the leaking ones highlighted, the steady one not.
    await p.click('#summary tr[data-pid="3153"]');
    await p.waitForSelector('#pooltree');
    const tree = await p.$$eval('#pooltree span.pool', (xs) => xs.map((x) => {
      let depth = 0;
      for (let e: Element | null = x.closest('li'); e; e = e.parentElement!.closest('li')) depth++;
      return { tag: x.querySelector('code')!.textContent, bad: x.classList.contains('bad'), depth, text: x.textContent };
    }));
    const node = (tag: string) => tree.find((n) => n.tag === tag)!;
    assert.deepEqual(['(untagged)', 'pconf', 'ptemp', 'plog'].map((t) => node(t).depth), [1, 2, 3, 2], JSON.stringify(tree));
    // 3153 is httpd's start-up process: all it did was parse the configuration, so none of its
    // pools is flagged (a pool is flagged when its verdict is leak or growing).
    const startup = (await analyzeFiles([fixture])).processes.find((x) => x.pid === 3153)!;
    const verdictOf = (tag: string) => startup.pools.flatMap(function all(x): typeof startup.pools { return [x, ...x.children.flatMap(all)]; }).find((x) => x.tag === tag)!.verdict?.verdict;
    assert.deepEqual(['pconf', 'ptemp', 'plog'].map((t) => node(t).bad), ['pconf', 'ptemp', 'plog'].map((t) => verdictOf(t) === 'leak' || verdictOf(t) === 'growing'));
    assert.deepEqual(['pconf', 'ptemp', 'plog'].map((t) => node(t).bad), [false, false, false]);
    // Its allocations: every allocation line of that pool in the log but the first, which the
    // source takes as the baseline of a pool older than the log (src/sources/apr-log.ts).
    const lines = gunzipSync(readFileSync(fixture)).toString('latin1').split('\n')
      .filter((l) => /^POOL DEBUG: \[3153\/\d+\] +P(C)?ALLOC .* 0x555754c20d50 "pconf"/.test(l)).length;
    assert.ok(lines > 4000, `${lines} allocation lines`);
    assert.match(node('pconf').text!, new RegExp(`apr 0x[0-9a-f]+ · 92\\.3 KiB \\(tree 98\\.3 KiB\\) · ${(lines - 1).toLocaleString('en')} allocs`));
    assert.match(node('ptemp').text!, /6\.0 KiB .*created at main\.c:786/);
    await p.waitForTimeout(500);
    if (process.env.LEAKSCOPE_SHOTS) await p.screenshot({ path: join(process.env.LEAKSCOPE_SHOTS, 'apr-report.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await close();
  }
});
