// Edges on the real nginx + LuaJIT: the allocator probed at its entry (any allocf, not the
// lj_alloc_f fast path), and a traced worker that dies while traced.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Event, Frame } from '../../src/model/events.js';
import { SymbolTables } from '../../src/model/stacks.js';
import { readTrace } from '../../src/trace/reader.js';
import { attachLuajit } from '../../src/luajit/attach-luajit.js';
import { curlBatch, INTERP_FN_LINE, LEAK_LINE, LEAK_LINE_INTERP, startLuaServer, type LuaServer } from './nginx-server.js';

let server: LuaServer;
let dir: string;

before(async () => {
  server = await startLuaServer(2);
  dir = mkdtempSync(join(tmpdir(), 'leakscope-luajit-edges-'));
  await curlBatch(server.port, 'warm', 200);
});

after(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function load(until: () => boolean, tag: string): Promise<void> {
  // Labels of the same lengths in every round (the label strings' sizes are compared across runs).
  for (let i = 0; !until(); i++) {
    const round = `${tag}${String(i).padStart(4, '0')}`;
    await Promise.all([curlBatch(server.port, round, 50, 5), curlBatch(server.port, `${round}i`, 20, 0, '/leaki')]);
  }
}

async function readAll(path: string): Promise<{ events: Event[]; syms: SymbolTables }> {
  const events: Event[] = [];
  const syms = new SymbolTables();
  await readTrace(path, {
    event(e) {
      if (e.kind === 'frame') syms.scope(e.pid).defineFrame(e.id, e.frame);
      else if (e.kind === 'stack') syms.scope(e.pid).defineStack(e.id, e.parent, e.frame);
      else events.push(e);
    },
  });
  return { events, syms };
}

/** Traces the workers for `ms` under load; LSTRACE_LUAJIT_NO_FAST=1 probes the allocator at its
 *  entry. `settleMs`: then, under the same load, waits for one full GC cycle per worker (frees
 *  still recorded): the blocks allocated while traced are collected whatever the machine's speed. */
async function traceUnderLoad(out: string, ms: number, tag: string, entry: boolean, settleMs = 0): Promise<{ events: Event[]; syms: SymbolTables }> {
  if (entry) process.env.LSTRACE_LUAJIT_NO_FAST = '1';
  let done = false;
  try {
    const traced = attachLuajit({ pids: server.workers, durationMs: ms, out, settleMs }).finally(() => (done = true));
    await load(() => done, tag);
    const res = await traced;
    assert.ok(res.events > 500, `${res.events} events`);
  } finally {
    delete process.env.LSTRACE_LUAJIT_NO_FAST;
  }
  return readAll(out);
}

/** Allocations whose Lua stack ends in leaky.lua, as "size <- file:line fn < ..." with how often each was seen. */
function leakyStacks(events: Event[], syms: SymbolTables): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) {
    if (e.kind !== 'alloc') continue;
    const st = syms.scope(e.pid).stackFrames(e.stack);
    if (!st[0]?.file.endsWith('leaky.lua')) continue;
    const k = `${e.size} <- ${st.map((f) => `${f.file}:${f.line} ${f.fn}`).join(' < ')}`;
    out.set(k, (out.get(k) ?? 0) + 1);
  }
  return out;
}

