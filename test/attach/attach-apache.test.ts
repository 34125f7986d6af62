// `leakscope attach --pid MASTER --children --allocator apr` on Debian's apache2 (prefork, our
// config and port): APR pools of every child, tagged, sized, balanced per request.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { attachInBackground, parseReport, tempDir } from './helpers.js';
import { curlRequests, startApache } from './servers.js';
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
    const run = attachInBackground(['--pid', String(master), '--children', '--allocator', 'apr', '--duration', '6s', '--format', 'json']);
    await run.started;
    await new Promise((r) => setTimeout(r, 300));
    curlRequests(port, 20, 5);
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
