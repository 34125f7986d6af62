// How `leakscope attach` starts and ends: the trace file is flushed while tracing (a SIGKILL
// loses at most about a second), SIGHUP stops it as SIGTERM does, and targets it cannot trace
// are refused up front instead of being "traced" for the whole duration.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { Event, TraceMeta } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { attachInBackground, buildProgram, parseReport, root, startDriven, stop, tempDir } from './helpers.js';

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
