// Processes forked while traced are traced from their first instruction after fork(): they
// inherit their parent's probes (perf events opened with `inherit` on tracefs uprobe events), so
// what a child does first — apache2's pchild pool, an nginx worker's start-up — is never missed.
// test/programs/att-fork.c allocates first thing in every child and grandchild and exits at once:
// an attach made after the fork would see nothing of it.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { rmSync } from 'node:fs';
import type { Event } from '../../src/model/events.js';
import { readTrace } from '../../src/trace/reader.js';
import { BpfLoader } from '../../src/attach/loader.js';
import { attachInBackground, buildProgram, parseReport, root, stop, tempDir } from './helpers.js';

const dir = tempDir('att-fork');
const prog = buildProgram('att-fork', dir);
const profile = join(root, 'test/programs/att-pool.profile.json');
after(() => rmSync(dir, { recursive: true, force: true }));

/** att-fork driven line by line: `send` a command, wait for the lines it answers with. */
async function startForker(): Promise<{ child: ChildProcess; pid: number; send(cmd: string, lines: RegExp, n: number): Promise<string[]> }> {
  const child = spawn(prog, [], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  let wake = () => {};
  child.stdout!.on('data', (d: Buffer) => { out += d.toString(); wake(); });
  const waitFor = async (re: RegExp, n: number): Promise<string[]> => {
    for (;;) {
      const got = out.split('\n').filter((l) => re.test(l));
      if (got.length >= n) return got;
      if (child.exitCode !== null) throw new Error(`att-fork exited: ${out}`);
      await new Promise<void>((r) => { wake = r; setTimeout(r, 200); });
    }
  };
  await waitFor(/^ready \d+$/, 1);
  return {
    child,
    pid: child.pid!,
    send: async (cmd, re, n) => {
      const before = out.split('\n').filter((l) => re.test(l)).length;
      child.stdin!.write(`${cmd}\n`);
      return (await waitFor(re, before + n)).slice(before);
    },
  };
}

async function events(path: string): Promise<Event[]> {
  const all: Event[] = [];
  await readTrace(path, { event: (e) => all.push(e) });
  return all;
}

/** Every child and grandchild: forked in the trace, its one pool created and tagged, after the fork. */
function checkFirstPools(all: Event[], forked: { child: number; grand: number }[]): void {
  for (const { child, grand } of forked) {
    for (const [pid, tag] of [[child, 'child'], [grand, 'grandchild']] as const) {
      const fork = all.find((e) => e.kind === 'fork' && e.pid === pid);
      assert.ok(fork && fork.kind === 'fork', `process ${pid} (${tag}) was forked in the trace`);
      if (tag === 'grandchild') assert.equal(fork.parentPid, child);
      const creates = all.filter((e) => e.kind === 'pool-create' && e.pid === pid);
      assert.equal(creates.length, 1, `process ${pid} (${tag}): its first call, mp_create, was seen once (pool-creates: ${creates.length})`);
      const c = creates[0]!;
      assert.ok(c.t >= fork.t, `created after the fork: ${c.t} >= ${fork.t}`);
      const tags = all.filter((e) => e.kind === 'pool-tag' && e.pid === pid);
      assert.deepEqual(tags.map((e) => e.kind === 'pool-tag' && [e.pool, e.tag]), [[c.kind === 'pool-create' && c.pool, tag]], `process ${pid}: its pool's tag`);
      assert.ok(all.some((e) => e.kind === 'exit' && e.pid === pid), `process ${pid}: its exit`);
    }
  }
}

for (const mode of ['--children', '--exe'] as const) {
  test(`attach ${mode}: children and grandchildren forked while traced are traced from their first call; the parent still is after they exit`, async () => {
    const f = await startForker();
    const trace = join(dir, `fork${mode}.lstrace`);
    try {
      const target = mode === '--exe' ? ['--exe', prog] : ['--pid', String(f.pid), '--children'];
      const run = attachInBackground([...target, '--allocator', profile, '-o', trace, '--format', 'json']);
      await run.started;
      const lines = await f.send('fork 4', /^forked \d+ \d+$/, 4);
      const forked = lines.map((l) => { const [, c, g] = l.split(' '); return { child: Number(c), grand: Number(g) }; });
      // the parent's calls after its children exited (a child's exit must not take the probes away)
      await f.send('make', /^made$/, 1);
      process.kill(run.pid, 'SIGTERM');
      const r = await run.done;
      assert.equal(r.code, 0, r.stderr);
      const all = await events(trace);
      checkFirstPools(all, forked);
      const exitT = Math.max(...all.filter((e) => e.kind === 'exit').map((e) => e.t));
      const parentPools = all.filter((e) => e.kind === 'pool-create' && e.pid === f.pid);
      assert.equal(parentPools.length, 1);
      assert.ok(parentPools[0]!.t > exitT, 'the parent pool made after every child exited was seen');
      const report = parseReport(r);
      assert.equal(report.processes.length, 1 + 2 * forked.length, report.processes.map((p) => `${p.pid}/${p.ppid}`).join(' '));
      assert.match(r.stderr, /trace written/);
    } finally {
      stop(f.child);
    }
  });
}

test('attach --pid without --children: the children it forks are not traced at all, the parent still is', async () => {
  const f = await startForker();
  const trace = join(dir, 'nochildren.lstrace');
  try {
    const run = attachInBackground(['--pid', String(f.pid), '--allocator', profile, '-o', trace, '--no-report']);
    await run.started;
    const lines = await f.send('fork 2', /^forked \d+ \d+$/, 2);
    await f.send('make', /^made$/, 1);
    process.kill(run.pid, 'SIGTERM');
    const r = await run.done;
    assert.equal(r.code, 0, r.stderr);
    const all = await events(trace);
    const others = lines.flatMap((l) => l.split(' ').slice(1).map(Number));
    assert.deepEqual(all.filter((e) => others.includes(e.pid)).map((e) => e.kind), [], 'no event of a child');
    assert.equal(all.filter((e) => e.kind === 'pool-create' && e.pid === f.pid).length, 1);
  } finally {
    stop(f.child);
  }
});

test('the BPF programs stay under half the verifier limit (1M instructions), and the loader measures what a probe hit costs, in both modes', async () => {
  for (const mode of ['events', 'aggregate'] as const) {
    const l = await BpfLoader.start({ mode, stackBytes: 16384, ringbufMb: 1, startMono: process.hrtime.bigint() }, { call() {}, notify() {}, lost() {}, stack() {}, stacksReset() {} });
    try {
      const insns = l.verifiedInsns;
      assert.deepEqual(Object.keys(insns).sort(), ['ls_entry', 'ls_exit', 'ls_fork', 'ls_return']);
      for (const [name, n] of Object.entries(insns)) assert.ok(n > 0 && n < 500_000, `${mode} ${name}: ${n} instructions verified`);
      // a trap and an early return: a fraction of a µs to a few µs (~17 µs here when the first
      // instruction is single-stepped); absent when the measurement failed
      const us = l.hitCostUs;
      assert.ok(us !== undefined && us >= 0.05 && us <= 50, `${mode}: ${us} µs a hit measured`);
      console.log(`# ${mode}: ${us} µs a probe hit, measured by the loader`);
    } finally {
      await l.stop();
    }
  }
});
