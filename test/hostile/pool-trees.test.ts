// Pool trees as hostile as an input can make them (issue 17 item 7): a pool that is its own
// parent (three APR log lines), a parent cycle, a tree 100,000 levels deep (destroyed from its
// root, and left alive), a fork chain of 20,000 processes, a stack that loops. Every command
// finishes with exit 0 and the right answer: no recursion over input-controlled depth.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cli } from '../support/cli.js';
import { TraceWriter } from '../../src/trace/writer.js';
import { frame } from '../../src/model/events.js';
import type { AnalysisResult, PoolReport } from '../../src/analyses/result.js';

let dir = '';
const f = (n: string) => join(dir, n);
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'ls-pool-trees-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const line = (act: string, pool: number, tag: string, site: string, parent: number, size = 0, n = 0) =>
  `POOL DEBUG: [3153/140113293346688] ${act.padStart(7)} (${String(size).padStart(10)}/${String(size).padStart(10)}/${String(size).padStart(10)}) 0x${pool.toString(16)} "${tag}" <${site}> 0x${parent.toString(16)} (${n}/${n}/0) \n`;

function deepLog(levels: number, destroy: boolean): string {
  const out: string[] = [line('CREATE', 0x1000, 'root', 'main.c:1', 0)];
  let parent = 0x1000;
  for (let i = 1; i < levels; i++) {
    const a = 0x1000 + i * 0x100;
    out.push(line('CREATE', a, `p${i % 7}`, `main.c:${i % 50}`, parent));
    out.push(line('PALLOC', a, `p${i % 7}`, `x.c:${i % 9}`, parent, 64, 1));
    parent = a;
  }
  if (destroy) out.push(line('DESTROY', 0x1000, 'root', 'main.c:99', 0));
  return out.join('');
}

