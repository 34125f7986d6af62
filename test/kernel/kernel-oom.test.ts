// `leakscope kernel` end to end on what only the kernel sees: a process in a memory cgroup this
// test creates (64 MiB, no swap) reads a 192 MiB file (its page cache is reclaimed: memcg reclaim
// stalls), then touches 256 MiB of anonymous memory: the cgroup's OOM killer ends it. The trace
// holds the reclaim stalls and the OOM kill of that pid, on the trace's clock, and its exit by
// SIGKILL.
// Machine-wide direct reclaim (`direct-reclaim` events) is not provoked here: it needs the whole
// machine short of free memory, which a shared machine (and other tests) must never be put in.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Event } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { root, spawnCli, exited } from '../support/cli.js';
import { createMemcg } from './memcg.js';

const MiB = 1024 * 1024;

test('leakscope kernel: memcg reclaim stalls and the OOM kill of a process in a limited cgroup', { timeout: 240_000 }, async (t) => {
  // On the project's disk, not /tmp (a tmpfs there would make the file shared memory, charged to
  // this test and never reclaimable).
  const base = join(root, 'test/.tmp');
  execFileSync('mkdir', ['-p', base]);
  const dir = mkdtempSync(join(base, 'kernel-oom-'));
  const memcg = createMemcg('oom', 64 * MiB);
  t.after(async () => {
    await memcg.remove();
    rmSync(dir, { recursive: true, force: true });
  });
  const prog = join(dir, 'memcg-hog');
  execFileSync('gcc', ['-O2', '-o', prog, join(root, 'test/programs/memcg-hog.c')]);
  const file = join(dir, 'data');
  const fd = openSync(file, 'w');
  const chunk = Buffer.alloc(MiB, 7);
  for (let i = 0; i < 192; i++) writeSync(fd, chunk);
  fsyncSync(fd);
  closeSync(fd);

  // Into the cgroup before exec: every page it touches is charged there.
  const child = spawn('sh', ['-c', 'echo $$ > "$0" && exec "$@"', memcg.procs, prog, file, '256'], { stdio: ['pipe', 'pipe', 'inherit'] });
  t.after(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  const lines = createInterface({ input: child.stdout! });
  const steps: string[] = [];
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (l) => { steps.push(l); if (l === 'ready') resolve(); });
    child.once('exit', (c, s) => reject(new Error(`memcg-hog ended before it was ready (${s ?? c})`)));
  });

  const out = join(dir, 'oom.lstrace');
  const ls = spawnCli(['kernel', '--pid', String(child.pid), '-o', out, '--rss-interval', '100ms'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    createInterface({ input: ls.stderr! }).on('line', (l) => {
      stderr += l + '\n';
      if (/tracing the kernel side/.test(l)) resolve();
    });
    ls.once('exit', () => reject(new Error(`leakscope kernel exited: ${stderr}`)));
  });
  child.stdin!.write('go\n');
  const [, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((r) => child.once('exit', (c, s) => r([c, s])));
  assert.equal(signal, 'SIGKILL', `memcg-hog was not killed (steps: ${steps.join(', ')})`);
  assert.deepEqual(steps, ['ready', 'STEP read'], 'it read the file, then died touching anonymous memory');
  assert.equal(await exited(ls), 0, stderr); // stops by itself once its target is gone

  const events: Event[] = [];
  const res = await readTrace(out, { event: (e) => events.push(e) });
  assert.deepEqual(res.warnings, []);
  const mine = events.filter((e): e is Extract<Event, { kind: 'kernel' }> => e.kind === 'kernel' && e.pid === child.pid);
  const reclaim = mine.filter((e) => e.what === 'memcg-reclaim');
  const oom = mine.filter((e) => e.what === 'oom-kill');
  assert.ok(reclaim.length >= 1, `no memcg reclaim stall: ${JSON.stringify(mine.slice(0, 5))}`);
  for (const e of reclaim) assert.ok(e.value > 0, `a stall of ${e.value} ns`);
  assert.equal(oom.length, 1, JSON.stringify(oom));
  // The victim's RSS when killed: near the limit (the file's cache is not RSS, its anon is).
  assert.ok(oom[0]!.value >= 32 * MiB && oom[0]!.value <= 80 * MiB, `RSS at the kill ${oom[0]!.value}`);
  const exit = events.find((e) => e.kind === 'exit' && e.pid === child.pid);
  assert.ok(exit && exit.kind === 'exit', 'its exit is in the trace');
  assert.equal(exit.code, 128 + 9, 'killed by SIGKILL (128 + the signal, as a shell says it)');
  // On one timeline: the stalls come before the kill, the kill before the exit.
  assert.ok(reclaim[0]!.t <= oom[0]!.t && oom[0]!.t <= exit.t, `${reclaim[0]!.t} ${oom[0]!.t} ${exit.t}`);
  const rss = events.filter((e) => e.kind === 'rss' && e.pid === child.pid);
  assert.ok(rss.length >= 1, 'RSS samples of the victim');
});
