// attach's other modes on our pool program: the kernel-side aggregate table, the --interval
// growth table, and lost events counted and shown when the ring buffer overflows.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import { attachInBackground, buildProgram, parseReport, root, runAttach, startReady, stop, tempDir } from './helpers.js';

const dir = tempDir('att-modes');
const prog = buildProgram('att-pool', dir);
const profile = join(root, 'test/programs/att-pool.profile.json');
after(() => rmSync(dir, { recursive: true, force: true }));

test('aggregate mode: live pools per call site from kernel maps, the leaking caller named', async () => {
  const child = await startReady(prog, ['-1', '5', '10']);
  try {
    const text = await runAttach(['--pid', String(child.pid), '--allocator', profile, '--mode', 'aggregate', '--duration', '1500ms']);
    assert.equal(text.code, 0, text.stderr);
    const m = /(\d+(?:\.\d+)? \w+) in (\d+) pools \(of (\d+) made\)\s+mp_create from leaky_handler/.exec(text.stdout);
    assert.ok(m, text.stdout);
    assert.equal(m[2], m[3], 'every leaky pool is still live');
    assert.ok(Number(m[2]) >= 5);
    assert.doesNotMatch(text.stdout, /from good_handler/, 'balanced pools are not outstanding');
    const json = await runAttach(['--pid', String(child.pid), '--allocator', profile, '--mode', 'aggregate', '--duration', '1500ms', '--format', 'json']);
    assert.equal(json.code, 0, json.stderr);
    const out = JSON.parse(json.stdout) as { rows: { spec: number; liveCount: number; totalCount: number }[] };
    const creates = out.rows.filter((r) => r.spec === 0);
    // two creating sites: good_handler (all destroyed again) and leaky_handler (all live)
    assert.ok(creates.some((r) => r.liveCount === 0 && r.totalCount >= 50), JSON.stringify(creates));
    assert.ok(creates.some((r) => r.liveCount > 0 && r.liveCount === r.totalCount), JSON.stringify(creates));
  } finally {
    stop(child);
  }
});

test('--interval prints the sites that grew, ranked, with verdicts', async () => {
  const child = await startReady(prog, ['-1', '5', '10']);
  try {
    const r = await runAttach(['--pid', String(child.pid), '--allocator', profile, '--duration', '3500ms', '--interval', '1s']);
    assert.equal(r.code, 0, r.stderr);
    const tables = r.stdout.split(/^\[\d\d:\d\d:\d\d\] Top \d+ growing sites since attach:$/m).slice(1);
    assert.ok(tables.length >= 2, r.stdout);
    const last = tables[tables.length - 1]!;
    const first = last.trim().split('\n')[0]!;
    assert.match(first, /pid \d+\s+\+[\d.]+ KiB\s+\(\d+ live pools, [\d.]+ KiB\)\s+(leak|growing)\s+leaky_handler/);
  } finally {
    stop(child);
  }
});

test('a ring buffer too small for the event rate: lost events are counted, reported and warned about', async () => {
  const child = await startReady(prog, ['-1', '0', '10']);
  try {
    const r = await runAttach(['--pid', String(child.pid), '--allocator', 'libc', '--ringbuf-mb', '1', '--stack-bytes', '16384', '--duration', '2s', '--format', 'json']);
    assert.equal(r.code, 0, r.stderr);
    const report = parseReport(r);
    assert.ok(report.lost > 0, `lost: ${report.lost}`);
    assert.match(r.stderr, /\d+ events were lost \(ring buffer full\)/);
  } finally {
    stop(child);
  }
});

test('SIGTERM ends the trace cleanly: probes detached, report printed', async () => {
  const child = await startReady(prog, ['-1', '5', '10']);
  try {
    const run = attachInBackground(['--pid', String(child.pid), '--allocator', profile, '--format', 'json']);
    await run.started;
    await new Promise((r) => setTimeout(r, 2000));
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const p = parseReport(r).processes.find((x) => x.pid === child.pid);
    assert.ok(p && p.poolClasses.some((c) => c.name === 'leaky' && c.live > 0));
    assert.equal(p.exited, false, 'the target lives on');
  } finally {
    stop(child);
  }
});
