// analyze() on synthetic event streams: server-shaped scenarios with known answers, site naming
// through suppressions, options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Engine } from '../../src/engine/engine.js';
import { analyze } from '../../src/analyses/analyze.js';
import { Suppressions, shapeSite, defaultFrameRules } from '../../src/analyses/suppressions.js';
import { StackInterner } from '../../src/model/stacks.js';
import { frame } from '../../src/model/events.js';
import type { Event, TraceMeta } from '../../src/model/events.js';
import { testDir } from '../support/tmp.js';

const META: TraceMeta = { format: 1, clock: 'ns', source: 'test' };
const MS = 1e6;

/** An nginx-like worker: keepalive connection pools, per-request pools, optionally a pool leaked per request on one URL. */
function nginxWorker(opts: { leakEvery?: number }) {
  const engine = new Engine({ meta: META });
  const pid = 100;
  const st = new StackInterner(engine, pid);
  const f = (fn: string) => frame({ fn, file: 'ngx_http.c' });
  const createConn = st.stackId([f('ngx_create_pool'), f('ngx_event_accept')]);
  const createReq = st.stackId([f('ngx_create_pool'), f('ngx_http_create_request')]);
  const createLeak = st.stackId([f('ngx_create_pool'), f('ngx_http_scratch_handler')]);
  const allocReq = st.stackId([f('ngx_palloc_small'), f('ngx_palloc'), f('ngx_http_parse_header')]);
  const allocLeak = st.stackId([f('ngx_pcalloc'), f('ngx_http_scratch_handler')]);
  const ev = (e: Event) => engine.event(e);
  let t = 0;
  ev({ kind: 'process', pid, t, ppid: 1, command: 'nginx: worker process', exe: '/usr/sbin/nginx' });
  // 20 keepalive connections opened at start, each with a 1 KiB buffer, living to the end.
  for (let c = 0; c < 20; c++) {
    ev({ kind: 'pool-create', pid, t: (t += MS), tid: 0, pool: 0x1000 + c * 0x100, parent: 0, poolKind: 'nginx', tag: '', stack: createConn });
    ev({ kind: 'pool-alloc', pid, t: (t += MS), tid: 0, pool: 0x1000 + c * 0x100, size: 1024, addr: 0, stack: allocReq });
  }
  let leakAddr = 0x900000;
  for (let r = 0; r < 2000; r++) {
    const pool = 0x800000 + (r % 7) * 0x100;
    ev({ kind: 'pool-create', pid, t: (t += MS), tid: 0, pool, parent: 0x1000 + (r % 20) * 0x100, poolKind: 'nginx', tag: '', stack: createReq });
    for (let k = 0; k < 1 + (r % 5); k++) ev({ kind: 'pool-alloc', pid, t: (t += MS), tid: 0, pool, size: 200 + ((r * 37) % 400), addr: 0, stack: allocReq });
    if (opts.leakEvery && r % opts.leakEvery === 0) {
      const lp = (leakAddr += 0x1000);
      ev({ kind: 'pool-create', pid, t: (t += MS), tid: 0, pool: lp, parent: 0, poolKind: 'nginx', tag: '', stack: createLeak });
      ev({ kind: 'pool-alloc', pid, t: (t += MS), tid: 0, pool: lp, size: 4096, addr: 0, stack: allocLeak });
    }
    ev({ kind: 'pool-destroy', pid, t: (t += MS), pool, stack: 0 });
  }
  return engine.finish();
}

