// attach's other modes on our pool program: the kernel-side aggregate table, the --interval
// growth table, and lost events counted and shown when the ring buffer overflows.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { descendants, nameOf } from '../../src/proc/processes.js';
import { attachInBackground, buildProgram, parseReport, root, startDriven, stop, tempDir, until } from './helpers.js';

const dir = tempDir('att-modes');
const prog = buildProgram('att-pool', dir);
const profile = join(root, 'test/programs/att-pool.profile.json');
after(() => rmSync(dir, { recursive: true, force: true }));

const INTERVAL_HEAD = /^\[\d\d:\d\d:\d\d\] Top \d+ growing sites in the last [\d.]+ s \([\d.]+ s traced\):$/m;
const INTERVAL_ROW = /pid \d+\s+\+([\d.]+) KiB in ([\d.]+) s\s+\(\+([\d.]+) KiB since attach; \d+ live pools, [\d.]+ KiB\)\s+(leak|growing)\s+leaky_handler/;

test('aggregate mode: live pools per call site from kernel maps, the leaking caller named', async () => {
  const prog0 = await startDriven(prog, ['-1', '5', '10']);
  const child = prog0.child;
  try {
    // traced while the program leaks 8 more pools (a readiness condition, not a time window)
    const traced = async (extra: string[]) => {
      const run = attachInBackground(['--pid', String(child.pid), '--allocator', profile, '--mode', 'aggregate', ...extra]);
      await run.started;
      if (prog0.leaked() === 0) prog0.go();
      await prog0.untilLeaked(prog0.leaked() + 8);
      process.kill(run.pid, 'SIGTERM');
      return run.done;
    };
    const text = await traced([]);
    assert.equal(text.code, 0, text.stderr);
    const m = /(\d+(?:\.\d+)? \w+) in (\d+) pools \(of (\d+) made\)\s+mp_create from leaky_handler/.exec(text.stdout);
    assert.ok(m, text.stdout);
    assert.equal(m[2], m[3], 'every leaky pool is still live');
    assert.ok(Number(m[2]) >= 8);
    assert.doesNotMatch(text.stdout, /from good_handler/, 'balanced pools are not outstanding');
    const json = await traced(['--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as { rows: { spec: number; liveCount: number; totalCount: number }[] };
    const creates = out.rows.filter((r) => r.spec === 0);
    // two creating sites: good_handler (all destroyed again, but for the one request the table
    // may be read in the middle of) and leaky_handler (all live)
    assert.ok(creates.some((r) => r.liveCount <= 1 && r.totalCount >= 70), JSON.stringify(creates));
    assert.ok(creates.some((r) => r.liveCount >= 8 && r.liveCount === r.totalCount), JSON.stringify(creates));
  } finally {
    stop(child);
  }
});

test('--interval prints the sites that grew, ranked, with verdicts', async () => {
  const prog0 = await startDriven(prog, ['-1', '5', '10']);
  const child = prog0.child;
  try {
    const run = attachInBackground(['--pid', String(child.pid), '--allocator', profile, '--interval', '1s']);
    await run.started;
    prog0.go();
    const tables = (): string[] => run.stdout().split(INTERVAL_HEAD).slice(1);
    // three tables: the last one complete when the fourth starts
    await until(() => tables().length >= 4, 'four interval tables');
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const third = tables()[2]!;
    const first = third.trim().split('\n')[0]!;
    const m = INTERVAL_ROW.exec(first);
    assert.ok(m, third);
    // the interval's growth, a part of the growth since attach (three intervals by then)
    assert.ok(Number(m[1]) > 0 && Number(m[1]) < Number(m[3]), first);
  } finally {
    stop(child);
  }
});

test('a ring buffer too small for the event rate: lost events are counted, reported and warned about', async () => {
  const prog0 = await startDriven(prog, ['-1', '0', '10']);
  const child = prog0.child;
  try {
    const run = attachInBackground(['--pid', String(child.pid), '--allocator', 'libc', '--ringbuf-mb', '1', '--stack-bytes', '16384', '--format', 'json']);
    await run.started;
    // The loader drains the ring every few ms: whether it falls behind the program depends on
    // how the machine shares its CPUs (a loaded run kept up). Stopped, it reads nothing while
    // the program makes 2,000 iterations of 4 calls with 16 KiB stack copies, far more than
    // 1 MiB; the program must not wait for it.
    const loader = descendants(run.pid).find((pid) => nameOf(pid) === 'leakscope-bpf');
    assert.ok(loader, `the loader among the attach's processes: ${descendants(run.pid).map((pid) => `${pid} ${nameOf(pid)}`).join(', ')}`);
    process.kill(loader, 'SIGSTOP');
    try {
      prog0.go();
      await prog0.untilLeaked(200);
    } finally {
      process.kill(loader, 'SIGCONT');
    }
    // resumed, it traces on: the session ends as usual
    await prog0.untilLeaked(prog0.leaked() + 10);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.ok(report.lost > 0, `lost: ${report.lost}`);
    assert.match(r.stderr, /\d+ events were lost \(ring buffer full\)/);
  } finally {
    stop(child);
  }
});

test('SIGTERM ends the trace cleanly: probes detached, report printed', async () => {
  const prog0 = await startDriven(prog, ['-1', '5', '10']);
  const child = prog0.child;
  try {
    const run = attachInBackground(['--pid', String(child.pid), '--allocator', profile, '--format', 'json']);
    await run.started;
    prog0.go();
    await prog0.untilLeaked(5);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const p = parseReport(r).processes.find((x) => x.pid === child.pid);
    assert.ok(p && p.poolClasses.some((c) => c.name === 'leaky' && c.live >= 5));
    assert.equal(p.exited, false, 'the target lives on');
  } finally {
    stop(child);
  }
});
