// The sum of a site's members (the same caller reached through several stacks): every change
// kept, in a report's bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumSeries } from '../../src/analyses/leak-sites.js';

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

test('sumSeries of many members stays within a report series\' 256 points, ending at their sum', () => {
  const members = Array.from({ length: 5 }, (_, k) => ({ x: Array.from({ length: 129 }, (_, i) => i * 5 + k), y: Array.from({ length: 129 }, (_, i) => (i + 1) * 10) }));
  const sum = sumSeries(members);
  assert.ok(sum.x.length <= 256 && sum.x.length >= 128, `${sum.x.length} points`);
  assert.equal(sum.y[sum.y.length - 1], 5 * 1290);
  assert.equal(sum.hi![sum.hi!.length - 1], 5 * 1290);
});
