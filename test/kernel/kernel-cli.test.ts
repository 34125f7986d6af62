// `leakscope kernel` end to end: a trace file with the program's events on the trace clock,
// read back with readTrace; and one-line errors for bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Event } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { buildKernelProgram, MiB, startKernelProgram } from './program.js';
import { cliSync, spawnCli } from '../support/cli.js';


test('leakscope kernel --pid writes the events to a trace', async (t) => {
  const { path, dir } = buildKernelProgram();
  const run = await startKernelProgram(path);
  t.after(() => {
    run.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  const out = join(dir, 'k.lstrace');
  const before = process.hrtime.bigint();
  const ls = spawnCli(['kernel', '--pid', String(run.pid), '-o', out, '--rss-interval', '100ms'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const lines = createInterface({ input: ls.stderr! });
  await new Promise<void>((resolve, reject) => {
    lines.on('line', (l) => {
      stderr += l + '\n';
      if (/tracing the kernel side/.test(l)) resolve();
    });
    ls.once('exit', () => reject(new Error(`leakscope kernel exited: ${stderr}`)));
  });
  run.go();
  await run.step('child');
  await new Promise((r) => setTimeout(r, 400)); // a few RSS samples of the full 64 MiB
  run.go();
  const code = await new Promise<number | null>((r) => ls.once('exit', (c) => r(c)));
  assert.equal(code, 0, stderr); // stopped by itself once the target exited
  assert.match(stderr, /wrote \d+ events to /);

  const events: Event[] = [];
  const res = await readTrace(out, { event: (e) => events.push(e) });
  assert.equal(res.meta.source, 'kernel');
  assert.equal(res.meta.clock, 'ns');
  const startMono = BigInt(res.meta.startMonoNs!);
  assert.ok(startMono >= before && startMono <= process.hrtime.bigint());
  const s = run.steps;
  assert.ok(events.some((e) => e.kind === 'mmap' && e.pid === run.pid && e.addr === s.get('mmap') && e.size === 3 * MiB));
  assert.ok(events.some((e) => e.kind === 'munmap' && e.pid === run.pid && e.addr === s.get('munmap') && e.size === MiB));
  assert.ok(events.some((e) => e.kind === 'shm' && e.op === 'get' && e.id === s.get('shmget') && e.size === MiB));
  assert.ok(events.some((e) => e.kind === 'brk' && e.addr === s.get('brk')));
  const rss = events.filter((e): e is Extract<Event, { kind: 'rss' }> => e.kind === 'rss' && e.pid === run.pid);
  assert.ok(Math.max(...rss.map((e) => e.bytes)) - Math.min(...rss.map((e) => e.bytes)) >= 60 * MiB, JSON.stringify(rss.map((e) => [e.t, e.bytes >> 20])));
  assert.ok(events.some((e) => e.kind === 'exit' && e.pid === run.pid && e.code === 3));
});

for (const [args, re] of [
  [['kernel'], /give --pid PID or --exe PATH/],
  [['kernel', '--pid', '12x'], /argument '12x' is invalid\. It must be a whole number from 1 to 4194304/],
  [['kernel', '--pid', '4194000'], /no process 4194000/],
  [['kernel', '--exe', '/nonexistent/bin'], /no such file/],
  [['kernel', '--pid', '1', '--duration', 'soon'], /argument 'soon' is invalid\. It must be a duration/],
] as const) {
  test(`leakscope ${args.join(' ')} fails with one line`, () => {
    const r = cliSync([...args]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, re);
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
  });
}
