// Data survives the traced process: a crash, a SIGKILL (only the 500 ms timer flushes), and
// `leakscope snapshot PID` (SIGUSR2) while it runs; signals pass through `leakscope run`.
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { buildRecorder, compile, leakscope, runJson, scanTrace, sitesWith, spawnRun, traceEvents, until, workDir } from './harness.js';

function allocsOfSize(events: { kind: string; size?: number }[], size: number): number {
  return events.filter((e) => e.kind === 'alloc' && e.size === size).length;
}

function childPids(pid: number): number[] {
  const out: number[] = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    const text = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim();
    if (text) out.push(...text.split(/\s+/).map(Number));
  }
  return out;
}

describe('recorder durability', () => {
  let dir: string;
  before(() => {
    buildRecorder();
    dir = workDir('durable');
  });

  it('a crash keeps everything up to the crash, and the status says SIGSEGV', async () => {
    const exe = compile(dir, 'rec-crash');
    const trace = join(dir, 'segv.lstrace');
    const { run, result } = runJson(trace, [exe, 'segv']);
    assert.equal(run.status, 128 + 11, run.stderr);
    const s = sitesWith(result.processes[0]!, 'before_crash');
    assert.equal(s.reduce((a, x) => a + x.bytes, 0), 100 * 512);
    const { events, warnings } = await traceEvents(trace);
    assert.deepEqual(warnings, []);
    const exit = events.find((e) => e.kind === 'exit') as { code: number } | undefined;
    assert.equal(exit?.code, 128 + 11);
  });

  it('a SIGKILL loses at most the last second: the timer has written the leaks', async () => {
    const exe = compile(dir, 'rec-crash');
    const trace = join(dir, 'kill.lstrace');
    const { run, result } = runJson(trace, [exe, 'kill']);
    assert.equal(run.status, 128 + 9, run.stderr);
    const s = sitesWith(result.processes[0]!, 'before_crash');
    assert.equal(s.reduce((a, x) => a + x.count, 0), 100);
    const { events } = await traceEvents(trace);
    assert.equal(events.filter((e) => e.kind === 'exit').length, 0, 'nothing ran at the kill');
    assert.ok(events.some((e) => e.kind === 'rss'), 'the timer also samples RSS');
  });

  it('snapshot flushes a running process now; signals reach the command', async () => {
    const exe = compile(dir, 'rec-wait');
    const trace = join(dir, 'snap.lstrace');
    const { child, out, err, exited } = spawnRun(['--format', 'json', '-o', trace, '--', exe], { LEAKSCOPE_FLUSH_MS: '60000' });
    try {
      await until('ready', () => (out().includes('ready') ? true : undefined));
      const pid = await until('the program', () => childPids(child.pid!)[0]);
      const early = await traceEvents(trace);
      assert.equal(allocsOfSize(early.events, 1024), 0, 'nothing flushed yet (timer set to 60 s)');
      const snap = leakscope(['snapshot', String(pid)]);
      assert.equal(snap.status, 0, snap.stderr);
      assert.match(snap.stdout, new RegExp(`process ${pid}`));
      await until('flushed leaks', async () => (allocsOfSize((await traceEvents(trace)).events, 1024) === 40 ? true : undefined));
      child.kill('SIGTERM');  // to leakscope, which passes it on
      assert.equal(await exited, 128 + 15, err());
      const result = JSON.parse(out().slice(out().indexOf('{'))) as import('../../src/analyses/result.js').AnalysisResult;
      assert.equal(sitesWith(result.processes[0]!, 'waiting_leak')[0]!.bytes, 40 * 1024);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('forks while other threads allocate: no hang, every child and every allocation recorded', async () => {
    const exe = compile(dir, 'rec-forkstress', ['-pthread']);
    const trace = join(dir, 'forkstress.lstrace');
    // A hang never ends: the timeout catches it (status null). It is far above a normal run
    // (15 s at load 16, 56 s at load 28) so that load alone never trips it.
    const run = leakscope(['run', '--no-summary', '-o', trace, '--', exe], { timeout: 300_000 });
    assert.equal(run.status, 0, `status ${run.status}${run.status === -1 ? ' (killed after 300 s: a hang)' : ''}\n${run.stderr}`);
    // The program makes a fixed amount (3 threads x 100 rounds x 400 pairs): the trace is
    // streamed and counted, never held.
    let parent = -1;
    const children = new Set<number>();
    const per = { small: 0, large: 0, leaks: new Set<number>(), exits: 0, forks: 0 };
    const { warnings } = await scanTrace(trace, (e) => {
      if (e.kind === 'fork') { per.forks++; children.add(e.pid); parent = e.parentPid; }
      else if (e.kind === 'alloc' && children.has(e.pid) && e.size === 48) per.leaks.add(e.pid);
      else if (e.kind === 'alloc' && !children.has(e.pid) && e.size === 72) per.small++;
      else if (e.kind === 'alloc' && !children.has(e.pid) && e.size === 1032) per.large++;
      else if (e.kind === 'exit' && children.has(e.pid)) per.exits++;
    });
    assert.deepEqual(warnings, []);
    assert.equal(per.forks, 100);
    assert.ok(parent > 0 && !children.has(parent));
    assert.equal(per.leaks.size, 100, 'the leak of every child');
    assert.equal(per.exits, 100);
    assert.equal(per.small, 3 * 100 * 400);
    assert.equal(per.large, 3 * 100 * 400);
  });

  it('survives a program that closes every descriptor it did not open', () => {
    const exe = compile(dir, 'rec-closeall');
    const { run, result } = runJson(join(dir, 'closeall.lstrace'), [exe]);
    assert.equal(run.status, 0, run.stderr);
    assert.equal(sitesWith(result.processes[0]!, 'after_close')[0]!.bytes, 7 * 333);
  });

  it('snapshot refuses a process that is not traced, in one line', () => {
    const r = leakscope(['snapshot', String(process.pid)]);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not running under `leakscope run`/);
    assert.equal(r.stderr.trim().split('\n').length, 1);
    const bad = leakscope(['snapshot', 'abc']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /not a process id/);
  });
});
