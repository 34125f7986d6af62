// `leakscope attach` on our own pool-allocator program (test/programs/att-pool.c, built -O2
// -fomit-frame-pointer) with a user profile and with the libc profile: real uprobes, as root.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { chmodSync, copyFileSync, rmSync } from 'node:fs';
import { readTrace } from '../../src/trace/reader.js';
import type { Event } from '../../src/model/events.js';
import type { PoolReport } from '../../src/analyses/result.js';
import { attachInBackground, buildProgram, parseReport, root, runAttach, startDriven, stop, tempDir } from './helpers.js';

const dir = tempDir('att-pool');
const prog = buildProgram('att-pool', dir);
const profile = join(root, 'test/programs/att-pool.profile.json');
after(() => rmSync(dir, { recursive: true, force: true }));

test('user pool profile: the leaking pools are live, named by their creator, verdict leak; request pools balance', async () => {
  const prog0 = await startDriven(prog, ['-1', '5', '10']);
  const child = prog0.child;
  try {
    const trace = join(dir, 'pool.lstrace');
    // the program starts once tracing is live, and tracing stops once it has leaked 30 pools
    const run = attachInBackground(['--pid', String(child.pid), '--allocator', profile, '--format', 'json', '-o', trace]);
    await run.started;
    prog0.go();
    await prog0.untilLeaked(30);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    const leakedByNow = prog0.leaked();
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    const p = report.processes.find((x) => x.pid === child.pid);
    assert.ok(p, 'the traced process is in the report');
    const leaky = p.poolClasses.find((c) => c.name === 'leaky');
    const request = p.poolClasses.find((c) => c.name === 'request');
    assert.ok(leaky && request, `pool classes: ${p.poolClasses.map((c) => c.name).join(', ')}`);
    assert.equal(leaky.verdict.verdict, 'leak');
    assert.equal(leaky.destroyed, 0);
    assert.equal(leaky.live, leaky.created, `leaky class: live ${leaky.live}, created ${leaky.created}`);
    // every leak made while traced (all made before the SIGTERM), none that was not made
    assert.ok(leaky.created >= 30 && leaky.created <= leakedByNow, `leaky pools: ${leaky.created}, leaked by the end: ${leakedByNow}`);
    assert.equal(request.created, request.destroyed, 'every request pool created while traced was destroyed');
    assert.notEqual(request.verdict.verdict, 'leak');
    assert.ok(request.created >= 9 * leaky.created, `request ${request.created} vs leaky ${leaky.created}`);
    // every leaked pool was created by leaky_handler (CFI unwinding through -fomit-frame-pointer code)
    const all = (list: PoolReport[]): PoolReport[] => list.flatMap((x) => [x, ...all(x.children)]);
    const leakedPools = all(p.pools).filter((x) => x.tag === 'leaky');
    assert.equal(leakedPools.length, leaky.live, `live pools tagged leaky: ${leakedPools.length}, class live ${leaky.live}; roots ${p.pools.map((x) => `${x.pool}/${x.parent}/${x.tag}/${x.children.length}`).join(' ')}`);
    for (const lp of leakedPools) {
      assert.match(lp.createSite, /^leaky_handler\b/);
      assert.ok(lp.createStack.some((f) => f.fn === 'main'), 'the stack goes on past the caller');
      assert.ok(lp.bytes >= 2048, `pool size read from its blocks: ${lp.bytes}`);
    }
    // the trace names its modules with build ids, so it can be symbolized later
    const events: Event[] = [];
    await readTrace(trace, { event: (e) => events.push(e) });
    const mod = events.find((e) => e.kind === 'module' && e.path === prog);
    assert.ok(mod && mod.kind === 'module');
    const note = execFileSync('readelf', ['-n', prog], { encoding: 'utf8' });
    assert.match(note, new RegExp(`Build ID: ${mod.buildId}`));
  } finally {
    stop(child);
  }
});

