import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine } from '../../src/engine/engine.js';
import type { Event, TraceMeta } from '../../src/model/events.js';
import type { ProcState } from '../../src/engine/state.js';

const META: TraceMeta = { format: 1, clock: 'ns', source: 'test' };

function run(events: Event[], meta: TraceMeta = META) {
  const e = new Engine({ meta });
  for (const ev of events) e.event(ev);
  return e.finish();
}
const proc = (s: ReturnType<typeof run>, pid: number, nth = -1): ProcState => {
  const all = s.processes.filter((p) => p.pid === pid);
  return all.at(nth)!;
};
const alloc = (pid: number, t: number, addr: number, size: number, stack = 1): Event => ({ kind: 'alloc', pid, t, tid: 0, addr, size, stack });
const free = (pid: number, t: number, addr: number): Event => ({ kind: 'free', pid, t, tid: 0, addr });
const pcreate = (pid: number, t: number, pool: number, parent = 0, tag = '', stack = 0): Event => ({ kind: 'pool-create', pid, t, tid: 0, pool, parent, poolKind: 'apr', tag, stack });
const palloc = (pid: number, t: number, pool: number, size: number, addr = 0, stack = 7): Event => ({ kind: 'pool-alloc', pid, t, tid: 0, pool, size, addr, stack });

test('heap: alloc, free, realloc and what stays outstanding', () => {
  const s = run([
    alloc(1, 1, 0x1000, 100, 1),
    alloc(1, 2, 0x2000, 50, 2),
    free(1, 3, 0x1000),
    { kind: 'realloc', pid: 1, t: 4, tid: 0, oldAddr: 0x2000, addr: 0x3000, size: 80, stack: 3 },
    { kind: 'realloc', pid: 1, t: 5, tid: 0, oldAddr: 0, addr: 0x4000, size: 10, stack: 3 },
    { kind: 'realloc', pid: 1, t: 6, tid: 0, oldAddr: 0x4000, addr: 0, size: 0, stack: 0 },
    free(1, 7, 0), // free(NULL)
  ]);
  const p = proc(s, 1);
  assert.equal(p.heapBytes, 80);
  assert.equal(p.heapCount, 1);
  assert.equal(p.allocCount, 4);
  assert.equal(p.allocBytes, 240);
  assert.deepEqual(p.anomalies, { unknownFree: 0, doubleFree: 0, unknownRealloc: 0, unknownPool: 0, unknownPoolDestroy: 0 });
  const site3 = p.sites.of(3, false);
  assert.equal(p.sites.outBytes(site3), 80);
  assert.equal(p.sites.allocCount(site3), 2);
  assert.equal(p.sites.outBytes(p.sites.of(1, false)), 0);
});

test('anomalies are counted, never fatal: unknown free, double free, unknown realloc', () => {
  const s = run([
    alloc(1, 1, 0x1000, 8),
    free(1, 2, 0x1000),
    free(1, 3, 0x1000),
    free(1, 4, 0x9990),
    { kind: 'realloc', pid: 1, t: 5, tid: 0, oldAddr: 0x7770, addr: 0x8880, size: 16, stack: 1 },
  ]);
  const a = proc(s, 1).anomalies;
  assert.equal(a.doubleFree, 1);
  assert.equal(a.unknownFree, 1);
  assert.equal(a.unknownRealloc, 1);
  assert.equal(proc(s, 1).heapBytes, 16);
});

test('a forked child freeing a block its parent also freed is not a double free', () => {
  // Parent and child share addresses after fork: each frees its own copy of 0x5000.
  const s = run([
    alloc(1, 1, 0x5000, 64),
    { kind: 'fork', pid: 2, t: 2, parentPid: 1 },
    free(1, 3, 0x5000),
    free(2, 4, 0x5000),
    free(2, 5, 0x5000),
  ]);
  assert.equal(proc(s, 1).anomalies.doubleFree, 0);
  assert.equal(proc(s, 2).anomalies.doubleFree, 0);
  assert.equal(proc(s, 2).anomalies.inheritedFree, 2);
});

