// attach's auto mode (src/attach/auto-mode.ts) with a host of its own: the probe session's events
// are held through the decision window, then written in order (under the budget) or dropped for
// a walk, keeping only the processes' lives (over it); a rate far over the budget decides at
// once; tracing that ends within the window writes what was held; a rate that stays over the
// budget after the window gets one warning and no switch. Hits are fed as a rate times the
// real time elapsed, so each reading is the rate given whatever the machine's load. (With real
// apache2 and eBPF: attach-auto-apache.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../../src/model/events.js';
import { AutoMode, autoChooses } from '../../src/attach/auto-mode.js';
import { loadProfile } from '../../src/attach/profile.js';
import { until } from './helpers.js';

const BUDGET = 1000;
const WINDOW = 600;

function host(rate: () => number, opts: { lateMs?: number; walkFails?: boolean; hitCostUs?: number } = {}) {
  const calls: string[] = [];
  const said: string[] = [];
  const warned: string[] = [];
  let hits = 0;
  let last = Date.now();
  let ended = false;
  const h = {
    budget: BUDGET,
    windowMs: WINDOW,
    lateMs: opts.lateMs,
    hits: () => {
      const now = Date.now();
      hits += (rate() * (now - last)) / 1000;
      last = now;
      return hits;
    },
    cpuS: () => 0,
    hitCostUs: () => opts.hitCostUs,
    stopProbes: async () => { calls.push('stopProbes'); },
    startWalk: async () => {
      calls.push('startWalk');
      if (opts.walkFails) throw new Error('no loader');
    },
    end: () => { ended = true; },
    say: (l: string) => said.push(l),
    warn: (l: string) => warned.push(l),
  };
  return { h, calls, said, warned, ended: () => ended, bump: (n: number) => { hits += n; } };
}

function trace() {
  const events: Event[] = [];
  return { events, event: (e: Event) => events.push(e) };
}

const proc = (t: number): Event => ({ kind: 'process', pid: 7, t, ppid: 1, command: 'srv', exe: '/srv' });
const create = (t: number, pool: number): Event => ({ kind: 'pool-create', pid: 7, t, tid: 7, pool, parent: 0, poolKind: 'apr', tag: 'request', stack: 0 });
const rss = (t: number): Event => ({ kind: 'rss', pid: 7, t, bytes: 4096 });

test('under the budget: the events are held through the window, then written in order, and the ones after go straight through', async () => {
  const out = trace();
  const x = host(() => BUDGET / 2, { hitCostUs: 0.452 });
  const a = new AutoMode(x.h, out);
  a.held.event(proc(1));
  a.begin();
  a.held.event(create(2, 0x10));
  a.held.event(rss(3));
  assert.equal(out.events.length, 0, 'nothing written while deciding');
  assert.equal(a.held.size, 3);
  await until(() => a.state !== 'deciding', 'a decision', 10_000);
  assert.equal(a.state, 'events');
  assert.deepEqual(out.events.map((e) => e.t), [1, 2, 3], 'the held events, in order');
  a.held.event(create(4, 0x20));
  assert.equal(out.events.length, 4, 'after the decision, straight through');
  assert.equal(x.said.length, 1);
  // the window is 0.6 s: its seconds with one decimal; the cost of a hit as the host's loader measured it
  assert.match(x.said[0]!, /^auto mode: \d+ probe hits\/s over the last 0\.\d s, budget 1000\/s \(traps ≥ 0\.\d ms\/s at 0\.45 µs a hit at best, as measured at start\): within the budget, the probes stay \(events mode\)$/);
  assert.deepEqual(x.calls, [], 'the probes stay');
  await a.settle();
});

test('over the budget for the whole window: the probes stop, then the walk starts; of the held events only the processes\' lives are written', async () => {
  const out = trace();
  const x = host(() => BUDGET * 1.5);
  const a = new AutoMode(x.h, out);
  a.held.event(proc(1));
  a.begin();
  a.held.event(create(2, 0x10));
  a.held.event(rss(3));
  await until(() => a.state === 'walk', 'walk mode', 10_000);
  assert.deepEqual(x.calls, ['stopProbes', 'startWalk']);
  assert.deepEqual(out.events.map((e) => e.kind), ['process', 'rss'], 'no pool of the probes\' reaches the trace');
  a.held.event(create(4, 0x20));
  assert.equal(out.events.length, 2, 'what the probe session says while it stops is dropped');
  assert.equal(x.warned.length, 1);
  // no cost measured: the one assumed, said so
  assert.match(x.warned[0]!, /^auto mode: \d+ probe hits\/s over the last 0\.\d s, budget 1000\/s \(traps ~\d\.\d ms\/s at 3\.5 µs a hit, assumed\): over the budget, switched to walk mode .*creation stacks.*`--mode events` keeps the probes$/);
  assert.deepEqual(x.said, []);
  await a.settle();
});

