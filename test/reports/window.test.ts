import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WindowSink, NEVER, outstandingAt, stackTotals } from '../../src/analyses/window.js';
import type { WindowState } from '../../src/analyses/window.js';
import { frameLabel } from '../../src/model/events.js';
import { scenario, STEP } from './scenario.js';

function run(buckets?: number): { s: ReturnType<typeof scenario>; w: WindowState } {
  const s = scenario();
  const sink = new WindowSink({ buckets });
  for (const e of s.events) sink.event(e);
  return { s, w: sink.finish() };
}

function byLeaf(w: WindowState) {
  const p = w.processes[0]!;
  const out = new Map<string, ReturnType<typeof stackTotals>[number]>();
  for (const t of stackTotals(p)) out.set(frameLabel(p.stacks.get(t.stack)![0]!), t);
  return out;
}

test('window grid: totals per stack match the workload', () => {
  const { s, w } = run();
  assert.equal(w.processes.length, 1);
  assert.ok(w.buckets <= 64 && w.buckets > 32, `buckets ${w.buckets}`);
  assert.ok(w.width * 64 > s.steps * STEP);
  const t = byLeaf(w);
  assert.deepEqual(t.get('leaky_alloc (leaky.c:7)'), { stack: t.get('leaky_alloc (leaky.c:7)')!.stack, allocBytes: 100_000, allocCount: 100, inuseBytes: 100_000, inuseCount: 100 });
  const temp = t.get('temp_buf (buf.c:3)')!;
  assert.equal(temp.allocBytes, 50_000);
  assert.equal(temp.inuseBytes, 0);
  const req = t.get('make_request (server.c:50)')!;
  assert.equal(req.allocBytes, 20_000);
  assert.equal(req.inuseBytes, 0, 'destroyed request pools release their allocations');
  const pool = t.get('remember (cache.c:25)')!;
  assert.equal(pool.inuseBytes, 30_000);
  // Stacks resolve leaf first, whole.
  const p = w.processes[0]!;
  assert.deepEqual(p.stacks.get(t.get('leaky_alloc (leaky.c:7)')!.stack)!.map((f) => f.fn), ['leaky_alloc', 'handle_request', 'main']);
});

test('window grid: outstanding at a bucket counts what was allocated by then and not yet freed', () => {
  const { w } = run();
  const p = w.processes[0]!;
  const stackOf = (fn: string) => [...p.stacks].find(([, fr]) => fr[0]!.fn === fn)![0];
  const mid = Math.floor((50 * STEP) / w.width);
  const at = outstandingAt(p, mid);
  const leakAt = at.get(stackOf('leaky_alloc'))!;
  // Steps whose time falls in buckets 0..mid: each leaked 1000 bytes.
  const expected = Array.from({ length: 100 }, (_, i) => (i + 1) * STEP).filter((t) => Math.floor(t / w.width) <= mid).length;
  assert.equal(leakAt.count, expected);
  assert.equal(leakAt.bytes, expected * 1000);
  // temp buffers live half a step: at most a couple are outstanding at any bucket end.
  assert.ok((at.get(stackOf('temp_buf'))?.count ?? 0) <= 2);
  // Cells never release before they allocate.
  for (const c of p.cells) assert.ok(c.f === NEVER || c.f >= c.a);
});

test('window grid: merging buckets keeps every byte', () => {
  const a = byLeaf(run(64).w);
  const b = byLeaf(run(4).w);
  for (const [k, v] of a) {
    const u = b.get(k)!;
    assert.equal(u.allocBytes, v.allocBytes, k);
    assert.equal(u.inuseBytes, v.inuseBytes, k);
    assert.equal(u.allocCount, v.allocCount, k);
  }
  assert.ok(run(4).w.buckets <= 4);
});

test('window grid: pools seen first in a child (inherited over fork) and realloc', () => {
  const sink = new WindowSink();
  sink.event({ kind: 'fork', pid: 2, t: 0, parentPid: 1 });
  sink.event({ kind: 'pool-alloc', pid: 2, t: 5, tid: 2, pool: 0xa0, size: 64, addr: 0, stack: 0 });
  sink.event({ kind: 'pool-create', pid: 2, t: 6, tid: 2, pool: 0xb0, parent: 0xa0, poolKind: 'apr', tag: 'sub', stack: 0 });
  sink.event({ kind: 'pool-alloc', pid: 2, t: 7, tid: 2, pool: 0xb0, size: 32, addr: 0x500, stack: 0 });
  sink.event({ kind: 'pool-clear', pid: 2, t: 8, pool: 0xa0, stack: 0 });
  sink.event({ kind: 'alloc', pid: 2, t: 9, tid: 2, addr: 0x900, size: 10, stack: 0 });
  sink.event({ kind: 'realloc', pid: 2, t: 10, tid: 2, oldAddr: 0x900, addr: 0x980, size: 40, stack: 0 });
  const w = sink.finish();
  const [t] = stackTotals(w.processes[0]!);
  assert.equal(t!.allocBytes, 64 + 32 + 10 + 40);
  assert.equal(t!.inuseBytes, 40, 'clear of the parent released its own and its child pool\'s allocations');
});

test('window grid: sampled traces are weighted like the engine; a reused address ends the old block', () => {
  const sink = new WindowSink({ sampleBytes: 1000 });
  sink.event({ kind: 'alloc', pid: 1, t: 1, tid: 1, addr: 0x10, size: 100, stack: 0 });
  sink.event({ kind: 'alloc', pid: 1, t: 2, tid: 1, addr: 0x20, size: 100_000, stack: 0 });
  sink.event({ kind: 'alloc', pid: 1, t: 3, tid: 1, addr: 0x20, size: 50, stack: 0 }); // no free seen for the old 0x20
  const [t] = stackTotals(sink.finish().processes[0]!);
  const w = (s: number) => 1 / -Math.expm1(-s / 1000);
  assert.ok(Math.abs(t!.allocCount - (w(100) + w(100_000) + w(50))) < 1e-9);
  assert.ok(Math.abs(t!.inuseBytes - (100 * w(100) + 50 * w(50))) < 1e-6, String(t!.inuseBytes));
  assert.ok(Math.abs(t!.inuseCount - (w(100) + w(50))) < 1e-9);
});

test('window run: the grid takes the sampling rate from the trace metadata', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const { TraceWriter } = await import('../../src/trace/writer.js');
  const { analyzeWithWindow } = await import('../../src/pipeline/window-run.js');
  const dir = mkdtempSync(join(tmpdir(), 'leakscope-window-run-'));
  try {
    const path = join(dir, 'sampled.lstrace');
    const w = TraceWriter.create(path, { format: 1, clock: 'ns', source: 'test', sampleBytes: 1000 });
    w.event({ kind: 'alloc', pid: 7, t: 1, tid: 1, addr: 0x10, size: 100, stack: 0 });
    await w.close();
    const run = await analyzeWithWindow([path], { windowOnly: true });
    const [t] = stackTotals(run.window.processes[0]!);
    // One recorded 100-byte allocation stands for 1 / (1 - e^-0.1) ≈ 10.5 allocations.
    assert.ok(Math.abs(t!.allocCount - 1 / -Math.expm1(-100 / 1000)) < 1e-9, String(t!.allocCount));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
