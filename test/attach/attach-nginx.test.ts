// `leakscope attach --exe` on Debian's nginx (a private copy, our config and ports): request and
// connection pools balance, held keepalive connections' pools are live and steady, not leaks.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import type { ProcessReport } from '../../src/analyses/result.js';
import type { Event } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { attachInBackground, parseReport, poolSampleRounds, tempDir, traceStart, until, untilTrace } from './helpers.js';
import { Callers } from './callers.js';
import { childrenOf, curlRequests, HeldConnections, prepareNginx, startNginx, waitForPort } from './servers.js';
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
    const trace = join(dir, 'held.lstrace');
    const run = attachInBackground(['--exe', server.exe, '--format', 'json', '--pool-sample', '500ms', '-o', trace]);
    await run.started;
    const start = await traceStart(trace);
    held = await HeldConnections.open(port, 4);
    held.every(400);
    curlRequests(port, 20, 10);
    // traced until the held connections answered 10 requests each, and two pool samples more
    const h = held;
    await until(() => h.responses >= 40, 'the held connections\' requests');
    await untilTrace(trace, poolSampleRounds(Number(process.hrtime.bigint() - start), 2), 'two pool samples');
    process.kill(run.pid, 'SIGTERM');
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

test('nginx --exe catches processes started after attach (and their workers), with --pool-allocs every pool allocation attributed to its caller', async () => {
  const dir = tempDir('att-nginx2');
  dirs.push(dir);
  const port = await freePort();
  const { exe, conf } = prepareNginx(dir, port, 1);
  const trace = join(dir, 'nginx.lstrace');
  const run = attachInBackground(['--exe', exe, '--allocator', 'nginx', '--pool-allocs', '--format', 'json', '-o', trace]);
  await run.started;
  const master = spawn(exe, ['-p', dir, '-c', conf, '-e', `${dir}/logs/error.log`], { stdio: 'ignore' });
  try {
    await waitForPort(port);
    // the master was found by a scan of /proc, so its worker may have been forked before the
    // master's probes were on: drive it once attach says it traces the worker
    await until(() => childrenOf(master.pid!).some((w) => run.stderr().includes(`tracing process ${w} `)), 'attach to trace the worker');
    curlRequests(port, 10, 10);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.ok(report.processes.some((p) => p.pid === master.pid), 'the master started after attach is traced');
    const worker = report.processes.find((p) => p.ppid === master.pid);
    assert.ok(worker, `a worker forked by it is traced: ${report.processes.map((p) => `${p.pid}/${p.ppid}`).join(' ')}`);
    assert.match(worker.command, /worker process/, 'its command as it is now, not as it was at fork');
    const req = worker.poolClasses.reduce((a, c) => a + c.created, 0);
    assert.ok(req >= 100, `pools created in the worker: ${req}`);

    // Every pool allocation is attributed to its caller: the leaf frame of each is a return
    // address right after a call to the probed function, in the binary itself.
    const events: Event[] = [];
    await readTrace(trace, { event: (e) => events.push(e) });
    const callers = new Callers(events, exe);
    try {
      const allocs = events.filter((e): e is Extract<Event, { kind: 'pool-alloc' }> => e.kind === 'pool-alloc');
      assert.ok(allocs.filter((e) => e.pid === worker.pid).length >= 1000, `pool allocations in the worker: ${allocs.length}`);
      const wrong: string[] = [];
      for (const a of allocs) {
        const site = callers.site(a.pid, a.stack);
        // (the caller may be a static function, unnamed in Debian's stripped binary; the call
        // may go through a function that tail-calls the allocator, like ngx_alloc_chain_link);
        // the stack goes on to main
        if (!site || !callers.reaches(site.callee, ['ngx_palloc', 'ngx_pnalloc', 'ngx_pmemalign']) || !site.chain.includes('main')) wrong.push(`${a.pid} ${JSON.stringify(site)}`);
      }
      assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} of ${allocs.length} pool allocations not attributed to the function that called the allocator`);
    } finally {
      callers.close();
    }
  } finally {
    const gone = new Promise((r) => master.once('exit', r));
    if (master.pid && master.exitCode === null) process.kill(master.pid, 'SIGTERM');
    await Promise.race([gone, new Promise((r) => setTimeout(r, 5000))]);
  }
});

test('nginx reload while traced: the new workers are traced from their first call', async () => {
  const dir = tempDir('att-nginx3');
  dirs.push(dir);
  const port = await freePort();
  const server = await startNginx(dir, port, 2);
  const trace = join(dir, 'reload.lstrace');
  try {
    const master = server.master.pid!;
    const before = childrenOf(master);
    const run = attachInBackground(['--exe', server.exe, '--allocator', 'nginx', '--pool-allocs', '-o', trace, '--no-report']);
    await run.started;
    process.kill(master, 'SIGHUP');
    await until(() => childrenOf(master).filter((p) => !before.includes(p)).length >= 2, 'two new workers');
    curlRequests(port, 2, 5);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const events: Event[] = [];
    await readTrace(trace, { event: (e) => events.push(e) });
    const forks = events.filter((e) => e.kind === 'fork' && e.parentPid === master);
    assert.ok(forks.length >= 2, `workers forked while traced: ${forks.length}`);
    const callers = new Callers(events, server.exe);
    try {
      for (const f of forks) {
        const first = events.find((e) => e.kind === 'pool-alloc' && e.pid === f.pid);
        assert.ok(first && first.kind === 'pool-alloc' && first.t >= f.t, `worker ${f.pid}: pool allocations seen`);
        const site = callers.site(first.pid, first.stack);
        assert.ok(site?.chain.slice(0, 3).includes('ngx_set_environment'), `worker ${f.pid}: its first pool allocation, from ${JSON.stringify(site)}`);
      }
    } finally {
      callers.close();
    }
  } finally {
    await server.stop();
  }
});
