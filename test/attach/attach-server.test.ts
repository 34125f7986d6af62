// `leakscope attach --exe` on our pre-forked C server (test/programs/att-server.c, -O2
// -fomit-frame-pointer, its own pool API): the leaking function is named, with the right count
// in every worker, verdict leak.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { attachInBackground, buildProgram, parseReport, root, startReady, terminate, tempDir } from './helpers.js';
import { freePort } from '../support/ports.js';
import { childrenOf, quiescent } from './servers.js';

const dir = tempDir('att-server');
after(() => rmSync(dir, { recursive: true, force: true }));

function request(port: number, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(Number(res.headers['x-worker'])));
    }).on('error', reject);
  });
}

test('pre-forked server: the leaking function, its count per worker, verdict leak', async () => {
  const prog = buildProgram('att-server', dir);
  const port = await freePort();
  const server = await startReady(prog, [String(port), '2']);
  try {
    const run = attachInBackground(['--exe', prog, '--allocator', join(root, 'test/programs/att-pool.profile.json'), '--format', 'json']);
    await run.started;
    const leaks = new Map<number, number>();
    let ok = 0;
    for (let i = 0; i < 120; i++) {
      const leak = i % 3 === 0;
      const w = await request(port, leak ? '/leak' : '/ok');
      if (leak) leaks.set(w, (leaks.get(w) ?? 0) + 1);
      else ok++;
    }
    // each response is written before its request pool is destroyed: wait until the workers
    // are idle, then stop tracing
    await quiescent([server.pid!, ...childrenOf(server.pid!)]);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.equal(report.lost, 0);
    assert.ok(leaks.size >= 1);
    for (const [wpid, count] of leaks) {
      const p = report.processes.find((x) => x.pid === wpid);
      assert.ok(p, `worker ${wpid} is in the report`);
      const session = p.poolClasses.find((c) => c.name === 'session');
      assert.ok(session, `worker ${wpid} classes: ${p.poolClasses.map((c) => c.name).join(', ')}`);
      assert.equal(session.created, count, `worker ${wpid}: session pools`);
      assert.equal(session.live, count);
      assert.equal(session.destroyed, 0);
      if (count >= 10) assert.equal(session.verdict.verdict, 'leak', session.verdict.explanation);
      const pools = p.pools.flatMap((x) => [x, ...x.children]).filter((x) => x.tag === 'session');
      assert.equal(pools.length, count);
      for (const sp of pools) assert.match(sp.createSite, /^remember_session\b/, 'the leaking function, not the allocator');
      const request = p.poolClasses.find((c) => c.name === 'request');
      assert.ok(request && request.created === request.destroyed, 'request pools balance');
    }
    assert.ok([...leaks.values()].some((c) => c >= 10), `leaks per worker: ${[...leaks.entries()].join(' ')}`);
    assert.equal(ok, 80);
  } finally {
    await terminate(server);
  }
});
