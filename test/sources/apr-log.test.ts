import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Event } from '../../src/model/events.js';
import { aprLogSource } from '../../src/sources/apr-log.js';
import { collect, fixtureText } from './collect.js';

const FIXTURE = 'apr-pool-debug.httpd-1child.log.gz';

/** Replays pool events and fails on anything a consumer could not follow. Like the engine, a
 *  child's parent that was never created exists implicitly (made before the log began); creating
 *  it afterwards would end its children, so that must never happen either. */
function checkPoolStream(events: Event[]): { live: Map<string, { tag: string; parent: number; bytes: number }>; destroyed: string[] } {
  const live = new Map<string, { tag: string; parent: number; bytes: number }>();
  const destroyed: string[] = [];
  const lastT = new Map<number, number>();
  for (const e of events) {
    if (e.kind === 'frame' || e.kind === 'stack') continue;
    const prev = lastT.get(e.pid) ?? 0;
    assert.ok(e.t >= prev, `time goes back in pid ${e.pid}: ${e.t} < ${prev}`);
    lastT.set(e.pid, e.t);
    if (!('pool' in e) || e.kind === 'pool-create') {
      if (e.kind === 'pool-create') {
        const k = `${e.pid}:${e.pool}`;
        assert.ok(!live.has(k), `pool ${k} created while live`);
        live.set(k, { tag: e.tag, parent: e.parent, bytes: 0 });
        const pk = `${e.pid}:${e.parent}`;
        if (e.parent !== 0 && !live.has(pk)) live.set(pk, { tag: '', parent: 0, bytes: 0 });
      }
      continue;
    }
    const k = `${e.pid}:${e.pool}`;
    const p = live.get(k);
    assert.ok(p, `${e.kind} on a pool that is not live: ${k}`);
    if (e.kind === 'pool-alloc') { assert.ok(e.size >= 0); p.bytes += e.size; }
    if (e.kind === 'pool-size') p.bytes = e.bytes;
    if (e.kind === 'pool-tag') p.tag = e.tag;
    if (e.kind === 'pool-clear' || e.kind === 'pool-destroy') {
      for (const [ck, c] of live) {
        if (ck.startsWith(`${e.pid}:`) && c.parent === e.pool) assert.fail(`${e.kind} of ${k} while its child ${ck} lives`);
      }
      p.bytes = 0;
    }
    if (e.kind === 'pool-destroy') {
      live.delete(k);
      destroyed.push(k);
    }
  }
  return { live, destroyed };
}

test('APR fixture: processes, parents, and the pchild leak fed by mod_leaky.c:25', async () => {
  const c = await collect(aprLogSource, fixtureText(FIXTURE));
  assert.equal(c.stats.badRecords, 0);
  assert.equal(c.stats.skipped, 7, 'httpd and glibc lines are skipped, not bad');
  const procs = c.events.filter((e) => e.kind === 'process');
  assert.deepEqual(procs.map((p) => [p.pid, p.kind === 'process' && p.ppid]), [[3153, 0], [3156, 3153], [3160, 3156]]);
  checkPoolStream(c.events);

  const PCHILD = 0x555754c44960;
  const created = c.events.find((e) => e.kind === 'pool-create' && e.pid === 3160 && e.pool === PCHILD);
  assert.ok(created && created.kind === 'pool-create');
  assert.equal(created.parent, 0x555754c20d50, 'parent from the CREATE line, not the 0x0 of the mutex allocation before it');
  assert.deepEqual(c.frames(3160, created.stack).map((f) => `${f.file}:${f.line}`), ['prefork.c:425']);
  assert.ok(c.events.some((e) => e.kind === 'pool-tag' && e.pid === 3160 && e.pool === PCHILD && e.tag === 'pchild'));

  const bySite = new Map<string, { bytes: number; count: number }>();
  for (const e of c.events) {
    if (e.kind !== 'pool-alloc' || e.pid !== 3160 || e.pool !== PCHILD) continue;
    const site = e.stack ? c.frames(3160, e.stack).map((f) => f.file ? `${f.file}:${f.line}` : f.fn).join(';') : '?';
    const s = bySite.get(site) ?? { bytes: 0, count: 0 };
    s.bytes += e.size;
    s.count++;
    bySite.set(site, s);
  }
  // 40 /leak requests: apr_palloc(2048) plus an unlogged apr_psprintf of 64 bytes, both in the delta.
  assert.deepEqual(bySite.get('mod_leaky.c:25'), { bytes: 40 * 2112, count: 40 });
  const total = [...bySite.values()].reduce((a, s) => a + s.bytes, 0);
  assert.equal(total, 85004, 'pchild bytes match the DESTROY line (85004)');
});

