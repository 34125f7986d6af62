// `leakscope mark`: a marker chunk appended to a live trace, on the trace's monotonic timeline,
// found through the process's LEAKSCOPE_TRACE; the report then draws it and takes it as a range edge.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Event } from '../../src/model/events.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { readTrace } from '../../src/trace/reader.js';
import { cli, cliSync, exited, root, spawnCli } from '../support/cli.js';

const dir = mkdtempSync(join(tmpdir(), 'leakscope-mark-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function liveTrace(name: string, agoNs: bigint): Promise<string> {
  const path = join(dir, name);
  const w = TraceWriter.create(path, { format: 1, clock: 'ns', source: 'recorder', startMonoNs: String(process.hrtime.bigint() - agoNs) });
  w.event({ kind: 'process', pid: 77, t: 0, ppid: 1, command: 'x', exe: '/x' });
  w.event({ kind: 'alloc', pid: 77, t: 1000, tid: 77, addr: 0x1000, size: 64, stack: 0 });
  await w.close();
  return path;
}

async function events(path: string): Promise<Event[]> {
  const out: Event[] = [];
  const r = await readTrace(path, { event: (e) => out.push(e) });
  assert.deepEqual(r.warnings, []);
  return out;
}

test('mark --trace: appends a marker timed against startMonoNs', async () => {
  const path = await liveTrace('a.lstrace', 5_000_000_000n);
  const r = cliSync(['mark', '77', 'after "warm-up" </script>', '--trace', path]);
  assert.equal(r.code, 0, r.stderr);
  const ev = await events(path);
  assert.equal(ev.length, 3, 'earlier events kept');
  const m = ev[2]!;
  assert.equal(m.kind, 'marker');
  assert.equal(m.pid, 77);
  assert.equal((m as { label: string }).label, 'after "warm-up" </script>');
  // Five seconds after the trace start, plus the CLI's start-up time.
  assert.ok(m.t > 5e9 && m.t < 5e9 + 30e9, String(m.t));
});

test('mark PID: finds the trace through /proc/PID/environ (relative to the process\'s cwd)', async () => {
  const path = await liveTrace('b.lstrace', 1_000_000_000n);
  const child = spawn('sleep', ['30'], { cwd: dir, env: { ...process.env, LEAKSCOPE_TRACE: 'b.lstrace' }, stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 100));
    const r = cliSync(['mark', String(child.pid), 'checkpoint']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^marked pid \d+ at \d+\.\d{3} s: "checkpoint"/);
    const ev = await events(path);
    const m = ev.find((e) => e.kind === 'marker')!;
    assert.equal(m.pid, child.pid);
    assert.ok(m.t > 1e9);
    const twice = cliSync(['mark', String(child.pid), 'second']);
    assert.equal(twice.code, 0);
    const labels = (await events(path)).filter((e) => e.kind === 'marker').map((e) => (e as { label: string }).label);
    assert.deepEqual(labels, ['checkpoint', 'second']);
  } finally {
    child.kill();
  }
});

test('mark: helpful one-line errors', async () => {
  const noEnv = spawn('sleep', ['30'], { env: { PATH: process.env.PATH ?? '' }, stdio: 'ignore' });
  try {
    await new Promise((r) => setTimeout(r, 100));
    const r = cliSync(['mark', String(noEnv.pid), 'x']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^leakscope: process \d+ has no LEAKSCOPE_TRACE in its environment .*--trace FILE\n$/);
  } finally {
    noEnv.kill();
  }
  const garbage = join(dir, 'garbage');
  writeFileSync(garbage, 'hello world, not a trace');
  assert.match(cliSync(['mark', '1', 'x', '--trace', garbage]).stderr, /^leakscope: .*garbage: not a leakscope trace \(no LSTRACE1 header\)\n$/);
  const seq = join(dir, 'seq.lstrace');
  const w = TraceWriter.create(seq, { format: 1, clock: 'seq', source: 'apr-log' });
  await w.close();
  assert.match(cliSync(['mark', '1', 'x', '--trace', seq]).stderr, /no monotonic start time/);
  assert.match(cliSync(['mark', 'abc', 'x']).stderr, /^leakscope: command-argument value 'abc' is invalid for argument 'pid'\. It must be a whole number from 1 to 4194304; see `leakscope mark --help`\n$/);
  assert.match(cliSync(['mark', '4194000', 'x']).stderr, /^leakscope: no process 4194000\n$/);
});

