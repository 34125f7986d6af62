// SIGUSR2 markers of the in-process recorder: `leakscope snapshot PID` (sigqueue, "snapshot #N")
// and a plain kill -USR2 ("SIGUSR2 #N") each drop a marker, timed at the signal, in the process
// that received it (a forked child numbers its own); a burst of signals neither crashes nor hangs
// the program; the markers serve as diff range edges, and what follows a marker is after it.
import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import type { AnalysisResult } from '../../src/analyses/result.js';
import { buildRecorder, compile, leakscope, spawnRun, traceEvents, until, workDir } from './harness.js';

// Phases, each ended by the test creating DIR/goN: leaks of 1001 bytes, then 1002, then a child
// that leaks 1004 and waits, then 1003 in the parent. Prints "phase N PID" as each one is done.
const PROGRAM = String.raw`
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static const char *dir;
static void *keep[64]; static int nkeep;
static void wait_go(int n) {
  char path[4096];
  snprintf(path, sizeof path, "%s/go%d", dir, n);
  while (access(path, F_OK) != 0) usleep(5000);
}
static void leak(size_t size) { for (int i = 0; i < 10; i++) { keep[nkeep] = malloc(size); memset(keep[nkeep++], 1, size); } }
int main(int argc, char **argv) {
  dir = argv[1];
  leak(1001);
  printf("phase 1 %d\n", getpid()); fflush(stdout);
  wait_go(1);
  leak(1002);
  printf("phase 2 %d\n", getpid()); fflush(stdout);
  wait_go(2);
  pid_t c = fork();
  if (c == 0) {
    leak(1004);
    printf("phase 3 %d\n", getpid()); fflush(stdout);
    wait_go(3);
    leak(1005);
    exit(0);
  }
  int st;
  waitpid(c, &st, 0);
  leak(1003);
  printf("phase 4 %d\n", getpid()); fflush(stdout);
  wait_go(4);
  leak(1006);
  return 0;
}
`;

type Ev = { kind: string; pid: number; t: number; size?: number; label?: string };

