// The --interval view (src/attach/live-growth.ts) on event sequences whose answer is known:
// growth is that of the interval just ended, a pool made before attach counts (its sampled size,
// the allocations into it), and "no call seen" is told apart from "nothing grew".

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../../src/model/events.js';
import { LiveGrowth, formatGrowthRows } from '../../src/attach/live-growth.js';

const S = 1e9;
const when = new Date(2024, 0, 1, 12, 0, 0);

function feed(live: LiveGrowth, events: Event[]): void {
  for (const e of events) live.event(e);
}

test('interval growth: what grew between the last two samples, with the growth since attach beside it', () => {
  const written: Event[] = [];
  const live = new LiveGrowth({ event: (e) => written.push(e) });
  live.sample(0);
  feed(live, [
    { kind: 'frame', pid: 7, id: 1, frame: { pc: 0x1234, module: '/bin/x', fn: '', file: '', line: 0, inlined: false } },
    { kind: 'stack', pid: 7, id: 1, parent: 0, frame: 1 },
    { kind: 'alloc', pid: 7, t: 1 * S, tid: 7, addr: 0x1000, size: 4096, stack: 1 },
  ]);
  live.sample(15 * S);
  let v = live.top(10);
  assert.equal(v.rows.length, 1);
  assert.deepEqual([v.rows[0]!.growth, v.rows[0]!.total, v.rows[0]!.pc], [4096, 4096, 0x1234]);
  assert.equal(v.intervalNs, 15 * S);
  // nothing more in the next interval: nothing grew in it, although the site grew since attach
  live.sample(30 * S);
  v = live.top(10);
  assert.equal(v.rows.length, 0);
  assert.match(formatGrowthRows(v, new Map(), when), /Top 0 growing sites in the last 15\.0 s \(30\.0 s traced\):\n {2}\(nothing grew in the last 15\.0 s\)/);
  // the events went on to the trace writer untouched
  assert.equal(written.length, 3);
});

test('a pool made before attach, seen by its sampled size and the allocations into it, grows in its own row', () => {
  const live = new LiveGrowth({ event() {} });
  live.sample(0);
  // the size read at the first sample is its baseline, not growth
  feed(live, [{ kind: 'pool-size', pid: 9, t: 1 * S, pool: 0xabc0, bytes: 100_000 }, { kind: 'pool-tag', pid: 9, t: 1 * S, pool: 0xabc0, tag: 'pchild' }]);
  live.sample(15 * S);
  assert.equal(live.top(10).rows.length, 0);
  feed(live, [{ kind: 'pool-size', pid: 9, t: 16 * S, pool: 0xabc0, bytes: 150_000 }]);
  live.sample(30 * S);
  let v = live.top(10);
  assert.equal(v.rows.length, 1);
  assert.deepEqual([v.rows[0]!.growth, v.rows[0]!.total, v.rows[0]!.bytes], [50_000, 50_000, 150_000]);
  const text = formatGrowthRows(v, new Map(), when);
  assert.match(text, /pid 9 {2}\+48\.8 KiB in 15\.0 s {2}\(\+48\.8 KiB since attach; 1 live pool, 146 KiB\) {2}\w+ {2}pool 0xabc0 "pchild" \(made before attach\)/);
  // allocations into it (--pool-allocs) between samples count too
  feed(live, [{ kind: 'pool-alloc', pid: 9, t: 31 * S, tid: 9, pool: 0xabc0, size: 2048, addr: 0, stack: 0 }]);
  live.sample(45 * S);
  v = live.top(10);
  assert.equal(v.rows[0]!.growth, 2048);
  // a clear gives it back
  feed(live, [{ kind: 'pool-clear', pid: 9, t: 46 * S, pool: 0xabc0, stack: 0 }]);
  live.sample(60 * S);
  assert.equal(live.top(10).rows.length, 0);
});

test('no call seen at all is its own message, with what to try; a tag cannot drive the terminal', () => {
  const live = new LiveGrowth({ event() {} });
  live.sample(0);
  live.sample(15 * S);
  const text = formatGrowthRows(live.top(10), new Map(), when);
  assert.match(text, /\(no call seen yet: no probed function has run in any traced process .*leakscope kernel/);
  assert.doesNotMatch(text, /nothing grew/);
  feed(live, [
    { kind: 'pool-tag', pid: 3, t: 1, pool: 0x10, tag: 'evil\u001b]0;owned\u0007' },
    { kind: 'pool-alloc', pid: 3, t: 2, tid: 3, pool: 0x10, size: 64, addr: 0, stack: 0 },
  ]);
  live.sample(30 * S);
  const t2 = formatGrowthRows(live.top(10), new Map(), when);
  assert.doesNotMatch(t2, /[\u0000-\u001f\u007f](?<!\n)/);
  assert.match(t2, /pool 0x10 "evil\\x1b\]0;owned\\x07"/);
});

test('a pool found alive by a walk (pool-found): its row is named by its tag, its first size is the baseline', () => {
  const live = new LiveGrowth({ event() {} });
  live.sample(0);
  feed(live, [
    { kind: 'pool-found', pid: 4, t: 1, pool: 0x7000, parent: 0x6000, poolKind: 'apr', tag: 'pchild' },
    { kind: 'pool-size', pid: 4, t: 2, pool: 0x7000, bytes: 80_000 },
  ]);
  live.sample(15 * S);
  assert.equal(live.top(10).rows.length, 0, 'what it held before the trace is no growth');
  feed(live, [{ kind: 'pool-size', pid: 4, t: 16 * S, pool: 0x7000, bytes: 81_024 }]);
  live.sample(30 * S);
  const v = live.top(10);
  assert.deepEqual(v.rows.map((r) => [r.growth, r.total, r.label]), [[1024, 1024, 'pool 0x7000 "pchild" (made before attach)']]);
});
