import { test } from 'node:test';
import assert from 'node:assert/strict';
import { growthVerdict } from '../../src/analyses/growth.js';
import { mannKendall, theilSen, normalUpperTail } from '../../src/analyses/trend.js';
import { BoundedSeries } from '../../src/engine/series.js';

/** Deterministic PRNG (mulberry32) so noisy cases are reproducible. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Feeds values at times 0..n-1 through the engine's bounded series, as the engine records them. */
function series(values: number[], xs?: number[]) {
  const s = new BoundedSeries();
  values.forEach((v, i) => s.add(xs ? xs[i]! : i, v));
  return s.points();
}

test('Mann–Kendall and Theil–Sen match hand-computed values', () => {
  const mk = mannKendall([1, 2, 3, 4, 5]);
  assert.equal(mk.s, 10);
  assert.equal(mk.tau, 1);
  // Var = 5*4*15/18 = 16.67; Z = 9/4.08 = 2.205; p = 0.0275
  assert.ok(Math.abs(mk.z - 2.2045) < 1e-3, String(mk.z));
  assert.ok(Math.abs(mk.p - 0.0275) < 1e-3, String(mk.p));
  const ties = mannKendall([1, 1, 2, 2]);
  assert.equal(ties.s, 4);
  assert.equal(mannKendall([3, 2, 1]).s, -3);
  assert.equal(theilSen([0, 1, 2, 3, 4], [0, 2, 4, 6, 100]), 2);
  assert.ok(Math.abs(normalUpperTail(1.959964) - 0.025) < 1e-6);
});

test('a steady climb that is never released is a leak', () => {
  const v = growthVerdict(series(Array.from({ length: 60 }, (_, i) => 1000 + 2048 * i)));
  assert.equal(v.verdict, 'leak', v.explanation);
  assert.ok(v.pValue < 1e-6 && v.tau > 0.99 && v.slope > 2000);
  assert.equal(v.last, v.peak);
  assert.match(v.explanation, /p=/);
});

test('a noisy leak (growth plus churn) is still a leak', () => {
  const r = rng(7);
  const vals: number[] = [];
  for (let i = 0; i < 2000; i++) vals.push(i * 100 + Math.floor(r() * 20000));
  const v = growthVerdict(series(vals));
  assert.equal(v.verdict, 'leak', v.explanation);
});

test('a leak that stops halfway and then only sees churn on top is still a leak (memory kept)', () => {
  // 30 leaked 4 KiB pools (one per request), then 30 requests that create and destroy one each.
  // Time runs with every request (an /ok between leaking ones in the first phase), as in the
  // nginx fixture; the site changes only on /scratch requests.
  const vals: number[] = [];
  const xs: number[] = [];
  let leaked = 0;
  let t = 0;
  for (let i = 0; i < 30; i++) {
    t += 2;
    xs.push(t);
    vals.push(++leaked * 4096);
  }
  for (let i = 0; i < 30; i++) {
    t += 1;
    xs.push(t, t + 0.5);
    vals.push((leaked + 1) * 4096, leaked * 4096);
  }
  const v = growthVerdict(series(vals, xs));
  assert.equal(v.verdict, 'leak', v.explanation);
});

test('growth released by a clear is bounded', () => {
  const vals: number[] = [];
  for (let c = 0; c < 40; c++) {
    for (let k = 1; k <= 3; k++) vals.push(k * 100);
    vals.push(0);
  }
  for (let k = 1; k <= 40; k++) vals.push(k * 500); // a stream
  vals.push(0);
  for (let c = 0; c < 20; c++) {
    for (let k = 1; k <= 3; k++) vals.push(k * 100);
    vals.push(0);
  }
  const v = growthVerdict(series(vals));
  assert.equal(v.verdict, 'bounded', v.explanation);
  assert.ok(v.peak >= 20000 && v.last < v.peak / 2);
});

test('growth that plateaus early and then churns is bounded', () => {
  const r = rng(3);
  const vals: number[] = [];
  for (let i = 0; i < 100; i++) vals.push(i * 1000);
  for (let i = 0; i < 400; i++) vals.push(90000 + Math.floor(r() * 10000));
  const v = growthVerdict(series(vals), { warmup: 0 });
  assert.equal(v.verdict, 'bounded', v.explanation);
  assert.ok(v.lastGrowthAt < 0.35);
});

test('churn with no trend is steady (per-request pools created and destroyed)', () => {
  const r = rng(11);
  const vals: number[] = [];
  for (let i = 0; i < 500; i++) {
    vals.push(8192 + Math.floor(r() * 4096));
    vals.push(0);
  }
  const v = growthVerdict(series(vals));
  assert.equal(v.verdict, 'steady', v.explanation);
});