test('libc profile: the leaking malloc site is found in a -fomit-frame-pointer binary; balanced mallocs are not leaks', async () => {
  const prog0 = await startDriven(prog, ['-1', '5', '10']);
  const child = prog0.child;
  try {
    const run = attachInBackground(['--pid', String(child.pid), '--allocator', 'libc', '--format', 'json']);
    await run.started;
    prog0.go();
    // the 200 blocks malloc'd before attach are freed at iterations 100-299 (leaks 10-29)
    await prog0.untilLeaked(35);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const p = parseReport(r).processes.find((x) => x.pid === child.pid);
    assert.ok(p);
    const site = p.sites.find((s) => s.label.includes('leaky_malloc'));
    assert.ok(site, `sites: ${p.sites.map((s) => `${s.label} ${s.count}`).join('; ')}`);
    assert.equal(site.bytes, site.count * 100);
    assert.ok(site.count >= 35 && site.count <= prog0.leaked(), `leaked blocks: ${site.count}`);
    assert.equal(site.verdict?.verdict, 'leak');
    assert.ok(!p.sites.some((s) => s.label.includes('balanced_malloc') && s.count > 1), 'balanced mallocs are freed');
    // blocks malloc'd before attach and freed while traced: every one counted, not mistaken
    assert.ok(p.anomalies.unknownFree >= 200 && p.anomalies.unknownFree <= 210, `unknown frees: ${p.anomalies.unknownFree}`);
    assert.equal(p.anomalies.doubleFree, 0);
  } finally {
    stop(child);
  }
});

test('a target that exits mid-trace ends the session cleanly with its exit in the report', async () => {
  const prog0 = await startDriven(prog, ['800', '5', '10']);
  const child = prog0.child;
  const exited = new Promise<number>((r) => child.once('exit', () => r(Date.now())));
  const run = attachInBackground(['--pid', String(child.pid), '--allocator', profile, '--duration', '600s', '--format', 'json']);
  await run.started;
  prog0.go();
  const r = await run.done;
  const stoppedAfter = Date.now() - (await exited);
  assert.equal(r.code, 0, r.stderr);
  // without exit detection attach would run its full 600 s, however long the program took
  assert.ok(stoppedAfter < 60000, `attach stopped ${stoppedAfter} ms after its only target exited`);
  const p = parseReport(r).processes.find((x) => x.pid === child.pid);
  assert.ok(p);
  assert.equal(p.exited, true);
  assert.equal(p.exitCode, 0);
});

test('bad input: one line, non-zero exit, no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [['--pid', '999999999'], /argument '999999999' is invalid\. It must be a whole number from 1 to 4194304/],
    [['--pid', '4194000'], /process 4194000 does not exist/],
    [['--exe', '/nonexistent/bin'], /no such file/],
    [['--pid', String(process.pid), '--allocator', 'nosuch'], /unknown allocator "nosuch"/],
    [['--pid', String(process.pid), '--mode', 'fast'], /argument 'fast' is invalid\. Allowed choices are auto, events, aggregate, walk/],
    [['--pid', String(process.pid), '--budget', 'lots'], /argument 'lots' is invalid\. It must be a whole number from 0 to 1000000000/],
    [['--pid', String(process.pid), '--duration', 'soon'], /argument 'soon' is invalid\. It must be a duration/],
    [[], /say what to trace/],
  ];
  for (const [args, re] of cases) {
    const r = await runAttach(args);
    assert.notEqual(r.code, 0, args.join(' '));
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
});

test('--allocator libc traces the malloc family of just the traced processes: another program calling the same libc is not traced', async () => {
  // the same program under another path: same code, same libc, not the --exe target
  const other = join(dir, 'att-pool-other');
  copyFileSync(prog, other);
  chmodSync(other, 0o755);
  const a = await startDriven(prog, ['-1', '5', '10']);
  const b = await startDriven(other, ['-1', '5', '10']);
  const trace = join(dir, 'libc-only.lstrace');
  try {
    b.go();
    const run = attachInBackground(['--exe', prog, '--allocator', 'libc', '--format', 'json', '-o', trace]);
    await run.started;
    a.go();
    const bFrom = b.leaked();
    await a.untilLeaked(15);
    await b.untilLeaked(bFrom + 15);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.deepEqual(report.processes.map((p) => p.pid), [a.pid]);
    const site = report.processes[0]!.sites.find((s) => s.label.includes('leaky_malloc'));
    assert.ok(site && site.count >= 15, `leaky_malloc in the traced process: ${site?.count}`);
    const pids = new Set<number>();
    await readTrace(trace, { event: (e) => { if (e.pid !== 0) pids.add(e.pid); } });
    assert.deepEqual([...pids], [a.pid], 'events of the traced process only');
  } finally {
    stop(a.child);
    stop(b.child);
  }
});