test('the allocator probed at its entry gives the same events and stacks as the fast path; interpreted frames have their lines', { timeout: 120_000 }, async () => {
  const fast = await traceUnderLoad(join(dir, 'fast.lstrace'), 3000, 'f', false);
  // (3 s alone held no GC cycle on a loaded machine: no free at all was seen)
  const entry = await traceUnderLoad(join(dir, 'entry.lstrace'), 3000, 'e', true, 40_000);
  const { events, syms } = entry;
  const allocs = events.filter((e) => e.kind === 'alloc');
  assert.ok(allocs.length > 100, `${allocs.length} allocations`);
  // Frees are seen through the entry probe too: blocks allocated while traced, then collected.
  const made = new Set(allocs.map((e) => `${e.pid}:${e.kind === 'alloc' ? e.addr : 0}`));
  const frees = events.filter((e) => e.kind === 'free');
  assert.ok(frees.some((e) => e.kind === 'free' && made.has(`${e.pid}:${e.addr}`)), `${frees.length} frees, none of a block allocated while traced`);
  // The same allocations, of the same sizes, from the same Lua stacks, as the fast path gave on
  // the same requests: every (size, stack) the interpreted handler makes per request (seen 5
  // times or more in one run; a one-off is left out) is seen in the other run too. Only the
  // handler the JIT never compiles is compared: the compiled one's stacks change with whatever
  // the JIT has compiled by then (an interpreted line in one run, a compiled trace in the next).
  // (Not "5 times in both": how many requests 3 s hold depends on the machine's load.)
  const interpKeys = (m: Map<string, number>) => new Map([...m].filter(([k]) => k.includes(`leaky.lua:${INTERP_FN_LINE}>`)));
  const fastSeen = interpKeys(leakyStacks(fast.events, fast.syms));
  const entrySeen = interpKeys(leakyStacks(entry.events, entry.syms));
  const frequent = (m: Map<string, number>) => [...m].filter(([, n]) => n >= 5).map(([k]) => k);
  const a = frequent(fastSeen);
  assert.ok(a.length >= 2, [...fastSeen.keys()].join('\n'));
  assert.deepEqual(a.filter((k) => !entrySeen.has(k)), [], 'made on every request by the fast path, never seen at the entry probe');
  assert.deepEqual(frequent(entrySeen).filter((k) => !fastSeen.has(k)), [], 'made on every request at the entry probe, never seen by the fast path');
  const leafs: Frame[] = allocs.map((e) => syms.scope(e.pid).stackFrames(e.kind === 'alloc' ? e.stack : 0)[0]!).filter(Boolean);
  assert.ok(leafs.some((f) => f.file.endsWith('leaky.lua') && f.line === LEAK_LINE), 'the leaking line was never seen');
  // The handler with the JIT off: the interpreter's saved PC gives the line.
  const interp = allocs.map((e) => (e.kind === 'alloc' ? syms.scope(e.pid).stackFrames(e.stack) : [])).find((st) => st[0]?.line === LEAK_LINE_INTERP && st[0].file.endsWith('leaky.lua'));
  assert.ok(interp, 'the interpreted leaking line was never seen');
  assert.ok(!interp[0]!.fn.includes('[compiled]'), interp[0]!.fn);
  assert.ok(interp.some((f) => f.file.startsWith('content_by_lua')), interp.map((f) => f.file).join(' < '));
  for (const e of allocs) if (e.kind === 'alloc') assert.ok(e.addr > 0 && e.size > 0);
});

test('a worker killed while traced: its events are kept, an exit and a warning', { timeout: 30_000 }, async () => {
  const out = join(dir, 'exit.lstrace');
  const victim = server.workers[0]!;
  let done = false;
  const traced = attachLuajit({ pids: server.workers, durationMs: 5000, out, settleMs: 0 }).finally(() => (done = true));
  // A worker of the master this test started, killed while the trace runs.
  const killer = setTimeout(() => process.kill(victim, 'SIGKILL'), 2000);
  await load(() => done, 'x');
  clearTimeout(killer);
  const res = await traced;
  assert.ok(res.warnings.some((w) => w.includes(`pid ${victim} exited`)), res.warnings.join('\n'));
  const { events } = await readAll(out);
  assert.ok(events.some((e) => e.kind === 'exit' && e.pid === victim));
  assert.ok(events.some((e) => e.kind === 'alloc'), 'no allocation recorded');
});

test('nothing to trace: one-line UserError naming why, for a process without Lua and a gone pid', async () => {
  const out = join(dir, 'none.lstrace');
  await assert.rejects(attachLuajit({ pids: [process.pid], durationMs: 300, out }), (e: Error) => {
    assert.equal(e.name, 'UserError');
    assert.match(e.message, /does not export|no mapped module exports the Lua C API/);
    assert.ok(!e.message.includes('\n'));
    return true;
  });
  await assert.rejects(attachLuajit({ pids: [0x3ffffff0], durationMs: 300, out }), /does not exist/);
  await assert.rejects(attachLuajit({ pids: [], durationMs: 300, out }), /no valid pid/);
});