test('sizes of 4 GiB and more are accounted exactly', () => {
  const big = 6 * 2 ** 30;
  const s = run([alloc(1, 1, 0x1000, big), alloc(1, 2, 0x2000, 2 ** 32 + 1)]);
  assert.equal(proc(s, 1).heapBytes, big + 2 ** 32 + 1);
  const s2 = run([alloc(1, 1, 0x1000, big), free(1, 2, 0x1000)]);
  assert.equal(proc(s2, 1).heapBytes, 0);
});

test('fork: the child starts empty; frees of inherited memory are not anomalies', () => {
  const s = run([
    alloc(1, 1, 0x1000, 100),
    pcreate(1, 1, 0xa0, 0, 'conf'),
    { kind: 'fork', pid: 2, t: 2, parentPid: 1 },
    free(2, 3, 0x1000),
    { kind: 'pool-destroy', pid: 2, t: 4, pool: 0xa0, stack: 0 },
    alloc(2, 5, 0x5000, 30),
  ]);
  const child = proc(s, 2);
  assert.equal(child.ppid, 1);
  assert.equal(child.heapBytes, 30);
  assert.equal(child.anomalies.unknownFree, 0);
  assert.equal(child.anomalies.unknownPoolDestroy, 0);
  assert.equal(child.anomalies.inheritedFree, 1);
  assert.equal(child.anomalies.inheritedPool, 1);
  assert.equal(proc(s, 1).heapBytes, 100);
});

test('exec closes the old image (kept, labelled) and starts a fresh one; exit ends the process', () => {
  const s = run([
    { kind: 'process', pid: 5, t: 0, ppid: 1, command: 'sh -c server', exe: '/bin/sh' },
    alloc(5, 1, 0x1000, 64),
    { kind: 'exec', pid: 5, t: 2, exe: '/usr/sbin/server', command: 'server' },
    alloc(5, 3, 0x2000, 32),
    { kind: 'exit', pid: 5, t: 4, code: 3 },
  ]);
  const [old, now] = s.processes.filter((p) => p.pid === 5);
  assert.equal(old!.replacedByExec, true);
  assert.equal(old!.heapBytes, 64);
  assert.equal(old!.exe, '/bin/sh');
  assert.equal(now!.exe, '/usr/sbin/server');
  assert.equal(now!.heapBytes, 32);
  assert.equal(now!.exited, true);
  assert.equal(now!.exitCode, 3);
});

test('pools: destroy releases its allocations and its children recursively', () => {
  const s = run([
    pcreate(1, 1, 0xa, 0, 'root'),
    pcreate(1, 2, 0xb, 0xa, 'child'),
    pcreate(1, 3, 0xc, 0xb, 'grandchild'),
    palloc(1, 4, 0xa, 100),
    palloc(1, 5, 0xb, 200),
    palloc(1, 6, 0xc, 300, 0xc000),
    { kind: 'pool-destroy', pid: 1, t: 7, pool: 0xb, stack: 0 },
  ]);
  const p = proc(s, 1);
  assert.equal(p.poolBytes, 100);
  assert.equal(p.poolCount, 1);
  assert.deepEqual([...p.pools.keys()], [0xa]);
  assert.equal(p.pools.get(0xa)!.children.size, 0);
  const site = p.sites.of(7, true);
  assert.equal(p.sites.outBytes(site), 100);
  assert.equal(p.sites.allocBytes(site), 600);
  assert.equal(p.classes.get('apr\u0000grandchild')!.destroyed, 1);
});

test('pools: clear releases allocations and destroys children but keeps the pool', () => {
  const s = run([
    pcreate(1, 1, 0xa, 0, 'conn'),
    pcreate(1, 2, 0xb, 0xa, 'req'),
    palloc(1, 3, 0xa, 100),
    palloc(1, 4, 0xb, 50),
    { kind: 'pool-clear', pid: 1, t: 5, pool: 0xa, stack: 0 },
    palloc(1, 6, 0xa, 10),
  ]);
  const p = proc(s, 1);
  const a = p.pools.get(0xa)!;
  assert.equal(a.clears, 1);
  assert.equal(a.bytes, 10);
  assert.equal(a.allocs, 2);
  assert.equal(p.pools.has(0xb), false);
  assert.equal(p.poolBytes, 10);
});

