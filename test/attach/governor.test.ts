// The probes' budget (src/attach/governor.ts) on a clock of its own: a rate held above the budget
// through the whole interval switches to walk, a burst that lifts the mean does not, the probes
// are tried again after the back-off, which doubles while the rate stays high and starts afresh
// once a try finds it under budget. (With real nginx, eBPF and the agent: test/agent/agent-governor.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeReading, Governor, MAX_BACKOFF_FACTOR } from '../../src/attach/governor.js';

const CHECK = 2000; // the agent checks its targets every 2 s
const cfg = { maxProbeRate: 1000, sustainMs: 30_000, backoffMs: 600_000 };

/** Feeds `seconds` of checks at `rate(t)` hits/s; returns the first decision and when it came. */
function run(g: Governor, clock: { t: number; hits: number }, seconds: number, rate: (t: number) => number) {
  const end = clock.t + seconds * 1000;
  while (clock.t < end) {
    clock.t += CHECK;
    clock.hits += (rate(clock.t) * CHECK) / 1000;
    const d = g.observe(clock.t, clock.hits, clock.t / 1000 / 2);
    if (d) return { d, at: clock.t };
  }
  return undefined;
}

test('governor: a rate held above the budget for the interval switches to walk; just under it, never', () => {
  const g = new Governor(cfg);
  g.probesOn(false);
  const clock = { t: 0, hits: 0 };
  assert.equal(run(g, clock, 600, () => 999), undefined, 'under budget: the probes stay');
  assert.ok(Math.abs(g.rate - 999) < 1, `the measured rate ${g.rate}`);
  const start = clock.t;
  const r = run(g, clock, 600, () => 1200);
  assert.ok(r && r.d.to === 'walk', 'over budget: to walk');
  // not before the interval held the new rate throughout (its last third at least)
  assert.ok(r.at - start >= cfg.sustainMs / 3, `switched ${r.at - start} ms after the rise`);
  assert.ok(r.at - start <= cfg.sustainMs + CHECK, `switched ${r.at - start} ms after the rise`);
  assert.equal(r.d.to === 'walk' && r.d.retryMs, cfg.backoffMs);
  assert.equal(g.switches, 1);
  assert.ok(!g.due(r.at + cfg.backoffMs - 1) && g.due(r.at + cfg.backoffMs));
  assert.match(describeReading(r.d.reading, cfg.maxProbeRate, 1.034), /^\d+ probe hits\/s over the last 30 s, budget 1000\/s \(traps ≥ 1\.\d ms\/s at 1\.0 µs a hit at best, as measured at start, ≥ 0% of the 0\.50 CPU-s\/s the target used\)$/);
});

test('governor: the log line says what a hit costs as measured, or what it assumed; a reading under 10 s with one decimal', () => {
  const r = { rate: 150_849, cpu: 1, seconds: 0.75 };
  // measured on the machine: 1.034 µs a hit at best, so at least 156 ms of traps a second
  assert.equal(describeReading(r, 10_000, 1.034), '150849 probe hits/s over the last 0.8 s, budget 10000/s (traps ≥ 156 ms/s at 1.0 µs a hit at best, as measured at start, ≥ 16% of the 1.00 CPU-s/s the target used)');
  assert.equal(describeReading({ ...r, seconds: 4.04 }, 10_000, 0.452), '150849 probe hits/s over the last 4.0 s, budget 10000/s (traps ≥ 68 ms/s at 0.45 µs a hit at best, as measured at start, ≥ 7% of the 1.00 CPU-s/s the target used)');
  // not measured (no figure from the loader, or a figure that is none): the constant, said to be assumed
  for (const none of [undefined, 0, Number.NaN]) {
    assert.equal(describeReading({ ...r, seconds: 30.4 }, 10_000, none), '150849 probe hits/s over the last 30 s, budget 10000/s (traps ~528 ms/s at 3.5 µs a hit, assumed, ~53% of the 1.00 CPU-s/s the target used)');
  }
  // no CPU reading: no share; a cost from 10 µs on is whole
  assert.equal(describeReading({ rate: 690, cpu: 0, seconds: 9.96 }, 50, 17.4), '690 probe hits/s over the last 10 s, budget 50/s (traps ≥ 12 ms/s at 17 µs a hit at best, as measured at start)');
});

test('governor: one burst that lifts the interval\'s mean above the budget is not a sustained rate', () => {
  const g = new Governor(cfg);
  g.probesOn(false);
  const clock = { t: 0, hits: 0 };
  // 8 s at 10x the budget every 60 s, 100/s between: the 30 s mean reaches 2.7x the budget
  assert.equal(run(g, clock, 1200, (t) => (t % 60_000 < 8000 ? 10_000 : 100)), undefined);
});

test('governor: tries again after the back-off, doubling while the rate stays high, afresh once under budget', () => {
  const g = new Governor(cfg);
  g.probesOn(false);
  const clock = { t: 0, hits: 0 };
  let r = run(g, clock, 120, () => 5000);
  assert.ok(r && r.d.to === 'walk' && !r.d.trial);
  const backoffs: number[] = [];
  for (let i = 0; i < 6; i++) {
    clock.t += r.d.to === 'walk' ? r.d.retryMs : 0;
    assert.ok(g.due(clock.t));
    g.probesOn(true);
    r = run(g, clock, 120, () => 5000);
    assert.ok(r && r.d.to === 'walk' && r.d.trial, 'still over budget: back to walk');
    backoffs.push(r.d.to === 'walk' ? r.d.retryMs : 0);
  }
  const b = cfg.backoffMs;
  assert.deepEqual(backoffs, [2 * b, 4 * b, 8 * b, 16 * b, 16 * b, 16 * b].map((x) => Math.min(x, MAX_BACKOFF_FACTOR * b)));
  // the traffic fell: the next try stays with the probes, and a later trip backs off afresh
  clock.t += backoffs[backoffs.length - 1]!;
  g.probesOn(true);
  r = run(g, clock, 120, () => 300);
  assert.ok(r && r.d.to === 'events', 'under budget on a try: the probes stay');
  assert.ok(!g.trial);
  r = run(g, clock, 120, () => 5000);
  assert.ok(r && r.d.to === 'walk' && !r.d.trial && r.d.retryMs === b);
});

test('governor: a session started again (a re-attach) counts its hits from 0 without a negative or doubled rate', () => {
  const g = new Governor(cfg);
  g.probesOn(false);
  const clock = { t: 0, hits: 0 };
  assert.equal(run(g, clock, 60, () => 800), undefined);
  g.probesOn(false);
  clock.hits = 0;
  assert.equal(run(g, clock, 60, () => 800), undefined);
  assert.ok(Math.abs(g.rate - 800) < 1, `rate ${g.rate}`);
});
