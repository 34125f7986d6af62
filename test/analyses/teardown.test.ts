// Where teardown begins: a final descent, not the ups and downs of a server still serving.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { teardownStart } from '../../src/analyses/context.js';

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