test('pools: pool-free releases one addressed allocation; pool-size sets the pool bytes; pool-tag moves the class', () => {
  const s = run([
    pcreate(1, 1, 0xa, 0, 'prefork.c:425'),
    palloc(1, 2, 0xa, 4096, 0x7000),
    palloc(1, 3, 0xa, 100),
    { kind: 'pool-free', pid: 1, t: 4, pool: 0xa, addr: 0x7000 },
    { kind: 'pool-free', pid: 1, t: 5, pool: 0xa, addr: 0x7000 },
    { kind: 'pool-tag', pid: 1, t: 6, pool: 0xa, tag: 'pchild' },
    { kind: 'pool-size', pid: 1, t: 7, pool: 0xb, bytes: 5000 },
  ]);
  const p = proc(s, 1);
  assert.equal(p.pools.get(0xa)!.bytes, 100);
  assert.equal(p.anomalies.unknownFree, 1);
  assert.equal(p.classes.has('apr\u0000prefork.c:425'), false);
  assert.equal(p.classes.get('apr\u0000pchild')!.bytes, 100);
  // pool-size on an unknown pool creates it (an anomaly) with the sampled size.
  assert.equal(p.pools.get(0xb)!.bytes, 5000);
  assert.equal(p.poolBytes, 5100);
  assert.equal(p.anomalies.unknownPool, 1);
});

test('pools: alloc into an unknown pool creates it; destroy or clear of an unknown pool is counted', () => {
  const s = run([
    palloc(1, 1, 0xdead, 64),
    { kind: 'pool-destroy', pid: 1, t: 2, pool: 0xbeef, stack: 0 },
    { kind: 'pool-clear', pid: 1, t: 3, pool: 0xbee0, stack: 0 },
  ]);
  const p = proc(s, 1);
  assert.equal(p.anomalies.unknownPool, 1);
  assert.equal(p.anomalies.unknownPoolDestroy, 2);
  assert.equal(p.pools.get(0xdead)!.implicit, true);
  assert.equal(p.poolBytes, 64);
});

test('sampled traces: counts and bytes are scaled to unbiased estimates', () => {
  const S = 1024;
  const events: Event[] = [alloc(1, 1, 0x1000, 512), alloc(1, 2, 0x2000, 1 << 20)];
  const s = run(events, { ...META, sampleBytes: S });
  const w = 1 / (1 - Math.exp(-512 / S));
  const p = proc(s, 1);
  assert.equal(s.estimated, true);
  assert.ok(Math.abs(p.heapCount - (w + 1)) < 1e-9);
  assert.ok(Math.abs(p.heapBytes - (w * 512 + (1 << 20))) < 1e-6);
  // Simulate sampling and check the estimate is unbiased on average.
  let seed = 42;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const sampled: Event[] = [];
  let trueBytes = 0;
  for (let i = 0; i < 200000; i++) {
    const size = 16 + Math.floor(rnd() * 2000);
    trueBytes += size;
    if (rnd() < 1 - Math.exp(-size / S)) sampled.push(alloc(1, i, 0x10000 + i * 16, size));
  }
  const est = proc(run(sampled, { ...META, sampleBytes: S }), 1).heapBytes;
  assert.ok(Math.abs(est - trueBytes) / trueBytes < 0.01, `${est} vs ${trueBytes}`);
});

test("'seq' clocks: per-process sequence numbers are replaced by the global arrival order", () => {
  const s = run([alloc(1, 1, 0x10, 8), alloc(2, 1, 0x10, 8), alloc(2, 2, 0x20, 8), alloc(1, 2, 0x20, 8)], { ...META, clock: 'seq' });
  assert.equal(proc(s, 1).startT, 1);
  assert.equal(proc(s, 1).endT, 4);
  assert.equal(proc(s, 2).startT, 2);
});

