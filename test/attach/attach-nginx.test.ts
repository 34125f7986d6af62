// `leakscope attach --exe` on Debian's nginx (a private copy, our config and ports): request and
// connection pools balance, held keepalive connections' pools are live and steady, not leaks.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { spawn } from 'node:child_process';
import type { ProcessReport } from '../../src/analyses/result.js';
import { attachInBackground, parseReport, tempDir } from './helpers.js';
import { curlRequests, HeldConnections, prepareNginx, startNginx, waitForPort } from './servers.js';
import { freePort } from '../support/ports.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

function workers(procs: ProcessReport[], masterPid: number): ProcessReport[] {
  return procs.filter((p) => p.ppid === masterPid || (p.pid !== masterPid && p.command.includes('worker')));
}

test('nginx --exe: request pools balance; held keepalive connections are live and steady', async () => {
  const dir = tempDir('att-nginx');
  dirs.push(dir);
  const port = await freePort();
  const server = await startNginx(dir, port);
  let held: HeldConnections | undefined;
  try {
    const run = attachInBackground(['--exe', server.exe, '--duration', '8s', '--format', 'json', '--pool-sample', '500ms']);
    await run.started;
    await new Promise((r) => setTimeout(r, 300));
    held = await HeldConnections.open(port, 4);
    held.every(400);
    curlRequests(port, 20, 10);
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.equal(report.lost, 0);
    const ws = workers(report.processes, server.master.pid!);
    assert.equal(ws.length, 2, `workers: ${report.processes.map((p) => `${p.pid} ${p.command}`).join('; ')}`);
    let requestsCreated = 0;
    let connLive = 0;
    for (const w of ws) {
      for (const c of w.poolClasses) {
        assert.notEqual(c.verdict.verdict, 'leak', `${w.pid} ${c.name}: ${c.verdict.explanation}`);
        if (c.live === 0) requestsCreated += c.created;
        // every class balances except the live connections; pools alive before the attach
        // (the cycle's) are found, not created
        assert.equal(c.created + c.found - c.destroyed, c.live, c.name);
      }
      const accept = w.poolClasses.filter((c) => c.name.includes('ngx_event_accept'));
      connLive += accept.reduce((a, c) => a + c.live, 0);
      const found = w.pools.filter((p) => p.found);
      assert.deepEqual(found.map((p) => p.tag), ['cycle'], 'no connection was open at attach: the cycle pool alone was there before');
      for (const p of w.pools.filter((x) => !x.found)) {
        assert.match(p.createSite, /ngx_event_accept/);
        assert.ok(p.verdict, 'a live pool has a verdict');
        assert.equal(p.verdict.verdict, 'steady', p.verdict.explanation);
        assert.equal(p.bytes >= 512, true, `connection pool size read from memory: ${p.bytes}`);
      }
    }
    assert.equal(connLive, 4, 'the 4 held connections have live pools');
    // 200 curl requests + the held connections' requests, each in its own request pool
    assert.ok(requestsCreated >= 200 + 4 * 10, `request/connection pools created: ${requestsCreated}`);
  } finally {
    held?.close();
    await server.stop();
  }
});

test('nginx --exe catches processes started after attach (workers forked later), with --pool-allocs', async () => {
  const dir = tempDir('att-nginx2');
  dirs.push(dir);
  const port = await freePort();
  const { exe, conf } = prepareNginx(dir, port, 1);
  const run = attachInBackground(['--exe', exe, '--allocator', 'nginx', '--pool-allocs', '--duration', '6s', '--format', 'json']);
  await run.started;
  const master = spawn(exe, ['-p', dir, '-c', conf, '-e', `${dir}/logs/error.log`], { stdio: 'ignore' });
  try {
    await waitForPort(port);
    await new Promise((r) => setTimeout(r, 1000));
    curlRequests(port, 10, 10);
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.ok(report.processes.some((p) => p.pid === master.pid), 'the master started after attach is traced');
    const worker = report.processes.find((p) => p.ppid === master.pid);
    assert.ok(worker, `a worker forked by it is traced: ${report.processes.map((p) => `${p.pid}/${p.ppid}`).join(' ')}`);
    const req = worker.poolClasses.reduce((a, c) => a + c.created, 0);
    assert.ok(req >= 100, `pools created in the worker: ${req}`);
    // with --pool-allocs the worker's pool allocations are seen and attributed to callers
    assert.ok(worker.allocated.count > 0 || worker.poolClasses.some((c) => c.sites.length > 0), 'pool allocations were traced');
  } finally {
    const gone = new Promise((r) => master.once('exit', r));
    if (master.pid && master.exitCode === null) process.kill(master.pid, 'SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
  }
});
