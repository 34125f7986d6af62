// Where teardown begins: a final descent, not the ups and downs of a server still serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { teardownStart } from '../../src/analyses/context.js';
import { sumSeries } from '../../src/analyses/leak-sites.js';

test('a server cut while it runs (each request up 2 KiB, down 2 KiB, 5 MB held) has no teardown; a real descent has one', () => {
  const x: number[] = [];
  const y: number[] = [];
  let t = 0;
  for (let r = 0; r < 1000; r++) {
    const base = 5e6 + ((999 - r) % 7) * 100; // ends at its lowest level
    x.push(t++, t++);
    y.push(base + 2048, base);
  }
  // (The last request's own frees may count: nothing after them is lost.)
  const live = teardownStart({ x, y }, 0, t);
  assert.ok(live === undefined || live.index >= x.length - 2, `teardown at ${live?.index} of ${x.length}`);
  // The same, then the process frees 4 MB in 20 steps (a log finding 8 B on the way).
  const dx = [...x], dy = [...y];
  let v = y[y.length - 1]!;
  for (let i = 0; i < 20; i++) {
    v -= 200_000;
    dx.push(t++, t++);
    dy.push(v, v + 8);
    v += 8;
  }
  const td = teardownStart({ x: dx, y: dy }, 0, t);
  assert.ok(td, 'no teardown found');
  assert.ok(td.index <= x.length - 1, `teardown at ${td.index}, after the descent began (${x.length - 1})`);
});

test('sumSeries keeps every change at one clock reading: 60 allocations on 8 readings are 60 points', () => {
  const a = { x: [] as number[], y: [] as number[] };
  const b = { x: [] as number[], y: [] as number[] };
  for (let i = 0; i < 60; i++) {
    const s = i % 2 ? a : b;
    s.x.push(Math.floor(i / 8));
    s.y.push((s.y[s.y.length - 1] ?? 0) + 512);
  }
  const sum = sumSeries([a, b]);
  assert.equal(sum.x.length, 60);
  assert.equal(sum.y[sum.y.length - 1], 60 * 512);
  for (let i = 1; i < 60; i++) assert.ok(sum.y[i]! > sum.y[i - 1]!, `not growing at ${i}`);
});