test('nginx-shaped worker: keepalive and per-request pools are steady, nothing leaks', () => {
  const r = analyze(nginxWorker({}), { top: 10 });
  const p = r.processes[0]!;
  assert.equal(p.verdict.verdict, 'steady', p.verdict.explanation);
  const conn = p.poolClasses.find((c) => c.name === 'created at ngx_event_accept (ngx_http.c)')!;
  assert.equal(conn.live, 20);
  assert.equal(conn.verdict.verdict, 'steady', conn.verdict.explanation);
  const req = p.poolClasses.find((c) => c.name === 'created at ngx_http_create_request (ngx_http.c)')!;
  assert.equal(req.verdict.verdict, 'steady', req.verdict.explanation);
  assert.equal(req.live, 0);
  assert.equal(req.created, 2000);
  for (const pool of p.pools) assert.equal(pool.verdict?.verdict ?? 'steady', 'steady');
  assert.equal(p.pools.length, 20);
});

test('a pool leaked per request on one URL is a leak, named by its creation site', () => {
  const r = analyze(nginxWorker({ leakEvery: 3 }), { top: 10 });
  const p = r.processes[0]!;
  assert.equal(p.verdict.verdict, 'leak', p.verdict.explanation);
  const leak = p.poolClasses.find((c) => c.name === 'created at ngx_http_scratch_handler (ngx_http.c)')!;
  assert.equal(leak.verdict.verdict, 'leak', leak.verdict.explanation);
  assert.equal(leak.live, 667);
  const site = p.sites[0]!;
  assert.equal(site.label, 'ngx_http_scratch_handler (ngx_http.c)');
  assert.equal(site.via, 'ngx_pcalloc');
  assert.equal(site.count, 667);
  assert.equal(site.bytes, 667 * 4096);
  assert.equal(site.verdict?.verdict, 'leak');
  assert.ok(site.share > 0.9);
  assert.match(p.verdict.explanation, /scratch_handler/);
});

test('allocator internals are dropped; a pool API names the site "via"', () => {
  const rules = defaultFrameRules();
  const s = shapeSite([frame({ fn: 'malloc' }), frame({ fn: 'ngx_alloc' }), frame({ fn: 'ngx_palloc_large' }), frame({ fn: 'ngx_palloc' }), frame({ fn: 'ngx_http_foo', file: 'foo.c', line: 9 }), frame({ fn: 'main' })], rules);
  assert.equal(s.label, 'ngx_http_foo (foo.c:9)');
  assert.equal(s.via, 'ngx_palloc');
  assert.equal(s.stack.length, 2);
  const cpp = shapeSite([frame({ fn: 'operator new(unsigned long)' }), frame({ fn: 'Cache::put' })], rules);
  assert.equal(cpp.label, 'Cache::put');
  assert.equal(cpp.via, undefined);
  // Only internals: keep the outermost rather than nothing.
  assert.equal(shapeSite([frame({ fn: 'malloc' })], rules).label, 'malloc');
});

test('LSan-style suppressions drop sites with a matching frame; bad lines are one-line errors', () => {
  const engine = new Engine({ meta: META });
  const st = new StackInterner(engine, 7);
  const a = st.stackId([frame({ fn: 'malloc' }), frame({ fn: 'OPENSSL_init' }), frame({ fn: 'main' })]);
  const b = st.stackId([frame({ fn: 'malloc' }), frame({ fn: 'my_cache_put', file: 'cache.c', line: 3 })]);
  for (let i = 0; i < 10; i++) {
    engine.event({ kind: 'alloc', pid: 7, t: i, tid: 0, addr: 0x100 + i * 16, size: 10, stack: a });
    engine.event({ kind: 'alloc', pid: 7, t: i, tid: 0, addr: 0x900 + i * 16, size: 5, stack: b });
  }
  const state = engine.finish();
  assert.deepEqual(analyze(state).processes[0]!.sites.map((s) => s.label), ['OPENSSL_init', 'my_cache_put (cache.c:3)']);
  const dir = testDir('ls-supp');
  const file = join(dir, 'supp.txt');
  writeFileSync(file, '# third-party\nleak:OPENSSL_*\n\nleak:^nothing$\n');
  const sup = Suppressions.load(file);
  assert.deepEqual(analyze(state, { suppressions: sup }).processes[0]!.sites.map((s) => s.label), ['my_cache_put (cache.c:3)']);
  assert.deepEqual(analyze(state, { suppressions: Suppressions.parse('leak:cache.c', 'x') }).processes[0]!.sites.map((s) => s.label), ['OPENSSL_init']);
  assert.throws(() => Suppressions.parse('race:foo', 'f.txt'), /f\.txt:1: expected "leak:PATTERN"/);
  assert.throws(() => Suppressions.load(join(dir, 'missing')), /no such suppression file/);
});