test('a long-lived pool that does not change is steady; start-up growth is warm-up', () => {
  assert.equal(growthVerdict(series([0, 4096]), { window: [0, 100] }).verdict, 'steady');
  // Config read at start-up (first 10% of the window), then nothing for the rest: steady.
  const xs = [...Array.from({ length: 100 }, (_, i) => i), 1000];
  const vals = [...Array.from({ length: 100 }, (_, i) => i * 1200), 99 * 1200 - 5000];
  const v = growthVerdict(series(vals, xs), { window: [0, 1000] });
  assert.equal(v.verdict, 'steady', v.explanation);
});

test('teardown releases after `until` do not hide a leak', () => {
  const vals = [...Array.from({ length: 40 }, (_, i) => (i + 1) * 2100), 0];
  const xs = [...Array.from({ length: 40 }, (_, i) => i * 10), 1000];
  assert.equal(growthVerdict(series(vals, xs)).verdict, 'bounded');
  const v = growthVerdict(series(vals, xs), { until: 999, window: [0, 1000] });
  assert.equal(v.verdict, 'leak', v.explanation);
});

test('few points of growth are "growing", not a leak', () => {
  const v = growthVerdict(series([0, 100, 200, 300, 400]), { warmup: 0 });
  assert.equal(v.verdict, 'growing', v.explanation);
  assert.match(v.explanation, /only 5 changes/);
});

test('a noisy random walk without drift is a leak only where it truly kept climbing', () => {
  let leaks = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const r = rng(seed);
    const vals: number[] = [];
    let v = 50000;
    for (let i = 0; i < 1000; i++) {
      v = Math.max(0, v + Math.round((r() - 0.5) * 2000));
      vals.push(v);
    }
    // A walk can wander; it may read as a leak only when it truly kept climbing: its floor in the
    // last quarter above its floor after warm-up.
    const res = growthVerdict(series(vals));
    const climbed = Math.min(...vals.slice(750)) > Math.min(...vals.slice(150, 400));
    assert.ok(res.verdict !== 'leak' || climbed, `seed ${seed}: ${res.verdict} without a climb: ${res.explanation}`);
    if (res.verdict === 'leak') leaks++;
  }
  // Not every driftless walk climbs like that: the verdict must not call them all leaks.
  assert.ok(leaks <= 10, `${leaks} of 20 driftless walks called leak`);
});

test('bounded series keep at most 256 points and still show troughs', () => {
  const s = new BoundedSeries();
  for (let i = 0; i < 100000; i++) s.add(i, i % 1000 === 999 ? 0 : i);
  const p = s.points();
  assert.ok(p.x.length <= 256, String(p.x.length));
  assert.equal(Math.min(...p.lo), 0);
  assert.equal(p.x[p.x.length - 1], 99999);
});

test('verdicts hold across noise: 30 seeds per shape, at most 3 misses each', () => {
  const shapes: { name: string; want: string; make: (r: () => number) => number[] }[] = [
    { name: 'leak under heavy churn', want: 'leak', make: (r) => Array.from({ length: 2000 }, (_, i) => i * 20 + Math.floor(r() * 40000)) },
    { name: 'slow leak, alternating big churn', want: 'leak', make: (r) => Array.from({ length: 3000 }, (_, i) => i * 10 + (i % 2 ? 0 : Math.floor(r() * 50000))) },
    {
      name: 'noisy growth released by a clear', want: 'bounded',
      make: (r) => [...Array.from({ length: 600 }, (_, i) => i * 50 + Math.floor(r() * 3000)), ...Array.from({ length: 100 }, () => Math.floor(r() * 3000))],
    },
    { name: 'noisy churn without trend', want: 'steady', make: (r) => Array.from({ length: 1000 }, (_, i) => (i % 2 ? Math.floor(r() * 500) : 8192 + Math.floor(r() * 4096))) },
    { name: 'sawtooth cleared every 40 changes (25 teeth)', want: 'steady', make: (r) => Array.from({ length: 1000 }, (_, i) => (i % 40) * 500 + Math.floor(r() * 300)) },
    { name: 'sawtooth of four long teeth', want: 'bounded', make: (r) => Array.from({ length: 1000 }, (_, i) => (i % 250) * 100 + Math.floor(r() * 300)) },
  ];
  for (const s of shapes) {
    let misses = 0;
    const seen: string[] = [];
    for (let seed = 1; seed <= 30; seed++) {
      const v = growthVerdict(series(s.make(rng(seed))));
      if (v.verdict !== s.want) {
        misses++;
        seen.push(`${seed}: ${v.verdict} (${v.explanation})`);
      }
    }
    assert.ok(misses <= 3, `${s.name}: ${misses} misses\n${seen.join('\n')}`);
  }
});
