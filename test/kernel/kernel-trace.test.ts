// startKernelTrace on a program with known kernel-side activity: every mapping, brk and shm
// event with its exact size and address, the child it forks, exit codes, page faults, and RSS
// samples that rise while it touches 64 MiB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import type { Event } from '../../src/model/events.js';
import { startKernelTrace } from '../../src/kernel/trace.js';
import { kstackAvailable } from '../../src/kernel/kstack.js';
import { SymbolTables } from '../../src/model/stacks.js';
import { buildKernelProgram, MiB, startKernelProgram } from './program.js';

test('mappings, brk, shm, fork/exit, faults and RSS of a traced process', async (t) => {
  const { path, dir } = buildKernelProgram();
  const run = await startKernelProgram(path);
  t.after(() => {
    run.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const events: Event[] = [];
  const start = process.hrtime.bigint();
  const trace = await startKernelTrace({
    sink: { event: (e) => events.push(e) }, startMonoNs: start, pids: [run.pid],
    rssIntervalMs: 50, faults: true, faultIntervalMs: 100,
  });
  run.go();
  await run.step('child');
  await new Promise((r) => setTimeout(r, 400)); // a few RSS samples of the full 64 MiB
  run.go();
  assert.equal(await run.exited, 3);
  const stats = await trace.finished; // ends by itself: every target exited
  const endT = Number(process.hrtime.bigint() - start);
  assert.equal(stats.lost, 0);
  const s = run.steps;
  const mine = events.filter((e) => e.pid === run.pid);
  const of = <K extends Event['kind']>(k: K) => mine.filter((e): e is Extract<Event, { kind: K }> => e.kind === k);

  assert.deepEqual(mine[0] && { kind: mine[0].kind, exe: (mine[0] as { exe?: string }).exe }, { kind: 'process', exe: path });
  const mmaps = of('mmap');
  const m3 = mmaps.find((e) => e.addr === s.get('mmap'));
  assert.ok(m3, 'the 3 MiB mmap');
  assert.equal(m3.size, 3 * MiB);
  assert.equal(m3.prot, 3); // PROT_READ|PROT_WRITE
  assert.equal(m3.flags, 0x22); // MAP_PRIVATE|MAP_ANONYMOUS
  assert.equal(m3.tid, run.pid);
  const unmaps = of('munmap');
  assert.ok(unmaps.some((e) => e.addr === s.get('munmap') && e.size === MiB), 'munmap 1 MiB');
  assert.ok(of('brk').some((e) => e.addr === s.get('brk')), 'brk to the new break');
  const shm = of('shm');
  assert.deepEqual(shm.map((e) => [e.op, e.id, e.addr, e.size]), [
    ['get', s.get('shmget'), 0, MiB],
    ['attach', s.get('shmget'), s.get('shmat'), 0],
    ['detach', 0, s.get('shmdt'), 0],
    ['remove', s.get('shmrm'), 0, 0],
  ]);
  // mremap: the old 2 MiB go, 4 MiB come at the new address.
  assert.ok(unmaps.some((e) => e.addr === s.get('mmap')! + MiB && e.size === 2 * MiB), 'mremap old range');
  assert.ok(mmaps.some((e) => e.addr === s.get('mremap') && e.size === 4 * MiB), 'mremap new range');
  const touch = mmaps.find((e) => e.addr === s.get('touch-start'));
  assert.equal(touch?.size, 64 * MiB);

  // The mmap's whole stack (ls-kstack + ls_unwind): libc's mmap < map_three < main.
  assert.ok(kstackAvailable(), 'native/unwind built ls-kstack');
  const tables = new SymbolTables();
  for (const e of events) {
    if (e.kind === 'frame') tables.scope(e.pid).defineFrame(e.id, e.frame);
    if (e.kind === 'stack') tables.scope(e.pid).defineStack(e.id, e.parent, e.frame);
  }
  assert.ok(m3.stack > 0, 'the mmap has a stack');
  const frames = tables.scope(run.pid).stackFrames(m3.stack);
  const mods = events.filter((e): e is Extract<Event, { kind: 'module' }> => e.kind === 'module' && e.pid === run.pid);
  const names = frames.map((f, i) => {
    const mod = mods.find((m) => f.pc >= m.base && f.pc < m.base + m.size);
    if (!mod) return '?';
    const vaddr = f.pc - mod.base + mod.offset - (i === 0 ? 0 : 1);
    return execFileSync('addr2line', ['-f', '-e', mod.path, '0x' + vaddr.toString(16)]).toString().split('\n')[0];
  });
  assert.ok(frames[0]!.module.includes('libc.so'), `leaf in libc: ${frames[0]!.module}`);
  const ours = names.filter((_, i) => frames[i]!.module === path);
  assert.deepEqual(ours.slice(0, 2), ['map_three', 'main'], names.join(' < '));

  // Events are on the trace's clock and in the program's order.
  for (const e of events) assert.ok(e.t >= 0 && e.t <= endT, `${e.kind} at ${e.t}`);
  assert.ok(m3.t < touch!.t);

  // RSS rises by about the 64 MiB touched, sampled while it happens.
  const rss = of('rss');
  const during = rss.filter((e) => e.t >= touch!.t);
  assert.ok(during.length >= 5, `${during.length} samples while touching`);
  const min = Math.min(...rss.map((e) => e.bytes));
  const max = Math.max(...rss.map((e) => e.bytes));
  assert.ok(max - min >= 60 * MiB, `rss ${min} -> ${max}`);
  assert.ok(during.some((e) => e.bytes > min + 10 * MiB && e.bytes < max - 10 * MiB), 'an intermediate sample');

  // Page faults: at least one per touched page.
  const faults = of('kernel').filter((e) => e.what === 'page-faults').reduce((a, e) => a + e.value, 0);
  assert.ok(faults >= (64 * MiB) / 4096, `${faults} faults`);

  // The forked child: its own mmap, its exit code; the parent's exit code.
  const kid = s.get('child')!;
  assert.ok(events.some((e) => e.kind === 'fork' && e.pid === kid && e.parentPid === run.pid));
  const kidMap = events.find((e): e is Extract<Event, { kind: 'mmap' }> => e.kind === 'mmap' && e.pid === kid && e.size === 5 * MiB && e.prot === 1);
  assert.ok(kidMap, 'the child mmap');
  // The child exits right after: it is unwound with the modules it inherited, down to main.
  const kidFrames = tables.scope(kid).stackFrames(kidMap.stack);
  assert.ok(kidFrames.length >= 3 && kidFrames.some((f) => f.module === path), kidFrames.map((f) => `${f.module}+${f.pc}`).join(' < '));
  assert.ok(events.some((e) => e.kind === 'exit' && e.pid === kid && e.code === 7));
  assert.ok(events.some((e) => e.kind === 'exit' && e.pid === run.pid && e.code === 3));
});