test('APR fixture: transaction pool is cleared per connection and destroyed with pchild', async () => {
  const c = await collect(aprLogSource, fixtureText(FIXTURE));
  const TX = 0x555754c5c7e0;
  const clears = c.events.filter((e) => e.kind === 'pool-clear' && e.pid === 3160 && e.pool === TX).length;
  assert.equal(clears, 103, 'every CLEAR line of the transaction pool');
  const destroys = c.events.filter((e) => e.kind === 'pool-destroy' && e.pid === 3160);
  const txIdx = destroys.findIndex((e) => e.kind === 'pool-destroy' && e.pool === TX);
  const pchildIdx = destroys.findIndex((e) => e.kind === 'pool-destroy' && e.pool === 0x555754c44960);
  assert.ok(txIdx >= 0 && pchildIdx > txIdx, 'the child goes first, with its parent, once');
  assert.equal(destroys.filter((e) => e.kind === 'pool-destroy' && e.pool === TX).length, 1);
});

test('APR fixture: the same events, stacks and statistics whatever the chunk boundaries', async () => {
  const text = fixtureText(FIXTURE);
  const a = await collect(aprLogSource, text, 65536);
  // 97 bytes: most lines are cut, many twice; 4093: cuts that fall anywhere in a line.
  for (const size of [97, 4093]) {
    const b = await collect(aprLogSource, text, size);
    assert.equal(b.events.length, a.events.length, `chunks of ${size}`);
    for (let i = 0; i < a.events.length; i++) assert.deepEqual(b.events[i], a.events[i], `chunks of ${size}: event ${i}`);
    // Stack ids are the source's own: the frames they stand for must be the same too.
    for (const e of a.events) {
      if ('stack' in e && e.stack) assert.deepEqual(b.frames(e.pid, e.stack), a.frames(e.pid, e.stack), `chunks of ${size}: stack ${e.stack} of ${e.pid}`);
    }
    assert.deepEqual(b.stats, a.stats, `chunks of ${size}: statistics`);
  }
});

const L = (pid: number, act: string, size: number, pool: string, tag: string, site: string, parent: string, tri = '0/0/0') =>
  `POOL DEBUG: [${pid}/140113293346688] ${act.padStart(7)} (${String(size).padStart(10)}/${String(size).padStart(10)}/${String(size).padStart(10)}) ${pool} "${tag}" <${site}> ${parent} (${tri}) \n`;

test('APR: destroy of a tree emits each descendant once, innermost first; CLEARED lines only confirm', async () => {
  const log = [
    L(10, 'CREATE', 0, '0x1000', 'a.c:1', 'a.c:1', '0x0'),
    L(10, 'CREATE', 0, '0x2000', 'a.c:2', 'a.c:2', '0x1000'),
    L(10, 'CREATE', 0, '0x3000', 'a.c:3', 'a.c:3', '0x2000'),
    L(10, 'PALLOC', 100, '0x3000', 'a.c:3', 'x.c:9', '0x2000', '1/1/0'),
    L(10, 'PCALLOC', 150, '0x3000', 'grand', 'x.c:9', '0x2000', '2/2/0'),
    '[Sun Nov 22 05:29:50 2026] [core:notice] an httpd line\n',
    L(10, 'DESTROY', 0, '0x1000', 'a.c:1', 'z.c:5', '0x0'),
    L(10, 'CLEARED', 0, '0x3000', 'grand', 'z.c:5', '0x2000', '0/2/1'),
    L(10, 'CLEARED', 0, '0x2000', 'a.c:2', 'z.c:5', '0x1000', '0/0/1'),
    L(10, 'CLEARED', 0, '0x1000', 'a.c:1', 'z.c:5', '0x0', '0/0/1'),
  ].join('');
  const c = await collect(aprLogSource, log);
  checkPoolStream(c.events);
  const allocs = c.events.filter((e) => e.kind === 'pool-alloc');
  assert.deepEqual(allocs.map((e) => e.kind === 'pool-alloc' && e.size), [100, 50]);
  assert.deepEqual(c.frames(10, allocs[0]!.kind === 'pool-alloc' ? allocs[0].stack : 0).map((f) => `${f.file}:${f.line}`), ['x.c:9']);
  assert.ok(c.events.some((e) => e.kind === 'pool-tag' && e.pool === 0x3000 && e.tag === 'grand'));
  const destroys = c.events.filter((e) => e.kind === 'pool-destroy').map((e) => e.kind === 'pool-destroy' && e.pool);
  assert.deepEqual(destroys, [0x3000, 0x2000, 0x1000]);
  const d = c.events.find((e) => e.kind === 'pool-destroy')!;
  assert.ok(d.kind === 'pool-destroy');
  assert.deepEqual(c.frames(10, d.stack).map((f) => `${f.file}:${f.line}`), ['z.c:5']);
  assert.equal(c.stats.skipped, 1);
  assert.equal(c.stats.badRecords, 0);
  // t is the event's index within its process.
  assert.equal(c.events.find((e) => e.kind === 'pool-destroy')!.t, 6);
});