test('memory is bounded by live state: series stay at <= 256 points over long traces', () => {
  const events: Event[] = [];
  const e = new Engine({ meta: META });
  e.event(pcreate(1, 0, 0xa, 0, 'p'));
  for (let i = 1; i <= 200000; i++) {
    e.event(alloc(1, i, 0x1000 + (i % 50) * 16, 32, 1 + (i % 3)));
    if (i % 2) e.event(free(1, i, 0x1000 + ((i + 25) % 50) * 16));
    e.event(palloc(1, i, 0xa, 8));
    if (i % 1000 === 0) e.event({ kind: 'pool-clear', pid: 1, t: i, pool: 0xa, stack: 0 });
  }
  void events;
  const p = e.finish().processes[0]!;
  for (const s of [p.total, p.heapSeries, p.poolSeries, p.pools.get(0xa)!.series!, p.classes.get('apr\u0000p')!.series]) {
    assert.ok(s.points().x.length <= 256, String(s.points().x.length));
  }
  for (let i = 0; i < p.sites.length; i++) assert.ok(p.sites.series(i).x.length <= 256);
  assert.ok(p.heap.capacity <= 128);
});

test('exec: each image resolves its stacks with its own symbols; a process announced before its fork is one entry', () => {
  const s = run([
    { kind: 'frame', pid: 5, t: 0, id: 1, frame: { pc: 0, module: '', fn: 'old_image_fn', file: '', line: 0, inlined: false } },
    { kind: 'stack', pid: 5, t: 0, id: 1, parent: 0, frame: 1 },
    alloc(5, 1, 0x1000, 64, 1),
    { kind: 'exec', pid: 5, t: 2, exe: '/new', command: 'new' },
    { kind: 'frame', pid: 5, t: 0, id: 1, frame: { pc: 0, module: '', fn: 'new_image_fn', file: '', line: 0, inlined: false } },
    { kind: 'stack', pid: 5, t: 0, id: 1, parent: 0, frame: 1 },
    alloc(5, 3, 0x2000, 32, 1),
    { kind: 'process', pid: 6, t: 4, ppid: 5, command: 'child', exe: '/new' },
    { kind: 'fork', pid: 6, t: 4, parentPid: 5 },
    alloc(6, 5, 0x3000, 8, 1),
  ]);
  const [old, now] = s.processes.filter((p) => p.pid === 5);
  assert.equal(old!.scope.stackFrames(1)[0]!.fn, 'old_image_fn');
  assert.equal(now!.scope.stackFrames(1)[0]!.fn, 'new_image_fn');
  const kids = s.processes.filter((p) => p.pid === 6);
  assert.equal(kids.length, 1);
  assert.equal(kids[0]!.forked, true);
  assert.equal(kids[0]!.command, 'child');
  // The child inherits its parent's (new image's) definitions.
  assert.equal(kids[0]!.scope.stackFrames(1)[0]!.fn, 'new_image_fn');
});

test('pool-free of address 0 releases nothing (0 is no allocation), young pool or not', () => {
  for (const youngPools of [true, false]) {
    const e = new Engine({ youngPools });
    e.event({ kind: 'pool-create', pid: 1, t: 1, tid: 1, pool: 0xa000, parent: 0, poolKind: 'nginx', tag: 'request', stack: 1 });
    e.event({ kind: 'pool-alloc', pid: 1, t: 2, tid: 1, pool: 0xa000, size: 100, addr: 0x5000, stack: 2 });
    e.event({ kind: 'pool-alloc', pid: 1, t: 3, tid: 1, pool: 0xa000, size: 50, addr: 0, stack: 2 });
    e.event({ kind: 'pool-create', pid: 1, t: 4, tid: 1, pool: 0xb000, parent: 0, poolKind: 'nginx', tag: 'request', stack: 1 });
    e.event({ kind: 'pool-free', pid: 1, t: 5, pool: 0xa000, addr: 0 });
    e.event({ kind: 'pool-alloc', pid: 1, t: 6, tid: 1, pool: 0, size: 7, addr: 0, stack: 3 });
    const p = e.finish().processes[0]!;
    assert.equal(p.pools.get(0xa000)!.bytes, 150, `youngPools ${youngPools}`);
    assert.equal(p.pools.get(0xa000)!.count, 2);
    assert.equal(p.pools.get(0xb000)!.bytes, 0);
    assert.equal(p.pools.get(0)!.bytes, 7, 'pool 0 is a pool of its own (implicit)');
    assert.equal(p.poolBytes, 157);
  }
});

