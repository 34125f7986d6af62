// SIGUSR1 to a running `leakscope attach` drops a marker for every traced process ("SIGUSR1 #N",
// pid 0) on the trace's timeline; tracing goes on, the report shows the markers and diff takes
// them as range edges.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { Event } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { attachInBackground, buildProgram, parseReport, root, startDriven, startReady, stop, tempDir, until } from './helpers.js';
import { cliSync } from '../support/cli.js';

const dir = tempDir('att-markers');
const prog = buildProgram('att-pool', dir);
const profile = join(root, 'test/programs/att-pool.profile.json');
after(() => rmSync(dir, { recursive: true, force: true }));

test('SIGUSR1 to attach: markers in the trace and the report, tracing goes on', async () => {
  // endless iterations, a pool every 5 ms, "leaked N" every 10th: driven once tracing is live
  const drv = await startDriven(prog, ['-1', '5', '10']);
  const trace = join(dir, 'marks.lstrace');
  try {
    const a = attachInBackground(['--pid', String(drv.pid), '--allocator', profile, '-o', trace, '--format', 'json']);
    await a.started;
    drv.go();
    // each marker once the program has made pools since the last one, each acknowledged by
    // attach (on its stderr) before the program is watched again; stopped the same way
    const marked = (n: number) => until(() => a.stderr().includes(`marker "SIGUSR1 #${n}"`), `marker ${n} acknowledged`);
    await drv.untilLeaked(2);
    process.kill(a.pid, 'SIGUSR1');
    await marked(1);
    await drv.untilLeaked(drv.leaked() + 2);
    process.kill(a.pid, 'SIGUSR1');
    await marked(2);
    await drv.untilLeaked(drv.leaked() + 2);
    process.kill(a.pid, 'SIGTERM');
    const r = await a.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /marker "SIGUSR1 #1" at \d+\.\d{3} s/);
    const events: Event[] = [];
    const read = await readTrace(trace, { event: (e) => events.push(e) });
    assert.deepEqual(read.warnings, []);
    const marks = events.filter((e): e is Extract<Event, { kind: 'marker' }> => e.kind === 'marker');
    assert.deepEqual(marks.map((m) => [m.pid, m.label]), [[0, 'SIGUSR1 #1'], [0, 'SIGUSR1 #2']]);
    const [m1, m2] = marks as [typeof marks[0], typeof marks[0]];
    assert.ok(m2.t > m1.t, `${m1.t} .. ${m2.t}`);
    // traced before, between and after the markers: the signal did not stop or pause tracing
    const creates = events.filter((e) => e.kind === 'pool-create' && e.pid === drv.pid).map((e) => e.t);
    assert.ok(creates.some((t) => t < m1.t), 'pools before the first marker');
    assert.ok(creates.some((t) => t > m1.t && t < m2.t), 'pools between the markers');
    assert.ok(creates.some((t) => t > m2.t), 'pools after the second marker');

    // the report: the markers belong to the traced process's timeline
    const report = parseReport(r);
    const p = report.processes.find((x) => x.pid === drv.pid)!;
    assert.deepEqual(p.markers.map((m) => m.label), ['SIGUSR1 #1', 'SIGUSR1 #2']);
    // and they are range edges
    const d = cliSync(['diff', trace, '--from', 'SIGUSR1 #1', '--to', 'SIGUSR1 #2', '--format', 'json']);
    assert.equal(d.code, 0, d.stderr);
    const rows = (JSON.parse(d.stdout) as { rows: { kind: string; delta: number }[] }).rows;
    assert.ok(rows.find((x) => x.kind === 'total')!.delta > 0, 'the leaky pools grew between the markers');
  } finally {
    stop(drv.child);
  }
});

test('SIGUSR1 to attach --allocator luajit: the marker is in its trace too', async () => {
  // A LuaJIT VM busy in a loop (the tracer's own trace; the marker needs no Lua allocations).
  const lua = await startReady('luajit', ['-e', 'io.write("ready\\n") io.flush() local k = {} while true do k[#k % 1000 + 1] = {} end']);
  const trace = join(dir, 'luajit.lstrace');
  try {
    const a = attachInBackground(['--pid', String(lua.pid), '--allocator', 'luajit', '--duration', '2s', '-o', trace, '--no-report']);
    // "tracing" is printed as the trace opens: a marker is taken from then on
    await a.started;
    process.kill(a.pid, 'SIGUSR1');
    const r = await a.done;
    assert.equal(r.code, 0, r.stderr);
    const events: Event[] = [];
    await readTrace(trace, { event: (e) => events.push(e) });
    const marks = events.filter((e): e is Extract<Event, { kind: 'marker' }> => e.kind === 'marker');
    const m = marks.find((x) => x.label === 'SIGUSR1 #1');
    assert.ok(m, JSON.stringify(marks));
    assert.equal(m.pid, 0);
    // after the start, before the traced time ended (the tracer's own "settling" marker)
    const settling = marks.find((x) => x.label.startsWith('luajit: traced time over'));
    assert.ok(m.t > 0 && (!settling || m.t < settling.t), JSON.stringify(marks));
  } finally {
    stop(lua);
  }
});
