// Young pools (rows instead of PoolState objects until a pool needs to be one) must be invisible:
// the engine with them and without them gives the same state and the same analysis, whatever
// happens to a pool while it is young (more sites than a row holds, enough allocations for a
// series, addressed allocations, frees, clears, tags, sizes, children, forks, a finish() in the
// middle of the fold).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Engine } from '../../src/engine/engine.js';
import type { EngineState } from '../../src/engine/state.js';
import { analyze } from '../../src/analyses/analyze.js';
import type { Event, TraceMeta } from '../../src/model/events.js';

const pid = fc.constantFrom(1, 2);
// Address 0 too: a pool event naming no pool must not land on a young pool's row.
const pool = fc.oneof(fc.integer({ min: 1, max: 5 }).map((k) => 0x7000_0000_0000 + 0x400 * k), fc.constant(0));
const addr = fc.integer({ min: 1, max: 12 }).map((k) => 0x5555_0000_0000 + 32 * k);
const stack = fc.integer({ min: 0, max: 7 });
// Few sites for address-less pool allocations, so that a young pool sees a site again, and sometimes a fifth one.
const poolSite = fc.integer({ min: 0, max: 5 });
const size = fc.oneof(fc.integer({ min: 0, max: 4096 }), fc.constant(2 ** 33));
const dt = fc.integer({ min: 0, max: 1000 });
// Weighted toward the request-pool life: parentless creates, address-less allocations, destroys.
const step: fc.Arbitrary<Omit<Event, 't'> & { dt: number }> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('pool-create' as const), pid, dt, tid: pid, pool, parent: fc.constant(0), poolKind: fc.constantFrom('nginx', 'apr'), tag: fc.constantFrom('', 'request', 'conn'), stack }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('pool-create' as const), pid, dt, tid: pid, pool, parent: pool, poolKind: fc.constant('apr'), tag: fc.constantFrom('', 'request'), stack }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('pool-alloc' as const), pid, dt, tid: pid, pool, size, addr: fc.constant(0), stack: poolSite }), weight: 10 },
  { arbitrary: fc.record({ kind: fc.constant('pool-alloc' as const), pid, dt, tid: pid, pool, size, addr, stack }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('pool-destroy' as const), pid, dt, pool, stack }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('pool-clear' as const), pid, dt, pool, stack }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('pool-free' as const), pid, dt, pool, addr: fc.oneof(addr, fc.constant(0)) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('pool-tag' as const), pid, dt, pool, tag: fc.constantFrom('request', 'conn') }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('pool-size' as const), pid, dt, pool, bytes: fc.integer({ min: 0, max: 100000 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('alloc' as const), pid, dt, tid: pid, addr, size, stack }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('free' as const), pid, dt, tid: pid, addr }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('fork' as const), pid, dt, parentPid: pid }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('exec' as const), pid, dt, exe: fc.constant('/x'), command: fc.constant('x') }), weight: 1 },
) as fc.Arbitrary<Omit<Event, 't'> & { dt: number }>;
const timed = fc.array(step, { maxLength: 300, size: 'large' }).map((steps) => {
  let t = 0;
  return steps.map(({ dt: d, ...rest }) => ({ ...rest, t: (t += d) }) as Event);
});

/** Every pool-side figure of the state, in the order the state iterates it. */
function pools(st: EngineState): unknown {
  return st.processes.map((p) => ({
    pid: p.pid,
    pools: [...p.pools].map(([a, q]) => ({
      a, addr: q.addr, parent: q.parent?.addr, children: [...q.children].map((c) => c.addr), kind: q.kind, tag: q.tag,
      createT: q.createT, createStack: q.createStack, implicit: q.implicit, bytes: q.bytes, count: q.count, allocs: q.allocs,
      clears: q.clears, sites: [...q.sites], sizedBytes: q.sizedBytes, classKey: q.classKey, series: q.series?.points(),
    })),
    // (youngLost/youngKept are the engine's own bookkeeping of young pools: not state.)
    classes: [...p.classes.values()].map(({ youngLost: _l, youngKept: _k, ...c }) => ({ ...c, series: c.series.points(), fed: [...c.fed] })),
    poolBytes: p.poolBytes, poolCount: p.poolCount, frees: p.frees, allocCount: p.allocCount, allocBytes: p.allocBytes,
    anomalies: p.anomalies, poolSeries: p.poolSeries.points(), total: p.total.points(),
    sites: Array.from({ length: p.sites.length }, (_, i) => [p.sites.keys[i], p.sites.outBytes(i), p.sites.allocBytes(i), p.sites.series(i), p.sites.poolTag[i]]),
  }));
}

function fold(events: Event[], meta: TraceMeta, youngPools: boolean, finishAt: number): [unknown, unknown, unknown] {
  const engine = new Engine({ meta, youngPools });
  let middle: unknown;
  events.forEach((e, i) => {
    if (i === finishAt) middle = pools(engine.finish());
    engine.event(e);
  });
  const st = engine.finish();
  return [middle, pools(st), JSON.parse(JSON.stringify(analyze(st, { top: 50 })))];
}

test('young pools: the same state and analysis as pools that are objects from the start', () => {
  fc.assert(
    fc.property(timed, fc.constantFrom<TraceMeta['clock']>('ns', 'seq'), fc.constantFrom(0, 512), fc.nat(300), (events, clock, sampleBytes, finishAt) => {
      const meta: TraceMeta = { format: 1, clock, source: 'test', ...(sampleBytes ? { sampleBytes } : {}) };
      assert.deepStrictEqual(fold(events, meta, true, finishAt), fold(events, meta, false, finishAt));
    }),
    { numRuns: 400 },
  );
});

test('young pools: request pools (create, a few allocations, destroy) leave their class, sites and series as objects would', () => {
  const events: Event[] = [];
  let t = 0;
  for (let r = 0; r < 500; r++) {
    const pool = 0x7000_0000_0000 + 0x400 * (r % 7);
    events.push({ kind: 'pool-create', pid: 9, t: (t += 10), tid: 9, pool, parent: 0, poolKind: 'nginx', tag: 'request', stack: 1 + (r % 3) });
    // 1..12 allocations from 1..6 sites: some pools outgrow a row (a fifth site, an eighth
    // allocation), and the class soon starts its pools as objects, with a young one now and then.
    for (let k = 0; k < 1 + (r % 12); k++) events.push({ kind: 'pool-alloc', pid: 9, t: (t += 10), tid: 9, pool, size: 64 + k, addr: 0, stack: 10 + ((r + k) % (1 + (r % 6))) });
    if (r % 5 !== 0) events.push({ kind: 'pool-destroy', pid: 9, t: (t += 10), pool, stack: 0 });
  }
  const meta: TraceMeta = { format: 1, clock: 'ns', source: 'test' };
  const [, young, ay] = fold(events, meta, true, -1);
  const [, objects, ao] = fold(events, meta, false, -1);
  assert.deepStrictEqual(young, objects);
  assert.deepStrictEqual(ay, ao);
  const st = new Engine({ meta });
  for (const e of events) st.event(e);
  const p = st.finish().processes[0]!;
  const c = p.classes.get('nginx\u0000request')!;
  assert.equal(c.created, 500);
  // Destroyed: 400 by pool-destroy, and those left alive that a later create at their address replaced.
  assert.equal(c.destroyed, 500 - p.pools.size);
  assert.equal(c.live, p.pools.size);
  assert.ok(p.pools.size > 0 && p.pools.size <= 7, `${p.pools.size} live pools (those never destroyed, by address)`);
});