test('a destroy recorded as the call begins: the dying pool\'s cleanups and its children\'s destroys refer to it, no phantom pool, no anomaly', () => {
  const s = run([
    pcreate(1, 1, 0xa, 0, 'conn'),
    pcreate(1, 2, 0xb, 0xa, 'request'),
    palloc(1, 3, 0xb, 100),
    { kind: 'pool-destroy', pid: 1, t: 4, pool: 0xa, stack: 0 },
    // apr_pool_destroy(conn) goes on: it destroys its child, then runs cleanups that allocate
    { kind: 'pool-destroy', pid: 1, t: 5, pool: 0xb, stack: 0 },
    palloc(1, 6, 0xa, 8, 0, 9),
    { kind: 'pool-tag', pid: 1, t: 7, pool: 0xa, tag: 'late' },
    { kind: 'pool-size', pid: 1, t: 8, pool: 0xa, bytes: 4096 },
    { kind: 'pool-clear', pid: 1, t: 9, pool: 0xb, stack: 0 },
    // the address is reused by a new pool: that one is live
    pcreate(1, 10, 0xa, 0, 'conn'),
  ]);
  const p = proc(s, 1);
  assert.deepEqual(p.anomalies, { unknownFree: 0, doubleFree: 0, unknownRealloc: 0, unknownPool: 0, unknownPoolDestroy: 0 });
  assert.deepEqual([...p.pools.keys()], [0xa], 'only the new pool at the reused address lives');
  assert.equal(p.poolBytes, 0);
  const late = p.sites.of(9, true);
  assert.equal(p.sites.outBytes(late), 0, 'the cleanup\'s allocation went with its pool');
  const conn = p.classes.get('apr\u0000conn')!;
  assert.deepEqual([conn.created, conn.found, conn.destroyed, conn.live], [2, 0, 1, 1]);
});

test('pools found alive: live, not created; a create racing the walk is the same pool; the series starts at the found size', () => {
  const s = run([
    { kind: 'pool-found', pid: 1, t: 1, pool: 0x10, parent: 0, poolKind: 'apr', tag: 'pconf' },
    { kind: 'pool-found', pid: 1, t: 1, pool: 0x20, parent: 0x10, poolKind: 'apr', tag: 'pchild' },
    { kind: 'pool-size', pid: 1, t: 1, pool: 0x20, bytes: 100000 },
    // the walk read 0x30 before its creation reached the trace
    { kind: 'pool-found', pid: 1, t: 2, pool: 0x30, parent: 0x20, poolKind: 'apr', tag: '' },
    pcreate(1, 2, 0x30, 0x20, '', 5),
    { kind: 'pool-size', pid: 1, t: 3, pool: 0x20, bytes: 108192 },
    { kind: 'pool-size', pid: 1, t: 4, pool: 0x20, bytes: 116384 },
  ]);
  const p = proc(s, 1);
  assert.equal(p.anomalies.unknownPool + p.anomalies.unknownPoolDestroy, 0);
  const pchild = p.pools.get(0x20)!;
  assert.equal(pchild.found, true);
  assert.equal(pchild.parent?.addr, 0x10);
  assert.deepEqual(pchild.series!.points().y, [100000, 108192, 116384], 'no zero before the trace');
  const c = p.classes.get('apr\u0000pchild')!;
  assert.deepEqual([c.created, c.found, c.live], [0, 1, 1]);
  const raced = p.pools.get(0x30)!;
  assert.equal(raced.found, false, 'its creation was seen after all');
  assert.equal(raced.createStack, 5);
  assert.equal(raced.parent, pchild);
  assert.deepEqual([raced.cls.created, raced.cls.found, raced.cls.destroyed], [1, 0, 0]);
});