/** Every command that reads an input, on `input`; `json` is analyze --format json's result. */
async function everyCommand(input: string): Promise<AnalysisResult> {
  const runs: [string, string[]][] = [
    ['analyze', ['analyze', input]],
    ['info', ['info', input]],
    ['report', ['report', input, '-o', f('r.html')]],
    ['export pprof', ['export', input, '--to', 'pprof', '-o', f('x.pb')]],
    ['export speedscope', ['export', input, '--to', 'speedscope', '-o', f('x.json')]],
    ['export collapsed', ['export', input, '--to', 'collapsed', '-o', f('x.txt')]],
    ['diff', ['diff', input, input]],
    ['diff --from', ['diff', input, '--from', '1']],
    ['import', ['import', input, '-o', f('x.lstrace')]],
  ];
  runs.push(['analyze --format json', ['analyze', '--format', 'json', input]]);
  // Two at a time: each command is one process on one core, and the suite often waits on servers.
  const results: Awaited<ReturnType<typeof cli>>[] = [];
  let next = 0;
  await Promise.all([0, 1].map(async () => {
    for (let i = next++; i < runs.length; i = next++) results[i] = await cli(runs[i]![1], { timeoutMs: 300_000 });
  }));
  runs.forEach(([what], i) => {
    const r = results[i]!;
    assert.equal(r.code, 0, `${what}: exit ${r.code}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /internal error|Maximum call stack/, what);
  });
  for (const out of ['r.html', 'x.pb', 'x.json', 'x.txt', 'x.lstrace']) assert.ok(existsSync(f(out)), out);
  return JSON.parse(results[runs.length - 1]!.stdout) as AnalysisResult;
}

function depth(forest: PoolReport[]): number {
  let max = 0;
  const stack: [PoolReport, number][] = forest.map((r) => [r, 1]);
  while (stack.length) {
    const [r, d] = stack.pop()!;
    max = Math.max(max, d);
    for (const c of r.children) stack.push([c, d + 1]);
  }
  return max;
}

test('a pool that is its own parent: an anomaly, a root, and every command ends normally', async () => {
  const log = f('self.log');
  writeFileSync(log, line('CREATE', 0xabc0, 'me', 'main.c:786', 0xabc0) + line('PALLOC', 0xabc0, 'me', 'x.c:88', 0xabc0, 64, 1) + line('DESTROY', 0xabc0, 'me', 'x.c:214', 0xabc0, 64, 1));
  const r = await everyCommand(log);
  const p = r.processes[0]!;
  assert.equal(p.anomalies.poolOwnParent, 1);
  assert.equal(p.outstanding.poolBytes, 0, 'the destroy released its allocation');
  assert.deepEqual(p.pools, []);
});

// 100,000 levels (issue 17's depth 10^5): nine times the depth at which a recursive walk
// overflows Node's default stack (about 11,000 frames of a one-argument function).
const DEEP = 100_000;

test('a tree 100,000 pools deep, destroyed from its root: every pool released, each once', async () => {
  const log = f('deep.log');
  writeFileSync(log, deepLog(DEEP, true));
  const r = await everyCommand(log);
  const p = r.processes[0]!;
  assert.equal(p.outstanding.poolBytes, 0);
  assert.equal(p.outstanding.poolCount, 0);
  assert.deepEqual(p.pools, []);
  assert.equal(p.anomalies.unknownPoolDestroy, 0, 'no pool destroyed twice');
});

test('a live tree 100,000 pools deep: the forest is cut at 64 levels, its root holds every byte', async () => {
  const log = f('deep-live.log');
  writeFileSync(log, deepLog(DEEP, false));
  const r = await everyCommand(log);
  const p = r.processes[0]!;
  assert.equal(p.outstanding.poolBytes, 64 * (DEEP - 1));
  assert.equal(p.pools.length, 1);
  assert.equal(p.pools[0]!.treeBytes, 64 * (DEEP - 1));
  assert.equal(depth(p.pools), 64);
});

test('a parent cycle, a looping stack and a fork chain 20,000 processes long in a trace', async () => {
  const trace = f('cycle.lstrace');
  const w = TraceWriter.create(trace, { format: 1, clock: 'ns', source: 'test' });
  const pid = 7;
  w.event({ kind: 'process', pid, t: 0, ppid: 1, command: 'x', exe: 'x' });
  // B is made implicitly as A's parent, then created with A as its parent.
  w.event({ kind: 'pool-create', pid, t: 1, tid: 1, pool: 0xa0, parent: 0xb0, poolKind: 'apr', tag: 'a', stack: 0 });
  w.event({ kind: 'pool-create', pid, t: 2, tid: 1, pool: 0xb0, parent: 0xa0, poolKind: 'apr', tag: 'b', stack: 0 });
  w.event({ kind: 'pool-alloc', pid, t: 3, tid: 1, pool: 0xa0, size: 10, addr: 0, stack: 0 });
  w.event({ kind: 'pool-alloc', pid, t: 3, tid: 1, pool: 0xb0, size: 20, addr: 0, stack: 0 });
  w.event({ kind: 'frame', pid, t: 0, id: 1, frame: frame({ fn: 'f' }) });
  w.event({ kind: 'stack', pid, t: 0, id: 5, parent: 6, frame: 1 });
  w.event({ kind: 'stack', pid, t: 0, id: 6, parent: 5, frame: 1 });
  w.event({ kind: 'alloc', pid, t: 4, tid: 1, addr: 0x1000, size: 100, stack: 5 });
  let parent = pid;
  for (let child = 10_000; child < 30_000; child++) {
    w.event({ kind: 'fork', pid: child, t: 5, parentPid: parent });
    parent = child;
  }
  // The last process of the chain allocates at a stack its first ancestor defined.
  w.event({ kind: 'alloc', pid: parent, t: 6, tid: 1, addr: 0x2000, size: 50, stack: 5 });
  w.event({ kind: 'pool-destroy', pid, t: 7, pool: 0xb0, stack: 0 });
  await w.close();
  const r = await everyCommand(trace);
  const p = r.processes.find((x) => x.pid === pid)!;
  assert.equal(p.outstanding.heapBytes, 100);
  assert.equal(p.outstanding.poolBytes, 10, 'B (20 bytes) destroyed; A kept its own');
  assert.ok(p.sites[0]!.stack.length <= 4096);
});