for (const held of [256, 0]) {
  test(`far over the budget: decided at once, before the window ends, with the hits so far (${held ? 'the hits are events held' : 'no event: the hits are counted in the kernel'})`, async () => {
    const out = trace();
    const x = host(() => 0);
    const a = new AutoMode({ ...x.h, windowMs: 60_000 }, out);
    const t0 = Date.now();
    a.begin();
    // more hits than the budget allows the whole minute, in no time at all
    x.bump(BUDGET * 60 + 1);
    for (let i = 0; i < held; i++) a.held.event(create(i, 0x1000 + i));
    await until(() => a.state === 'walk', 'walk mode', 10_000);
    assert.ok(Date.now() - t0 < 30_000, `decided ${Date.now() - t0} ms in, the window being 60 s`);
    assert.deepEqual(out.events, []);
    assert.deepEqual(x.calls, ['stopProbes', 'startWalk']);
    await a.settle();
  });
}

test('exactly the hits the budget allows the whole window, early: no decision until the window ends', async () => {
  const out = trace();
  const x = host(() => 0);
  const a = new AutoMode(x.h, out);
  a.begin();
  x.bump((BUDGET * WINDOW) / 1000);
  await new Promise((r) => setTimeout(r, WINDOW / 2));
  assert.equal(a.state, 'deciding', 'at the budget is not over it');
  await until(() => a.state !== 'deciding', 'a decision', 10_000);
  assert.equal(a.state, 'events');
  await a.settle();
});

test('a walk that cannot start: tracing ends, with the reason', async () => {
  const x = host(() => BUDGET * 3, { walkFails: true });
  const a = new AutoMode(x.h, trace());
  a.begin();
  await until(() => x.ended(), 'the end', 10_000);
  await a.settle();
  assert.match(x.warned[0]!, /over the budget, but walk mode could not start \(no loader\); tracing ends$/);
});

test('tracing ends within the window: every held event is written, whatever the rate', async () => {
  for (const rate of [BUDGET / 2, BUDGET * 4]) {
    const out = trace();
    const x = host(() => rate);
    const a = new AutoMode({ ...x.h, windowMs: 60_000 }, out);
    a.held.event(proc(1));
    a.begin();
    a.held.event(create(2, 0x10));
    await new Promise((r) => setTimeout(r, 200));
    await a.settle();
    assert.equal(a.state, 'events');
    assert.deepEqual(out.events.map((e) => e.t), [1, 2]);
    assert.deepEqual(x.calls, []);
    assert.match(x.said[0]!, rate > BUDGET
      ? /over the budget, but tracing ended within the first 60 s: the probes' events are kept \(events mode; a longer trace would have switched to walk mode\)$/
      : /within the budget \(tracing ended within the first 60 s\), events mode$/);
  }
});

test('after the window, a rate that stays over the budget: one warning with the cost and --mode walk, no switch', async () => {
  let rate = BUDGET / 4;
  const out = trace();
  const x = host(() => rate, { lateMs: 3000 });
  const a = new AutoMode(x.h, out);
  a.begin();
  await until(() => a.state === 'events', 'events mode', 10_000);
  rate = BUDGET * 2;
  await until(() => x.warned.length > 0, 'the warning', 20_000);
  assert.match(x.warned[0]!, /^\d+ probe hits\/s over the last \d\.\d s, budget 1000\/s .*: the probes have cost more than the budget for 3 s; `--mode walk` costs nothing per request/);
  await new Promise((r) => setTimeout(r, 3500));
  assert.equal(x.warned.length, 1, 'once');
  assert.equal(a.state, 'events');
  assert.deepEqual(x.calls, []);
  await a.settle();
});

test('auto has a choice only with roots to walk, a --pool-sample, a budget and no per-call probes', () => {
  const apr = loadProfile('apr');
  const nginx = loadProfile('nginx');
  const libc = loadProfile('libc');
  assert.equal(autoChooses([apr], false, 2000, 10000), true);
  assert.equal(autoChooses([nginx], false, 2000, 10000), true);
  assert.equal(autoChooses([apr], true, 2000, 10000), false, '--pool-allocs');
  assert.equal(autoChooses([libc], false, 2000, 10000), false, 'libc: no roots, a probe per call');
  assert.equal(autoChooses([nginx, libc], false, 2000, 10000), false, 'with libc');
  assert.equal(autoChooses([apr], false, 0, 10000), false, 'no --pool-sample to walk at');
  assert.equal(autoChooses([apr], false, 2000, 0), false, '--budget 0');
  const noRoots = { ...apr, discover: { ...apr.discover, roots: [] } };
  assert.equal(autoChooses([noRoots], false, 2000, 10000), false, 'a profile without roots');
});