test('APR: allocations logged before CREATE wait for it; clear keeps the pool and ends its children', async () => {
  const log = [
    L(20, 'PCALLOC', 48, '0x4000', 'b.c:1', 'locks/unix/thread_mutex.c:50', '0x0', '1/1/0'),
    L(20, 'PALLOC', 80, '0x4000', 'b.c:1', 'memory/unix/apr_pools.c:2520', '0x0', '2/2/0'),
    L(20, 'CREATE', 80, '0x4000', 'b.c:1', 'b.c:1', '0x5000', '2/2/0'),
    L(20, 'CREATE', 0, '0x6000', 'c.c:1', 'c.c:1', '0x4000'),
    L(20, 'PALLOC', 10, '0x6000', 'c.c:1', 'y.c:1', '0x4000', '1/1/0'),
    L(20, 'CLEAR', 80, '0x4000', 'b.c:1', 'w.c:1', '0x5000', '2/2/0'),
    L(20, 'CLEARED', 0, '0x6000', 'c.c:1', 'w.c:1', '0x4000', '0/1/1'),
    L(20, 'CLEARED', 0, '0x4000', 'b.c:1', 'w.c:1', '0x5000', '0/2/1'),
    L(20, 'PALLOC', 7, '0x4000', 'b.c:1', 'y.c:2', '0x5000', '1/3/1'),
    // A pool never seen before: its bytes so far predate the log (a silent baseline); changes count.
    L(20, 'PALLOC', 5000, '0x7000', 'pconf', 'y.c:3', '0x5000', '300/300/0'),
    L(20, 'PALLOC', 5016, '0x7000', 'pconf', 'y.c:3', '0x5000', '301/301/0'),
    'POOL DEBUG: [20/140113293346688]  GLOBAL                                    0x9000 <memory/unix/apr_pools.c:apr_pool_initialize> \n',
    'POOL DEBUG: [20/140113293346688]  PALLOC (  garbage\n',
    'POOL DEBUG: [20/140113293346688] ACTION  (SIZE      /POOL SIZE /TOTAL SIZE) POOL "TAG" <__FILE__:__LINE__> PARENT (ALLOCS/TOTAL ALLOCS/CLEARS) \n',
  ].join('');
  const c = await collect(aprLogSource, log);
  checkPoolStream(c.events);
  const pool = c.events.filter((e) => e.kind !== 'frame' && e.kind !== 'stack' && e.kind !== 'process')
    .map((e) => e.kind === 'pool-alloc' ? `alloc ${e.pool.toString(16)} ${e.size}` : e.kind === 'pool-create' ? `create ${e.pool.toString(16)} < ${e.parent.toString(16)} ${e.tag}`
      : e.kind === 'pool-size' ? `size ${e.pool.toString(16)} ${e.bytes}` : `${e.kind} ${'pool' in e ? e.pool.toString(16) : ''}`);
  assert.deepEqual(pool, [
    'create 4000 < 5000 b.c:1', 'alloc 4000 48', 'alloc 4000 32',
    'create 6000 < 4000 c.c:1', 'alloc 6000 10',
    'pool-destroy 6000', 'pool-clear 4000',
    'alloc 4000 7',
    'create 7000 < 5000 pconf', 'alloc 7000 16',
    'create 9000 < 0 global',
  ]);
  assert.equal(c.stats.badRecords, 1);
  assert.match(c.stats.badSamples[0]!, /^line 13: /);
});