test('options: top N, pid filter, min-age in the trace clock', () => {
  const engine = new Engine({ meta: META });
  for (let i = 0; i < 30; i++) engine.event({ kind: 'alloc', pid: 1 + (i % 2), t: i * 1e9, tid: 0, addr: 0x1000 + i * 16, size: 100 + i, stack: 1 + (i % 5) });
  const state = engine.finish();
  const r = analyze(state, { top: 2 });
  assert.equal(r.processes.length, 2);
  assert.equal(r.processes[0]!.sites.length, 2);
  assert.deepEqual(analyze(state, { pid: 2 }).processes.map((p) => p.pid), [2]);
  // Process 1 allocated at 0, 2, ..., 28 s and ends at 28 s: 10 s or older = allocated at <= 18 s.
  const old = analyze(state, { pid: 1, minAge: 10e9 }).processes[0]!;
  assert.equal(old.sites.reduce((n, s) => n + s.count, 0), 10);
  assert.ok(old.sites.every((s) => s.oldestT <= 18e9 && s.youngestT <= 18e9));
});

test('teardown: a final descent at the end of a process does not count as release; the same release mid-life does', () => {
  const run = (releaseAt: number) => {
    const engine = new Engine({ meta: { ...META, clock: 'seq' } });
    const pid = 9;
    const ev = (e: Event) => engine.event(e);
    let t = 0;
    ev({ kind: 'pool-create', pid, t: t++, tid: 0, pool: 0xa, parent: 0, poolKind: 'apr', tag: 'pchild', stack: 0 });
    for (let r = 0; r < 400; r++) {
      // Per-request pool churn, and a leak of 2 KiB into pchild every other request.
      ev({ kind: 'pool-create', pid, t: t++, tid: 0, pool: 0xb, parent: 0xa, poolKind: 'apr', tag: 'request', stack: 0 });
      ev({ kind: 'pool-alloc', pid, t: t++, tid: 0, pool: 0xb, size: 3000, addr: 0, stack: 0 });
      if (r % 2 === 0 && r < 300) ev({ kind: 'pool-alloc', pid, t: t++, tid: 0, pool: 0xa, size: 2048, addr: 0, stack: 0 });
      ev({ kind: 'pool-destroy', pid, t: t++, pool: 0xb, stack: 0 });
      if (r === releaseAt) ev({ kind: 'pool-clear', pid, t: t++, pool: 0xa, stack: 0 });
    }
    // Teardown: a few unlogged bytes discovered, then everything destroyed.
    ev({ kind: 'pool-alloc', pid, t: t++, tid: 0, pool: 0xa, size: 31, addr: 0, stack: 0 });
    ev({ kind: 'pool-destroy', pid, t, pool: 0xa, stack: 0 });
    return analyze(engine.finish()).processes[0]!;
  };
  const atEnd = run(-1);
  const pchild = atEnd.poolClasses.find((c) => c.name === 'pchild')!;
  assert.equal(pchild.verdict.verdict, 'leak', pchild.verdict.explanation);
  assert.equal(atEnd.verdict.verdict, 'leak');
  assert.equal(atEnd.poolClasses.find((c) => c.name === 'request')!.verdict.verdict, 'steady');
  const midLife = run(350);
  const released = midLife.poolClasses.find((c) => c.name === 'pchild')!;
  assert.equal(released.verdict.verdict, 'bounded', released.verdict.explanation);
});