test('a marker added by mark shows in the report and serves as a diff range edge', async () => {
  const path = await liveTrace('c.lstrace', 2_000_000_000n);
  assert.equal(cliSync(['mark', '77', 'before load', '--trace', path]).code, 0);
  // More allocations after the marker, as a live process would go on writing.
  const w = TraceWriter.appendTo(path);
  for (let i = 0; i < 10; i++) w.event({ kind: 'alloc', pid: 77, t: 60e9 + i, tid: 77, addr: 0x2000 + i * 64, size: 100, stack: 0 });
  await w.close();
  const html = join(dir, 'c.html');
  const r = cliSync(['report', path, '-o', html]);
  assert.equal(r.code, 0, r.stderr);
  const data = JSON.parse(readFileSync(html, 'utf8').match(/id="leakscope-data">(.*?)<\/script>/s)![1]!);
  const p77 = data.processes.find((p: { pid: number }) => p.pid === 77);
  assert.deepEqual(p77.markers.map((m: { label: string }) => m.label), ['before load']);
  const d = cliSync(['diff', path, '--from', 'before load', '--format', 'json']);
  assert.equal(d.code, 0, d.stderr);
  const total = JSON.parse(d.stdout).rows.find((x: { kind: string }) => x.kind === 'total');
  assert.equal(total.delta, 1000, 'ten 100-byte blocks after the marker');
});

test('mark against a live `leakscope run`: every marker lands whole beside the recorder\'s own chunks', { timeout: 300_000 }, async () => {
  execFileSync('make', ['-s', '-C', join(root, 'native/recorder')]);
  const prog = join(dir, 'rec-churn');
  execFileSync('gcc', ['-O2', '-g', '-o', prog, join(root, 'test/programs/rec-churn.c')]);
  const trace = join(dir, 'live.lstrace');
  const run = spawnCli(['run', '--no-summary', '-o', trace, '--', prog]);
  let stderr = '';
  const pid = await new Promise<number>((resolve, reject) => {
    run.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /churn pid (\d+)/.exec(stderr);
      if (m) resolve(Number(m[1]));
    });
    run.once('exit', () => reject(new Error(`leakscope run ended first: ${stderr}`)));
  });
  // Twelve markers, three at a time, while the program allocates and the recorder writes.
  const labels = Array.from({ length: 12 }, (_, i) => `live mark ${i}`);
  for (let i = 0; i < labels.length; i += 3) {
    const rs = await Promise.all(labels.slice(i, i + 3).map((l) => cli(['mark', String(pid), l])));
    for (const r of rs) assert.equal(r.code, 0, r.stderr);
  }
  process.kill(pid, 'SIGTERM');
  assert.equal(await exited(run), 0, stderr);
  const m = /churn allocs=(\d+) kept=(\d+)/.exec(stderr);
  assert.ok(m, stderr);

  const ev = await events(trace); // no warnings: no chunk damaged or interleaved
  const markers = ev.filter((e): e is Extract<Event, { kind: 'marker' }> => e.kind === 'marker' && e.label.startsWith('live mark'));
  assert.deepEqual(markers.map((e) => e.label).sort(), [...labels].sort());
  for (const e of markers) assert.equal(e.pid, pid);
  // Every allocation and free the program made is in the trace, and the markers sit among them.
  const allocs = ev.filter((e) => e.kind === 'alloc' && e.pid === pid);
  const frees = ev.filter((e) => e.kind === 'free' && e.pid === pid);
  assert.equal(allocs.length, Number(m[1]));
  assert.equal(frees.length, Number(m[1]) - Number(m[2]));
  const first = allocs.reduce((a, e) => Math.min(a, e.t), Infinity);
  const last = allocs.reduce((a, e) => Math.max(a, e.t), -Infinity);
  // On the events' own clock (the recorder's coarse one): the program allocated before it named
  // its pid and once more after the SIGTERM, which came after every mark had read its clock, so
  // no marker is earlier than its first allocation nor later than its last. Readings in one tick
  // are equal. (The bound once rested on the program allocating between the last mark and the
  // stop: on a loaded machine it did not run in that time, and a marker was 8 ms later.) A
  // marker on the precise clock was later than the last allocation by up to a tick when the stop
  // came within one.
  for (const e of markers) assert.ok(e.t >= first && e.t <= last, `${e.label} at ${e.t} outside ${first}..${last}`);
  // Markers issued one batch after another are in that order on the timeline (a batch takes
  // longer than a tick, but two readings in one tick are equal: not before is what holds).
  const at = (l: string) => markers.find((e) => e.label === l)!.t;
  for (let b = 3; b < labels.length; b += 3) {
    const before = Math.max(...labels.slice(b - 3, b).map(at));
    for (const l of labels.slice(b, b + 3)) assert.ok(at(l) >= before, `${l} after the batch before it`);
  }
});
