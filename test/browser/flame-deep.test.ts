// The flame graph with a stack 4,096 frames deep (the most a trace's stack gives a report; issue 17
// item 19): clicking a deep frame zooms to it, without a RangeError, and zooming back works.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BrowserContext } from 'playwright-core';
import { launch } from './chromium.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { frame } from '../../src/model/events.js';
import { cli } from '../support/cli.js';

let browser: BrowserContext;
let close: () => Promise<void>;
const dir = mkdtempSync(join(tmpdir(), 'leakscope-flame-deep-'));

before(async () => {
  ({ browser, close } = await launch());
});
after(async () => {
  await close();
  rmSync(dir, { recursive: true, force: true });
});

test('a 4,096-deep stack: click a frame deep down, it zooms; reset zoom works; no page error', async () => {
  const trace = join(dir, 'deep.lstrace');
  const w = TraceWriter.create(trace, { format: 1, clock: 'ns', source: 'test', startWallMs: Date.now() });
  const pid = 7;
  w.event({ kind: 'process', pid, t: 0, ppid: 1, command: 'deep', exe: 'deep' });
  const DEPTH = 4096;
  for (let i = 1; i <= DEPTH; i++) {
    w.event({ kind: 'frame', pid, t: 0, id: i, frame: frame({ fn: `f${i}`, file: 'deep.c', line: i }) });
    w.event({ kind: 'stack', pid, t: 0, id: i, parent: i - 1, frame: i });
  }
  // Two stacks sharing the deep trunk, so a zoom has something to hide.
  w.event({ kind: 'frame', pid, t: 0, id: DEPTH + 1, frame: frame({ fn: 'other' }) });
  w.event({ kind: 'stack', pid, t: 0, id: DEPTH + 1, parent: 2000, frame: DEPTH + 1 });
  w.event({ kind: 'alloc', pid, t: 10, tid: 1, addr: 0x1000, size: 4096, stack: DEPTH });
  w.event({ kind: 'alloc', pid, t: 20, tid: 1, addr: 0x2000, size: 1024, stack: DEPTH + 1 });
  await w.close();
  const html = join(dir, 'deep.html');
  const r = await cli(['report', trace, '-o', html]);
  assert.equal(r.code, 0, r.stderr);

  const p = await browser.newPage();
  const errors: string[] = [];
  p.on('pageerror', (e) => errors.push(e.message));
  p.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
  await p.goto(pathToFileURL(html).href);
  await p.waitForSelector('#flame svg g.frame');
  await p.waitForTimeout(500);
  const frames = await p.locator('#flame svg g.frame').count();
  assert.ok(frames > 500, `${frames} frames drawn`);
  const click = (prefix: string) => p.evaluate((pre) => {
    const g = [...document.querySelectorAll('#flame svg g.frame')].find((x) => (x.textContent ?? '').startsWith(pre));
    g?.dispatchEvent(new MouseEvent('click', { bubbles: true }));
    return g !== undefined;
  }, prefix);
  const width = (prefix: string) => p.evaluate((pre) => {
    const g = [...document.querySelectorAll('#flame svg g.frame')].find((x) => (x.textContent ?? '').startsWith(pre));
    return g ? Number(g.querySelector('rect')?.getAttribute('width') ?? 0) : 0;
  }, prefix);
  // The middle of the 4,096 frames is one elided frame; the outermost and innermost are drawn.
  assert.ok(await width('(') > 1, 'an "(N frames elided)" frame');
  assert.ok(await width('other') > 1, 'the second stack is drawn');
  // A click near the top zooms on a subtree thousands of frames deep (this threw RangeError).
  assert.ok(await click('f10 ('), 'frame f10 is drawn');
  await p.waitForTimeout(600);
  assert.deepEqual(errors, []);
  // A click deep in the first stack hides the other one.
  assert.ok(await click('f4000 ('), 'frame f4000 is drawn');
  await p.waitForTimeout(600);
  assert.ok((await width('other')) < 1, 'the sibling branch is hidden after the zoom');
  await p.click('#flame-reset');
  await p.waitForTimeout(600);
  assert.ok((await width('other')) > 1, 'reset zoom shows it again');
  // Search walks the whole tree too.
  await p.fill('#flame-search', 'f40');
  await p.waitForTimeout(600);
  assert.deepEqual(errors, []);
  await p.close();
});
