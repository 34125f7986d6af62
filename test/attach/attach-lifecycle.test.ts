// How `leakscope attach` starts and ends: the trace file is flushed while tracing (a SIGKILL
// loses at most about a second), SIGHUP stops it as SIGTERM does, and targets it cannot trace
// are refused up front instead of being "traced" for the whole duration.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import type { Event, TraceMeta } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { attachInBackground, buildProgram, parseReport, root, runAttach, startDriven, stop, tempDir } from './helpers.js';
import { spawnCli } from '../support/cli.js';

const dir = tempDir('att-life');
const prog = buildProgram('att-pool', dir);
const profile = join(root, 'test/programs/att-pool.profile.json');
after(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(path: string): Promise<{ events: Event[]; meta: TraceMeta }> {
  const events: Event[] = [];
  const r = await readTrace(path, { event: (e) => events.push(e) });
  return { events, meta: r.meta };
}

test('attach -o: a SIGKILL after seconds of tracing keeps the trace up to about a second before it', async () => {
  const p = await startDriven(prog, ['-1', '5', '10']);
  const trace = join(dir, 'killed.lstrace');
  try {
    const run = attachInBackground(['--pid', String(p.pid), '--allocator', profile, '-o', trace, '--no-report']);
    await run.started;
    p.go();
    // 3 s of tracing at least: three flushes' worth
    const t0 = Date.now();
    await p.untilLeaked(20);
    while (Date.now() - t0 < 3000) await p.untilLeaked(p.leaked() + 1);
    const killedAt = process.hrtime.bigint();
    process.kill(run.pid, 'SIGKILL');
    await run.done;
    const { events, meta } = await readAll(trace);
    const creates = events.filter((e) => e.kind === 'pool-create' && e.pid === p.pid);
    assert.ok(creates.length > 0, `events kept: ${events.length}`);
    const lastT = Math.max(...creates.map((e) => e.t));
    const lostNs = Number(killedAt - BigInt(meta.startMonoNs!)) - lastT;
    // flushed every second; 2x margin for a loaded machine
    assert.ok(lostNs < 2e9, `the last pool kept was created ${(lostNs / 1e9).toFixed(2)} s before the SIGKILL`);
  } finally {
    stop(p.child);
  }
});

test('attach: SIGHUP ends the trace cleanly, like SIGTERM: probes detached, trace and report written', async () => {
  const p = await startDriven(prog, ['-1', '5', '10']);
  const trace = join(dir, 'hup.lstrace');
  try {
    const run = attachInBackground(['--pid', String(p.pid), '--allocator', profile, '-o', trace, '--format', 'json']);
    await run.started;
    p.go();
    await p.untilLeaked(10);
    process.kill(run.pid, 'SIGHUP');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const rep = parseReport(r).processes.find((x) => x.pid === p.pid);
    assert.ok(rep && rep.poolClasses.some((c) => c.name === 'leaky' && c.live >= 10), JSON.stringify(rep?.poolClasses.map((c) => [c.name, c.live])));
    const { events } = await readAll(trace);
    assert.ok(events.filter((e) => e.kind === 'pool-create').length >= 100);
    // the program goes on, untraced
    const before = p.leaked();
    await p.untilLeaked(before + 2);
  } finally {
    stop(p.child);
  }
});

/** Runs `leakscope attach ARGS --pid $$` through `sh -c` with an `exec`, so the attach process
 *  has the shell's pid ($$). */
function attachAsShell(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawnCli(['attach', ...args], { shell: 'set -- "$@" --pid $$', stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60000);
    child.on('exit', (code) => { clearTimeout(timer); resolve({ code: code ?? -1, stderr }); });
  });
}

function refused(r: { code: number; stderr: string }, re: RegExp): void {
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, re);
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  assert.match(r.stderr, /^leakscope: /);
}

test('attach refuses, up front and in one line, what it could never trace', async () => {
  // a kernel thread: kthreadd is pid 2 on every Linux
  refused(await runAttach(['--pid', '2', '--duration', '30s']), /process 2 \(kthreadd\) is a kernel thread/);
  // itself
  refused(await attachAsShell(['--duration', '30s']), /is this leakscope attach itself/);
  // a statically linked program: the libc profile's functions live in a library it never loads
  const staticProg = join(dir, 'att-pool-static');
  const cc = spawnSync('cc', ['-O2', '-static', '-o', staticProg, join(root, 'test/programs/att-pool.c')], { encoding: 'utf8' });
  assert.equal(cc.status, 0, cc.stderr);
  const s = await startDriven(staticProg, ['-1', '5', '10']);
  try {
    refused(await runAttach(['--pid', String(s.pid), '--allocator', 'libc', '--duration', '30s']), /statically linked: it loads no libc\.so\.6/);
    // the same when the profile is chosen by attach (nothing detected: libc)
    refused(await runAttach(['--pid', String(s.pid), '--duration', '30s']), /statically linked/);
    refused(await runAttach(['--exe', staticProg, '--allocator', 'libc', '--duration', '30s']), /statically linked/);
    // but a profile for the allocator in its executable is accepted
    const ok = await runAttach(['--pid', String(s.pid), '--allocator', profile, '--duration', '300ms', '--format', 'json']);
    assert.equal(ok.code, 0, ok.stderr);
  } finally {
    stop(s.child);
  }
  // a profile none of whose functions the target defines
  const nosuch = join(dir, 'nosuch.json');
  writeFileSync(nosuch, JSON.stringify({ name: 'nosuch', functions: [{ symbol: 'no_such_alloc', in: 'exe', role: 'alloc', addr: 'ret', size: 'arg0' }, { symbol: 'no_such_free', in: 'libc.so.6', role: 'free', addr: 'arg0' }] }));
  const p = await startDriven(prog, ['-1', '5', '10']);
  try {
    refused(await runAttach(['--pid', String(p.pid), '--allocator', nosuch, '--duration', '30s']), /defines none of the functions of the nosuch profile \(no_such_alloc, no_such_free\)/);
    refused(await runAttach(['--exe', prog, '--allocator', nosuch, '--duration', '30s']), /defines none of the functions of the nosuch profile/);
  } finally {
    stop(p.child);
  }
});

test('attach --exe without --duration stops by itself once every traced process of it has exited', async () => {
  const p = await startDriven(prog, ['300', '1', '10']);
  const run = attachInBackground(['--exe', prog, '--allocator', profile, '--format', 'json']);
  try {
    await run.started;
    p.go();
    const timeout = new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60000).unref());
    const r = await Promise.race([run.done, timeout]);
    assert.notEqual(r, 'hung', 'attach --exe still ran a minute after its only target exited');
    if (r === 'hung') return;
    assert.equal(r.code, 0, r.stderr);
    const rep = parseReport(r).processes.find((x) => x.pid === p.pid);
    assert.ok(rep && rep.exited, 'the target and its exit are in the report');
    assert.equal(rep.poolClasses.find((c) => c.name === 'leaky')?.created, 30);
  } finally {
    try { process.kill(run.pid, 'SIGKILL'); } catch { /* ended */ }
    stop(p.child);
  }
});