test('APR fixture cut at many points: never an error, always a consistent stream', async () => {
  const text = fixtureText(FIXTURE);
  for (let i = 1; i <= 25; i++) {
    const cut = Math.floor((text.length * i) / 26) + (i % 7);
    const c = await collect(aprLogSource, text.subarray(0, cut));
    checkPoolStream(c.events);
    assert.ok(c.stats.badRecords <= 1, `cut at ${cut}: only the cut line may be bad`);
  }
});

test('APR detect: pool-debug text yes, other logs no', () => {
  assert.ok(aprLogSource.detect(Buffer.from(L(1, 'PALLOC', 1, '0x1', 't', 'f.c:1', '0x0')), 'x.log') > 0.9);
  assert.ok(aprLogSource.detect(fixtureText(FIXTURE).subarray(0, 65536), 'x') > 0.9);
  assert.equal(aprLogSource.detect(Buffer.from('2026/11/22 05:30:01 [debug] 3640#0: malloc: 1:2\n'), 'x'), 0);
});

test('APR: a parent known only through its children is never created, only named and destroyed; its older bytes are a baseline', async () => {
  const log = [
    L(30, 'CREATE', 0, '0xa000', 'kid.c:1', 'kid.c:1', '0x8000'),
    L(30, 'PALLOC', 500, '0x8000', 'process', 'main.c:9', '0x7000', '9/9/0'),
    L(30, 'PALLOC', 520, '0x8000', 'process', 'main.c:9', '0x7000', '10/10/0'),
    L(30, 'DESTROY', 520, '0x8000', 'process', 'main.c:269', '0x7000', '10/10/0'),
    L(30, 'CLEARED', 0, '0xa000', 'kid.c:1', 'main.c:269', '0x8000', '0/0/1'),
  ].join('');
  const c = await collect(aprLogSource, log);
  checkPoolStream(c.events);
  const pool = c.events.filter((e) => 'pool' in e).map((e) => `${e.kind} ${'pool' in e ? e.pool.toString(16) : ''}${e.kind === 'pool-alloc' ? ` ${e.size}` : e.kind === 'pool-size' ? ` ${e.bytes}` : e.kind === 'pool-tag' ? ` ${e.tag}` : ''}`);
  assert.deepEqual(pool, ['pool-create a000', 'pool-tag 8000 process', 'pool-alloc 8000 20', 'pool-destroy a000', 'pool-destroy 8000']);
});

test('APR: interleaved children with the same pool addresses stay apart; parents guessed from shared pools', async () => {
  const lines: string[] = [
    L(10, 'CREATE', 0, '0x1000', 'pconf', 'main.c:1', '0x0'),
    L(10, 'PALLOC', 100, '0x1000', 'pconf', 'config.c:5', '0x0', '1/1/0'),
  ];
  // Two children forked from 10: each creates its pchild at the same address, interleaved.
  for (const pid of [20, 30]) lines.push(L(pid, 'CREATE', 0, '0x2000', 'pchild', 'prefork.c:425', '0x1000'));
  for (let i = 1; i <= 10; i++) {
    lines.push(L(20, 'PALLOC', 64 * i, '0x2000', 'pchild', 'mod_a.c:1', '0x1000', `${i}/${i}/0`));
    lines.push(L(30, 'PALLOC', 10 * i, '0x2000', 'pchild', 'mod_b.c:2', '0x1000', `${i}/${i}/0`));
  }
  lines.push(L(30, 'DESTROY', 100, '0x2000', 'pchild', 'prefork.c:231', '0x1000', '10/10/0'));
  const c = await collect(aprLogSource, lines.join(''), 41);
  checkPoolStream(c.events);
  const procs = c.events.filter((e) => e.kind === 'process').map((e) => e.kind === 'process' && `${e.pid}<${e.ppid}`);
  assert.deepEqual(procs, ['10<0', '20<10', '30<10']);
  const sum = (pid: number) => c.events.reduce((s, e) => s + (e.kind === 'pool-alloc' && e.pid === pid ? e.size : 0), 0);
  assert.equal(sum(20), 640);
  assert.equal(sum(30), 100);
  assert.equal(c.events.filter((e) => e.kind === 'pool-destroy').map((e) => e.pid).join(), '30');
});

test('APR: a log without pool-debug lines says what is missing', async () => {
  const c = await collect(aprLogSource, '[Sun Nov 22 05:29:50 2026] [core:notice] AH00094: Command line: httpd\n');
  assert.equal(c.events.length, 0);
  assert.match(c.stats.warnings.join('\n'), /no "POOL DEBUG:" lines found/);
});
