// `leakscope attach --pid MASTER --children --allocator apr` on Debian's apache2 (prefork, our
// config and port): APR pools of every child, tagged, sized, balanced per request; children
// forked while traced are traced from their first instruction (their pchild pool is there).

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Event } from '../../src/model/events.js';
import type { PoolReport } from '../../src/analyses/result.js';
import { readTrace } from '../../src/trace/reader.js';
import { attachInBackground, parseReport, tempDir, until } from './helpers.js';
import { childrenOf, curlRequests, quiescent, startApache } from './servers.js';
import { freePort } from '../support/ports.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

test('apache2 prefork with the apr profile: request pools of every child balance, no leak', async () => {
  const dir = tempDir('att-apache');
  dirs.push(dir);
  const port = await freePort();
  const server = await startApache(dir, port);
  try {
    const master = server.master.pid!;
    const run = attachInBackground(['--pid', String(master), '--children', '--allocator', 'apr', '--format', 'json']);
    await run.started;
    curlRequests(port, 20, 5);
    // every request's pool destroyed (after its response went out) before tracing stops
    await quiescent([master, ...childrenOf(master)]);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.equal(report.lost, 0);
    const children = report.processes.filter((p) => p.ppid === master);
    // StartServers 2; prefork may start more (up to MaxRequestWorkers 4) while both are busy,
    // and those are followed too.
    assert.ok(children.length >= 2 && children.length <= 4, `processes: ${report.processes.map((p) => `${p.pid}/${p.ppid}`).join(' ')}`);
    let requests = 0;
    for (const c of children) {
      const req = c.poolClasses.find((k) => k.name === 'request' && k.kind === 'apr');
      if (!req) continue;
      requests += req.created;
      assert.equal(req.created, req.destroyed, 'every request pool was destroyed');
      assert.ok(req.peakBytes >= 8192, `request pool sizes read from the node ring: ${req.peakBytes}`);
      for (const k of c.poolClasses) assert.notEqual(k.verdict.verdict, 'leak', `${k.name}: ${k.verdict.explanation}`);
    }
    // 100 requests on 20 connections; each request gets at least one tagged request pool
    assert.ok(requests >= 100, `request pools: ${requests}`);
  } finally {
    await server.stop();
  }
});

test('apache2 graceful restart while traced: every new child is traced from its first instruction (its pchild pool, tagged)', async () => {
  const dir = tempDir('att-apache2');
  dirs.push(dir);
  const port = await freePort();
  const server = await startApache(dir, port);
  const trace = join(dir, 'restart.lstrace');
  try {
    const master = server.master.pid!;
    const before = childrenOf(master);
    const run = attachInBackground(['--pid', String(master), '--children', '--allocator', 'apr', '--format', 'json', '-o', trace]);
    await run.started;
    // a graceful restart: the master forks a new generation of children
    process.kill(master, 'SIGUSR1');
    await until(() => childrenOf(master).filter((p) => !before.includes(p)).length >= 2, 'two new children');
    curlRequests(port, 4, 5);
    await quiescent([master, ...childrenOf(master)]);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const events: Event[] = [];
    await readTrace(trace, { event: (e) => events.push(e) });
    const forked = events.filter((e): e is Extract<Event, { kind: 'fork' }> => e.kind === 'fork' && e.parentPid === master);
    assert.ok(forked.length >= 2, `children forked while traced: ${forked.length}`);
    const report = parseReport(r);
    const all = (list: PoolReport[]): PoolReport[] => list.flatMap((x) => [x, ...all(x.children)]);
    assert.ok(forked.filter((f) => report.processes.some((x) => x.pid === f.pid && !x.exited)).length >= 2, 'the new generation lives on');
    for (const f of forked) {
      const p = report.processes.find((x) => x.pid === f.pid);
      assert.ok(p, `child ${f.pid} is in the report`);
      // child_main: apr_pool_create(&pchild, pconf); apr_pool_tag(pchild, "pchild"); then the
      // transaction pool under it — the first thing a new child does
      const pchild = p.poolClasses.find((c) => c.name === 'pchild');
      assert.ok(pchild, `child ${f.pid}: classes ${p.poolClasses.map((c) => c.name).join(', ')}`);
      if (!p.exited) {
        assert.equal(pchild.created, 1, `child ${f.pid}: one pchild`);
        const pools = all(p.pools).filter((x) => x.tag === 'pchild');
        assert.equal(pools.length, 1);
        assert.ok(pools[0]!.createdT >= f.t, 'created after its fork');
        assert.ok(p.poolClasses.some((c) => c.name === 'transaction' && c.created >= 1), `child ${f.pid}: its transaction pool`);
      }
    }
  } finally {
    await server.stop();
  }
});