describe('recorder markers (SIGUSR2)', () => {
  let dir: string;
  let exe: string;
  before(() => {
    buildRecorder();
    dir = workDir('markers');
    writeFileSync(join(dir, 'marks.c'), PROGRAM);
    exe = join(dir, 'marks');
    execFileSync('gcc', ['-O2', '-g', '-o', exe, join(dir, 'marks.c')]);
  });

  it('snapshot and kill -USR2 drop markers at the signal time, in the signalled process', async () => {
    const trace = join(dir, 'marks.lstrace');
    // A long flush period: only the signals make the markers (and their flush) appear early.
    const { child, out, err, exited } = spawnRun(['--format', 'json', '-o', trace, '--', exe, dir], { LEAKSCOPE_FLUSH_MS: '60000' });
    const phase = (n: number): Promise<number> => until(`phase ${n}`, () => {
      const m = new RegExp(`phase ${n} (\\d+)`).exec(out());
      return m ? Number(m[1]) : undefined;
    });
    const markersIn = async (): Promise<Ev[]> => ((await traceEvents(trace)).events as Ev[]).filter((e) => e.kind === 'marker');
    try {
      const pid = await phase(1);
      const snap = leakscope(['snapshot', String(pid)]);
      assert.equal(snap.status, 0, snap.stderr);
      await until('the snapshot marker', async () => ((await markersIn()).length === 1 ? true : undefined));
      writeFileSync(join(dir, 'go1'), '');
      assert.equal(await phase(2), pid);
      process.kill(pid, 'SIGUSR2');
      await until('the SIGUSR2 marker', async () => ((await markersIn()).length === 2 ? true : undefined));
      writeFileSync(join(dir, 'go2'), '');
      const kid = await phase(3);
      assert.notEqual(kid, pid);
      process.kill(kid, 'SIGUSR2');
      await until('the child\'s marker', async () => ((await markersIn()).length === 3 ? true : undefined));
      writeFileSync(join(dir, 'go3'), '');
      assert.equal(await phase(4), pid);
      // A burst: the program neither crashes nor hangs; some markers land (signals coalesce).
      for (let i = 0; i < 300; i++) process.kill(pid, 'SIGUSR2');
      writeFileSync(join(dir, 'go4'), '');
      assert.equal(await exited, 0, err());
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    const result = JSON.parse(out().slice(out().indexOf('{'))) as AnalysisResult;
    const { events, warnings } = await traceEvents(trace);
    assert.deepEqual(warnings, []);
    const evs = events as Ev[];
    const fork = evs.find((e) => e.kind === 'fork') as Ev & { parentPid: number };
    const parentPid = fork.parentPid;
    const kidPid = fork.pid;
    const allocT = (size: number): number[] => evs.filter((e) => e.kind === 'alloc' && e.size === size).map((e) => e.t);
    const between = (t: number, lo: number, hi: number, what: string): void => {
      assert.equal(allocT(lo).length, 10);
      assert.equal(allocT(hi).length, 10);
      assert.ok(Math.max(...allocT(lo)) <= t && t <= Math.min(...allocT(hi)), `${what} at ${t} between the ${lo}-byte allocations (${allocT(lo)}) and the ${hi}-byte ones (${allocT(hi)})`);
    };

    const parent = result.processes.find((p) => p.pid === parentPid)!;
    const kid = result.processes.find((p) => p.pid === kidPid)!;
    const labels = parent.markers.map((m) => m.label);
    assert.deepEqual(labels.slice(0, 2), ['snapshot #1', 'SIGUSR2 #2']);
    between(parent.markers[0]!.t, 1001, 1002, 'snapshot #1');
    between(parent.markers[1]!.t, 1002, 1003, 'SIGUSR2 #2');
    assert.ok(parent.markers[1]!.t < Math.min(...allocT(1004)), 'the parent\'s second marker is before the fork');
    // The burst: numbered on, all between the last two phases.
    const burst = parent.markers.slice(2);
    assert.ok(burst.length >= 1 && burst.length <= 300, String(burst.length));
    burst.forEach((m, i) => {
      assert.equal(m.label, `SIGUSR2 #${i + 3}`);
      between(m.t, 1003, 1006, m.label);
    });
    // The child's marker is its own, numbered from 1, timed between its phases.
    assert.deepEqual(kid.markers.map((m) => m.label), ['SIGUSR2 #1']);
    between(kid.markers[0]!.t, 1004, 1005, 'the child\'s marker');
    assert.ok(!evs.some((e) => e.kind === 'marker' && e.pid !== parentPid && e.pid !== kidPid));

    // Range edges: between the two markers the parent leaked exactly ten 1002-byte blocks.
    const d = leakscope(['diff', trace, '--from', 'snapshot #1', '--to', 'SIGUSR2 #2', '--format', 'json']);
    assert.equal(d.status, 0, d.stderr);
    const total = (JSON.parse(d.stdout) as { rows: { kind: string; delta: number }[] }).rows.find((x) => x.kind === 'total')!;
    assert.equal(total.delta, 10 * 1002);
  });

  it('what the program records after a marker is after it on the trace\'s clock, even within one tick', async () => {
    // 50 signals, each between two allocations, all in a few coarse ticks: without the recorder's
    // ordering the "after" block shares its marker's time and a cut at the marker takes it in.
    const exe = compile(dir, 'rec-mark-order');
    const trace = join(dir, 'order.lstrace');
    const run = leakscope(['run', '--no-summary', '-o', trace, '--', exe]);
    assert.equal(run.status, 0, run.stderr);
    const evs = (await traceEvents(trace)).events as Ev[];
    const marks = evs.filter((e) => e.kind === 'marker');
    assert.equal(marks.length, 50, marks.map((m) => m.label).join());
    const at = (size: number): number => {
      const a = evs.filter((e) => e.kind === 'alloc' && e.size === size);
      assert.equal(a.length, 1, `one ${size}-byte block`);
      return a[0]!.t;
    };
    marks.forEach((m, i) => {
      assert.equal(m.label, `SIGUSR2 #${i + 1}`);
      assert.ok(at(3000 + i) <= m.t && m.t < at(4000 + i), `${m.label} at ${m.t}: after the block before it (${at(3000 + i)}), strictly before the one after it (${at(4000 + i)})`);
    });
    // As a range edge: between markers 1 and 2 the program added exactly the two blocks between them.
    const d = leakscope(['diff', trace, '--from', 'SIGUSR2 #1', '--to', 'SIGUSR2 #2', '--format', 'json']);
    assert.equal(d.status, 0, d.stderr);
    const total = (JSON.parse(d.stdout) as { rows: { kind: string; delta: number }[] }).rows.find((x) => x.kind === 'total')!;
    assert.equal(total.delta, 4000 + 3001);
  });

  it('every signal of a burst is a marker or counted lost, and the program is unharmed', () => {
    const exe = compile(dir, 'rec-raise-burst');
    const report = join(dir, 'burst.json');
    const run = leakscope(['run', '-o', join(dir, 'burst.lstrace'), '--report', report, '--format', 'json', '--', exe]);
    assert.equal(run.status, 0, run.stderr);
    const result = JSON.parse(readFileSync(report, 'utf8')) as AnalysisResult;
    const marks = result.processes[0]!.markers;
    assert.equal(marks.length + result.lost, 20000, `${marks.length} markers, ${result.lost} lost`);
    assert.ok(marks.length > 0);
    // Numbered in order, without gaps: a lost signal takes no number.
    assert.equal(marks[marks.length - 1]!.label, `SIGUSR2 #${marks.length}`);
  });
});
