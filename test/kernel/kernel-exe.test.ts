// --exe: a process that starts the executable after tracing began becomes a target (matched
// in the BPF program against a path passed as an argument, never as program text).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import type { Event } from '../../src/model/events.js';
import { parseKernelLine } from '../../src/kernel/parse.js';
import { kernelScript } from '../../src/kernel/script.js';
import { startKernelTrace } from '../../src/kernel/trace.js';
import { buildKernelProgram, MiB, startKernelProgram } from './program.js';

test('a process that execs the executable is traced from its exec on', async (t) => {
  const { path, dir } = buildKernelProgram();
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const events: Event[] = [];
  const trace = await startKernelTrace({
    sink: { event: (e) => events.push(e) }, startMonoNs: process.hrtime.bigint(), exe: path, rssIntervalMs: 100, machine: false,
  });
  t.after(() => trace.stop());
  const run = await startKernelProgram(path);
  t.after(() => run.child.kill('SIGKILL'));
  run.go();
  await run.step('child');
  // The program waits here while RSS is sampled (every 100 ms once the exec made it a target):
  // readiness, not a sleep, so a slow machine cannot end it before its first sample.
  const sampled = () => events.some((e) => e.kind === 'rss' && e.pid === run.pid);
  for (let waited = 0; !sampled() && waited < 20_000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  run.go();
  await run.exited;
  await trace.stop();
  assert.ok(events.some((e) => e.kind === 'exec' && e.pid === run.pid && e.exe === path), 'exec event');
  const m3 = events.find((e): e is Extract<Event, { kind: 'mmap' }> => e.kind === 'mmap' && e.pid === run.pid && e.addr === run.steps.get('mmap') && e.size === 3 * MiB);
  assert.ok(m3, 'the 3 MiB mmap');
  assert.ok(m3.stack > 0, 'with its stack (ls-kstack matched the exec in BPF)');
  // from the exec on: the dynamic loader's first mappings (file-backed: flags without MAP_ANONYMOUS) are there
  assert.ok(events.some((e) => e.kind === 'mmap' && e.pid === run.pid && (e.flags & 0x20) === 0), 'ld.so mappings');
  assert.ok(sampled(), 'an RSS sample while it ran');
  assert.ok(events.some((e) => e.kind === 'exit' && e.pid === run.pid && e.code === 3));
  // nothing of other processes
  const pids = new Set(events.map((e) => e.pid));
  for (const p of pids) assert.ok(p === run.pid || p === run.steps.get('child'), `event of unrelated pid ${p}`);
});

test('the generated program holds no user input, and foreign lines are not records', () => {
  const text = kernelScript({ pids: 2, exes: 1, faults: true, faultIntervalMs: 500, machine: true });
  assert.match(text, /@t\[\$1\] = 1; @t\[\$2\] = 1;/);
  assert.match(text, /str\(args->filename\) == str\(\$3\)/);
  assert.equal(text.match(/sys_enter_getppid \/pid == \$4\//g)?.length, 2);
  const lines = text.trim().split('\n');
  assert.match(lines[1]!, /getppid/); // a sentinel right after BEGIN...
  assert.match(lines.at(-2)!, /getppid/); // ...and one last before END
  for (const line of ['Attaching 30 probes...', 'M 1 2 3', 'M 1 2 3 4 5 6 x', 'SG a b c d', '', '@pf[12]: x', 'READY now']) {
    assert.equal(parseKernelLine(line), undefined, line);
  }
  assert.deepEqual(parseKernelLine('U 100 7 4096 8192'), { type: 'munmap', ns: 100n, pid: 7, addr: 4096, size: 8192 });
  assert.deepEqual(parseKernelLine('@pf[42]: 17'), { type: 'faults', pid: 42, count: 17 });
  assert.deepEqual(parseKernelLine('Lost 12 events'), { type: 'lost', count: 12 });
  assert.deepEqual(parseKernelLine('C 5 9 1000 32'), { type: 'reclaim', ns: 5n, pid: 9, stallNs: 1000, reclaimed: 32, memcg: true });
});

test('a missing bpftrace is one clear error', async () => {
  await assert.rejects(
    startKernelTrace({ sink: { event() {} }, startMonoNs: 0n, pids: [process.pid], bpftrace: '/nonexistent/bpftrace', mmapStacks: false }),
    /cannot run bpftrace .*install the bpftrace package/,
  );
});
